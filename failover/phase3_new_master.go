package failover

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/mharaft/mharaft/dialect"
)

// recoverNewMaster is phase 3 (MHA's "Master Recovery Phase"; its 3.1 to
// 3.3 ran ahead, in phases 1 and 2): wait until the new master applied its
// relay logs, bring it up to the latest replica (by GTID, or with its
// relay diff, MHA's 3.4), apply the saved tail and top-up (3.5), read its
// binlog position for the other replicas, run master_ip_failover_script
// start and make it writable.
func (r *run) recoverNewMaster(ctx context.Context, st *failoverState) error {
	app := r.opts.App
	newM := st.newM
	if err := newM.refresh(ctx); err != nil {
		return err
	}
	if newM.writable() {
		r.logf("%s is already writable and not a replica: recovery was completed earlier.", newM)
		return nil
	}
	if r.deadFence == nil && r.opts.Resume != nil && r.opts.Resume.Completed[PhaseShutdown] {
		// Resumed after phase 2: the earlier run's fence (its FTWRL
		// connection) ended with it. Fence again and read the binlog
		// after the tail again: binlogs only grow, so the new top-up
		// holds the earlier one and what came after; applyLogs' proof
		// from gtid_binlog_pos skips what was applied.
		r.startDeadSSH(ctx, st.dead)
		if err := r.fenceDeadMaster(ctx, st.dead, r.plan.DeadFence == deadPoweredOff); err != nil {
			return err
		}
		r.topUpTail(ctx, st.dead, r.plan.DeadFence == deadPoweredOff)
	}
	if !r.plan.DeadSSH && r.plan.TailFile == "" && r.rep.Lost == nil {
		r.rep.Lost = &LostRange{From: r.plan.LatestRead, To: "unknown end of dead master's binlog", Why: "SSH to the dead master is unreachable"}
	}
	if newM.replica != nil {
		r.logf("Waiting until all relay logs are applied on %s.", newM)
		if err := r.waitRelayApplied(ctx, newM); err != nil {
			return err
		}
	}
	// MHA's 3.4: what the new master lacks of the latest replica.
	var files []string
	if r.plan.GTID {
		if err := r.catchUpByGTID(ctx, newM, st.latest); err != nil {
			return err
		}
		saved, err := r.savedFilesFor(ctx, st.dead, newM)
		if err != nil {
			return err
		}
		files = saved
	} else {
		if err := newM.exec(ctx, newM.d.StopReplica()); err != nil {
			return err
		}
		diff, err := r.relayDiffFor(ctx, st, newM, r.diffSources(st, st.latest, r.plan.LatestRead))
		if err != nil {
			return err
		}
		saved, err := r.savedFilesFor(ctx, st.dead, newM)
		if err != nil {
			return err
		}
		files = append(diff, saved...)
	}
	// MHA's 3.5: apply, then the position the other replicas start from.
	if err := r.applyLogs(ctx, newM, files, PhaseRecover); err != nil {
		return err
	}
	r.addf("%s: OK: Applying all logs succeeded.", newM.srv)
	pos, err := newM.masterStatus(ctx)
	if err != nil {
		return err
	}
	if err := newM.refreshGTID(ctx); err != nil {
		return err
	}
	r.plan.NewMasterPos = Coord{pos.File, pos.Pos}
	r.plan.NewMasterGTID = newM.gtidBinlogPos
	if !newM.d.V.IsMariaDB() {
		r.plan.NewMasterGTID = newM.gtidExecuted
	}
	r.logf("New master's binlog position: %s (GTID %s). All other slaves should start replication from here: CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_LOG_FILE='%s', MASTER_LOG_POS=%d, MASTER_USER='%s', MASTER_PASSWORD='xxx';",
		r.plan.NewMasterPos, r.plan.NewMasterGTID, newM.srv.IP, newM.srv.Port, pos.File, pos.Pos, newM.srv.ReplUser)
	// Record the position before the new master goes writable.
	if err := r.journal.Begin(ctx, PhaseRecover+": activate", r.plan); err != nil {
		return fmt.Errorf("%w: %v", ErrMayNotAct, err)
	}
	if app.MasterIPFailoverScript != "" {
		res, err := r.runHook(ctx, app.MasterIPFailoverScript, FailoverStartArgs(st.dead, newM.srv, r.plan.DeadSSH))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrHookFailed, err)
		}
		switch IPHookOutcome(res.ExitCode) {
		case HookOK:
			r.rep.addf("%s: OK: Activated master IP address.", newM.srv)
		case HookProceed:
			r.rep.addf("Failed to activate master IP address for %s with return code 10: proceeding.", newM.srv)
		default:
			return fmt.Errorf("%w: master_ip_failover_script --command=start exited %d: %s", ErrHookFailed, res.ExitCode, strings.TrimSpace(res.Output))
		}
	}
	if r.opts.Switch.SkipDisableReadOnly {
		r.rep.addf("Selected %s as the new master at %s; read_only left on (skip_disable_read_only).", newM.srv, r.plan.NewMasterPos)
	} else {
		if err := newM.exec(ctx, newM.d.SetReadOnly(false)...); err != nil {
			return err
		}
		newM.readOnly = false
		r.rep.addf("Selected %s as the new master; it is writable at %s.", newM.srv, r.plan.NewMasterPos)
	}
	if err := r.journal.Done(ctx, PhaseRecover+": activate", r.plan); err != nil {
		return fmt.Errorf("%w: %v", ErrMayNotAct, err)
	}
	return nil
}

// catchUpByGTID makes the new master replicate from the latest replica by
// GTID until it has everything the latest replica received (MHA's
// recover_master_gtid_internal), then stops it.
func (r *run) catchUpByGTID(ctx context.Context, newM, latest *node) error {
	if err := r.waitRelayApplied(ctx, latest); err != nil {
		return err
	}
	if err := latest.refreshGTID(ctx); err != nil {
		return err
	}
	target := latest.gtidSlavePos
	if !latest.d.V.IsMariaDB() {
		target = latest.gtidExecuted
	}
	if newM == latest || target == "" {
		return newM.exec(ctx, newM.d.StopReplica())
	}
	if err := newM.refreshGTID(ctx); err != nil {
		return err
	}
	if newM.d.V.IsMariaDB() {
		have, err1 := dialect.ParseMariaDBPos(newM.gtidSlavePos)
		want, err2 := dialect.ParseMariaDBPos(target)
		if err1 == nil && err2 == nil && have.Covers(want) {
			return newM.exec(ctx, newM.d.StopReplica())
		}
	}
	r.logf("Replicating %s from the latest replica %s until %s.", newM, latest, target)
	if err := newM.changeMaster(ctx, latest.srv, true, dialect.Pos{}, r.opts.replicaStartTimeout()); err != nil {
		return err
	}
	if err := newM.waitGTID(ctx, target, r.opts.waitTimeout()); err != nil {
		return err
	}
	r.rep.addf("%s: caught up with the latest replica %s by GTID (%s).", newM.srv, latest.srv, target)
	return newM.exec(ctx, newM.d.StopReplica())
}

// applyLogs applies files to n (what an interrupted earlier run of phase
// already applied is left out, see resumeFiles) and reports exactly what
// was applied.
func (r *run) applyLogs(ctx context.Context, n *node, files []string, phase string) error {
	files, err := r.resumeFiles(ctx, n, files, phase)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		r.addf("%s: no binlog events to apply.", n.srv)
		return nil
	}
	t0 := time.Now()
	res, err := r.opts.Recovery.Apply(ctx, n.srv, files, r.fence.connectHook(n.srv))
	a := AppliedLogs{Server: n.srv.Name, Files: files, Transactions: res.Transactions, Events: res.Events,
		LastFile: res.LastFile, LastPos: res.LastPos, LastGTID: res.LastGTID, Seconds: time.Since(t0).Seconds(),
		Method: string(res.Method), Fallback: res.Fallback}
	if err != nil {
		a.Error = err.Error()
	}
	last := "nothing committed"
	if res.LastFile != "" {
		last = fmt.Sprintf("last committed %s:%d", path.Base(res.LastFile), res.LastPos)
		if res.LastGTID != "" {
			last += ", GTID " + res.LastGTID
		}
	}
	r.mu.Lock()
	r.rep.Applied = append(r.rep.Applied, a)
	how := ""
	if res.Method != "" {
		how = " with " + string(res.Method)
	}
	r.rep.addf("%s: applied %d transaction(s) (%d events) from %s%s; %s (%.3f s).", n.srv, res.Transactions, res.Events,
		strings.Join(baseNames(files), ", "), how, last, a.Seconds)
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("apply logs to %s: %w", n, err)
	}
	return nil
}
