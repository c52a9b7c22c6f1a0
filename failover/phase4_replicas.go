package failover

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/mharaft/mharaft/dialect"
)

// recoverReplicas is phase 4 (MHA's "Slaves Recovery Phase"): every other
// replica gets what it lacks and replicates from the new master, all in
// parallel (recoverReplica); the report says what became of each.
func (r *run) recoverReplicas(ctx context.Context, st *failoverState) error {
	newM := st.newM
	pos := dialect.Pos{File: r.plan.NewMasterPos.File, Pos: r.plan.NewMasterPos.Pos}
	errs := parallel(st.replicas, func(n *node) error { return r.recoverReplica(ctx, st, n, pos) })
	for _, n := range st.replicas {
		if e := errs[n.srv.Name]; e != nil {
			r.rep.Replicas = append(r.rep.Replicas, ReplicaOutcome{Server: n.srv.Name, State: e.Error()})
			r.rep.addf("%s: FAILED: %v", n.srv, e)
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
// logs; without GTID, apply its relay diff from the latest replica (MHA's
// 4.1) and the saved tail and top-up (4.2); CHANGE MASTER to the new
// master at pos (or by GTID) around a journaled step, START SLAVE. A
// replica already replicating from the new master was done by an earlier
// run.
func (r *run) recoverReplica(ctx context.Context, st *failoverState, n *node, pos dialect.Pos) error {
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
		diff, err := r.relayDiffFor(ctx, st, n)
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
