package manager

// Divergence (see doc.go, "Divergence", and failover/doc.go): the leader
// checks a former master when discovery first sees it reachable again and
// not replicating from the current master; one that holds transactions the
// current master lacks is fenced at once, recorded in the replicated state
// and kept out of the topology until `mhactl reconcile` and `mhactl
// rejoin`.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/consensus"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/fsm"
	"github.com/mharaft/mharaft/topology"
)

// divergenceRetry is how long the leader waits before it checks a former
// master again after a check failed (unreadable binlog, lock busy).
const divergenceRetry = 30 * time.Second

// divergenceCheckBound bounds one check of a former master (the count, the
// fence, the read of its binlog, the record).
const divergenceCheckBound = 2 * time.Minute

// divergenceChecks remembers, per leadership term, which former masters
// this leader checked (app|server|failover epoch|term): a server is checked
// once when it is first seen reachable after the failover and again after
// a leader change, not on every discovery.
type divergenceChecks struct {
	mu    sync.Mutex
	done  map[string]bool
	retry map[string]time.Time
}

func (d *divergenceChecks) due(key string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.done[key] && !now.Before(d.retry[key])
}

// mark records a check: done, or to be tried again after `after` (0: at
// the next discovery).
func (d *divergenceChecks) mark(key string, done bool, after time.Duration, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done == nil {
		d.done, d.retry = map[string]bool{}, map[string]time.Time{}
	}
	if done {
		d.done[key] = true
		delete(d.retry, key)
		return
	}
	d.retry[key] = now.Add(after)
}

// formerMasters are the failed masters of successful failovers that no
// successful rejoin brought back since (addr -> the failover's entry), the
// current master excepted.
func formerMasters(hist []fsm.HistoryEntry, master string) map[string]fsm.HistoryEntry {
	out := map[string]fsm.HistoryEntry{}
	for _, h := range hist {
		if h.Result != fsm.ResultSuccess {
			continue
		}
		switch h.Kind {
		case fsm.KindAuto, fsm.KindManual:
			out[h.OldMaster] = h
		case fsm.KindRejoin:
			delete(out, h.OldMaster)
		}
	}
	delete(out, master)
	return out
}

// failoverPlan is the plan of the failover of epoch that replaced server:
// from the replicated state while it still holds it, else from this
// manager's report of that failover; nil when neither has it.
func failoverPlan(app *config.App, st *fsm.AppState, server string, epoch uint64) *failover.Plan {
	if s := st.PlanAt(epoch); s != "" {
		if p, err := failover.DecodePlan(s); err == nil && p.OldMaster == server {
			return p
		}
	}
	if app.ManagerWorkdir != "" {
		if p, err := failover.LastFailoverPlan(app.ManagerWorkdir, app.Name, server); err == nil {
			return p
		}
	}
	return nil
}

// checkFormerMasters starts, in the background, the divergence check of
// every former master that discovery (topo) sees reachable and not
// replicating from the current master, once per term. Called by the
// leader after each discovery of the application.
func (m *Manager) checkFormerMasters(lctx context.Context, name string, topo *topology.Topology) {
	cur, term, ok := m.leaderContext()
	if !ok || cur != lctx {
		return
	}
	st, ok := m.fsm.App(name)
	app := m.effectiveApp(name, &st)
	if !ok || app == nil || st.Lock != nil || st.Master == "" {
		return
	}
	now := m.now()
	for addr, h := range formerMasters(m.fsm.History(name), st.Master) {
		srv := configServer(app, &st, addr)
		if srv == nil {
			continue
		}
		var seen *topology.ServerState
		for _, s := range topo.Servers {
			if s.Name() == srv.Name {
				seen = s
			}
		}
		if seen == nil || !seen.Reachable {
			continue
		}
		if seen.Replica != nil && seen.Upstream != nil && fsmAddr(&st, seen.Upstream.Name()) == st.Master {
			continue // replicating from the current master: rejoined by hand
		}
		// A server found clean while read-only (cleanKey) is checked
		// again once it is writable.
		key := fmt.Sprintf("%s|%s|%d|%d", name, srv.Name, h.Epoch, term)
		cleanKey := key + "|clean-read-only"
		if !m.divergence.due(key, now) || seen.ReadOnly && !m.divergence.due(cleanKey, now) {
			continue
		}
		if d, ok := st.DivergenceOf(srv.Name); ok && d.Epoch == h.Epoch && d.State != fsm.DivergenceDetected {
			m.divergence.mark(key, true, 0, now) // reconciled or rejoined: the operator's flow
			continue
		}
		plan := failoverPlan(app, &st, srv.Name, h.Epoch)
		if plan == nil {
			m.warnOnce("divergence/"+key, "former master is back but the plan of the failover that replaced it is gone: cannot check it for divergent transactions",
				"app", name, "server", srv.Name, "failover_epoch", h.Epoch)
			m.divergence.mark(key, true, 0, now)
			continue
		}
		if !m.claim(name) {
			return // a pipeline runs: the next discovery tries again
		}
		epoch, writable := h.Epoch, !seen.ReadOnly
		m.runClaimed(name, func() {
			done, after := m.checkDivergence(lctx, term, app, srv, epoch, plan, writable)
			if done && after < 0 { // clean and read-only
				m.divergence.mark(cleanKey, true, 0, m.now())
				return
			}
			m.divergence.mark(key, done, after, m.now())
		})
		return // one check at a time per application
	}
}

// checkDivergence checks one former master against the failover point of
// plan (epoch: the failover's) and, when it holds transactions the current
// master lacks, fences it under a divergence lock, reads them into the
// divergence file and records them. A writable one is fenced first, then
// read (its clients' commits waiting for a semi-sync acknowledgement block
// SHOW BINARY LOGS; and a writable server outside the topology is a split
// brain in progress), even when it turns out clean. It returns whether
// the check is done for this term (after -1: done while the server stays
// read-only, it was clean), else when to try again (a failure: after 30 s).
func (m *Manager) checkDivergence(ctx context.Context, term uint64, app *config.App, srv *config.Server, epoch uint64, plan *failover.Plan, writable bool) (bool, time.Duration) {
	log := m.log.With("app", app.Name, "server", srv.Name, "epoch", epoch)
	// Nothing of a check may hold the application for long (it claims it).
	ctx, cancel := context.WithTimeout(ctx, divergenceCheckBound)
	defer cancel()
	opts := failover.DivergenceOptions{Options: failover.Options{App: app, Out: &logWriter{log: log}}, Host: srv.Name, Plan: plan, Epoch: epoch}
	st, _ := m.fsm.App(app.Name)

	// The lock and the fence. A writable former master outside the
	// topology is a split brain in progress, and its clients' commits that
	// wait for a semi-sync acknowledgement (no semi-sync replica is left
	// to give one) block SHOW BINARY LOGS: it is fenced first, then read.
	// A read-only one is read first and fenced only if it diverged.
	var lock *fsm.Lock
	fenced := ""
	fence := func(why string) bool {
		resp, err := m.applyAsLeader(ctx, fsm.EncodeAcquireLock(fsm.AcquireLockCmd{
			App: app.Name, Holder: m.cfg.ID, Kind: fsm.KindDivergence, OldMaster: fsmAddr(&st, srv.Name), At: m.now(),
			Seen: &fsm.SeenState{Master: st.Master, Epoch: st.LastEpoch},
		}))
		if err != nil {
			log.Warn("former master "+why+": divergence lock refused; trying again later", "error", err)
			return false
		}
		l := resp.(fsm.Lock)
		lock = &l
		log = log.With("lock_epoch", l.Epoch)
		opts.Guard = &leaderGuard{m: m, lctx: ctx, term: term, app: app.Name, epoch: l.Epoch}
		if fenced, err = failover.FenceDiverged(ctx, opts); err != nil {
			if !mayNoLongerAct(err) && ctx.Err() == nil {
				m.release(ctx, app, *lock, fsm.ResultFailed, "", fmt.Sprintf("%s (%s) could not be fenced: %v", srv.Name, why, err), log)
			} else {
				log.Warn("divergence check stopped: this manager may no longer act", "error", err)
			}
			return false
		}
		log.Warn("former master "+why+": fenced", "fence", fenced)
		return true
	}
	if writable && !fence("is back and writable, outside the topology") {
		return false, divergenceRetry
	}

	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	txs, err := failover.DivergentTransactions(cctx, opts)
	ccancel()
	if err != nil {
		log.Warn("former master is back: cannot read its binlog after the failover point; trying again later", "error", err)
		if lock != nil {
			m.release(ctx, app, *lock, fsm.ResultFailed, "", fmt.Sprintf("%s: fenced (%s), but its binlog after the failover point could not be read: %v", srv.Name, fenced, err), log)
		}
		return false, divergenceRetry
	}
	if len(txs) == 0 {
		log.Info("former master is back and holds nothing the current master lacks", "failover_point", failover.DivergencePoint(plan).String())
		if lock != nil {
			m.release(ctx, app, *lock, fsm.ResultSuccess, "", fmt.Sprintf("%s was back and writable outside the topology: fenced (%s); it holds nothing the current master lacks: `mhactl rejoin --app %s --host %s` makes it a replica again",
				srv.Name, fenced, app.Name, srv.Name), log)
		}
		return true, -1 // read-only now: checked again if it turns writable
	}
	if lock == nil && !fence(fmt.Sprintf("holds %d transaction(s) the current master lacks", len(txs))) {
		return false, divergenceRetry
	}
	log.Warn("former master holds transactions the current master lacks: fenced", "transactions", len(txs), "fence", fenced)
	d := fsm.Divergence{Server: srv.Name, Addr: fsmAddr(&st, srv.Name), Epoch: epoch, Transactions: len(txs),
		From: failover.DivergencePoint(plan).String(), Manager: m.cfg.ID, DetectedAt: m.now(), Fenced: fenced, State: fsm.DivergenceDetected}
	if prev, ok := st.DivergenceOf(srv.Name); ok && prev.Epoch == epoch {
		d.DetectedAt = prev.DetectedAt
	}
	for _, t := range txs {
		if i := strings.IndexByte(t, ' '); i > 0 {
			if d.FirstGTID == "" {
				d.FirstGTID = t[i+1:]
			}
			d.LastGTID = t[i+1:]
		}
	}
	res, err := failover.ReadDivergence(ctx, opts)
	if err != nil {
		d.FileError = err.Error()
		log.Error("could not write the divergence file", "error", err)
	} else {
		d.File, d.To, d.Transactions = res.File, res.To.String(), len(res.Transactions)
		d.FirstGTID, d.LastGTID = res.GTIDs()
	}
	d.UpdatedAt = m.now()
	if _, err := m.applyAsLeader(ctx, fsm.EncodeRecordDivergence(fsm.RecordDivergenceCmd{App: app.Name, LockEpoch: lock.Epoch, Divergence: d})); err != nil {
		log.Warn("record divergence", "error", err)
		return mayNoLongerAct(err), divergenceRetry
	}
	m.release(ctx, app, *lock, fsm.ResultSuccess, "", divergenceSummary(app.Name, d), log)
	return true, 0
}

// divergenceSummary is the history line of a detection.
func divergenceSummary(app string, d fsm.Divergence) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s came back holding %d transaction(s) the current master lacks (after %s, the point the failover of epoch %d recovered",
		d.Server, d.Transactions, d.From, d.Epoch)
	if d.FirstGTID != "" {
		fmt.Fprintf(&b, "; GTIDs %s..%s", d.FirstGTID, d.LastGTID)
	}
	fmt.Fprintf(&b, "); fenced (%s); kept out of the topology", d.Fenced)
	if d.File != "" {
		fmt.Fprintf(&b, "; transactions in %s on %s", d.File, d.Manager)
	}
	fmt.Fprintf(&b, "; run `mhactl reconcile --app %s --server %s`", app, d.Server)
	return b.String()
}

// divergedStatus marks a status row of a server with an active divergence.
func divergedStatus(ss *api.ServerStatus, st *fsm.AppState) {
	d, ok := st.DivergenceOf(ss.Name)
	if !ok || !d.Active() {
		return
	}
	ss.Health = api.HealthDiverged
	switch d.State {
	case fsm.DivergenceReconciled:
		ss.HealthDetail = fmt.Sprintf("%d divergent transaction(s) replayed on the current master (GTID %s, %s..%s); run `mhactl rejoin --app %s --host %s`",
			d.Applied, d.ReplayGTID, d.ReplayStart, d.ReplayEnd, st.Name, d.Server)
	default:
		ss.HealthDetail = fmt.Sprintf("%d transaction(s) the current master lacks (failover of epoch %d); fenced; run `mhactl reconcile --app %s --server %s`",
			d.Transactions, d.Epoch, st.Name, d.Server)
	}
}

// resumeKeepsMasterLock ends a divergence or reconcile lock whose holder
// stopped: a divergence check is simply released (the next leader checks
// again); an interrupted reconcile halts (its one transaction committed or
// not: the operator checks with `mhactl reconcile` after `mhactl ack`). It
// returns false for other kinds.
func (m *Manager) resumeKeepsMasterLock(ctx context.Context, app *config.App, old, lock fsm.Lock, log *slog.Logger) bool {
	switch lock.Kind {
	case fsm.KindDivergence:
		m.release(ctx, app, lock, fsm.ResultFailed, "", fmt.Sprintf("the divergence check of %s by %s (epoch %d) was interrupted; the leader checks again", old.OldMaster, old.Holder, old.Epoch), log)
		return true
	case fsm.KindReconcile:
		m.release(ctx, app, lock, fsm.ResultHalted, "", fmt.Sprintf("the reconcile of %s by %s (epoch %d) was interrupted: its replay committed entirely or not at all; run `mhactl ack`, then `mhactl reconcile` shows the state", old.OldMaster, old.Holder, old.Epoch), log)
		return true
	}
	return false
}

// Reconcile shows (and with apply, replays on the current master) the
// divergent transactions of server (api.ReconcileBackend).
func (m *Manager) Reconcile(ctx context.Context, appName, server string, apply bool) (*api.Reconcile, error) {
	if !m.node.IsLeader() {
		return nil, fmt.Errorf("reconcile %s on %s: %w", server, m.cfg.ID, consensus.ErrNotLeader)
	}
	st, ok := m.fsm.App(appName)
	app := m.effectiveApp(appName, &st)
	if !ok || app == nil {
		return nil, apiError(fmt.Errorf("reconcile: app %q: %w", appName, fsm.ErrUnknownApp))
	}
	srv := configServer(app, &st, server)
	if srv == nil {
		return nil, apiError(fmt.Errorf("reconcile %q of %s: %w", server, appName, fsm.ErrUnknownServer))
	}
	d, ok := st.DivergenceOf(srv.Name)
	if !ok {
		return nil, &api.Error{Status: 404, Msg: fmt.Sprintf("no divergence is recorded for %s of %s: the leader records one when a former master comes back holding transactions the current master lacks", srv.Name, appName)}
	}
	plan := failoverPlan(app, &st, srv.Name, d.Epoch)
	if plan == nil {
		return nil, fmt.Errorf("reconcile %s of %s: the plan of the failover of epoch %d is gone (neither in the replicated state nor in this manager's reports in %s)", srv.Name, appName, d.Epoch, app.ManagerWorkdir)
	}
	if apply {
		return m.reconcileApply(ctx, app, &st, srv, d, plan)
	}
	if d.State == fsm.DivergenceRejoined {
		// Its binlog now also holds what it replicated since: the record
		// is the answer.
		return reconcileAnswer(appName, d, nil), nil
	}
	opts := failover.DivergenceOptions{Options: failover.Options{App: app}, Host: srv.Name, Plan: plan, Epoch: d.Epoch}
	res, err := failover.ReadDivergence(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("reconcile %s of %s: %w", srv.Name, appName, err)
	}
	return reconcileAnswer(appName, d, res), nil
}

// reconcileAnswer is the API's view of a divergence and its transactions.
func reconcileAnswer(app string, d fsm.Divergence, res *failover.DivergenceResult) *api.Reconcile {
	out := &api.Reconcile{App: app, Server: d.Server, Epoch: d.Epoch, State: d.State, Applied: d.Applied, Conflict: d.Conflict,
		File: d.File, Transactions: []api.ReconcileTx{}}
	if res != nil {
		out.File = res.File
		for _, t := range res.Transactions {
			tx := api.ReconcileTx{GTID: t.GTID, Binlog: t.Binlog, Time: t.Time, Tables: t.Tables, SQL: t.SQL, Rows: []api.ReconcileRow{}}
			if tx.Tables == nil {
				tx.Tables = []string{}
			}
			if tx.SQL == nil {
				tx.SQL = []string{}
			}
			for _, r := range t.Rows {
				tx.Rows = append(tx.Rows, api.ReconcileRow{Table: r.Table, Type: r.Type, Columns: r.Columns, Values: r.Values})
			}
			out.Transactions = append(out.Transactions, tx)
		}
	}
	return out
}

// reconcileApply replays the divergent transactions of srv on the current
// master under a reconcile lock (like rejoin and switch, every connection
// fenced), reading them again from srv's binlog first. A conflict is
// recorded and answered (nothing was applied); a success records the
// replay's GTID and binlog range (state reconciled), which `mhactl rejoin`
// then uses.
func (m *Manager) reconcileApply(_ context.Context, app *config.App, st *fsm.AppState, srv *config.Server, d fsm.Divergence, plan *failover.Plan) (*api.Reconcile, error) {
	switch {
	case st.Lock != nil:
		return nil, apiError(fmt.Errorf("reconcile %s: a %s holds the lock of %s at epoch %d: %w", srv.Name, st.Lock.Kind, app.Name, st.Lock.Epoch, fsm.ErrLockHeld))
	case d.State != fsm.DivergenceDetected:
		return nil, &api.Error{Status: 409, Msg: fmt.Sprintf("the divergent transactions of %s are %s already (replayed %d as %s on %s): nothing to apply; next: mhactl rejoin --app %s --host %s",
			srv.Name, d.State, d.Applied, d.ReplayGTID, serverName(st, d.ReplayMaster), app.Name, srv.Name)}
	}
	master := configServer(app, st, st.Master)
	if master == nil {
		return nil, fmt.Errorf("reconcile %s: the master %s of %s is not configured here", srv.Name, st.Master, app.Name)
	}
	lctx, term, ok := m.leaderContext()
	if !ok {
		return nil, fmt.Errorf("reconcile %s of %s: %w", srv.Name, app.Name, errNotEstablished)
	}
	if !m.claim(app.Name) {
		return nil, apiError(fmt.Errorf("reconcile %s of %s: a pipeline is already running: %w", srv.Name, app.Name, fsm.ErrLockHeld))
	}
	defer m.setRunning(app.Name, false)
	defer m.haltOnPanic(app.Name)
	resp, err := m.applyAsLeader(lctx, fsm.EncodeAcquireLock(fsm.AcquireLockCmd{
		App: app.Name, Holder: m.cfg.ID, Kind: fsm.KindReconcile, OldMaster: fsmAddr(st, srv.Name), NewMaster: st.Master, At: m.now(),
		Seen: &fsm.SeenState{Master: st.Master, Epoch: st.LastEpoch},
	}))
	if err != nil {
		return nil, apiError(fmt.Errorf("reconcile %s of %s: %w", srv.Name, app.Name, err))
	}
	lock := resp.(fsm.Lock)
	log := m.log.With("app", app.Name, "server", srv.Name, "epoch", lock.Epoch)
	opts := failover.DivergenceOptions{Options: failover.Options{App: app, Out: &logWriter{log: log},
		Guard: &leaderGuard{m: m, lctx: lctx, term: term, app: app.Name, epoch: lock.Epoch}}, Host: srv.Name, Plan: plan, Epoch: d.Epoch}
	fail := func(err error) (*api.Reconcile, error) {
		if mayNoLongerAct(err) || lctx.Err() != nil {
			return nil, fmt.Errorf("reconcile %s of %s stopped: %w", srv.Name, app.Name, err)
		}
		result := fsm.ResultHalted // the replay may have committed: an operator checks
		if errors.Is(err, failover.ErrRefused) {
			result = fsm.ResultFailed
		}
		m.release(lctx, app, lock, result, "", "reconcile of "+srv.Name+": "+err.Error(), log)
		return nil, fmt.Errorf("reconcile %s of %s: %w", srv.Name, app.Name, err)
	}
	res, err := failover.ReadDivergence(lctx, opts)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", failover.ErrRefused, err))
	}
	rr, err := failover.ReplayDivergence(lctx, opts, master.Name, res.Transactions)
	if err != nil && (rr == nil || rr.Applied == 0) {
		return fail(err)
	}
	d.Transactions, d.File = len(res.Transactions), res.File
	d.FirstGTID, d.LastGTID = res.GTIDs()
	d.UpdatedAt = m.now()
	summary := ""
	if rr.Conflict != "" {
		d.Conflict = rr.Conflict
		summary = fmt.Sprintf("reconcile of %s stopped at a conflict: %s", srv.Name, rr.Conflict)
	} else {
		d.State, d.Applied, d.Conflict = fsm.DivergenceReconciled, rr.Applied, ""
		d.ReplayMaster, d.ReplayGTID, d.ReplayStart, d.ReplayEnd = st.Master, rr.GTID, rr.Start.String(), rr.End.String()
		summary = fmt.Sprintf("replayed the %d divergent transaction(s) of %s on %s as one transaction, GTID %s at %s..%s; next: mhactl rejoin --app %s --host %s",
			rr.Applied, srv.Name, master.Name, rr.GTID, rr.Start, rr.End, app.Name, srv.Name)
		if err != nil {
			summary += " (" + err.Error() + ")"
		}
	}
	if _, err := m.applyAsLeader(lctx, fsm.EncodeRecordDivergence(fsm.RecordDivergenceCmd{App: app.Name, LockEpoch: lock.Epoch, Divergence: d})); err != nil {
		log.Error("record the reconcile", "error", err, "summary", summary)
		return nil, fmt.Errorf("reconcile %s of %s: %s; recording it failed: %w", srv.Name, app.Name, summary, err)
	}
	result := fsm.ResultSuccess
	if rr.Conflict != "" {
		result = fsm.ResultFailed
	}
	m.release(lctx, app, lock, result, "", summary, log)
	return reconcileAnswer(app.Name, d, res), nil
}

// replayOf is what rejoin needs of a reconciled divergence of server, nil
// when there is none (rejoin then refuses a server holding divergent
// transactions, as without reconcile).
func replayOf(st *fsm.AppState, server string) *failover.Replayed {
	d, ok := st.DivergenceOf(server)
	if !ok || d.State != fsm.DivergenceReconciled {
		return nil
	}
	r := &failover.Replayed{Transactions: d.Applied, Epoch: d.Epoch, Master: serverName(st, d.ReplayMaster), GTID: d.ReplayGTID}
	r.Start, _ = failover.ParseCoord(d.ReplayStart)
	r.End, _ = failover.ParseCoord(d.ReplayEnd)
	return r
}

// noteRejoined records, under the rejoin's lock, that a diverged server
// replicates from the current master again (state rejoined).
func (m *Manager) noteRejoined(ctx context.Context, app string, lock fsm.Lock, server string, log *slog.Logger) {
	st, _ := m.fsm.App(app)
	d, ok := st.DivergenceOf(server)
	if !ok || !d.Active() {
		return
	}
	d.State, d.UpdatedAt = fsm.DivergenceRejoined, m.now()
	if _, err := m.applyAsLeader(ctx, fsm.EncodeRecordDivergence(fsm.RecordDivergenceCmd{App: app, LockEpoch: lock.Epoch, Divergence: d})); err != nil {
		log.Warn("record the divergence rejoined", "error", err)
	}
}

// withoutDiverged returns app, or a copy of it without the servers that
// have an active divergence (the current master excepted, and a server the
// last discovery saw replicating from the current master: rejoined by
// hand). A pipeline (failover, switch) never elects, repoints or waits for
// such a server: it stays out of the topology until `mhactl rejoin`.
func withoutDiverged(app *config.App, st *fsm.AppState) *config.App {
	out := map[string]bool{}
	for _, d := range st.Divergences {
		if d.Active() && fsmAddr(st, d.Server) != st.Master {
			out[d.Server] = true
		}
	}
	if st.Topology != nil {
		for _, ss := range st.Topology.Servers {
			if s, ok := st.Server(ss.Addr); ok && ss.Reachable && ss.Role == "replica" && ss.ReplicatingFrom == st.Master {
				delete(out, s.Name)
			}
		}
	}
	if len(out) == 0 {
		return app
	}
	cp := *app
	cp.Servers = nil
	for _, s := range app.Servers {
		if !out[s.Name] {
			cp.Servers = append(cp.Servers, s)
		}
	}
	return &cp
}
