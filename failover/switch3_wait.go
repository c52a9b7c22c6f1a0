package failover

import (
	"context"
	"fmt"
	"time"

	"github.com/mharaft/mharaft/dialect"
)

// waitFinalPosition is phase 3: the new master executes everything the
// fenced old master wrote. With fence_mode=shutdown every replica must,
// too: the old master stops for good right after (shutdownOldMaster).
func (r *run) waitFinalPosition(ctx context.Context, st *switchState) error {
	if r.opts.App.FenceMode != "shutdown" {
		return r.waitReached(ctx, st.newM)
	}
	// The old master is about to stop: every replica must have
	// received and executed all it wrote first.
	all := append([]*node{st.newM}, st.others...)
	if errs := parallel(all, func(n *node) error { return r.waitReached(ctx, n) }); len(errs) > 0 {
		return fmt.Errorf("replicas did not reach the old master's final position: %v", errs)
	}
	return nil
}

// waitReached waits until n executed everything the fenced old master wrote.
func (r *run) waitReached(ctx context.Context, n *node) error {
	if r.plan.GTID && r.plan.OrigGTID != "" {
		return n.waitGTID(ctx, r.plan.OrigGTID, r.opts.waitTimeout())
	}
	return n.waitPos(ctx, dialect.Pos{File: r.plan.OrigMasterPos.File, Pos: r.plan.OrigMasterPos.Pos}, r.opts.waitTimeout())
}

// shutdownOldMaster is fence_mode=shutdown: SHUTDOWN on the fenced old
// master (its lock connection issues it), then a check that it no longer
// answers.
func (r *run) shutdownOldMaster(ctx context.Context, orig *node, f *fence) error {
	if f == nil || f.conn == nil {
		return fmt.Errorf("shut down %s: no fence connection", orig)
	}
	if f.locked {
		if _, err := f.conn.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
			return fmt.Errorf("shut down %s: UNLOCK TABLES: %w", orig, err)
		}
		f.locked = false
	}
	if _, err := f.conn.ExecContext(ctx, "SHUTDOWN"); err != nil && !isUnreachable(err) {
		return fmt.Errorf("shut down %s (fence_mode=shutdown): %w", orig, err)
	}
	f.conn.Close()
	f.conn = nil
	deadline := time.Now().Add(r.opts.waitTimeout())
	for {
		err := orig.db.PingContext(ctx)
		if err != nil && isUnreachable(err) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("shut down %s (fence_mode=shutdown): it still answers after %s", orig, r.opts.waitTimeout())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	r.logf("fence_mode=shutdown: %s is shut down.", orig)
	r.addf("%s: shut down (fence_mode=shutdown) at %s.", orig.srv, r.plan.OrigMasterPos)
	return nil
}
