package failover

import (
	"context"
	"fmt"

	"github.com/mharaft/mharaft/dialect"
)

// origBecomesReplica is phase 6 (--orig_master_is_new_slave): the fence
// ends and the old master replicates from the new one (on MariaDB by GTID
// from its own gtid_binlog_pos). One that already does (an earlier run made
// it a replica) is only checked to be running.
func (r *run) origBecomesReplica(ctx context.Context, st *switchState) error {
	orig, newM := st.orig, st.newM
	r.releaseFence(st.fence)
	if orig == nil {
		return fmt.Errorf("the old master %s is unreachable (%v): it cannot become a replica of %s; "+
			"repair it and make it a replica (mhactl rejoin), or leave it out", r.plan.OldMaster, st.errs[r.plan.OldMaster], newM.srv)
	}
	if err := orig.refreshReplica(ctx); err != nil {
		return err
	}
	if orig.isReplicaOf(newM.srv) {
		r.logf("%s already replicates from %s (an earlier run made it a replica).", orig, newM)
		if err := orig.waitReplicaRunning(ctx, r.opts.replicaStartTimeout()); err != nil {
			return err
		}
	} else {
		if orig.d.V.IsMariaDB() && r.plan.GTID {
			if err := orig.exec(ctx, orig.d.StopReplica(), "SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos"); err != nil {
				return err
			}
		}
		if err := orig.changeMaster(ctx, newM.srv, r.plan.GTID, dialect.Pos{File: r.plan.NewMasterPos.File, Pos: r.plan.NewMasterPos.Pos}, r.opts.replicaStartTimeout()); err != nil {
			return err
		}
	}
	r.rep.Replicas = append(r.rep.Replicas, ReplicaOutcome{Server: orig.srv.Name, OK: true, State: "old master, replicating from " + newM.srv.String()})
	r.rep.addf("%s: OK: old master now replicates from %s.", orig.srv, newM.srv)
	return nil
}
