package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/detector"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/fsm"
	"github.com/mharaft/mharaft/topology"
)

// leaderLoop keeps the leadership period in step with Raft (see
// reconcileLeadership) and, every second while this node is the
// established leader, registers the configured applications and resumes
// (or halts) unfinished failovers.
func (m *Manager) leaderLoop(ctx context.Context) {
	leaderCh := m.node.LeaderCh()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	defer m.revokeLeadership()
	for {
		select {
		case <-ctx.Done():
			return
		case <-leaderCh:
		case <-tick.C:
		}
		m.reconcileLeadership(ctx)
		lctx, term, ok := m.leaderContext()
		if !ok {
			continue
		}
		m.registerApps(lctx)
		m.resumeUnfinished(lctx, term)
	}
}

// registerApps registers every configured application that the FSM does
// not know yet. A known application is registered again only when this
// leader's configuration file differs from the one that registered it
// (its server names or last_failover_minute), never while a lock is held,
// and then merged: servers added or removed at run time (`mhactl server
// add/remove`) stay added or removed unless the file itself added or
// dropped them. The first registration records the master that discovery
// finds; a known master is never overwritten by registration.
// Applications are registered in parallel, at most DiscoveryConcurrency at
// a time (each may discover its servers, bounded by 5 s): one after the
// other, a new leader took minutes to register hundreds of applications.
func (m *Manager) registerApps(ctx context.Context) {
	sem := make(chan struct{}, m.cfg.DiscoveryConcurrency)
	var wg sync.WaitGroup
	for name, app := range m.apps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m.registerApp(ctx, name, app)
		}()
	}
	wg.Wait()
}

// registerApp registers one application (see registerApps).
func (m *Manager) registerApp(ctx context.Context, name string, app *config.App) {
	st, known := m.fsm.App(name)
	cmd := registerCmd(app, m.now())
	if known {
		if st.Lock != nil {
			return
		}
		if sameNames(st.ConfigNames, cmd.ConfigNames) && st.LastFailoverMinute == cmd.LastFailoverMinute {
			if st.Master == "" {
				m.setDiscoveredMaster(ctx, app)
			}
			return
		}
		cmd.Servers = mergeServers(&st, cmd)
	}
	if !known || st.Master == "" {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		topo := topology.Discover(dctx, app)
		cancel()
		if topo.Master != nil {
			cmd.Master = fsmServer(topo.Master.Server).Addr()
		}
	}
	if _, err := m.applyAsLeader(ctx, fsm.EncodeRegisterApp(cmd)); err != nil {
		m.log.Warn("register application", "app", name, "error", err, "epoch", st.LastEpoch)
		return
	}
	m.log.Info("registered application", "app", name, "server", cmd.Master, "servers", len(cmd.Servers), "epoch", st.LastEpoch)
}

// mergeServers is the server list of a re-registration: the cluster's
// servers, refreshed from the file where the file has them, minus those
// the file dropped since it last registered the app, plus those the file
// added (a server removed at run time and still in the file stays removed).
func mergeServers(st *fsm.AppState, cmd fsm.RegisterAppCmd) []fsm.Server {
	oldFile := map[string]bool{}
	for _, n := range st.ConfigNames {
		oldFile[n] = true
	}
	newFile := map[string]fsm.Server{}
	for _, s := range cmd.Servers {
		newFile[s.Name] = s
	}
	var out []fsm.Server
	have := map[string]bool{}
	for _, s := range st.Servers {
		if c, ok := newFile[s.Name]; ok {
			out = append(out, c)
			have[s.Name] = true
			continue
		}
		if !oldFile[s.Name] {
			out = append(out, s) // added at run time
			have[s.Name] = true
		}
	}
	for _, c := range cmd.Servers {
		if !have[c.Name] && !oldFile[c.Name] {
			out = append(out, c) // new in the file
		}
	}
	return out
}

func sameNames(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// setDiscoveredMaster records the master discovery sees when the FSM has none.
func (m *Manager) setDiscoveredMaster(ctx context.Context, app *config.App) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	topo := topology.Discover(dctx, app)
	cancel()
	if topo.Master == nil {
		return
	}
	addr := fsmServer(topo.Master.Server).Addr()
	if _, err := m.applyAsLeader(ctx, fsm.EncodeSetMaster(fsm.SetMasterCmd{App: app.Name, Master: addr, At: m.now()})); err != nil {
		m.log.Warn("record discovered master", "app", app.Name, "server", addr, "error", err, "epoch", 0)
	}
}

// evaluateLoop evaluates the verdicts on the leader. An application is
// evaluated when its replicated state changed (fsm.AppChanged: an
// observation of it was applied, its lock released, ...) or it was marked
// (markEval: its pipeline ended, the local detector's view of it changed),
// at the first round of a term, and at the sweep (evaluateBackstop), which
// takes every application; and a suspected application (some manager
// cannot reach its master) every suspectEvaluate besides: its verdict
// waits for time alone (a replica's silence passing the threshold, a veto
// going stale), which no entry announces. With 1,000 applications an
// applied entry touches one or a few of them: evaluating all of them at
// every entry cost the leader most of a core (issue 17).
func (m *Manager) evaluateLoop(ctx context.Context) {
	tick := time.NewTicker(evaluateBackstop)
	defer tick.Stop()
	fast := time.NewTicker(suspectEvaluate)
	defer fast.Stop()
	suspects := map[string]bool{}
	seen := map[string]uint64{} // fsm.AppChanged at the application's last evaluation in seenTerm
	var seenTerm uint64
	for {
		sweep, fastOnly := false, false
		select {
		case <-ctx.Done():
			return
		case <-m.evalWake:
		case <-tick.C:
			sweep = true
		case <-fast.C:
			if len(suspects) == 0 {
				continue
			}
			fastOnly = true
		}
		lctx, term, ok := m.leaderContext()
		if !ok {
			clear(suspects)
			continue
		}
		if term != seenTerm {
			clear(seen)
			seenTerm, sweep = term, true
		}
		var marked map[string]bool
		if !fastOnly {
			marked = m.takeEvalMarks()
		}
		// The group's voters once per round, not once per application: it
		// asks Raft's main loop for the configuration (with 1,000
		// applications and a heartbeat entry per manager and second that
		// was thousands of requests a second on the leader).
		mgrs := m.managers()
		for name := range m.apps {
			changed := m.fsm.AppChanged(name)
			due := suspects[name]
			if !fastOnly {
				due = due || sweep || marked[name] || changed != seen[name]
			}
			if !due {
				continue
			}
			seen[name] = changed
			if m.evaluateApp(lctx, term, mgrs, name) {
				suspects[name] = true
			} else {
				delete(suspects, name)
			}
		}
	}
}

// markEval has app evaluated at the evaluator's next round, although its
// replicated state may not have changed.
func (m *Manager) markEval(app string) {
	m.mu.Lock()
	if m.evalMarks == nil {
		m.evalMarks = map[string]bool{}
	}
	m.evalMarks[app] = true
	m.mu.Unlock()
	wake(m.evalWake)
}

// takeEvalMarks returns the applications marked since the last call.
func (m *Manager) takeEvalMarks() map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	marks := m.evalMarks
	m.evalMarks = nil
	return marks
}

// managers lists every voter of the Raft configuration with its last
// known datacenter (gossip).
func (m *Manager) managers() []detector.Manager {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mem := range m.node.Members() {
		if mem.Name != "" {
			m.dcs[mem.Name] = mem.Datacenter
		}
	}
	var out []detector.Manager
	for _, s := range m.node.Stats().Servers {
		if s.Voter {
			out = append(out, detector.Manager{ID: s.ID, Datacenter: m.dcs[s.ID]})
		}
	}
	return out
}

// evaluateApp computes the verdict of one application and starts an
// automatic failover when it is actionable. It is true when some manager
// cannot reach the master (the application is suspected).
//
// A suspected application's verdict needs a fresh sample of its replicas,
// which waits up to the connect timeout for a replica that does not
// answer: it is taken and judged in a goroutine of its own, so that many
// suspects at once (a datacenter lost) do not wait for one another, and
// at most one evaluation of an application runs at a time (one still
// running is left to finish: the application stays suspected).
//
// ctx is the leadership period's context and term its Raft term: the
// pipeline started here stops when the period ends. managers are the
// group's voters (managers()), read once per evaluation round.
func (m *Manager) evaluateApp(ctx context.Context, term uint64, managers []detector.Manager, name string) bool {
	st, ok := m.fsm.App(name)
	app := m.effectiveApp(name, &st)
	if !ok || app == nil || st.Master == "" || st.Lock != nil {
		return false
	}
	m.mu.Lock()
	busy := m.running[name]
	evaluating := m.evaluating[name]
	ad := m.detectors[name]
	m.mu.Unlock()
	if busy {
		return false
	}
	if evaluating {
		return true
	}
	master := configServer(app, &st, st.Master)
	if master == nil {
		return false
	}
	// Freshness is decided on the Raft leader's own clock: observations
	// carry the time at which this leader appended them (LoggedAt, in this
	// term), and now is the same process clock that raft stamps with, so
	// no other manager's clock enters the decision (invariant 7, doc.go).
	now := time.Now()
	window := detector.DefaultWindow(app)
	in := detector.Input{
		Master: master.Name, Managers: managers, Now: now, Window: window, Term: term,
		SecondaryCheckConfigured: app.SecondaryCheckScript != "",
	}
	suspect := false
	for mgr, byServer := range st.Observations {
		o, ok := byServer[st.Master]
		if !ok {
			continue
		}
		do := detector.Observation{App: name, Manager: mgr, Server: master.Name, Reachable: o.Reachable,
			Kind: o.Kind, Since: o.Since, At: o.At, Detail: o.Detail,
			LoggedAt: o.LoggedAt, LoggedTerm: o.LoggedTerm, SinceLogged: o.SinceLogged}
		in.Observations = append(in.Observations, do)
		if !o.Reachable && do.FreshAt(now, term, window) {
			suspect = true
		}
	}
	// SSH to the master's host is dialled at the first suspicion, in
	// parallel with detection: it changes nothing on a server (prewarm.go).
	// This manager's own detector suspects first (a late sentinel), up to
	// a second and a half before its observation is logged.
	localSuspect := ad != nil && ad.master == master.Name && ad.d.Suspects()
	m.prewarmSSH(ctx, app, master, suspect || localSuspect)
	if !suspect || ad == nil {
		m.decide(ctx, term, app, &st, master, in)
		return suspect
	}
	m.mu.Lock()
	m.evaluating[name] = true
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() {
			m.mu.Lock()
			delete(m.evaluating, name)
			m.mu.Unlock()
		}()
		// Replica testimony is read only when some manager cannot reach
		// the master: a fresh sample, with the watch loop's history.
		in.Replicas = ad.d.CheckReplicas(ctx, app, master)
		in.Now = time.Now()
		m.decide(ctx, term, app, &st, master, in)
	}()
	return true
}

// decide evaluates in (running the secondary check when the verdict
// needs it), records the verdict, and starts the automatic failover of an
// actionable one unless the replicated state would refuse its lock.
func (m *Manager) decide(ctx context.Context, term uint64, app *config.App, st *fsm.AppState, master *config.Server, in detector.Input) {
	name := app.Name
	v := detector.Evaluate(in)
	if v.NeedSecondaryCheck {
		ok := m.secondaryCheck(ctx, app, master)
		in.SecondaryCheck = &ok
		v = detector.Evaluate(in)
	}
	m.noteVerdict(name, st.Master, master, v, st.LastEpoch)
	if !v.Actionable() {
		return
	}
	// Predict the FSM's refusal of an automatic lock (paused,
	// anti-flapping, retry backoff, halted) so that a dead master that
	// cannot be failed over costs no Raft entry per evaluation; the FSM
	// stays the authority.
	if why := st.AutoLockRefusal(m.now()); why != "" {
		m.noteRefusal(name, master, why, st.LastEpoch)
		return
	}
	if d := m.cfg.TestVerdictDelay; d > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
	if !m.claim(name) {
		return
	}
	verdictAt := in.Now.Add(m.cfg.TestClockOffset)
	m.runClaimed(name, func() { m.autoFailover(ctx, term, app, *st, master, v, verdictAt) })
}

// claim marks app as having a pipeline running on this node; it is false
// when one already runs. setRunning(app, false) releases it.
func (m *Manager) claim(app string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running[app] {
		return false
	}
	m.running[app] = true
	return true
}

// runClaimed runs fn in the background for an app taken with claim and
// releases the claim when fn returns. A panic inside fn (a bug) does not
// crash the daemon: it is logged with its stack and the app's lock, if this
// node holds it, is halted, so that the next leader does not resume the same
// pipeline into the same panic (an operator reads the report and acks).
func (m *Manager) runClaimed(app string, fn func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer m.setRunning(app, false)
		defer m.haltOnPanic(app)
		fn()
	}()
}

func (m *Manager) setRunning(app string, v bool) {
	m.mu.Lock()
	m.running[app] = v
	m.mu.Unlock()
	m.markEval(app)
}

// noteVerdict records the verdict v about the master at addr (status
// shows it only while that server is the master), logs a change, and has
// the application discovered at once when the verdict's kind changed (the
// tree the status shows then follows a dying or recovering master).
func (m *Manager) noteVerdict(app, addr string, master *config.Server, v detector.Verdict, epoch uint64) {
	// Log when the verdict or who cannot reach the master changes.
	key := fmt.Sprintf("%s|%v|%v", v.Kind, v.NonReachers, v.Unknown)
	m.mu.Lock()
	prev := m.verdictKeys[app]
	prevKind := m.verdicts[app]
	prevAddr := m.verdictOf[app]
	m.verdictKeys[app] = key
	m.verdicts[app] = string(v.Kind)
	m.verdictOf[app] = addr
	m.mu.Unlock()
	m.countVerdict(app, prevKind, string(v.Kind))
	if prevKind != string(v.Kind) || prevAddr != addr {
		m.requestDiscovery(app)
	}
	if prev != key {
		m.log.Info("verdict", "app", app, "server", master.Name, "verdict", string(v.Kind),
			"reasons", strings.Join(v.Reasons, "; "), "epoch", epoch)
	}
}

func (m *Manager) noteRefusal(app string, master *config.Server, why string, epoch uint64) {
	m.mu.Lock()
	prev := m.refusals[app]
	m.refusals[app] = why
	m.mu.Unlock()
	if prev != why {
		m.log.Warn("automatic failover refused", "app", app, "server", master.Name, "reason", why, "epoch", epoch)
	}
}

// secondaryCheck runs secondary_check_script the way MHA does; exit 0
// confirms that the master is unreachable.
func (m *Manager) secondaryCheck(ctx context.Context, app *config.App, master *config.Server) bool {
	h := &failover.Hooks{App: app}
	res, err := h.Run(ctx, app.SecondaryCheckScript, []failover.Arg{
		{Name: "user", Value: master.SSHUser}, {Name: "master_host", Value: master.Hostname},
		{Name: "master_ip", Value: master.IP}, {Name: "master_port", Value: fmt.Sprint(master.Port)},
	})
	if err != nil {
		m.log.Warn("secondary_check_script", "app", app.Name, "server", master.Name, "error", err, "epoch", 0)
		return false
	}
	return res.ExitCode == 0
}

// autoFailover takes the lock for an actionable verdict and runs the
// dead-master pipeline under it.
func (m *Manager) autoFailover(ctx context.Context, term uint64, app *config.App, st fsm.AppState, master *config.Server, v detector.Verdict, verdictAt time.Time) {
	log := m.log.With("app", app.Name, "server", master.Name)
	resp, err := m.applyAsLeader(ctx, fsm.EncodeAcquireLock(fsm.AcquireLockCmd{
		App: app.Name, Holder: m.cfg.ID, Kind: fsm.KindAuto, OldMaster: st.Master, At: verdictAt,
		// Compare-and-set: refused if the master or the last epoch changed
		// since the state this verdict was computed from.
		Seen: &fsm.SeenState{Master: st.Master, Epoch: st.LastEpoch},
	}))
	if err != nil {
		m.noteRefusal(app.Name, master, err.Error(), st.LastEpoch)
		return
	}
	lock, ok := resp.(fsm.Lock)
	if !ok {
		log.Error("acquire lock: unexpected response", "response", fmt.Sprintf("%T", resp), "epoch", st.LastEpoch)
		return
	}
	lockAt := m.now()
	log = log.With("epoch", lock.Epoch)
	log.Warn("master is dead: failover lock taken", "verdict", string(v.Kind), "reasons", strings.Join(v.Reasons, "; "))
	j := &raftJournal{m: m, app: app.Name, server: lock.OldMaster, epoch: lock.Epoch}
	if err := j.record(ctx, PhaseVerdict, fsm.PhaseDone, map[string]string{
		"verdict": string(v.Kind), "reasons": strings.Join(v.Reasons, "; "),
	}, verdictAt); err != nil {
		log.Warn("journal verdict", "error", err)
		return
	}
	if err := j.record(ctx, PhaseLock, fsm.PhaseDone, nil, lockAt); err != nil {
		log.Warn("journal lock", "error", err)
		return
	}
	m.runPipeline(ctx, term, app, lock, j, nil, manualFlags{}, log)
}

// resumeUnfinished looks for failovers whose holder stopped before the
// end (lock held, not halted, not running here) and takes them over.
func (m *Manager) resumeUnfinished(ctx context.Context, term uint64) {
	for name := range m.apps {
		st, ok := m.fsm.App(name)
		if !ok || st.Lock == nil || st.Lock.Halted {
			continue
		}
		app := m.effectiveApp(name, &st)
		if !m.claim(name) {
			continue
		}
		m.runClaimed(name, func() { m.resume(ctx, term, app, st) })
	}
}

func (m *Manager) resume(ctx context.Context, term uint64, app *config.App, st fsm.AppState) {
	old := *st.Lock
	log := m.log.With("app", app.Name, "server", old.OldMaster)
	resp, err := m.applyAsLeader(ctx, fsm.EncodeAcquireLock(fsm.AcquireLockCmd{
		App: app.Name, Holder: m.cfg.ID, Kind: old.Kind, OldMaster: old.OldMaster, NewMaster: old.NewMaster,
		TakeOver: old.Epoch, At: m.now(),
	}))
	if err != nil {
		log.Warn("take over unfinished failover", "error", err, "epoch", old.Epoch)
		return
	}
	lock := resp.(fsm.Lock)
	log = log.With("epoch", lock.Epoch)
	log.Warn("took over an unfinished failover", "previous_holder", old.Holder, "previous_epoch", old.Epoch, "kind", old.Kind)
	j := &raftJournal{m: m, app: app.Name, server: lock.OldMaster, epoch: lock.Epoch}
	cur, _ := m.fsm.App(app.Name)
	prog, err := failover.ProgressOf(cur.Journal, cur.LastPlan())
	if err != nil {
		m.release(ctx, app, lock, fsm.ResultHalted, "", fmt.Sprintf("cannot read the journal of epoch %d to resume: %v", old.Epoch, err), log)
		return
	}
	if m.resumeKeepsMasterLock(ctx, app, old, lock, log) {
		return
	}
	if lock.Kind == fsm.KindRejoin {
		m.release(ctx, app, lock, fsm.ResultHalted, "", fmt.Sprintf("the rejoin of %s by %s (epoch %d) was interrupted: check that server's replication and run `mhactl rejoin` again after `mhactl ack`", old.NewMaster, old.Holder, old.Epoch), log)
		return
	}
	// The operator's flags, journaled with the lock (manualFlags.record).
	m.runPipeline(ctx, term, app, lock, j, &prog, manualFlagsOf(cur.Journal), log)
}

// origIsNewSlaveKey, in the lock phase's journal detail, records an
// operator's --orig-master-is-new-slave for a leader that resumes (the
// other switch flags: switchflags.go).
const origIsNewSlaveKey = "orig_master_is_new_slave"

// runPipeline runs the pipeline of the lock's kind and releases the lock
// with its result. A pipeline stopped because this node may no longer act
// leaves the lock alone: the next leader resumes it.
func (m *Manager) runPipeline(ctx context.Context, term uint64, app *config.App, lock fsm.Lock, j *raftJournal, resume *failover.Progress, flags manualFlags, log *slog.Logger) (*failover.Report, error) {
	st, _ := m.fsm.App(app.Name)
	app = withFormerMastersIgnoreFail(app, &st, m.fsm.History(app.Name), lock.OldMaster)
	app = withoutDiverged(app, &st) // divergence.go
	opts := failover.Options{
		App: app, Journal: j, Yes: true, Resume: resume, OrigMasterIsNewSlave: flags.origIsNewSlave, Switch: flags.sw,
		IgnoreBinlogServerError: flags.ignoreBinlogServerError,
		Out:                     &logWriter{log: log},
		Guard:                   &leaderGuard{m: m, lctx: ctx, term: term, app: app.Name, epoch: lock.Epoch},
	}
	var rep *failover.Report
	var err error
	switch lock.Kind {
	case fsm.KindSwitch:
		if lock.NewMaster != "" {
			if s := configServer(app, &st, lock.NewMaster); s != nil {
				opts.NewMaster = s.Name
			}
		}
		rep, err = failover.Switch(ctx, opts)
	default:
		dead := configServer(app, &st, lock.OldMaster)
		if dead == nil {
			err = fmt.Errorf("dead master %s is not a configured server of %s", lock.OldMaster, app.Name)
			break
		}
		if lock.NewMaster != "" {
			if s := configServer(app, &st, lock.NewMaster); s != nil {
				opts.NewMaster = s.Name
			}
		}
		// An automatic failover acts on a quorum verdict that the dead
		// master is unreachable: phase 1 does not wait for its connect
		// timeout (a resume re-checks it fully).
		opts.DeadJudgedUnreachable = lock.Kind == fsm.KindAuto && resume == nil
		// The SSH dials started at the first suspicion, if any (prewarm.go).
		if rec, done := m.takePrewarm(app.Name, dead.Name); rec != nil {
			opts.Recovery = rec
			defer done()
		}
		rep, err = deadMasterPipeline(ctx, opts, dead.Name)
	}
	m.writeReport(app, lock.Epoch, rep, log)
	if err != nil && (mayNoLongerAct(err) || ctx.Err() != nil || !m.node.IsLeader()) {
		log.Warn("pipeline stopped: this manager may no longer act; the next leader resumes it", "error", err)
		return rep, err
	}
	newMaster := ""
	if rep != nil && rep.NewMaster != "" {
		if s := configServer(app, &st, rep.NewMaster); s != nil {
			newMaster = fsmAddr(&st, s.Name)
		}
	}
	if err != nil {
		if errors.Is(err, failover.ErrRefused) && !anyActingPhaseStarted(app.Name, m) {
			// Nothing was changed: the lock is released without arming
			// the anti-flapping block. An automatic failover is retried
			// with the FSM's bounded policy (backoff, then halted until
			// `mhactl ack`); history keeps one entry per distinct refusal.
			result := fsm.ResultFailed
			if lock.Kind == fsm.KindAuto {
				result = fsm.ResultRefused
			}
			m.release(ctx, app, lock, result, "", "refused: "+err.Error(), log)
			return rep, err
		}
		m.release(ctx, app, lock, fsm.ResultHalted, newMaster, "stopped: "+err.Error()+"; fix the cause and run `mhactl ack` to clear", log)
		return rep, err
	}
	summary := "success"
	if rep != nil && rep.Subject != "" {
		summary = rep.Subject
	}
	m.release(ctx, app, lock, fsm.ResultSuccess, newMaster, summary, log)
	return rep, nil
}

// writeReport writes the pipeline's report to manager_workdir named by
// the lock's epoch (failover_report_app1_epoch0000000007.json) and removes the copy
// the pipeline wrote under its start second, which another run of the same
// second would overwrite.
func (m *Manager) writeReport(app *config.App, epoch uint64, rep *failover.Report, log *slog.Logger) {
	if rep == nil || app.ManagerWorkdir == "" {
		return
	}
	byTime := rep.Path
	rep.Epoch = epoch
	path, err := rep.WriteJSON(app.ManagerWorkdir)
	if err != nil {
		log.Warn("write the report", "error", err)
		return
	}
	if byTime != "" && byTime != path {
		if err := os.Remove(byTime); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("remove the report named by time", "path", byTime, "error", err)
		}
	}
	log.Info("report written", "path", path)
}

// anyActingPhaseStarted tells whether the pipeline journaled a phase that
// may have changed a server: anything beyond the manager's verdict and lock
// records and the pipelines' read-only check phases. A refusal before such
// a phase changed nothing, so the lock is released (result failed) instead
// of halting until an operator acks.
func anyActingPhaseStarted(app string, m *Manager) bool {
	st, _ := m.fsm.App(app)
	for _, e := range st.Journal {
		switch e.Phase {
		case PhaseVerdict, PhaseLock, failover.PhaseCheck, failover.SwitchCheck:
		default:
			return true
		}
	}
	return false
}

func (m *Manager) release(ctx context.Context, app *config.App, lock fsm.Lock, result, newMaster, summary string, log *slog.Logger) {
	_, err := m.applyAsLeader(ctx, fsm.EncodeReleaseLock(fsm.ReleaseLockCmd{
		App: app.Name, Epoch: lock.Epoch, Result: result, NewMaster: newMaster, Summary: summary, At: m.now(),
	}))
	if err != nil {
		log.Error("release failover lock", "result", result, "error", err)
		return
	}
	// The pipeline changed (or tried to change) the servers: the status
	// shows them as they are now, not at the next tick.
	m.requestDiscovery(app.Name)
	m.countFailover(app.Name, lock.Kind, result)
	if result == fsm.ResultSuccess {
		log.Warn("failover finished", "result", result, "new_master", newMaster, "summary", summary)
	} else {
		log.Error("failover finished", "result", result, "summary", summary)
	}
}

// logWriter turns the pipeline's progress lines into log records. The
// pipeline writes from several goroutines at once (per-replica work,
// fencing of parallel connections), so Write is serialised.
type logWriter struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

var _ io.Writer = (*logWriter)(nil)

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
		if line != "" {
			w.log.Info("pipeline", "line", line)
		}
	}
	return len(p), nil
}

// withFormerMastersIgnoreFail returns app, or a copy of it in which every
// server that was the dead master of an earlier successful failover is
// marked ignore_fail (none is left out): MHA's operator removes it from app1.conf after a failover
// (--remove_dead_master_conf); a daemon that keeps running must not let
// that server block the next failover. A server that discovery sees
// replicating again (rejoined) counts as a normal replica.
func withFormerMastersIgnoreFail(app *config.App, st *fsm.AppState, history []fsm.HistoryEntry, current string) *config.App {
	former := map[string]bool{}
	for _, h := range history {
		if h.Result == fsm.ResultSuccess && h.Kind != fsm.KindSwitch && h.Kind != fsm.KindRejoin && h.OldMaster != "" && h.OldMaster != current {
			if s, ok := st.Server(h.OldMaster); ok {
				former[s.Name] = true
			}
		}
	}
	if st.Topology != nil {
		for _, ss := range st.Topology.Servers {
			if ss.Reachable && ss.Role == "replica" {
				if s, ok := st.Server(ss.Addr); ok {
					delete(former, s.Name)
				}
			}
		}
	}
	if len(former) == 0 {
		return app
	}
	cp := *app
	cp.Servers = nil
	for _, s := range app.Servers {
		if former[s.Name] {
			c := *s
			c.IgnoreFail = true
			s = &c
		}
		cp.Servers = append(cp.Servers, s)
	}
	return &cp
}
