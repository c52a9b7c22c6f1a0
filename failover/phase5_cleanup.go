package failover

import (
	"context"

	"github.com/mharaft/mharaft/dialect"
)

// cleanupNewMaster is phase 5 (MHA's "New master cleanup phase"): the new
// master forgets its replication from the dead master (STOP SLAVE, RESET
// SLAVE ALL). Repeating it changes nothing.
//
// With skip_reset_slave=1 in the new master's block (MHA's setting for a
// master-master pair) it keeps its replication settings, stopped, so that
// START SLAVE re-establishes the pair once the old master is back. Kept as
// they were they would be unsafe: the new master received the dead
// master's last events from the relay diff, the saved tail and the top-up,
// not through its own replication, so its replication position is behind
// them and a START SLAVE would apply them a second time. The position is
// therefore moved to the end of what was recovered from the dead master
// (file/position replication), or the settings made to point at the dead
// master by GTID again when the GTID catch-up pointed them at the latest
// replica. Events the dead master wrote that nobody could read (its tail
// lost) are still in its binlog: a START SLAVE would bring them over, so
// the report says to compare the servers first.
func (r *run) cleanupNewMaster(ctx context.Context, st *failoverState) error {
	newM := st.newM
	if !newM.srv.SkipResetSlave {
		if err := newM.exec(ctx, newM.d.StopReplica(), newM.d.ResetReplicaAll()); err != nil {
			return err
		}
		r.rep.addf("%s: Resetting slave info succeeded.", st.newM.srv)
		return nil
	}
	if err := newM.exec(ctx, newM.d.StopReplica()); err != nil {
		return err
	}
	o := dialect.ChangeMasterOpts{Host: st.dead.IP, Port: st.dead.Port, User: newM.srv.ReplUser, Password: newM.srv.ReplPassword}
	if o.Host == "" {
		o.Host = st.dead.Hostname
	}
	var at string
	var stmts []string
	if r.plan.GTID {
		o.Mode = dialect.GTIDSlavePos
		at = "by GTID"
		if newM.d.V.IsMariaDB() && r.plan.NewMasterGTID != "" {
			// The tail and the top-up were applied by the client, not by
			// replication: gtid_slave_pos does not hold them. It is set to
			// what the new master held when it was activated (its own
			// writes since are not the old master's to send back).
			stmts = append(stmts, "SET GLOBAL gtid_slave_pos = "+dialect.QuoteString(r.plan.NewMasterGTID))
			at = "by GTID from " + r.plan.NewMasterGTID
		}
	} else {
		end := r.plan.LatestRead
		if r.plan.TailFile != "" {
			end = r.plan.TailEnd
		}
		if r.plan.TopUpFile != "" {
			end = r.plan.TopUpEnd
		}
		o.Mode, o.File, o.Pos = dialect.FilePos, end.File, end.Pos
		at = "from " + end.String()
	}
	if err := newM.exec(ctx, append(stmts, newM.d.ChangeMaster(o))...); err != nil {
		return err
	}
	r.rep.addf("Skipping RESET SLAVE on the new master %s (skip_reset_slave): it keeps replicating from %s %s, stopped; "+
		"once %s is back and holds nothing %s lacks (compare their GTID state or binlogs), START SLAVE on %s re-establishes the pair.",
		newM.srv, st.dead, at, st.dead, newM.srv, newM.srv)
	return nil
}
