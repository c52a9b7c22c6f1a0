package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/consensus"
	"github.com/mharaft/mharaft/dialect"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/fsm"
)

var _ api.Backend = (*Manager)(nil)

// IsLeader tells whether this node is the Raft leader.
func (m *Manager) IsLeader() bool { return m.node.IsLeader() }

// LeaderAPIAddr is the leader's HTTP address, "" while there is none.
func (m *Manager) LeaderAPIAddr() string { return m.node.LeaderHTTPAddr() }

// Status is this node's view of the managers and every application.
func (m *Manager) Status(ctx context.Context) (*api.Status, error) {
	rs := m.node.Stats()
	s := &api.Status{Node: m.cfg.ID, Leader: rs.LeaderID, Term: rs.Term}
	members := map[string]consensus.Member{}
	for _, mem := range m.node.Members() {
		members[mem.Name] = mem
	}
	for _, srv := range rs.Servers {
		mg := api.Manager{ID: srv.ID, RaftAddr: srv.Address, Voter: srv.Voter, Role: "follower"}
		if srv.Leader {
			mg.Role = "leader"
		}
		if mem, ok := members[srv.ID]; ok {
			mg.APIAddr, mg.Datacenter, mg.Alive = mem.HTTPAddr, mem.Datacenter, mem.State == "alive"
		}
		if srv.ID == m.cfg.ID {
			mg.Role = strings.ToLower(rs.State)
			mg.Alive = true
			mg.APIAddr = m.cfg.HTTPAddr
			// raft's LastContact is the last time a leader was heard
			// from: on the leader it only grows (its last term as a
			// follower), so the leader's own row shows none.
			if mg.Role != "leader" && !rs.LastContact.IsZero() {
				mg.LastContact = time.Since(rs.LastContact).Round(time.Millisecond).String()
			}
		}
		s.Managers = append(s.Managers, mg)
	}
	for _, st := range m.fsm.Apps() {
		s.Apps = append(s.Apps, m.appStatus(st))
	}
	return s, nil
}

func (m *Manager) appStatus(st fsm.AppState) api.AppStatus {
	hist := m.fsm.History(st.Name)
	verdict := ""
	if m.node.IsLeader() {
		m.mu.Lock()
		if m.verdictOf[st.Name] == st.Master {
			verdict = m.verdicts[st.Name] // not a verdict about an earlier master
		}
		m.mu.Unlock()
	}
	if t := st.Topology; verdict == "" && t != nil {
		// Only the leader evaluates; a follower (or a new leader before
		// its first evaluation) shows the verdict the leader stored with
		// its last topology summary, unless that summary is older than the
		// last change of the master (the verdict was about the old one).
		if c, ok := masterChange(hist, st.Master); !ok || !t.ObservedAt.Before(c.Finished) {
			verdict = t.Verdict
		}
	}
	a := api.AppStatus{Name: st.Name, Master: st.Master, Verdict: verdict, Paused: st.Paused}
	a.Servers = m.serverStatuses(&st, m.effectiveApp(st.Name, &st), hist, time.Now())
	if l := st.Lock; l != nil {
		a.Lock = &api.Lock{Epoch: l.Epoch, Holder: l.Holder, Kind: l.Kind, Started: l.Started}
		a.Unfinished = true
	}
	for _, e := range st.Journal {
		a.Journal = append(a.Journal, api.JournalEntry{Epoch: e.Epoch, Phase: e.Phase, Status: e.Status, Detail: journalDetail(e.Detail), At: e.At})
	}
	if lf := st.LastFailover; lf != nil {
		t := lf.Finished
		a.LastFailover = &t
		a.Acked = lf.Acknowledged
	}
	if r := st.AutoRetry; r != nil && (r.Refusals > 0 || r.Halted) {
		a.AutoRetry = &api.AutoRetry{Refusals: r.Refusals, LastReason: r.LastReason, NextAttempt: r.NextAttempt,
			Halted: r.Halted, HaltReason: r.HaltReason}
	}
	return a
}

// journalDetail prints a journal detail (the plan is not in it: the FSM
// stores it once per epoch).
func journalDetail(d map[string]string) string {
	var keys []string
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+d[k])
	}
	return strings.Join(parts, " ")
}

// History lists finished failovers and switches, oldest first.
func (m *Manager) History(ctx context.Context, app string) ([]api.HistoryEntry, error) {
	names := m.fsm.AppNames()
	if app != "" {
		if _, ok := m.fsm.App(app); !ok {
			return nil, apiError(fmt.Errorf("history of %q: %w", app, fsm.ErrUnknownApp)) // 404
		}
		names = []string{app}
	}
	var out []api.HistoryEntry
	for _, n := range names {
		for _, h := range m.fsm.History(n) {
			kind := h.Kind
			switch h.Kind {
			case fsm.KindAuto:
				kind = "failover (auto)"
			case fsm.KindManual:
				kind = "failover (manual)"
			}
			e := api.HistoryEntry{App: h.App, Kind: kind, Epoch: h.Epoch, NewMaster: h.NewMaster,
				Started: h.Started, Finished: h.Finished, Result: h.Result, Summary: h.Summary, Attempts: h.Attempts}
			if h.Kind == fsm.KindSwitch {
				e.OldMaster = h.OldMaster
			} else {
				e.DeadMaster = h.OldMaster
			}
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Finished.Before(out[j].Finished) })
	return out, nil
}

// Do runs an action; only the leader runs actions. Refusals carry the
// HTTP status the API should answer with.
func (m *Manager) Do(ctx context.Context, a api.Action) (*api.ActionResult, error) {
	if !m.node.IsLeader() {
		return nil, fmt.Errorf("action %s on %s (leader: %q): %w", a.Kind, m.cfg.ID, m.node.LeaderID(), consensus.ErrNotLeader)
	}
	res, err := m.do(ctx, a)
	if err != nil {
		return nil, apiError(err)
	}
	return res, nil
}

// apiError gives an FSM refusal its HTTP status. An error wrapping
// consensus.ErrNotLeader stays as it is, so that the API forwards the
// request to the leader.
func apiError(err error) error {
	status := 0
	switch {
	case errors.Is(err, consensus.ErrNotLeader):
		return err
	case errors.Is(err, fsm.ErrUnknownApp), errors.Is(err, fsm.ErrUnknownServer):
		status = 404
	case errors.Is(err, fsm.ErrLockHeld), errors.Is(err, fsm.ErrServerExists), errors.Is(err, fsm.ErrServerIsMaster):
		status = 409
	case errors.Is(err, fsm.ErrAntiFlap), errors.Is(err, fsm.ErrPaused), errors.Is(err, fsm.ErrNoLock), errors.Is(err, fsm.ErrStaleEpoch):
		status = 412
	case errors.Is(err, fsm.ErrInvalid):
		status = 400
	}
	if status == 0 {
		return err
	}
	return &api.Error{Status: status, Msg: err.Error()}
}

func (m *Manager) do(ctx context.Context, a api.Action) (*api.ActionResult, error) {
	by := "operator"
	if a.Reason != "" {
		by = "operator: " + a.Reason
	}
	now := m.now()
	needApp := func() (*fsm.AppState, error) {
		st, ok := m.fsm.App(a.App)
		if !ok {
			return nil, fmt.Errorf("%s: app %q: %w", a.Kind, a.App, fsm.ErrUnknownApp)
		}
		return &st, nil
	}
	switch a.Kind {
	case api.ActionAck:
		st, err := needApp()
		if err != nil {
			return nil, err
		}
		msg := "last failover acknowledged"
		if st.Lock != nil && st.Lock.Halted {
			if _, err := m.node.Apply(ctx, fsm.EncodeForceUnlock(fsm.ForceUnlockCmd{App: a.App, Epoch: st.Lock.Epoch, By: by, Reason: "ack of halted failover", At: now})); err != nil {
				return nil, fmt.Errorf("clear halted failover of %s at epoch %d: %w", a.App, st.Lock.Epoch, err)
			}
			msg = fmt.Sprintf("halted failover (epoch %d) cleared; %s", st.Lock.Epoch, msg)
		}
		if _, err := m.node.Apply(ctx, fsm.EncodeAck(fsm.AckCmd{App: a.App, By: by, At: now})); err != nil {
			return nil, fmt.Errorf("ack %s: %w", a.App, err)
		}
		return &api.ActionResult{OK: true, Message: msg}, nil
	case api.ActionPause:
		if _, err := m.node.Apply(ctx, fsm.EncodePause(fsm.PauseCmd{App: a.App, By: by, Reason: a.Reason, At: now})); err != nil {
			return nil, fmt.Errorf("pause %s: %w", a.App, err)
		}
		return &api.ActionResult{OK: true, Message: "automatic failover paused for " + a.App}, nil
	case api.ActionResume:
		if _, err := m.node.Apply(ctx, fsm.EncodeResume(fsm.ResumeCmd{App: a.App, By: by, At: now})); err != nil {
			return nil, fmt.Errorf("resume %s: %w", a.App, err)
		}
		return &api.ActionResult{OK: true, Message: "automatic failover resumed for " + a.App}, nil
	case api.ActionMemberAdd:
		if a.MemberID == "" || a.MemberAddr == "" {
			return nil, errors.New("member-add needs member_id and member_addr")
		}
		return m.memberAdd(ctx, a)
	case api.ActionMemberRemove:
		if a.MemberID == "" {
			return nil, errors.New("member-remove needs member_id")
		}
		return m.memberRemove(ctx, a)
	case api.ActionServerAdd:
		if a.Server == nil {
			return nil, errors.New("server-add needs a server")
		}
		srv := fsm.Server{Name: a.Server.Name, Hostname: a.Server.Hostname, Port: a.Server.Port,
			CandidateMaster: a.Server.CandidateMaster, NoMaster: a.Server.NoMaster, Datacenter: a.Server.Datacenter}
		if _, err := m.node.Apply(ctx, fsm.EncodeAddServer(fsm.AddServerCmd{App: a.App, Server: srv})); err != nil {
			return nil, fmt.Errorf("add server %s to %s: %w", srv.Name, a.App, err)
		}
		return &api.ActionResult{OK: true, Message: "server " + srv.Name + " added: it persists in the replicated state; its credentials come from [server default] of each manager's configuration file unless that file has a [" + srv.Name + "] block"}, nil
	case api.ActionServerRemove:
		name := a.Host
		if st, ok := m.fsm.App(a.App); ok {
			if s, ok := st.Server(a.Host); ok {
				name = s.Name
			}
		}
		if _, err := m.node.Apply(ctx, fsm.EncodeRemoveServer(fsm.RemoveServerCmd{App: a.App, Server: a.Host})); err != nil {
			return nil, fmt.Errorf("remove server %s from %s: %w", a.Host, a.App, err)
		}
		m.cfg.Metrics.ForgetServer(a.App, name)
		return &api.ActionResult{OK: true, Message: "server " + a.Host + " removed"}, nil
	case api.ActionSwitch, api.ActionFailover:
		return m.runManual(ctx, a, now)
	case api.ActionRejoin:
		return m.rejoin(ctx, a)
	}
	return nil, fmt.Errorf("action %q is not supported by this manager", a.Kind)
}

// runManual runs an operator's switch or failover under the lock and
// waits for its report.
func (m *Manager) runManual(ctx context.Context, a api.Action, now time.Time) (*api.ActionResult, error) {
	st, ok := m.fsm.App(a.App)
	app := m.effectiveApp(a.App, &st)
	if app == nil || !ok {
		return nil, fmt.Errorf("%s: app %q: %w", a.Kind, a.App, fsm.ErrUnknownApp)
	}
	kind, old := fsm.KindSwitch, st.Master
	if a.Kind == api.ActionFailover {
		kind = fsm.KindManual
		if a.DeadMaster != "" {
			s := configServer(app, &st, a.DeadMaster)
			if s == nil {
				return nil, fmt.Errorf("failover of %s: dead master %q: %w", a.App, a.DeadMaster, fsm.ErrUnknownServer)
			}
			old = fsmAddr(&st, s.Name)
		}
	}
	newMaster, newName := "", ""
	if a.NewMaster != "" {
		s := configServer(app, &st, a.NewMaster)
		if s == nil {
			return nil, fmt.Errorf("%s of %s: new master %q: %w", a.Kind, a.App, a.NewMaster, fsm.ErrUnknownServer)
		}
		newMaster, newName = fsmAddr(&st, s.Name), s.Name
	}
	flags, err := manualFlagsOfAction(a)
	if err != nil {
		return nil, err
	}
	if flags.sw.CheckOnly {
		return m.checkOnlySwitch(ctx, a, app, &st, newName, flags)
	}
	lctx, term, ok := m.leaderContext()
	if !ok {
		return nil, fmt.Errorf("%s of %s: %w", a.Kind, a.App, errNotEstablished)
	}
	if !m.claim(a.App) {
		return nil, fmt.Errorf("%s of %s: a pipeline is already running: %w", a.Kind, a.App, fsm.ErrLockHeld)
	}
	defer m.setRunning(a.App, false)
	defer m.haltOnPanic(a.App)
	resp, err := m.applyAsLeader(lctx, fsm.EncodeAcquireLock(fsm.AcquireLockCmd{
		App: a.App, Holder: m.cfg.ID, Kind: kind, OldMaster: old, NewMaster: newMaster,
		IgnoreLastFailover: a.IgnoreLastFailover, At: now,
	}))
	if err != nil && kind == fsm.KindManual && errors.Is(err, fsm.ErrAntiFlap) && st.LastFailover != nil {
		// The FSM's refusal asks for `mhactl ack`, which is what lets the
		// next automatic failover run; an operator's failover only needs
		// MHA's --ignore_last_failover.
		lf := st.LastFailover
		return nil, &api.Error{Status: http.StatusPreconditionFailed, Msg: fmt.Sprintf(
			"failover of %s refused: the last failover (epoch %d) finished at %s, less than last_failover_minute=%d minutes ago; "+
				"run it again with --ignore-last-failover to fail over anyway", a.App, lf.Epoch, lf.Finished.Format(time.RFC3339), st.LastFailoverMinute)}
	}
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", a.Kind, a.App, err)
	}
	lock := resp.(fsm.Lock)
	log := m.log.With("app", a.App, "server", old, "epoch", lock.Epoch)
	j := &raftJournal{m: m, app: a.App, server: lock.OldMaster, epoch: lock.Epoch}
	detail := map[string]string{"by": "operator"}
	// Journaled so that a leader that resumes the switch honours them too.
	flags.record(detail)
	if err := j.record(lctx, PhaseLock, fsm.PhaseDone, detail, m.now()); err != nil {
		return nil, err
	}
	// The pipeline must not die with the HTTP request: it runs to its end
	// (or until this node's leadership ends) even if the client goes away.
	rep, perr := m.runPipeline(lctx, term, app, lock, j, nil, flags, log)
	res := &api.ActionResult{OK: perr == nil, Epoch: lock.Epoch}
	if rep != nil {
		res.Report, _ = json.Marshal(rep)
		res.Message = rep.Subject
	}
	if perr != nil {
		res.Message = perr.Error()
	}
	return res, nil
}

// fillReplica copies a replica's status into a topology summary.
func fillReplica(ss *fsm.ServerStatus, r *dialect.ReplicaStatus) {
	ss.ReadFile, ss.ReadPos = r.MasterLogFile, r.ReadMasterLogPos
	ss.ExecFile, ss.ExecPos = r.RelayMasterLogFile, r.ExecMasterLogPos
	ss.IORunning = r.IORunning
	ss.SQLRunning = "No"
	if r.SQLRunning {
		ss.SQLRunning = "Yes"
	}
	if r.SecondsBehindMaster != nil {
		ss.Lag, ss.LagKnown = time.Duration(*r.SecondsBehindMaster)*time.Second, true
	}
	ss.GTIDPos = r.GTIDIOPos
}

// rejoinCheckWait bounds how long a rejoin waits for a divergence check
// of the application to end.
const rejoinCheckWait = 30 * time.Second

// awaitDivergenceCheck returns app's state once no divergence check holds
// it (or after rejoinCheckWait, or when ctx ends). An operator starts a
// repaired old master and rejoins it at once; the leader's discovery sees
// it back and checks it for divergence (divergence.go) under a lock of a
// few seconds: the rejoin waits for that check instead of refusing, and
// then sees its verdict (a diverged server stays fenced, a clean one is
// rejoined).
func (m *Manager) awaitDivergenceCheck(ctx context.Context, app string) (fsm.AppState, bool) {
	deadline := time.Now().Add(rejoinCheckWait)
	sawCheck := false
	for {
		st, ok := m.fsm.App(app)
		checking := ok && st.Lock != nil && st.Lock.Kind == fsm.KindDivergence
		sawCheck = sawCheck || checking
		m.mu.Lock()
		running := m.running[app] // the check's claim ends just after its lock
		m.mu.Unlock()
		if (!checking && !(sawCheck && running)) || time.Now().After(deadline) {
			return st, ok
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return st, ok
		case <-t.C:
		}
	}
}

// rejoin makes a repaired old master a replica of the current master
// (failover.Rejoin) under the failover lock with its own epoch (kind
// rejoin), like every action that changes a MySQL server: it cannot race
// an automatic failover, and a deposed leader's rejoin is fenced like a
// pipeline. The plan of the last failover (when it was this server's) is
// read before the lock is taken (a new lock starts a new journal).
func (m *Manager) rejoin(ctx context.Context, a api.Action) (*api.ActionResult, error) {
	st, ok := m.fsm.App(a.App)
	app := m.effectiveApp(a.App, &st)
	if app == nil || !ok {
		return nil, fmt.Errorf("rejoin: app %q: %w", a.App, fsm.ErrUnknownApp)
	}
	srv := configServer(app, &st, a.Host)
	if srv == nil {
		return nil, fmt.Errorf("rejoin %q to %s: %w", a.Host, a.App, fsm.ErrUnknownServer)
	}
	st, _ = m.awaitDivergenceCheck(ctx, a.App)
	if st.Lock != nil {
		return nil, fmt.Errorf("rejoin %s: a %s holds the lock of %s at epoch %d: %w", srv.Name, st.Lock.Kind, a.App, st.Lock.Epoch, fsm.ErrLockHeld)
	}
	var plan *failover.Plan
	if p, err := failover.ProgressOf(st.Journal, st.LastPlan()); err == nil && p.Plan != nil && p.Plan.OldMaster == srv.Name {
		plan = p.Plan
	}
	replayed := replayOf(&st, srv.Name) // divergence.go
	if d, ok := st.DivergenceOf(srv.Name); ok && d.Active() && plan == nil {
		plan = failoverPlan(app, &st, srv.Name, d.Epoch)
	}
	lctx, term, ok := m.leaderContext()
	if !ok {
		return nil, fmt.Errorf("rejoin %s to %s: %w", srv.Name, a.App, errNotEstablished)
	}
	if !m.claim(a.App) {
		return nil, fmt.Errorf("rejoin %s to %s: a pipeline is already running: %w", srv.Name, a.App, fsm.ErrLockHeld)
	}
	defer m.setRunning(a.App, false)
	defer m.haltOnPanic(a.App)
	resp, err := m.applyAsLeader(lctx, fsm.EncodeAcquireLock(fsm.AcquireLockCmd{
		App: a.App, Holder: m.cfg.ID, Kind: fsm.KindRejoin, OldMaster: fsmAddr(&st, srv.Name), At: m.now(),
		Seen: &fsm.SeenState{Master: st.Master, Epoch: st.LastEpoch},
	}))
	if err != nil {
		return nil, fmt.Errorf("rejoin %s to %s: %w", srv.Name, a.App, err)
	}
	lock := resp.(fsm.Lock)
	log := m.log.With("app", a.App, "server", srv.Name, "epoch", lock.Epoch)
	res, err := failover.Rejoin(lctx, failover.RejoinOptions{
		Options: failover.Options{App: app, Yes: true, Out: &logWriter{log: log},
			Guard: &leaderGuard{m: m, lctx: lctx, term: term, app: a.App, epoch: lock.Epoch}},
		Host: srv.Name, Plan: plan, Replayed: replayed,
	})
	if err != nil {
		if mayNoLongerAct(err) || lctx.Err() != nil {
			return nil, fmt.Errorf("rejoin %s to %s stopped: %w", srv.Name, a.App, err)
		}
		result := fsm.ResultHalted
		if errors.Is(err, failover.ErrRefused) {
			result = fsm.ResultFailed // refused before it changed anything
		}
		m.release(lctx, app, lock, result, "", "rejoin of "+srv.Name+": "+err.Error(), log)
		return nil, fmt.Errorf("rejoin %s to %s: %w", srv.Name, a.App, err)
	}
	m.noteRejoined(lctx, a.App, lock, srv.Name, log)
	m.release(lctx, app, lock, fsm.ResultSuccess, "", fmt.Sprintf("%s rejoined as a replica of %s", srv.Name, res.NewMaster), log)
	log.Info("rejoined", "new_master", res.NewMaster, "mode", res.Mode, "from", res.From)
	body, _ := json.Marshal(res)
	return &api.ActionResult{OK: true, Epoch: lock.Epoch, Message: fmt.Sprintf("%s replicates from %s (%s, from %s)", res.Server, res.NewMaster, res.Mode, res.From), Report: body}, nil
}
