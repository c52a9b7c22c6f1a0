package failover

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
	"github.com/mharaft/mharaft/internal/secret"
)

// Phases of the dead-master failover, as journaled (MHA's phase numbers).
const (
	PhaseCheck    = "failover.1 configuration check"
	PhaseShutdown = "failover.2 dead master shutdown"
	PhaseRecover  = "failover.3 master recovery"
	PhaseReplicas = "failover.4 replicas recovery"
	PhaseCleanup  = "failover.5 new master cleanup"
)

// FailoverOptions add the dead master to Options.
type FailoverOptions struct {
	Options
	// DeadMaster names the dead master (name, host:port or ip:port).
	DeadMaster string
}

// DeadMaster runs the dead-master failover (masterha_master_switch
// --master_state=dead) and returns its report.
func DeadMaster(ctx context.Context, opts FailoverOptions) (*Report, error) {
	r := newRun(opts.Options, "failover")
	if r.opts.Recovery == nil {
		r.opts.Recovery = DefaultRecovery()
	}
	defer r.closeAll()
	defer r.opts.Recovery.Close()
	ctx, cancel := context.WithCancel(ctx) // ends background diff generation
	defer cancel()
	err := r.doFailover(ctx, opts.DeadMaster)
	r.releaseDeadFence()
	var slaves []string
	for _, o := range r.rep.Replicas {
		if o.OK {
			if s := r.opts.App.Server(o.Server); s != nil {
				slaves = append(slaves, s.Hostname)
			}
		}
	}
	rep := r.finish(ctx, err, slaves)
	if err == nil && r.opts.App.ManagerWorkdir != "" {
		secret.WriteFile(filepath.Join(r.opts.App.ManagerWorkdir, r.opts.App.Name+".failover.complete"), nil)
	}
	return rep, err
}

// failoverState is what the phases share besides the plan.
type failoverState struct {
	dead     *config.Server
	newM     *node
	latest   *node
	replicas []*node // alive replicas except the new master
	all      []*node // alive replicas
}

func (r *run) doFailover(ctx context.Context, deadKey string) error {
	app := r.opts.App
	st := &failoverState{}
	if deadKey == "" && r.plan.OldMaster != "" {
		deadKey = r.plan.OldMaster
	}
	st.dead = app.Server(deadKey)
	if st.dead == nil {
		return fmt.Errorf("%w: dead master %q is not in the configuration of %s", ErrRefused, deadKey, app.Name)
	}
	r.plan.OldMaster = st.dead.Name
	if p := r.opts.Resume; p != nil && p.Interrupted != "" {
		r.logf("Resuming a failover interrupted in %q.", p.Interrupted)
	}

	// Dial SSH to every host while the MySQL connections are made: the
	// dead master's tail and the relay diffs need it soon, and a dial costs
	// more than everything else of phase 1. The connections are kept for
	// the whole run (one per host).
	if !r.done[PhaseRecover] {
		for _, s := range app.Servers {
			if s == st.dead {
				r.startDeadSSH(ctx, s)
				continue
			}
			go r.opts.Recovery.Reach(ctx, s)
		}
	}
	// Connecting is repeated on a resume: it changes nothing.
	t0 := time.Now()
	errs := r.connectAll(ctx)
	r.rep.phase("connect to all servers", time.Since(t0))
	if err := notLeader(errs); err != nil {
		return err
	}
	if err := r.phase(ctx, PhaseCheck, func() error { return r.checkFailover(ctx, st, errs) }); err != nil {
		return err
	}
	if err := r.bindPlan(st); err != nil {
		return err
	}
	if err := r.phase(ctx, PhaseShutdown, func() error { return r.shutdownDeadMaster(ctx, st) }); err != nil {
		return err
	}
	if err := r.phase(ctx, PhaseRecover, func() error { return r.recoverNewMaster(ctx, st) }); err != nil {
		return err
	}
	if err := r.phase(ctx, PhaseReplicas, func() error { return r.recoverReplicas(ctx, st) }); err != nil {
		return err
	}
	err := r.phase(ctx, PhaseCleanup, func() error {
		if err := st.newM.exec(ctx, st.newM.d.StopReplica(), st.newM.d.ResetReplicaAll()); err != nil {
			return err
		}
		r.rep.addf("%s: Resetting slave info succeeded.", st.newM.srv)
		return nil
	})
	if err == nil {
		r.rep.addf("Master failover to %s completed successfully.", st.newM.srv)
	}
	return err
}

// checkFailover is phase 1: the master is really unreachable, every alive
// replica replicates from it, dead replicas only with ignore_fail; elect
// the new master, print the plan, confirm.
func (r *run) checkFailover(ctx context.Context, st *failoverState, errs map[string]error) error {
	app := r.opts.App
	if n, ok := r.nodes[st.dead.Name]; ok {
		if n.replica == nil {
			return fmt.Errorf("%w: master %s is alive (reachable over MySQL); use an online switch", ErrRefused, st.dead)
		}
		return fmt.Errorf("%w: %s is reachable and is a replica, not the dead master", ErrRefused, st.dead)
	}
	if e := errs[st.dead.Name]; e != nil && !isUnreachable(e) {
		return fmt.Errorf("%w: %s answered (%v): it is not dead", ErrRefused, st.dead, e)
	}
	r.logf("Dead Servers:\n  %s", st.dead)
	var cands []*Candidate
	r.plan.Ignored = nil
	for _, s := range app.Servers {
		if s == st.dead {
			continue
		}
		n, ok := r.nodes[s.Name]
		if !ok {
			if !s.IgnoreFail {
				return fmt.Errorf("%w: replica %s is unreachable (%v) and ignore_fail is not set", ErrRefused, s, errs[s.Name])
			}
			r.logf("Replica %s is dead; ignored (ignore_fail).", s)
			r.plan.Ignored = append(r.plan.Ignored, s.Name)
			continue
		}
		if !n.isReplicaOf(st.dead) {
			if s.IgnoreFail {
				r.plan.Ignored = append(r.plan.Ignored, s.Name)
				continue
			}
			return fmt.Errorf("%w: %s does not replicate from the dead master %s", ErrRefused, n, st.dead)
		}
		r.logf("Alive Slave: %s Version=%s log-bin:%v, replicating from %s, read %s exec %s", n, n.version, n.logBin, st.dead, n.readCoord(), n.execCoord())
		cands = append(cands, &Candidate{Server: s, LogBin: n.logBin, Version: n.version, Read: n.readCoord(), Exec: n.execCoord()})
		st.all = append(st.all, n)
	}
	if len(cands) == 0 {
		return fmt.Errorf("%w: no alive replica of %s", ErrRefused, st.dead)
	}
	r.plan.GTID = true
	for _, n := range st.all {
		if !n.usesGTID() {
			r.plan.GTID = false
		}
	}
	r.logf("GTID failover mode = %v", r.plan.GTID)
	latest, oldest := LatestOf(cands), OldestOf(cands)
	r.plan.Latest, r.plan.LatestRead = latest[0].Server.Name, latest[0].Read
	r.plan.Oldest, r.plan.OldestRead = oldest[0].Server.Name, oldest[0].Read
	// Start the read-only work now, from the positions just read: the
	// dead master cannot send more events, so they are final unless an
	// IO thread still receives some; phase 2 re-reads them after stopping
	// the IO threads and redoes what changed.
	r.startReads(ctx, st, r.nodes[r.plan.Latest], r.plan.LatestRead)
	el, err := Elect(ElectionInput{Candidates: cands, Preferred: r.opts.NewMaster,
		CheckReplDelay: latest[0].Server.CheckReplDelay, DeadMasterDC: st.dead.Datacenter, PreventCrossDC: app.PreventCrossDCFailover})
	for _, l := range el.logLines() {
		r.logf("%s", l)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	r.plan.NewMaster = el.NewMaster.Server.Name
	r.plan.Replicas = nil
	var oldRepl, newRepl []*config.Server
	for _, c := range cands {
		oldRepl = append(oldRepl, c.Server)
		if c != el.NewMaster {
			newRepl = append(newRepl, c.Server)
			r.plan.Replicas = append(r.plan.Replicas, c.Server.Name)
		}
	}
	fmt.Fprintf(r.out, "\n%s\n", Topology(st.dead, oldRepl, el.NewMaster.Server, newRepl, "current master"))
	return r.confirm(fmt.Sprintf("Master %s is dead. Failover to %s?", st.dead, el.NewMaster.Server))
}

// bindPlan finds the plan's servers among the connected nodes (also on a
// resume, where phase 1 was skipped).
func (r *run) bindPlan(st *failoverState) error {
	get := func(name string) (*node, error) {
		n, ok := r.nodes[name]
		if !ok {
			return nil, fmt.Errorf("%w: %s of the plan is unreachable", ErrRefused, name)
		}
		return n, nil
	}
	var err error
	if st.newM, err = get(r.plan.NewMaster); err != nil {
		return err
	}
	if st.latest, err = get(r.plan.Latest); err != nil {
		return err
	}
	st.replicas = nil
	for _, name := range r.plan.Replicas {
		n, err := get(name)
		if err != nil {
			return err
		}
		st.replicas = append(st.replicas, n)
	}
	st.all = append([]*node{st.newM}, st.replicas...)
	return nil
}

// shutdownDeadMaster is phase 2: stop IO threads, master_ip_failover_script
// stop/stopssh, save the dead master's binlog tail while SSH still works,
// shutdown_script.
func (r *run) shutdownDeadMaster(ctx context.Context, st *failoverState) error {
	app := r.opts.App
	errs := parallel(st.all, func(n *node) error {
		if n.replica != nil && !n.replica.IOThreadRunning() && n.replica.IORunning == "No" {
			return nil
		}
		return n.exec(ctx, n.d.StopIOThread())
	})
	if len(errs) > 0 {
		return fmt.Errorf("stopping IO threads failed: %v", errs)
	}
	// Positions are final now: read them again.
	if errs := parallel(st.all, func(n *node) error { return n.refreshReplica(ctx) }); len(errs) > 0 {
		return fmt.Errorf("reading replica status failed: %v", errs)
	}
	r.identifyLatest(st)
	if err := r.settleLatest(ctx, st); err != nil {
		return err
	}

	// Read-only preparation while the dead master is dealt with: the tail
	// and the relay diffs of the replicas behind the latest one (started
	// in phase 1; restarted here if a position moved or on a resume).
	r.startReads(ctx, st, st.latest, r.plan.LatestRead)

	// The hooks wait for the dead master's SSH dial only for
	// connect_timeout after it started: an sshd that answers does so in
	// milliseconds; one that does not is told "unreachable" to the IP hook
	// while the dial goes on (bounded by ssh_connection_timeout) for the
	// tail.
	known, sshErr := r.waitDeadSSH(ctx, r.hookSSHGrace())
	r.plan.DeadSSH = known && sshErr == nil
	switch {
	case !known:
		r.logf("HealthCheck: SSH to %s has not answered within connect_timeout (%s); the IP hook is told it is unreachable, the tail still waits for it up to ssh_connection_timeout.",
			st.dead, r.opts.connectTimeout())
	case sshErr != nil:
		r.logf("HealthCheck: SSH to %s is NOT reachable: %v", st.dead, sshErr)
	default:
		r.logf("HealthCheck: SSH to %s is reachable.", st.dead)
	}
	hookErr := r.stopDeadMasterIP(ctx, st.dead, r.plan.DeadSSH)
	if hookErr != nil {
		r.finalTail(ctx)
		return hookErr
	}
	// shutdown_script may power the host off: the tail is saved first.
	// Without it, the fence over MySQL runs while the tail is saved.
	poweredOff := false
	if app.ShutdownScript != "" {
		r.finalTail(ctx)
		res, err := r.runHook(ctx, app.ShutdownScript, ShutdownArgs(st.dead, r.plan.DeadSSH))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrHookFailed, err)
		}
		outcome, _ := ShutdownOutcome(res.ExitCode)
		switch outcome {
		case HookOK:
			r.rep.addf("Power off %s.", st.dead.Hostname)
			poweredOff = true
		case HookProceed:
			r.rep.addf("SSH reachable on %s. Shutting down mysqld done.", st.dead.Hostname)
		default:
			return fmt.Errorf("%w: shutdown_script exited %d: %s", ErrHookFailed, res.ExitCode, strings.TrimSpace(res.Output))
		}
		if err := r.fenceDeadMaster(ctx, st.dead, poweredOff); err != nil {
			return err
		}
	} else {
		r.logf("shutdown_script is not set. Skipping explicit shutting down of the dead master.")
		fenced := make(chan error, 1)
		go func() { fenced <- r.fenceDeadMaster(ctx, st.dead, false) }()
		r.finalTail(ctx)
		if err := <-fenced; err != nil {
			return err
		}
	}
	// The tail is final only now: read what the master wrote after it.
	r.topUpTail(ctx, st.dead, poweredOff)
	return nil
}

// stopDeadMasterIP runs master_ip_failover_script --command=stop|stopssh.
func (r *run) stopDeadMasterIP(ctx context.Context, dead *config.Server, sshOK bool) error {
	app := r.opts.App
	if app.MasterIPFailoverScript == "" {
		r.logf("master_ip_failover_script is not set. Skipping invalidating dead master IP address.")
		return nil
	}
	res, err := r.runHook(ctx, app.MasterIPFailoverScript, FailoverStopArgs(dead, sshOK))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHookFailed, err)
	}
	switch IPHookOutcome(res.ExitCode) {
	case HookOK:
		r.addf("Invalidated master IP address on %s", dead)
	case HookProceed:
		r.addf("Failed to deactivate master IP with return code 10: proceeding.")
	default:
		return fmt.Errorf("%w: master_ip_failover_script --command=%s exited %d: %s", ErrHookFailed,
			map[bool]string{true: "stopssh", false: "stop"}[sshOK], res.ExitCode, strings.TrimSpace(res.Output))
	}
	return nil
}

// finalTail waits for the dead master's SSH dial and the tail saved from
// the final latest read position, and records them in the plan and the
// report (Lost when SSH or the save failed).
func (r *run) finalTail(ctx context.Context) {
	tail := r.tailFor(ctx)
	known, sshErr := r.waitDeadSSH(ctx, time.Time{})
	r.plan.DeadSSH = known && sshErr == nil
	r.applyTail(tail)
	if !r.plan.DeadSSH && r.rep.Lost == nil {
		why := "SSH to the dead master is unreachable"
		if sshErr != nil {
			why += ": " + sshErr.Error()
			r.logf("HealthCheck: SSH to %s is NOT reachable: %v", r.plan.OldMaster, sshErr)
		}
		r.rep.Lost = &LostRange{From: r.plan.LatestRead, To: "unknown end of dead master's binlog", Why: why}
	}
}

// identifyLatest records the latest and oldest replicas from fresh status.
func (r *run) identifyLatest(st *failoverState) {
	var cands []*Candidate
	byName := map[string]*node{}
	for _, n := range st.all {
		cands = append(cands, &Candidate{Server: n.srv, Read: n.readCoord()})
		byName[n.srv.Name] = n
	}
	latest, oldest := LatestOf(cands), OldestOf(cands)
	r.plan.Latest, r.plan.LatestRead = latest[0].Server.Name, latest[0].Read
	r.plan.Oldest, r.plan.OldestRead = oldest[0].Server.Name, oldest[0].Read
	st.latest = byName[r.plan.Latest]
	r.logf("The latest binary log file/position on all slaves is %s (%s)", r.plan.LatestRead, st.latest)
	r.logf("The oldest binary log file/position on all slaves is %s (%s)", r.plan.OldestRead, r.plan.Oldest)
}

// tailOutcome is what saveTail found; applyTail records it.
type tailOutcome struct {
	saved   bool
	lost    string // why the tail could not be saved
	file    string
	res     TailResult
	already bool
}

// saveTail saves the dead master's binlog from `from`, the latest
// replica's read position. A failure is not fatal: the report names what
// was lost. It reads nothing of r.plan, so it may run in the background.
func (r *run) saveTail(ctx context.Context, dead *config.Server, from Coord, id string) tailOutcome {
	if dead.MasterBinlogDir == "" {
		return tailOutcome{lost: "master_binlog_dir is not set for " + dead.String()}
	}
	out := filepath.Join(r.opts.App.ManagerWorkdir, binlog.SavedMasterBinlogName(dead.Hostname, dead.Port, id))
	if err := secret.MkdirAll(r.opts.App.ManagerWorkdir); err != nil {
		return tailOutcome{lost: err.Error()}
	}
	res, err := r.opts.Recovery.SaveTail(ctx, dead, dead.MasterBinlogDir, from, out)
	if err != nil {
		return tailOutcome{lost: err.Error()}
	}
	return tailOutcome{saved: true, file: out, res: res}
}

func (r *run) applyTail(t tailOutcome) {
	switch {
	case t.already || (!t.saved && t.lost == ""):
		return
	case !t.saved:
		r.plan.DeadSSH = false
		r.rep.Lost = &LostRange{From: r.plan.LatestRead, To: "unknown end of dead master's binlog", Why: t.lost}
		r.logf("Saving the dead master's binlog failed: %s", t.lost)
		return
	}
	res := t.res
	r.plan.TailFile, r.plan.TailStart, r.plan.TailEnd, r.plan.TailGTID = t.file, r.plan.LatestRead, res.End, res.LastGTID
	r.plan.ManagerHost, _ = os.Hostname()
	r.logf("Saved dead master's binlog %s to %s into %s (%d transactions, %d bytes).", r.plan.LatestRead, res.End, t.file, res.Transactions, res.Bytes)
	r.addf("Saved %d transaction(s) of the dead master's binlog from %s to %s over SSH.", res.Transactions, r.plan.LatestRead, res.End)
	if res.Incomplete != "" {
		r.addf("Dead master's binlog ended with an incomplete transaction, not applied: %s", res.Incomplete)
	}
}

// recoverNewMaster is phase 3: bring the new master up to the latest
// replica and the saved tail, read its position, activate it.
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
		diff, err := r.relayDiffFor(ctx, st, newM)
		if err != nil {
			return err
		}
		saved, err := r.savedFilesFor(ctx, st.dead, newM)
		if err != nil {
			return err
		}
		files = append(diff, saved...)
	}
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
	if err := r.journal.Begin(ctx, PhaseRecover+": activate", r.plan.Detail()); err != nil {
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
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
	if err := newM.exec(ctx, newM.d.SetReadOnly(false)...); err != nil {
		return err
	}
	newM.readOnly = false
	if err := r.journal.Done(ctx, PhaseRecover+": activate", r.plan.Detail()); err != nil {
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	r.rep.addf("Selected %s as the new master; it is writable at %s.", newM.srv, r.plan.NewMasterPos)
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

// tailFuture is the dead master's tail being saved in the background.
type tailFuture struct {
	done chan struct{}
	from Coord
	out  tailOutcome
}

// diffFuture is a relay diff being generated in the background.
type diffFuture struct {
	done       chan struct{}
	from       Coord  // the replica's read position
	latest     string // the latest replica whose relay logs are read
	latestRead Coord  // and its read position
	files      []string
	err        error
}

func (f *diffFuture) matches(n *node, latest *node, latestRead Coord) bool {
	return f.from == n.readCoord() && f.latest == latest.srv.Name && f.latestRead == latestRead
}

// startReads starts, in the background, the read-only work that the
// recovery needs: saving the dead master's tail from latestRead over SSH
// and (file/position mode) the relay diff of every replica behind the
// latest one. Work already started for the same positions is kept; work
// started for other positions is replaced once it has ended (it writes the
// same files). A tail saved by an earlier run is reused.
func (r *run) startReads(ctx context.Context, st *failoverState, latest *node, latestRead Coord) {
	if latest == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	already := false
	if r.plan.TailFile != "" {
		_, err := os.Stat(r.plan.TailFile)
		already = err == nil
	}
	if !already && (r.tail == nil || r.tail.from != latestRead) {
		old := r.tail
		f := &tailFuture{done: make(chan struct{}), from: latestRead}
		r.tail = f
		dead, id := st.dead, r.plan.ID
		go func() {
			defer close(f.done)
			if old != nil {
				<-old.done
			}
			if r.opts.Recovery.Reach(ctx, dead) != nil {
				return // phase 2 reports SSH as unreachable
			}
			f.out = r.saveTail(ctx, dead, latestRead, id)
		}()
	}
	if r.plan.GTID {
		return
	}
	for _, n := range st.all {
		if old := r.diffs[n.srv.Name]; old != nil && old.matches(n, latest, latestRead) {
			continue
		}
		old := r.diffs[n.srv.Name]
		f := &diffFuture{done: make(chan struct{}), from: n.readCoord(), latest: latest.srv.Name, latestRead: latestRead}
		r.diffs[n.srv.Name] = f
		go func(n *node) {
			defer close(f.done)
			if old != nil {
				<-old.done
			}
			f.files, f.err = r.makeRelayDiff(ctx, n, f.from, latest, latestRead)
		}(n)
	}
}

// tailFor waits for the tail saved from the final latest read position.
func (r *run) tailFor(ctx context.Context) tailOutcome {
	r.mu.Lock()
	f := r.tail
	r.mu.Unlock()
	if f == nil {
		return tailOutcome{already: true} // saved by an earlier run
	}
	select {
	case <-f.done:
		return f.out
	case <-ctx.Done():
		return tailOutcome{lost: ctx.Err().Error()}
	}
}

// relayDiffFor returns the latest replica's relay-log events that n lacks,
// generated in the background when startReads ran for the same positions.
func (r *run) relayDiffFor(ctx context.Context, st *failoverState, n *node) ([]string, error) {
	r.mu.Lock()
	f := r.diffs[n.srv.Name]
	r.mu.Unlock()
	if f != nil {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.matches(n, st.latest, r.plan.LatestRead) {
			return f.files, f.err
		}
	}
	files, err := r.makeRelayDiff(ctx, n, n.readCoord(), st.latest, r.plan.LatestRead)
	if err == nil || r.opts.Resume == nil {
		return files, err
	}
	// A resume (maybe on another manager host) could not generate the
	// diff again: an operator's copy in the workdir is used, an accepted
	// loss is reported, otherwise it halts unless n lacks nothing.
	out := filepath.Join(r.opts.App.ManagerWorkdir, binlog.RelayDiffName(n.srv.Hostname, n.srv.Port, r.plan.ID))
	if _, serr := os.Stat(out); serr == nil {
		r.logf("Relay diff for %s could not be generated again (%v): using %s found in the workdir.", n, err, out)
		return []string{out}, nil
	}
	if _, serr := os.Stat(out + acceptLossSuffix); serr == nil {
		r.addf("%s: the relay diff %s could not be generated (%v) and the operator accepted its loss (%s): not applied.",
			n.srv, filepath.Base(out), err, out+acceptLossSuffix)
		return nil, nil
	}
	return nil, r.relayDiffUnavailable(ctx, n, st.latest, err)
}

func (r *run) makeRelayDiff(ctx context.Context, n *node, from Coord, latest *node, latestRead Coord) ([]string, error) {
	if from.Compare(latestRead) >= 0 {
		r.logf("%s has all relay logs; no diff from the latest replica needed.", n)
		return nil, nil
	}
	if latest.relayBase == "" {
		return nil, fmt.Errorf("relay diff for %s: relay_log_basename of %s unknown", n, latest)
	}
	src := RelaySource{Server: latest.srv, Dir: path.Dir(latest.relayBase), IndexFile: latest.relayBase + ".index",
		ServerID: latest.serverID, ReadMaster: latestRead}
	out := filepath.Join(r.opts.App.ManagerWorkdir, binlog.RelayDiffName(n.srv.Hostname, n.srv.Port, r.plan.ID))
	if err := secret.MkdirAll(r.opts.App.ManagerWorkdir); err != nil {
		return nil, fmt.Errorf("relay diff for %s: %w", n, err)
	}
	r.logf("Generating relay diff for %s from %s up to %s using %s's relay logs.", n, from, latestRead, latest)
	// Written aside and renamed: a failed generation leaves an existing
	// file (an operator's copy, on a resume) untouched.
	part := out + ".part"
	ok, err := r.opts.Recovery.RelayDiff(ctx, src, from, part)
	if err == nil && ok {
		err = os.Rename(part, out)
	}
	os.Remove(part)
	if err != nil {
		return nil, fmt.Errorf("relay diff for %s from %s: %w", n, latest, err)
	}
	if !ok {
		return nil, nil
	}
	r.addf("%s: relay diff %s..%s generated from the latest replica %s.", n.srv, from, latestRead, latest.srv)
	return []string{out}, nil
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

// resumeFiles returns the part of files still to apply to n. Only when
// this run resumes `phase`, interrupted by an earlier run, can part of
// them be applied already; then the proof is n's binlog GTID position:
// binlog.Apply commits the transactions one by one in order with their
// original GTIDs, so the last one applied is the one whose GTID n's
// gtid_binlog_pos names, and exactly the transactions before it are
// covered. Without that proof (MySQL, log_bin off, disable_log_bin,
// events without GTIDs, an inconsistent position) it halts with
// ErrUnsafeResume.
func (r *run) resumeFiles(ctx context.Context, n *node, files []string, phase string) ([]string, error) {
	if len(files) == 0 || r.opts.Resume == nil || r.opts.Resume.Interrupted != phase {
		return files, nil
	}
	unsafe := func(why string) error {
		return fmt.Errorf("%w: the earlier run stopped in %q while it may have been applying %s to %s, and %s; "+
			"compare %s with the files and apply what it lacks by hand, then run the failover again",
			ErrUnsafeResume, phase, strings.Join(files, ", "), n, why, n)
	}
	counts := make([]int, len(files))
	var all []string
	for i, f := range files {
		g, err := binlog.TransactionGTIDs(f)
		if err != nil {
			return nil, err
		}
		counts[i] = len(g)
		all = append(all, g...)
	}
	switch {
	case !n.d.V.IsMariaDB():
		return nil, unsafe("only MariaDB's gtid_binlog_pos can tell what was applied")
	case !n.logBin:
		return nil, unsafe("its binary log is off, so it keeps no GTID of what was applied")
	case n.srv.DisableLogBin:
		return nil, unsafe("disable_log_bin applies without binary logging, so it keeps no GTID of what was applied")
	}
	for _, g := range all {
		if g == "" {
			return nil, unsafe("the events carry no GTIDs")
		}
	}
	// An apply through replication that the earlier run left behind may
	// still be running on n: stopped first, so the position is settled.
	if err := binlog.RemoveLeftoverApply(ctx, applyTarget(n.srv, r.fence), 10*time.Second); err != nil {
		return nil, fmt.Errorf("resume on %s: %w", n, err)
	}
	if err := n.refreshGTID(ctx); err != nil {
		return nil, err
	}
	done, err := appliedPrefix(all, n.gtidBinlogPos)
	if err != nil {
		return nil, unsafe(err.Error())
	}
	if done == 0 {
		r.logf("%s holds none of the %d transaction(s) to apply (gtid_binlog_pos %s).", n, len(all), n.gtidBinlogPos)
		return files, nil
	}
	r.addf("%s: the earlier run had applied %d of %d transaction(s) (up to GTID %s); applying the other %d.",
		n.srv, done, len(all), all[done-1], len(all)-done)
	var rest []string
	skip := done
	for i, f := range files {
		switch {
		case skip >= counts[i]:
			skip -= counts[i]
		case skip > 0:
			out := f + ".resume"
			if _, err := binlog.SkipTransactions(f, skip, out); err != nil {
				return nil, err
			}
			rest = append(rest, out)
			skip = 0
		default:
			rest = append(rest, f)
		}
	}
	return rest, nil
}

// appliedPrefix returns how many of the transactions (MariaDB GTIDs, in
// apply order) the server holds according to its gtid_binlog_pos: the
// last one applied is the last whose GTID the position names exactly; all
// before it must be covered by the position and none after it.
func appliedPrefix(gtids []string, binlogPos string) (int, error) {
	type gt struct {
		domain, server, seq uint64
	}
	parse := func(s string) (gt, bool) {
		var g gt
		_, err := fmt.Sscanf(s, "%d-%d-%d", &g.domain, &g.server, &g.seq)
		return g, err == nil && fmt.Sprintf("%d-%d-%d", g.domain, g.server, g.seq) == s
	}
	have := map[uint64]gt{}
	for _, p := range strings.Split(binlogPos, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		g, ok := parse(p)
		if !ok {
			return 0, fmt.Errorf("cannot parse gtid_binlog_pos %q", binlogPos)
		}
		have[g.domain] = g
	}
	last := -1
	parsed := make([]gt, len(gtids))
	for i, s := range gtids {
		g, ok := parse(s)
		if !ok {
			return 0, fmt.Errorf("cannot parse GTID %q", s)
		}
		parsed[i] = g
		if h, ok := have[g.domain]; ok && h == g {
			last = i
		}
	}
	for i, g := range parsed {
		h, ok := have[g.domain]
		covered := ok && h.seq >= g.seq
		if i <= last && !covered {
			return 0, fmt.Errorf("gtid_binlog_pos %s names %s but lacks the earlier %s", binlogPos, gtids[last], gtids[i])
		}
		if i > last && covered {
			return 0, fmt.Errorf("gtid_binlog_pos %s covers %s, which follows the last transaction it names", binlogPos, gtids[i])
		}
	}
	return last + 1, nil
}

// recoverReplicas is phase 4: every other replica gets what it lacks and
// replicates from the new master, in parallel.
func (r *run) recoverReplicas(ctx context.Context, st *failoverState) error {
	newM := st.newM
	pos := dialect.Pos{File: r.plan.NewMasterPos.File, Pos: r.plan.NewMasterPos.Pos}
	errs := parallel(st.replicas, func(n *node) error {
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
		if err := r.journal.Begin(ctx, step, r.plan.Detail()); err != nil {
			return fmt.Errorf("begin %s: %w: %v", step, ErrNotLeader, err)
		}
		if err := n.changeMaster(ctx, newM.srv, r.plan.GTID, pos, r.opts.replicaStartTimeout()); err != nil {
			return err
		}
		if err := r.journal.Done(ctx, step, r.plan.Detail()); err != nil {
			return fmt.Errorf("record end of %s: %w: %v", step, ErrNotLeader, err)
		}
		if r.plan.GTID && r.plan.NewMasterGTID != "" {
			// Report a replica as recovered only once it has what the new
			// master had when it went writable.
			return n.waitGTID(ctx, r.plan.NewMasterGTID, r.opts.waitTimeout())
		}
		return nil
	})
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
		// The causes stay visible to errors.Is (ErrNotLeader, ErrUnsafeResume).
		return fmt.Errorf("recovering replicas %s failed: %w", strings.Join(names, ", "), errors.Join(all...))
	}
	return nil
}

// ErrRecentFailover: the last failover is younger than last_failover_minute.
var ErrRecentFailover = errors.New("a failover happened recently")

// CheckLastFailover refuses (like MHA) when manager_workdir holds an
// <app>.failover.complete file or a failover report younger than
// last_failover_minute.
func CheckLastFailover(app *config.App, now time.Time) error {
	if app.ManagerWorkdir == "" {
		return nil
	}
	limit := time.Duration(app.LastFailoverMinute) * time.Minute
	if app.LastFailoverMinute == 0 {
		limit = 480 * time.Minute
	}
	var paths []string
	paths = append(paths, filepath.Join(app.ManagerWorkdir, app.Name+".failover.complete"))
	m, _ := filepath.Glob(filepath.Join(app.ManagerWorkdir, "failover_report_"+app.Name+"_*.json"))
	paths = append(paths, m...)
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if age := now.Sub(fi.ModTime()); age < limit {
			return fmt.Errorf("%w: %s is %s old (last_failover_minute=%d); pass --ignore-last-failover or remove it",
				ErrRecentFailover, p, age.Round(time.Second), int(limit.Minutes()))
		}
	}
	return nil
}
