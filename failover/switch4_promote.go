package failover

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// promoteSwitch is phase 4: the new master stops replicating, its
// position is recorded, it forgets its master, the IP hook moves the
// address, it becomes writable. A resumed phase skips what the new
// master's state shows done.
func (r *run) promoteSwitch(ctx context.Context, st *switchState) error {
	app := r.opts.App
	orig, newM, f := st.orig, st.newM, st.fence
	if err := newM.refresh(ctx); err != nil {
		return err
	}
	if keptReplication(newM, r.plan) {
		// skip_reset_slave: an earlier run stopped its replication and
		// made it writable; its position was recorded then.
		r.logf("%s keeps its stopped replication (skip_reset_slave) and is writable: an earlier run promoted it at %s.", newM, r.plan.NewMasterPos)
	} else if newM.replica != nil {
		if err := newM.exec(ctx, newM.d.StopReplica()); err != nil {
			return err
		}
		pos, err := newM.masterStatus(ctx)
		if err != nil {
			return err
		}
		r.plan.NewMasterPos = Coord{pos.File, pos.Pos}
		if err := newM.refreshGTID(ctx); err != nil {
			return err
		}
		r.plan.NewMasterGTID = newM.gtidBinlogPos
		if newM.srv.SkipResetSlave {
			// MHA's skip_reset_slave: the new master keeps its replication
			// settings, stopped at the old master's final position, so that
			// START SLAVE re-establishes a master-master pair.
			r.logf("Skipping RESET SLAVE on the new master %s (skip_reset_slave): its replication from %s stays configured, stopped.", newM, r.plan.OldMaster)
			r.rep.addf("%s: kept its replication settings, stopped (skip_reset_slave): START SLAVE on it re-establishes the pair.", newM.srv)
		} else if err := newM.exec(ctx, newM.d.ResetReplicaAll()); err != nil {
			return err
		}
	} else {
		// Resumed after RESET SLAVE ALL. Without GTID the replicas need the
		// position the earlier run read before the new master took writes.
		if r.plan.NewMasterPos.IsZero() {
			if !newM.readOnly && !r.plan.GTID {
				return fmt.Errorf("%w: resuming %q: the new master %s is already writable and the earlier run recorded no position "+
					"for the replicas (file/position replication); find the position in %s's binlog where it was promoted and repoint the replicas by hand",
					ErrUnsafeResume, SwitchPromote, newM, newM)
			}
			// read_only=1 and the old master fenced: nothing was written since.
			pos, err := newM.masterStatus(ctx)
			if err != nil {
				return err
			}
			r.plan.NewMasterPos = Coord{pos.File, pos.Pos}
			r.plan.NewMasterGTID = newM.gtidBinlogPos
		}
		r.logf("%s is no longer a replica: an earlier run promoted it at %s.", newM, r.plan.NewMasterPos)
	}
	if app.MasterIPOnlineChangeScript != "" {
		var origSrv = newM.srv
		if orig != nil {
			origSrv = orig.srv
		} else if s := app.Server(r.plan.OldMaster); s != nil {
			origSrv = s
		}
		res, err := r.runHook(ctx, app.MasterIPOnlineChangeScript, r.onlineChangeArgs("start", origSrv, newM.srv))
		if err != nil {
			return err
		}
		if IPHookOutcome(res.ExitCode) == HookAbort {
			return fmt.Errorf("%w: master_ip_online_change_script --command=start exited %d: %s", ErrHookFailed, res.ExitCode, strings.TrimSpace(res.Output))
		}
	}
	if r.opts.Switch.SkipDisableReadOnly {
		r.logf("--skip_disable_read_only: %s is promoted at %s and stays read_only=1.", newM, r.plan.NewMasterPos)
		r.rep.addf("%s: OK: promoted to master at %s; left read_only=1 (--skip_disable_read_only): SET GLOBAL read_only=0 on it to let the application write.",
			newM.srv, r.plan.NewMasterPos)
		return nil
	}
	if err := newM.exec(ctx, newM.d.SetReadOnly(false)...); err != nil {
		return err
	}
	newM.readOnly = false
	if f != nil {
		r.rep.WritesBlocked = time.Since(f.started)
		r.rep.WritesBlockedSecs = r.rep.WritesBlocked.Seconds()
	}
	r.logf("New master %s is writable at %s; writes were blocked for %.3f s.", newM, r.plan.NewMasterPos, r.rep.WritesBlockedSecs)
	r.rep.addf("%s: OK: promoted to master at %s.", newM.srv, r.plan.NewMasterPos)
	return nil
}

// keptReplication reports a new master that an earlier run of a switch
// promoted while keeping its replication settings (skip_reset_slave):
// still a replica in SHOW SLAVE STATUS, but stopped, writable, and its
// position recorded in the plan.
func keptReplication(n *node, p *Plan) bool {
	return n.srv.SkipResetSlave && n.replica != nil && !n.replica.SQLRunning && !n.replica.IOThreadRunning() &&
		!n.readOnly && !p.NewMasterPos.IsZero()
}
