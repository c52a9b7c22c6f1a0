package failover

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/mharaft/mharaft/dialect"
)

// recoverReplicas is phase 4 (MHA's "Slaves Recovery Phase"): every other
// replica gets what it lacks and replicates from the new master, all in
// parallel (recoverReplica); the report says what became of each.
//
// A replica whose relay logs the relay diffs are read from (the latest
// replica and the equally latest ones, see diffSources) is repointed only
// once every replica's diff is written locally: its CHANGE MASTER runs
// RESET SLAVE ALL, which deletes its relay logs. This is MHA's order (4.1,
// every diff generated, before 4.2, any replica recovered); the rest runs
// in parallel. The new master's RESET SLAVE ALL (phase 5) comes after
// phase 4, when every diff has ended.
func (r *run) recoverReplicas(ctx context.Context, st *failoverState) error {
	newM := st.newM
	if !r.opts.Switch.SkipChangeMaster {
		r.enableSemiSync(ctx, newM, st.replicas...)
	}
	pos := dialect.Pos{File: r.plan.NewMasterPos.File, Pos: r.plan.NewMasterPos.Pos}
	var srcs []diffSource
	if !r.plan.GTID {
		srcs = r.diffSources(st, st.latest, r.plan.LatestRead)
	}
	diffs := newDiffBarrier(st.replicas, srcs)
	errs := parallel(st.replicas, func(n *node) error {
		defer diffs.arrive(n.srv.Name) // also when it fails before its diff
		defer r.waitDiff(ctx, n)       // runs first: its background diff, if any, has ended
		return r.recoverReplica(ctx, st, n, pos, srcs, diffs)
	})
	for _, n := range st.replicas {
		if e := errs[n.srv.Name]; e != nil {
			r.rep.Replicas = append(r.rep.Replicas, ReplicaOutcome{Server: n.srv.Name, State: e.Error()})
			r.rep.addf("%s: FAILED: %v", n.srv, e)
			continue
		}
		if r.opts.Switch.SkipChangeMaster {
			r.rep.Replicas = append(r.rep.Replicas, ReplicaOutcome{Server: n.srv.Name, OK: true,
				State: fmt.Sprintf("missing events applied; not repointed (skip_change_master): start it from %s at %s", newM.srv, pos)})
			r.rep.addf("%s: OK: Applying all logs succeeded. Skipping change master and start slave.", n.srv)
			continue
		}
		how := "file/position " + pos.String()
		if r.plan.GTID {
			how = "GTID"
		}
		r.rep.Replicas = append(r.rep.Replicas, ReplicaOutcome{Server: n.srv.Name, OK: true,
			State: fmt.Sprintf("replicating from %s by %s", newM.srv, how)})
		r.rep.addf("%s: OK: Applying all logs succeeded. Slave started, replicating from %s", n.srv, newM.srv)
	}
	for _, name := range r.plan.Ignored {
		r.rep.Replicas = append(r.rep.Replicas, ReplicaOutcome{Server: name, State: "dead or not replicating; ignored (ignore_fail)"})
	}
	if len(errs) > 0 {
		var names []string
		for name := range errs {
			names = append(names, name)
		}
		sort.Strings(names)
		var all []error
		for _, name := range names {
			all = append(all, fmt.Errorf("%s: %w", name, errs[name]))
		}
		// The causes stay visible to errors.Is (ErrMayNotAct, ErrUnsafeResume).
		return fmt.Errorf("recovering replicas %s failed: %w", strings.Join(names, ", "), errors.Join(all...))
	}
	return nil
}

// recoverReplica recovers one replica: wait until it applied its relay
// logs; without GTID, its relay diff from the latest replica (MHA's 4.1),
// then the diff and the saved tail and top-up applied (4.2); a diff
// source waits until every diff is written (diffs); CHANGE MASTER to the
// new master at pos (or by GTID) around a journaled step, START SLAVE. A
// replica already replicating from the new master was done by an earlier
// run.
func (r *run) recoverReplica(ctx context.Context, st *failoverState, n *node, pos dialect.Pos, srcs []diffSource, diffs *diffBarrier) error {
	newM := st.newM
	if err := n.refresh(ctx); err != nil {
		return err
	}
	if n.isReplicaOf(newM.srv) {
		return nil // done by an earlier run
	}
	if err := r.waitRelayApplied(ctx, n); err != nil {
		return err
	}
	if err := n.exec(ctx, n.d.StopReplica()); err != nil {
		return err
	}
	if !r.plan.GTID {
		diff, err := r.relayDiffFor(ctx, st, n, srcs)
		diffs.arrive(n.srv.Name)
		if err != nil {
			return err
		}
		saved, err := r.savedFilesFor(ctx, st.dead, n)
		if err != nil {
			return err
		}
		if err := r.applyLogs(ctx, n, append(diff, saved...), PhaseReplicas); err != nil {
			return err
		}
	}
	if diffs.isSource(n.srv.Name) {
		if !diffs.ready() {
			r.logf("%s: other replicas' relay diffs are read from its relay logs: it is repointed once every diff is written.", n)
		}
		if err := diffs.wait(ctx); err != nil {
			return fmt.Errorf("repoint %s: waiting for the relay diffs read from its relay logs: %w", n, err)
		}
	}
	if r.opts.Switch.SkipChangeMaster {
		return nil // the operator repoints it (MHA's --skip_change_master)
	}
	step := PhaseReplicas + ": repoint " + n.srv.Name
	if err := r.journal.Begin(ctx, step, r.plan); err != nil {
		return fmt.Errorf("begin %s: %w: %v", step, ErrMayNotAct, err)
	}
	if err := n.changeMaster(ctx, newM.srv, r.plan.GTID, pos, r.opts.replicaStartTimeout()); err != nil {
		return err
	}
	if err := r.journal.Done(ctx, step, r.plan); err != nil {
		return fmt.Errorf("record end of %s: %w: %v", step, ErrMayNotAct, err)
	}
	if r.plan.GTID && r.plan.NewMasterGTID != "" {
		// Report a replica as recovered only once it has what the new
		// master had when it went writable.
		return n.waitGTID(ctx, r.plan.NewMasterGTID, r.opts.waitTimeout())
	}
	return nil
}

// diffBarrier holds back the repoint of the replicas whose relay logs the
// relay diffs are read from (the sources) until every replica of phase 4
// has arrived: its diff is written locally, it needs none, or it failed
// before (and its background diff has ended).
type diffBarrier struct {
	mu      sync.Mutex
	waiting map[string]bool // replicas that have not arrived
	sources map[string]bool
	all     chan struct{} // closed when waiting is empty
}

func newDiffBarrier(replicas []*node, srcs []diffSource) *diffBarrier {
	b := &diffBarrier{waiting: map[string]bool{}, sources: map[string]bool{}, all: make(chan struct{})}
	for _, n := range replicas {
		b.waiting[n.srv.Name] = true
	}
	for _, s := range srcs {
		b.sources[s.name] = true
	}
	if len(b.waiting) == 0 {
		close(b.all)
	}
	return b
}

// arrive records that nothing reads relay logs for the named replica any
// more; a second call changes nothing.
func (b *diffBarrier) arrive(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.waiting[name] {
		return
	}
	delete(b.waiting, name)
	if len(b.waiting) == 0 {
		close(b.all)
	}
}

func (b *diffBarrier) isSource(name string) bool { return b.sources[name] }

// ready tells whether every replica has arrived.
func (b *diffBarrier) ready() bool {
	select {
	case <-b.all:
		return true
	default:
		return false
	}
}

// wait returns once every replica has arrived.
func (b *diffBarrier) wait(ctx context.Context) error {
	select {
	case <-b.all:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
