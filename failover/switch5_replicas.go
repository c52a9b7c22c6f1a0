package failover

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mharaft/mharaft/dialect"
)

// repointReplicas is phase 5: every other replica executes the old
// master's final position and replicates from the new master, in
// parallel; one that already does (an earlier run repointed it) is only
// checked to be running. The report says what became of each.
func (r *run) repointReplicas(ctx context.Context, st *switchState) error {
	newM, others := st.newM, st.others
	r.enableSemiSync(ctx, newM, append([]*node{st.orig}, others...)...)
	pos := dialect.Pos{File: r.plan.NewMasterPos.File, Pos: r.plan.NewMasterPos.Pos}
	errs := parallel(others, func(n *node) error {
		if err := n.refreshReplica(ctx); err != nil {
			return err
		}
		if n.isReplicaOf(newM.srv) {
			r.logf("%s already replicates from %s (an earlier run repointed it).", n, newM)
			return n.waitReplicaRunning(ctx, r.opts.replicaStartTimeout())
		}
		if err := r.waitReached(ctx, n); err != nil {
			return err
		}
		return n.changeMaster(ctx, newM.srv, r.plan.GTID, pos, r.opts.replicaStartTimeout())
	})
	for _, n := range others {
		if e := errs[n.srv.Name]; e != nil {
			r.rep.Replicas = append(r.rep.Replicas, ReplicaOutcome{Server: n.srv.Name, State: e.Error()})
			r.rep.addf("%s: FAILED: %v", n.srv, e)
		} else {
			r.rep.Replicas = append(r.rep.Replicas, ReplicaOutcome{Server: n.srv.Name, OK: true, State: "replicating from " + newM.srv.String()})
			r.rep.addf("%s: OK: replicating from %s.", n.srv, newM.srv)
		}
	}
	for _, name := range r.plan.Ignored {
		r.rep.Replicas = append(r.rep.Replicas, ReplicaOutcome{Server: name, State: "unreachable; ignored (ignore_fail)"})
		r.rep.addf("%s: unreachable; ignored (ignore_fail): repoint it to %s by hand.", name, newM.srv)
	}
	if len(errs) > 0 {
		var names []string
		var all []error
		for _, n := range others {
			if e := errs[n.srv.Name]; e != nil {
				names = append(names, n.srv.Name)
				all = append(all, fmt.Errorf("%s: %w", n.srv.Name, e))
			}
		}
		return fmt.Errorf("%d replica(s) could not be repointed (%s): %w", len(errs), strings.Join(names, ", "), errors.Join(all...))
	}
	return nil
}

// leaveReplicas is phase 5 with --skip_change_master: the replicas other
// than the new master are not repointed; they stay replicas of the old
// master (read_only=1 after the switch, so they receive nothing new until
// the operator repoints them).
func (r *run) leaveReplicas(st *switchState) {
	old := r.plan.OldMaster
	if s := r.opts.App.Server(old); s != nil {
		old = s.String()
	}
	r.logf("--skip_change_master: %d replica(s) left replicating from %s.", len(st.others), old)
	for _, n := range st.others {
		r.rep.Replicas = append(r.rep.Replicas, ReplicaOutcome{Server: n.srv.Name, OK: true, State: "left replicating from " + old + " (--skip_change_master)"})
		r.rep.addf("%s: left replicating from %s (--skip_change_master): repoint it to %s when ready (CHANGE MASTER).", n.srv, old, st.newM.srv)
	}
	for _, name := range r.plan.Ignored {
		r.rep.Replicas = append(r.rep.Replicas, ReplicaOutcome{Server: name, State: "unreachable; ignored (ignore_fail)"})
		r.rep.addf("%s: unreachable; ignored (ignore_fail).", name)
	}
}
