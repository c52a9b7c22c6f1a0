package failover

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
)

// shutdownDeadMaster is phase 2 (MHA's "Dead Master Shutdown Phase"): stop
// the IO threads, find the latest replica again from the final positions
// (MHA's 3.1, "Getting Latest Slaves"), HealthCheck of the dead master's
// SSH, master_ip_failover_script stop/stopssh, the saved binlog tail made
// final while SSH still works (MHA's 3.2, "Saving Dead Master's Binlog";
// the save started in phase 1), shutdown_script, then the fence of the
// dead master over MySQL and the top-up (mharaft's own steps).
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
	// Positions are final now: read them again (MHA's 3.1).
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
		_ = r.finalTail(ctx) // saved for the next attempt; the hook's error is the one to report
		return hookErr
	}
	// shutdown_script may power the host off: the tail is saved first.
	// Without it, the fence over MySQL runs while the tail is saved.
	poweredOff := false
	if app.ShutdownScript != "" {
		if err := r.finalTail(ctx); err != nil {
			return err
		}
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
		tailErr := r.finalTail(ctx)
		if err := <-fenced; err != nil {
			return err
		}
		if tailErr != nil {
			return tailErr
		}
	}
	// The tail is final only now: read what the master wrote after it.
	r.topUpTail(ctx, st.dead, poweredOff)
	return nil
}

// sshDial is the dial of the dead master's SSH, started with the run so
// that it never waits on anything else, and waited for only where its
// outcome is needed.
type sshDial struct {
	started time.Time
	done    chan struct{}
	err     error
}

// SSHDialStarted is implemented by a LogRecovery whose SSH dials may have
// started before the run: a manager dials the master's host at the first
// suspicion, before the verdict (a dial changes nothing on a server), and
// hands the recovery to the run. ok is false when no dial of s started.
type SSHDialStarted interface {
	SSHDialStarted(s *config.Server) (started time.Time, ok bool)
}

// startDeadSSH starts the dial of the dead master's SSH (once per run).
// With a recovery that dialled it already (SSHDialStarted), the dial is
// shared and counts from its real start: the hooks' connect_timeout grace
// and ssh_connection_timeout then run from the first suspicion, not from
// the run's start.
func (r *run) startDeadSSH(ctx context.Context, dead *config.Server) {
	d := &sshDial{started: time.Now(), done: make(chan struct{})}
	early := false
	if ds, ok := r.opts.Recovery.(SSHDialStarted); ok {
		if t, ok := ds.SSHDialStarted(dead); ok && t.Before(d.started) {
			d.started, early = t, true
		}
	}
	r.mu.Lock()
	if r.deadSSH != nil {
		r.mu.Unlock()
		return
	}
	r.deadSSH = d
	r.mu.Unlock()
	if early {
		r.logf("SSH to the dead master %s has been dialled since %s (%.3f s before this run), ahead of the verdict.",
			dead, d.started.Format("15:04:05.000"), time.Since(d.started).Seconds())
	}
	go func() {
		defer close(d.done)
		d.err = r.opts.Recovery.Reach(ctx, dead)
	}()
}

// waitDeadSSH waits for the dead master's SSH dial until it ended or until
// `until` (zero: no limit besides ssh_connection_timeout, which bounds the
// dial). known is false when it had not ended by then.
func (r *run) waitDeadSSH(ctx context.Context, until time.Time) (known bool, err error) {
	r.mu.Lock()
	d := r.deadSSH
	r.mu.Unlock()
	if d == nil {
		return false, nil
	}
	select {
	case <-d.done:
		return true, d.err // ended already (also when `until` has passed)
	default:
	}
	var timer <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-d.done:
		return true, d.err
	case <-timer:
		return false, nil
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

// hookSSHGrace is how long after the SSH dial started the hooks wait for
// its outcome before they are told SSH is unreachable: connect_timeout,
// the bound the run also gives the dead master over MySQL. A reachable
// sshd answers in milliseconds; a late answer still saves the tail.
func (r *run) hookSSHGrace() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deadSSH == nil {
		return time.Now()
	}
	return r.deadSSH.started.Add(r.opts.connectTimeout())
}

// identifyLatest records the latest and oldest replicas from fresh status
// (MHA's 3.1): the latest one's read position is where the dead master's
// tail starts and what the other replicas' relay diffs reach.
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

// settleLatest makes sure the latest replica's position, where the dead
// master's tail starts, is a transaction boundary. Its relay log may end
// inside a transaction (see node.partial); the tail must then start where
// that transaction starts, or its first part would be lost and its second
// part applied alone. Only a replica whose SQL thread is behind its IO
// thread can be in that state: its relay log is applied first (as phase 3
// would), and if it turns out partial the latest replica is chosen again.
func (r *run) settleLatest(ctx context.Context, st *failoverState) error {
	for range st.all {
		latest := st.latest
		if latest.replica == nil || latest.execCoord().Compare(latest.readCoord()) >= 0 {
			return nil
		}
		r.logf("Waiting until all relay logs are applied on the latest slave %s (executed %s of %s).", latest, latest.execCoord(), latest.readCoord())
		if err := r.waitRelayApplied(ctx, latest); err != nil {
			return err
		}
		if !latest.partial {
			return nil
		}
		r.identifyLatest(st)
	}
	return nil
}

// waitRelayApplied is node.waitRelayApplied, logging a relay log found to
// end inside a transaction.
func (r *run) waitRelayApplied(ctx context.Context, n *node) error {
	was := n.partial
	if err := n.waitRelayApplied(ctx, r.opts.waitTimeout()); err != nil {
		return err
	}
	if n.partial && !was {
		r.logf("%s: its relay log ends inside a transaction that starts at %s (read up to %s:%d); the rest will not come. "+
			"It counts as having received up to %s: the whole transaction comes from the latest slave's relay log or the dead master's binlog.",
			n, n.execCoord(), n.replica.MasterLogFile, n.replica.ReadMasterLogPos, n.execCoord())
	}
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
// report. The dial is waited for until ssh_connection_timeout after it
// started (deadSSHDeadline: from the first suspicion when the manager
// dialled ahead of the verdict), never longer: a dial done again after a
// failure may still save the tail if it has answered by then, but a
// silent host does not hold the failover once that bound has passed. When
// the dead master's binlog could not be read (SSH unreachable, or the save
// failed), the tail is read from the binlog servers (binlogserver.go); Lost
// when none had it either, which is an error (ErrRefused) unless
// Options.IgnoreBinlogServerError, as in MHA.
func (r *run) finalTail(ctx context.Context) error {
	known, sshErr := r.waitDeadSSH(ctx, r.deadSSHDeadline())
	var tail tailOutcome
	if known || r.tailSettled() {
		tail = r.tailFor(ctx)
	} else {
		sshErr = fmt.Errorf("ssh to %s: no answer within ssh_connection_timeout (%s) of the first dial at %s",
			r.opts.App.Server(r.plan.OldMaster), r.deadSSHTimeout(), r.deadSSHStart().Format("15:04:05.000"))
	}
	r.plan.DeadSSH = known && sshErr == nil
	if !tail.saved && !tail.already && len(r.opts.App.BinlogServers) > 0 {
		why := tail.lost
		if !r.plan.DeadSSH {
			why = "SSH to the dead master is unreachable"
			if sshErr != nil {
				why += ": " + sshErr.Error()
			}
		}
		tail = r.binlogServerTail(ctx, r.plan.LatestRead, why)
		if !tail.saved && !r.opts.IgnoreBinlogServerError {
			return fmt.Errorf("%w: all %d binlog server(s) failed and the dead master's binlog could not be read, so its events after %s would be lost: %s; "+
				"fix the binlog server (its master_binlog_dir, its SSH) and fail over again, or fail over with --ignore-binlog-server-error to accept the loss",
				ErrRefused, len(r.opts.App.BinlogServers), r.plan.LatestRead, tail.lost)
		}
	}
	r.applyTail(tail)
	if !r.plan.DeadSSH && r.rep.Lost == nil && r.plan.TailSource == "" {
		why := "SSH to the dead master is unreachable"
		if sshErr != nil {
			why += ": " + sshErr.Error()
			r.logf("HealthCheck: SSH to %s is NOT reachable: %v", r.plan.OldMaster, sshErr)
		}
		r.rep.Lost = &LostRange{From: r.plan.LatestRead, To: "unknown end of dead master's binlog", Why: why}
	}
	return nil
}

// tailSettled reports whether the tail needs no more waiting: saved by an
// earlier run (no save started) or its save ended.
func (r *run) tailSettled() bool {
	r.mu.Lock()
	f := r.tail
	r.mu.Unlock()
	if f == nil {
		return true
	}
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// deadSSHSlack is added to the dead master's SSH deadline: a dial that
// answers just within its ssh_connection_timeout still reports it.
const deadSSHSlack = 100 * time.Millisecond

// deadSSHTimeout is the dead master's ssh_connection_timeout.
func (r *run) deadSSHTimeout() time.Duration {
	if s := r.opts.App.Server(r.plan.OldMaster); s != nil && s.SSHConnectTimeout > 0 {
		return s.SSHConnectTimeout
	}
	return 5 * time.Second
}

// deadSSHStart is when the dead master's SSH dial started (from the first
// suspicion when a manager dialled it ahead of the verdict).
func (r *run) deadSSHStart() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deadSSH == nil {
		return time.Time{}
	}
	return r.deadSSH.started
}

// deadSSHDeadline is how long the tail waits for the dead master's SSH:
// ssh_connection_timeout (and deadSSHSlack) after the dial started; zero
// (no bound besides the dial's own) when no dial started.
func (r *run) deadSSHDeadline() time.Time {
	start := r.deadSSHStart()
	if start.IsZero() {
		return time.Time{}
	}
	return start.Add(r.deadSSHTimeout() + deadSSHSlack)
}

// applyTail records the saved tail in the plan (where a resume finds it)
// and the report, or what was lost when it could not be saved.
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
	r.plan.TailSource = t.source
	r.plan.ManagerHost, _ = os.Hostname()
	r.logf("Saved dead master's binlog %s to %s into %s (%d transactions, %d bytes).", r.plan.LatestRead, res.End, t.file, res.Transactions, res.Bytes)
	if t.source != "" {
		b := binlogServerNamed(r.opts.App, t.source)
		r.addf("Saved %d transaction(s) of the dead master's binlog from %s to %s from binlog server [%s] %s over SSH (the dead master's binlog could not be read).",
			res.Transactions, r.plan.LatestRead, res.End, t.source, b.Hostname)
	} else {
		r.addf("Saved %d transaction(s) of the dead master's binlog from %s to %s over SSH.", res.Transactions, r.plan.LatestRead, res.End)
	}
	if res.Incomplete != "" {
		r.addf("Dead master's binlog ended with an incomplete transaction, not applied: %s", res.Incomplete)
	}
}

// The fence and the top-up (after MHA's phase 2 steps).
//
// The dead master is fenced over MySQL, where it answers, after the IP hook
// and shutdown_script, and its binlog is read again from the end of the
// saved tail (the "top-up"): a master declared dead that comes back (a
// paused mysqld resumed, a partition healed) before it is fenced can
// acknowledge writes after the tail was saved; the top-up carries them to
// the new master and the replicas (invariant 4).

// Outcomes of the MySQL fence of the dead master (Plan.DeadFence).
const (
	deadPoweredOff = "powered off by shutdown_script: not tried over MySQL"
	deadRefused    = "not running (MySQL connection refused)"
	deadNoAnswer   = "no answer over MySQL within connect_timeout: not fenced"
)

// fenceDeadMaster tries the dead master over MySQL (connect_timeout) and,
// if it answers, fences it: read_only=1, every client connection except
// replication threads and ours killed, and FLUSH TABLES WITH READ LOCK held
// on a dedicated connection until the pipeline ends (whatever fence_mode
// says, except shutdown: the top-up is final only if nothing can commit
// after it). fence_mode=shutdown shuts it down instead. A master that
// answers but cannot be fenced stops the failover: promoting then could
// leave two writable masters (invariant 5).
func (r *run) fenceDeadMaster(ctx context.Context, dead *config.Server, poweredOff bool) error {
	if poweredOff {
		r.plan.DeadFence = deadPoweredOff
		return nil
	}
	timeout := r.opts.connectTimeout()
	n, err := connect(ctx, dead, timeout, r.fence)
	if err != nil {
		kind, _ := dialect.Classify(err)
		switch {
		case errors.Is(err, ErrMayNotAct):
			return err
		case isUnreachable(err) && kind == dialect.KindRefused:
			r.plan.DeadFence = deadRefused
		case isUnreachable(err):
			r.plan.DeadFence = deadNoAnswer
		default:
			return fmt.Errorf("the dead master %s answered over MySQL but could not be fenced: %w", dead, err)
		}
		r.logf("Fence of the dead master %s over MySQL: %s (%v).", dead, r.plan.DeadFence, err)
		return nil
	}
	r.deadNode = n
	after := "the IP hook"
	if r.opts.App.ShutdownScript != "" {
		after += " and shutdown_script"
	}
	r.addf("The dead master %s answered over MySQL after %s: fencing it.", dead, after)
	// Bounded: a master that answered may stop answering again.
	fctx, fcancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer fcancel()
	f, err := r.fenceNode(fctx, n, true)
	r.deadFence = f
	if err != nil {
		return fmt.Errorf("fence the dead master %s, which answered over MySQL: %w", dead, err)
	}
	r.plan.DeadFence = fmt.Sprintf("fenced: read_only=1, %d client connection(s) killed, FLUSH TABLES WITH READ LOCK held until the failover ends", f.killed)
	if r.opts.App.FenceMode == "shutdown" {
		if err := r.shutdownDead(ctx, n, f); err != nil {
			return err
		}
		r.plan.DeadFence = fmt.Sprintf("fenced and shut down (fence_mode=shutdown): read_only=1, %d client connection(s) killed, SHUTDOWN", f.killed)
	}
	r.addf("%s: the dead master was %s.", dead, r.plan.DeadFence)
	return nil
}

// shutdownDead is fence_mode=shutdown for the dead master: SHUTDOWN on the
// fence connection (after UNLOCK TABLES), then a check that it no longer
// answers.
func (r *run) shutdownDead(ctx context.Context, n *node, f *fence) error {
	if f.locked {
		if _, err := f.conn.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
			return fmt.Errorf("shut down the dead master %s: UNLOCK TABLES: %w", n, err)
		}
		f.locked = false
	}
	if _, err := f.conn.ExecContext(ctx, "SHUTDOWN"); err != nil && !isUnreachable(err) {
		return fmt.Errorf("shut down the dead master %s (fence_mode=shutdown): %w", n, err)
	}
	f.conn.Close()
	f.conn = nil
	deadline := time.Now().Add(r.opts.waitTimeout())
	for {
		pctx, cancel := context.WithTimeout(ctx, r.opts.connectTimeout())
		err := n.db.PingContext(pctx)
		cancel()
		if err != nil && isUnreachable(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("shut down the dead master %s (fence_mode=shutdown): it still answers after %s", n, r.opts.waitTimeout())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// topUpName is the top-up's file: the tail's name with _after_fence.
func topUpName(tailFile string) string { return tailFile + "_after_fence" }

// topUpTail reads the dead master's binlog again from the end of the saved
// tail (across rotations, via the index) after the fence. A top-up without
// transactions is dropped. When it cannot be read, or the master could not
// be fenced, the report says writes after the tail's end are possibly
// lost. The read is bounded by ssh_connection_timeout (connect_timeout
// after shutdown_script reported a power-off: the host is most likely
// gone).
func (r *run) topUpTail(ctx context.Context, dead *config.Server, poweredOff bool) {
	if r.plan.TailFile == "" || r.plan.TailEnd.File == "" {
		return // no tail: what was lost is reported as Lost
	}
	from := r.plan.TailEnd
	// A resumed run may hold an earlier top-up, possibly applied in part
	// already: it is kept if this read fails.
	// Its file may be missing here (a resume on another manager host):
	// it stays in the plan, and savedFilesFor restores it or halts.
	prevFile, prevEnd, prevGTID := r.plan.TopUpFile, r.plan.TopUpEnd, r.plan.TopUpGTID
	bound := dead.SSHConnectTimeout
	if bound <= 0 {
		bound = 5 * time.Second
	}
	if poweredOff {
		bound = r.opts.connectTimeout()
	}
	// In this manager's workdir (the plan's path may be another host's).
	out := topUpName(filepath.Join(r.opts.App.ManagerWorkdir, filepath.Base(r.plan.TailFile)))
	part := out + ".part"
	t0 := time.Now()
	tctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	// remote honours the context also against a host that stopped
	// answering, so bound is a real bound.
	var got struct {
		res TailResult
		err error
	}
	got.res, got.err = r.opts.Recovery.SaveTail(tctx, dead, dead.MasterBinlogDir, from, part)
	if got.err != nil && tctx.Err() != nil {
		got.err = fmt.Errorf("read the binlog of %s after %s: %w", dead, bound, tctx.Err())
	}
	if got.err == nil {
		got.err = os.Rename(part, out)
	}
	if got.err != nil {
		os.Remove(part)
		r.plan.TopUpChecked = false
		if prevFile != "" {
			r.plan.TopUpFile, r.plan.TopUpEnd, r.plan.TopUpGTID = prevFile, prevEnd, prevGTID
			from = prevEnd
		} else {
			r.plan.TopUpFile, r.plan.TopUpEnd, r.plan.TopUpGTID = "", Coord{}, ""
		}
		why := fmt.Sprintf("they could not be checked after fencing: reading the dead master's binlog again failed: %v", got.err)
		if poweredOff {
			why = "shutdown_script powered the host off; " + why
		}
		r.rep.PossiblyLost = &LostRange{From: from, To: "unknown end of dead master's binlog", Why: why}
		r.addf("Writes of the dead master after %s could not be checked after fencing: %v", from, got.err)
		return
	}
	res := got.res
	r.plan.TopUpChecked = true
	r.plan.TopUpEnd = res.End
	if res.Incomplete != "" {
		r.addf("Dead master's binlog after fencing ended with an incomplete transaction, not applied: %s", res.Incomplete)
	}
	r.plan.TopUpFile, r.plan.TopUpGTID = "", ""
	if res.Transactions == 0 {
		os.Remove(out)
		r.logf("Read the dead master's binlog from %s again after fencing: no new transaction (%.3f s).", from, time.Since(t0).Seconds())
	} else {
		r.plan.TopUpFile, r.plan.TopUpGTID = out, res.LastGTID
		r.addf("Saved %d transaction(s) the dead master wrote after the tail (%s to %s), read after fencing, into %s.",
			res.Transactions, from, res.End, out)
	}
	if r.plan.DeadFence == deadNoAnswer && r.rep.PossiblyLost == nil {
		r.rep.PossiblyLost = &LostRange{From: res.End, To: "unknown",
			Why: "the dead master did not answer over MySQL within connect_timeout (paused or cut off), so it was not fenced: " +
				"transactions it had received may still commit if it resumes, and the new master would lack them; " +
				"only master_ip_failover_script and shutdown_script keep its clients away"}
	}
}

// releaseDeadFence ends the dead master's fence when the pipeline ends: the
// FTWRL goes, read_only=1 stays.
func (r *run) releaseDeadFence() {
	r.releaseFence(r.deadFence)
	r.deadFence = nil
	r.deadNode.close()
	r.deadNode = nil
}
