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
		os.WriteFile(filepath.Join(r.opts.App.ManagerWorkdir, r.opts.App.Name+".failover.complete"), nil, 0o644)
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

	// Connecting is repeated on a resume: it changes nothing.
	t0 := time.Now()
	errs := r.connectAll(ctx)
	r.rep.phase("connect to all servers", time.Since(t0))
	if err := r.phase(ctx, PhaseCheck, func() error { return r.checkFailover(ctx, st, errs) }); err != nil {
		return err
	}
	if err := r.bindPlan(st); err != nil {
		return err
	}
	if err := r.phase(ctx, PhaseShutdown, func() error { return r.shutdownDeadMaster(ctx, st) }); err != nil {
		return err
	}
	if p := r.opts.Resume; p != nil && p.Interrupted == PhaseRecover && !r.plan.GTID && r.plan.TailGTID == "" {
		if st.newM.refresh(ctx) == nil && !st.newM.writable() {
			return fmt.Errorf("%w: the previous run stopped while applying logs on %s in file/position mode "+
				"without GTIDs to tell what was applied; recover %s by hand (plan: %s)", ErrUnsafeResume, st.newM, st.newM, r.plan.Encode())
		}
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
	for _, n := range st.all {
		if err := n.refreshReplica(ctx); err != nil {
			return err
		}
	}
	r.identifyLatest(st)

	// Read-only preparation while the dead master is dealt with: the relay
	// diffs of the replicas behind the latest one (file/position mode).
	if !r.plan.GTID {
		for _, n := range st.all {
			r.startDiff(ctx, st, n)
		}
	}
	sshErr := r.opts.Recovery.Reach(ctx, st.dead)
	r.plan.DeadSSH = sshErr == nil
	if sshErr != nil {
		r.logf("HealthCheck: SSH to %s is NOT reachable: %v", st.dead, sshErr)
	} else {
		r.logf("HealthCheck: SSH to %s is reachable.", st.dead)
	}
	// Save the tail while the IP hook runs, and before shutdown_script: a
	// power-off would take it away.
	var tail tailOutcome
	tailDone := make(chan struct{})
	go func() {
		defer close(tailDone)
		if r.plan.DeadSSH {
			tail = r.saveTail(ctx, st)
		}
	}()
	hookErr := func() error {
		if app.MasterIPFailoverScript == "" {
			r.logf("master_ip_failover_script is not set. Skipping invalidating dead master IP address.")
			return nil
		}
		res, err := r.runHook(ctx, app.MasterIPFailoverScript, FailoverStopArgs(st.dead, r.plan.DeadSSH))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrHookFailed, err)
		}
		switch IPHookOutcome(res.ExitCode) {
		case HookOK:
			r.addf("Invalidated master IP address on %s", st.dead)
		case HookProceed:
			r.addf("Failed to deactivate master IP with return code 10: proceeding.")
		default:
			return fmt.Errorf("%w: master_ip_failover_script --command=%s exited %d: %s", ErrHookFailed,
				map[bool]string{true: "stopssh", false: "stop"}[r.plan.DeadSSH], res.ExitCode, strings.TrimSpace(res.Output))
		}
		return nil
	}()
	<-tailDone
	r.applyTail(tail)
	if hookErr != nil {
		return hookErr
	}
	if app.ShutdownScript != "" {
		res, err := r.runHook(ctx, app.ShutdownScript, ShutdownArgs(st.dead, r.plan.DeadSSH))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrHookFailed, err)
		}
		outcome, reachable := ShutdownOutcome(res.ExitCode)
		switch outcome {
		case HookOK:
			r.rep.addf("Power off %s.", st.dead.Hostname)
		case HookProceed:
			r.rep.addf("SSH reachable on %s. Shutting down mysqld done.", st.dead.Hostname)
		default:
			return fmt.Errorf("%w: shutdown_script exited %d: %s", ErrHookFailed, res.ExitCode, strings.TrimSpace(res.Output))
		}
		_ = reachable
	} else {
		r.logf("shutdown_script is not set. Skipping explicit shutting down of the dead master.")
	}
	if !r.plan.DeadSSH {
		why := "SSH to the dead master is unreachable"
		if sshErr != nil {
			why += ": " + sshErr.Error()
		}
		r.rep.Lost = &LostRange{From: r.plan.LatestRead, To: "unknown end of dead master's binlog", Why: why}
	}
	return nil
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

// saveTail saves the dead master's binlog from the latest replica's read
// position. A failure is not fatal: the report names what was lost. It
// only reads r.plan, so it may run beside the IP hook.
func (r *run) saveTail(ctx context.Context, st *failoverState) tailOutcome {
	if r.plan.TailFile != "" {
		if _, err := os.Stat(r.plan.TailFile); err == nil {
			return tailOutcome{already: true} // saved by an earlier run
		}
	}
	if st.dead.MasterBinlogDir == "" {
		return tailOutcome{lost: "master_binlog_dir is not set for " + st.dead.String()}
	}
	out := filepath.Join(r.opts.App.ManagerWorkdir, binlog.SavedMasterBinlogName(st.dead.Hostname, st.dead.Port, r.plan.ID))
	if err := os.MkdirAll(r.opts.App.ManagerWorkdir, 0o755); err != nil {
		return tailOutcome{lost: err.Error()}
	}
	res, err := r.opts.Recovery.SaveTail(ctx, st.dead, st.dead.MasterBinlogDir, r.plan.LatestRead, out)
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
	r.logf("Saved dead master's binlog %s to %s into %s (%d transactions, %d bytes).", r.plan.LatestRead, res.End, t.file, res.Transactions, res.Bytes)
	r.addf("Saved %d transaction(s) of the dead master's binlog from %s to %s over SSH.", res.Transactions, r.plan.LatestRead, res.End)
	if res.Incomplete != "" {
		r.addf("Dead master's binlog ended with an incomplete transaction, not applied: %s", res.Incomplete)
	}
}

// tailFiles returns the saved tail as a list (empty when none was saved or
// it holds no transaction).
func (r *run) tailFiles() []string {
	if r.plan.TailFile == "" || r.plan.TailEnd.Compare(r.plan.TailStart) <= 0 {
		return nil
	}
	return []string{r.plan.TailFile}
}

// gtidCovered reports whether n's binlog holds gtid (MariaDB), so applying
// it again would duplicate it.
func gtidCovered(ctx context.Context, n *node, gtid string) bool {
	if gtid == "" || !n.d.V.IsMariaDB() {
		return false
	}
	if err := n.refreshGTID(ctx); err != nil {
		return false
	}
	have, err1 := dialect.ParseMariaDBPos(n.gtidBinlogPos)
	want, err2 := dialect.ParseMariaDBPos(gtid)
	return err1 == nil && err2 == nil && have.Covers(want)
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
	if !r.plan.DeadSSH && r.plan.TailFile == "" && r.rep.Lost == nil {
		r.rep.Lost = &LostRange{From: r.plan.LatestRead, To: "unknown end of dead master's binlog", Why: "SSH to the dead master is unreachable"}
	}
	if newM.replica != nil {
		r.logf("Waiting until all relay logs are applied on %s.", newM)
		if err := newM.waitRelayApplied(ctx, r.opts.waitTimeout()); err != nil {
			return err
		}
	}
	tailDone := gtidCovered(ctx, newM, r.plan.TailGTID)
	if r.plan.GTID {
		if err := r.catchUpByGTID(ctx, newM, st.latest); err != nil {
			return err
		}
		if !tailDone {
			if err := r.opts.Recovery.Apply(ctx, newM.srv, r.tailFiles()); err != nil {
				return fmt.Errorf("apply saved binlog to %s: %w", newM, err)
			}
		}
	} else {
		if err := newM.exec(ctx, newM.d.StopReplica()); err != nil {
			return err
		}
		var files []string
		if !tailDone {
			diff, err := r.relayDiffFor(ctx, st, newM)
			if err != nil {
				return err
			}
			files = append(diff, r.tailFiles()...)
		}
		if err := r.opts.Recovery.Apply(ctx, newM.srv, files); err != nil {
			return fmt.Errorf("apply logs to new master %s: %w", newM, err)
		}
	}
	r.rep.addf("%s: OK: Applying all logs succeeded.", newM.srv)
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
	if err := latest.waitRelayApplied(ctx, r.opts.waitTimeout()); err != nil {
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
	if err := newM.changeMaster(ctx, latest.srv, true, dialect.Pos{}); err != nil {
		return err
	}
	if err := newM.waitGTID(ctx, target, r.opts.waitTimeout()); err != nil {
		return err
	}
	r.rep.addf("%s: caught up with the latest replica %s by GTID (%s).", newM.srv, latest.srv, target)
	return newM.exec(ctx, newM.d.StopReplica())
}

// diffFuture is a relay diff being generated in the background.
type diffFuture struct {
	done  chan struct{}
	from  Coord
	files []string
	err   error
}

// startDiff begins generating n's relay diff (read-only work).
func (r *run) startDiff(ctx context.Context, st *failoverState, n *node) {
	f := &diffFuture{done: make(chan struct{}), from: n.readCoord()}
	r.mu.Lock()
	r.diffs[n.srv.Name] = f
	r.mu.Unlock()
	go func() {
		defer close(f.done)
		f.files, f.err = r.makeRelayDiff(ctx, st, n, f.from)
	}()
}

// relayDiffFor returns the latest replica's relay-log events that n lacks,
// generated in the background when startDiff ran for the same position.
func (r *run) relayDiffFor(ctx context.Context, st *failoverState, n *node) ([]string, error) {
	r.mu.Lock()
	f := r.diffs[n.srv.Name]
	r.mu.Unlock()
	if f != nil && f.from == n.readCoord() {
		select {
		case <-f.done:
			return f.files, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return r.makeRelayDiff(ctx, st, n, n.readCoord())
}

func (r *run) makeRelayDiff(ctx context.Context, st *failoverState, n *node, from Coord) ([]string, error) {
	if from.Compare(r.plan.LatestRead) >= 0 {
		r.logf("%s has all relay logs; no diff from the latest replica needed.", n)
		return nil, nil
	}
	if st.latest.relayBase == "" {
		return nil, fmt.Errorf("relay diff for %s: relay_log_basename of %s unknown", n, st.latest)
	}
	src := RelaySource{Server: st.latest.srv, Dir: path.Dir(st.latest.relayBase), IndexFile: st.latest.relayBase + ".index",
		ServerID: st.latest.serverID, ReadMaster: r.plan.LatestRead}
	out := filepath.Join(r.opts.App.ManagerWorkdir, binlog.RelayDiffName(n.srv.Hostname, n.srv.Port, r.plan.ID))
	r.logf("Generating relay diff for %s from %s up to %s using %s's relay logs.", n, from, r.plan.LatestRead, st.latest)
	ok, err := r.opts.Recovery.RelayDiff(ctx, src, from, out)
	if err != nil {
		return nil, fmt.Errorf("relay diff for %s from %s: %w", n, st.latest, err)
	}
	if !ok {
		return nil, nil
	}
	r.addf("%s: relay diff %s..%s generated from the latest replica %s.", n.srv, from, r.plan.LatestRead, st.latest.srv)
	return []string{out}, nil
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
		if err := n.waitRelayApplied(ctx, r.opts.waitTimeout()); err != nil {
			return err
		}
		if err := n.exec(ctx, n.d.StopReplica()); err != nil {
			return err
		}
		if !r.plan.GTID && !gtidCovered(ctx, n, r.plan.TailGTID) {
			if r.opts.Resume != nil && r.opts.Resume.Interrupted == PhaseReplicas && r.plan.TailGTID == "" {
				return fmt.Errorf("%w: %s may hold part of the applied logs", ErrUnsafeResume, n)
			}
			diff, err := r.relayDiffFor(ctx, st, n)
			if err != nil {
				return err
			}
			if err := r.opts.Recovery.Apply(ctx, n.srv, append(diff, r.tailFiles()...)); err != nil {
				return fmt.Errorf("apply logs to %s: %w", n, err)
			}
		}
		if err := n.changeMaster(ctx, newM.srv, r.plan.GTID, pos); err != nil {
			return err
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
		return fmt.Errorf("recovering replicas %s failed", strings.Join(names, ", "))
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
