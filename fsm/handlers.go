package fsm

import (
	"errors"
	"fmt"
	"time"
)

// The handler table. Each handler runs with the FSM lock held and must
// be deterministic: no clock, no randomness, no I/O.
func init() {
	register(RegisterAppType, applyRegisterApp)
	register(SetTopologyType, applySetTopology)
	registerLogged(ObserveType, applyObserve)
	register(AcquireLockType, applyAcquireLock)
	register(JournalPhaseType, applyJournalPhase)
	register(ReleaseLockType, applyReleaseLock)
	register(SetMasterType, applySetMaster)
	register(AckType, applyAck)
	register(PauseType, applyPause)
	register(ResumeType, applyResume)
	register(AddServerType, applyAddServer)
	register(RemoveServerType, applyRemoveServer)
	register(ForceUnlockType, applyForceUnlock)
	registerLogged(ObserveBatchType, applyObserveBatch)
	register(SetTopologyBatchType, applySetTopologyBatch)
}

func applyRegisterApp(f *FSM, c *RegisterAppCmd) any {
	if c.App == "" {
		return fmt.Errorf("register app: empty name: %w", ErrInvalid)
	}
	if c.LastFailoverMinute < 0 {
		return fmt.Errorf("register app %q: last_failover_minute %d: %w", c.App, c.LastFailoverMinute, ErrInvalid)
	}
	a, ok := f.apps[c.App]
	if !ok {
		a = &app{state: AppState{Name: c.App}}
		f.apps[c.App] = a
	}
	f.touch(a)
	a.state.Servers = append([]Server(nil), c.Servers...)
	a.state.ConfigNames = append([]string(nil), c.ConfigNames...)
	if c.ConfigNames == nil {
		for _, s := range c.Servers {
			a.state.ConfigNames = append(a.state.ConfigNames, s.Name)
		}
	}
	a.state.LastFailoverMinute = c.LastFailoverMinute
	if a.state.Master == "" && c.Master != "" {
		a.state.Master = c.Master
	}
	pruneObservations(&a.state)
	return nil
}

// pruneObservations drops observations of servers no longer registered.
func pruneObservations(s *AppState) {
	for m, byServer := range s.Observations {
		for addr := range byServer {
			if _, ok := s.Server(addr); !ok {
				delete(byServer, addr)
			}
		}
		if len(byServer) == 0 {
			delete(s.Observations, m)
		}
	}
	if len(s.Observations) == 0 {
		s.Observations = nil // as a snapshot restores it
	}
}

func applySetTopology(f *FSM, c *SetTopologyCmd) any {
	a, err := f.lookup(c.App)
	if err != nil {
		return fmt.Errorf("set topology: %w", err)
	}
	t := c.Topology
	a.state.Topology = &t
	return nil
}

// applySetTopologyBatch stores each summary as SetTopology does, except one
// observed before the stored summary; an unknown application does not stop
// the others (the errors are returned together).
func applySetTopologyBatch(f *FSM, c *SetTopologyBatchCmd) any {
	var errs []error
	for _, t := range c.Topologies {
		a, ok := f.apps[t.App]
		if !ok {
			errs = append(errs, fmt.Errorf("set topology: app %q: %w", t.App, ErrUnknownApp))
			continue
		}
		if old := a.state.Topology; old != nil && t.Topology.ObservedAt.Before(old.ObservedAt) {
			continue
		}
		f.touch(a)
		topo := t.Topology
		a.state.Topology = &topo
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

// applyObserve stores the observation with the log's time and term; the
// observation keeps its SinceLogged while its Kind (and reachability) stay
// the same.
func applyObserve(f *FSM, m logMeta, c *ObserveCmd) any {
	if c.Observation.Manager == "" {
		return fmt.Errorf("observe %s in app %q: no manager id: %w", c.Observation.Server, c.App, ErrInvalid)
	}
	return f.storeObservation(m, c.App, c.Observation)
}

// storeObservation is ObserveCmd's effect for one observation whose
// Manager is set.
func (f *FSM) storeObservation(m logMeta, appName string, o Observation) error {
	a, err := f.lookup(appName)
	if err != nil {
		return fmt.Errorf("observe: %w", err)
	}
	srv, ok := a.state.Server(o.Server)
	if !ok {
		return fmt.Errorf("observe %s in app %q: %w", o.Server, appName, ErrUnknownServer)
	}
	o.Server = srv.Addr()
	if a.state.Observations == nil {
		a.state.Observations = map[string]map[string]Observation{}
	}
	if a.state.Observations[o.Manager] == nil {
		a.state.Observations[o.Manager] = map[string]Observation{}
	}
	o.LoggedAt, o.LoggedTerm, o.SinceLogged = m.At, m.Term, m.At
	prev, had := a.state.Observations[o.Manager][o.Server]
	if had && prev.Kind == o.Kind && prev.Reachable == o.Reachable && !prev.SinceLogged.IsZero() {
		o.SinceLogged = prev.SinceLogged
	}
	a.state.Observations[o.Manager][o.Server] = o
	return nil
}

// applyObserveBatch stores a manager's changed observations and refreshes
// the unchanged ones it names (ObserveBatchCmd). A batch with no manager,
// or with an observation of another manager, is refused whole; otherwise
// every item is applied on its own and the ones that could not be are
// returned in an ObserveBatchResult.
func applyObserveBatch(f *FSM, m logMeta, c *ObserveBatchCmd) any {
	if c.Manager == "" {
		return fmt.Errorf("observe batch: no manager id: %w", ErrInvalid)
	}
	for _, it := range c.Observations {
		if it.Observation.Manager != "" && it.Observation.Manager != c.Manager {
			return fmt.Errorf("observe batch of manager %s: holds an observation of manager %s (no manager writes another's): %w",
				c.Manager, it.Observation.Manager, ErrInvalid)
		}
	}
	var res ObserveBatchResult
	for _, it := range c.Observations {
		o := it.Observation
		o.Manager = c.Manager
		if err := f.storeObservation(m, it.App, o); err != nil {
			res.Rejected = append(res.Rejected, RejectedObservation{App: it.App, Server: o.Server, Error: err.Error()})
		}
	}
	for _, r := range c.Refresh {
		if !f.refreshObservation(m, c.Manager, c.At, r) {
			res.Unmatched = append(res.Unmatched, r)
		}
	}
	if res.Unmatched == nil && res.Rejected == nil {
		return nil
	}
	return res
}

// refreshObservation re-stamps the stored observation r names (see
// ObserveBatchCmd) and reports whether there was one.
func (f *FSM) refreshObservation(m logMeta, manager string, at time.Time, r ObserveRefresh) bool {
	a, ok := f.apps[r.App]
	if !ok {
		return false
	}
	srv, ok := a.state.Server(r.Server)
	if !ok {
		return false
	}
	o, ok := a.state.Observations[manager][srv.Addr()]
	if !ok || o.Since.IsZero() || o.Since.UnixNano() != r.Since {
		return false
	}
	if !o.Reachable || o.LoggedTerm != m.Term {
		// A "cannot reach" kept fresh, or an observation that turns
		// fresh in this term: the verdict may change.
		f.touch(a)
	}
	o.LoggedAt, o.LoggedTerm = m.At, m.Term
	if o.SinceLogged.IsZero() {
		o.SinceLogged = m.At // stored by an entry without a time: its Kind starts being logged here
	}
	if !at.IsZero() {
		o.At = at
	}
	a.state.Observations[manager][srv.Addr()] = o
	return true
}

func applyAcquireLock(f *FSM, c *AcquireLockCmd) any {
	a, err := f.lookup(c.App)
	if err != nil {
		return fmt.Errorf("acquire lock: %w", err)
	}
	s := &a.state
	switch c.Kind {
	case KindAuto, KindManual, KindSwitch, KindRejoin, KindDivergence, KindReconcile:
	default:
		return fmt.Errorf("acquire lock for app %q: kind %q: %w", c.App, c.Kind, ErrInvalid)
	}
	if c.Holder == "" {
		return fmt.Errorf("acquire lock for app %q: no holder: %w", c.App, ErrInvalid)
	}
	if c.TakeOver != 0 {
		return takeOverLock(a, c)
	}
	if err := heldRefusal(s, c.Kind); err != nil {
		return err
	}
	if v := c.Seen; v != nil && (v.Master != s.Master || v.Epoch != s.LastEpoch) {
		return fmt.Errorf("acquire %s lock for app %q: the verdict saw master %q at epoch %d, the state now has master %q at epoch %d; the verdict is re-evaluated: %w",
			c.Kind, c.App, v.Master, v.Epoch, s.Master, s.LastEpoch, ErrStaleVerdict)
	}
	if err := lockRefusal(s, c.Kind, c.IgnoreLastFailover, c.At); err != nil {
		return err
	}
	if c.Kind == KindManual {
		resetAutoRetry(s, false) // the operator acts: the refusal count starts again
	}
	s.LastEpoch++
	s.Lock = &Lock{
		Epoch:     s.LastEpoch,
		Holder:    c.Holder,
		Kind:      c.Kind,
		OldMaster: c.OldMaster,
		NewMaster: c.NewMaster,
		Started:   c.At,
		Granted:   c.At,
	}
	if !KeepsMaster(c.Kind) {
		// A rejoin (divergence, reconcile) journals nothing and keeps the last failover's journal
		// (its plan is what a later rejoin of the same server reads).
		s.Journal = nil
		s.Plans = nil
	}
	return *s.Lock
}

// takeOverLock gives a held lock to a new holder with a new epoch, which
// fences the previous holder. The journal is kept so the new holder can
// resume.
func takeOverLock(a *app, c *AcquireLockCmd) any {
	s := &a.state
	if s.Lock == nil {
		return fmt.Errorf("take over lock epoch %d of app %q: %w", c.TakeOver, c.App, ErrNoLock)
	}
	if s.Lock.Epoch != c.TakeOver {
		return fmt.Errorf("take over lock epoch %d of app %q: held at epoch %d: %w",
			c.TakeOver, c.App, s.Lock.Epoch, ErrStaleEpoch)
	}
	if s.Lock.Halted {
		return fmt.Errorf("take over lock epoch %d of app %q: failover halted, needs an operator's force-unlock: %w",
			c.TakeOver, c.App, ErrLockHeld)
	}
	s.LastEpoch++
	s.Lock.Epoch = s.LastEpoch
	s.Lock.Holder = c.Holder
	s.Lock.Granted = c.At
	return *s.Lock
}

// checkEpoch verifies the fencing token against the held lock.
func checkEpoch(s *AppState, epoch uint64, what string) error {
	if s.Lock == nil {
		return fmt.Errorf("%s for app %q at epoch %d: %w", what, s.Name, epoch, ErrNoLock)
	}
	if s.Lock.Epoch != epoch {
		return fmt.Errorf("%s for app %q at epoch %d: lock is at epoch %d: %w", what, s.Name, epoch, s.Lock.Epoch, ErrStaleEpoch)
	}
	return nil
}

func applyJournalPhase(f *FSM, c *JournalPhaseCmd) any {
	a, err := f.lookup(c.App)
	if err != nil {
		return fmt.Errorf("journal phase: %w", err)
	}
	e := c.Entry
	what := fmt.Sprintf("journal phase %q", e.Phase)
	if err := checkEpoch(&a.state, e.Epoch, what); err != nil {
		return err
	}
	if a.state.Lock.Halted {
		return fmt.Errorf("%s for app %q: failover halted: %w", what, c.App, ErrLockHeld)
	}
	switch e.Status {
	case PhaseStarted, PhaseDone, PhaseFailed:
	default:
		return fmt.Errorf("%s for app %q: status %q: %w", what, c.App, e.Status, ErrInvalid)
	}
	plan, rest := takeLegacyPlan(e.Detail)
	e.Detail = rest
	if c.Plan != "" {
		plan = c.Plan
	}
	a.state.Journal = append(a.state.Journal, e)
	if plan != "" {
		a.state.setPlan(e.Epoch, plan)
	}
	return nil
}

func applyReleaseLock(f *FSM, c *ReleaseLockCmd) any {
	a, err := f.lookup(c.App)
	if err != nil {
		return fmt.Errorf("release lock: %w", err)
	}
	s := &a.state
	if err := checkEpoch(s, c.Epoch, "release lock"); err != nil {
		return err
	}
	if s.Lock.Halted {
		return fmt.Errorf("release lock for app %q at epoch %d: already halted, needs force-unlock: %w", c.App, c.Epoch, ErrLockHeld)
	}
	switch c.Result {
	case ResultSuccess, ResultFailed, ResultHalted, ResultRefused:
	default:
		return fmt.Errorf("release lock for app %q: result %q: %w", c.App, c.Result, ErrInvalid)
	}
	l := s.Lock
	h := HistoryEntry{
		App: c.App, Kind: l.Kind, Epoch: l.Epoch, OldMaster: l.OldMaster, NewMaster: c.NewMaster,
		Holder: l.Holder, Started: l.Started, Finished: c.At, Result: c.Result, Summary: c.Summary, Attempts: 1,
	}
	if c.Result == ResultRefused {
		// Nothing was changed: no new master, no anti-flapping block.
		h.NewMaster = ""
		addRefusedHistory(a, h)
		if l.Kind == KindAuto {
			noteAutoRefusal(s, l.Epoch, c.Summary, c.At)
		}
		s.Lock = nil
		return nil
	}
	addHistory(a, h)
	if c.Result == ResultHalted {
		l.Halted = true
		l.Reason = c.Summary
		return nil
	}
	if c.Result == ResultSuccess {
		if c.NewMaster != "" {
			s.Master = c.NewMaster
		}
		if l.Kind != KindSwitch && !KeepsMaster(l.Kind) {
			s.LastFailover = &LastFailover{Epoch: l.Epoch, Kind: l.Kind, Finished: c.At}
		}
		switch l.Kind {
		case KindAuto, KindManual, KindSwitch: // the master changed: earlier refusals are moot
			resetAutoRetry(s, true)
		}
	}
	s.Lock = nil
	return nil
}

func addHistory(a *app, h HistoryEntry) {
	a.history = append(a.history, h)
	if n := len(a.history); n > maxHistory {
		a.history = append([]HistoryEntry(nil), a.history[n-maxHistory:]...)
	}
}

func applySetMaster(f *FSM, c *SetMasterCmd) any {
	a, err := f.lookup(c.App)
	if err != nil {
		return fmt.Errorf("set master: %w", err)
	}
	if a.state.Lock != nil {
		if err := checkEpoch(&a.state, c.Epoch, "set master "+c.Master); err != nil {
			return fmt.Errorf("%w (a failover holds the lock)", err)
		}
	}
	a.state.Master = c.Master
	return nil
}

func applyAck(f *FSM, c *AckCmd) any {
	a, err := f.lookup(c.App)
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	if lf := a.state.LastFailover; lf != nil {
		lf.Acknowledged = true
		lf.AckedBy = c.By
		lf.AckedAt = c.At
	}
	a.state.AutoRetry = nil // clears a halted automatic failover and its counters
	return nil
}

func applyPause(f *FSM, c *PauseCmd) any {
	a, err := f.lookup(c.App)
	if err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	a.state.Paused = true
	a.state.PausedBy = c.By
	a.state.PauseReason = c.Reason
	return nil
}

func applyResume(f *FSM, c *ResumeCmd) any {
	a, err := f.lookup(c.App)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	a.state.Paused = false
	a.state.PausedBy = ""
	a.state.PauseReason = ""
	return nil
}

func applyAddServer(f *FSM, c *AddServerCmd) any {
	a, err := f.lookup(c.App)
	if err != nil {
		return fmt.Errorf("add server: %w", err)
	}
	if c.Server.Name == "" || c.Server.Port == 0 || (c.Server.Hostname == "" && c.Server.IP == "") {
		return fmt.Errorf("add server %q to app %q: name, host and port are required: %w", c.Server.Name, c.App, ErrInvalid)
	}
	for _, s := range a.state.Servers {
		if s.Name == c.Server.Name || s.Addr() == c.Server.Addr() {
			return fmt.Errorf("add server %s(%s) to app %q: %w", c.Server.Name, c.Server.Addr(), c.App, ErrServerExists)
		}
	}
	a.state.Servers = append(a.state.Servers, c.Server)
	return nil
}

func applyRemoveServer(f *FSM, c *RemoveServerCmd) any {
	a, err := f.lookup(c.App)
	if err != nil {
		return fmt.Errorf("remove server: %w", err)
	}
	srv, ok := a.state.Server(c.Server)
	if !ok {
		return fmt.Errorf("remove server %s from app %q: %w", c.Server, c.App, ErrUnknownServer)
	}
	if srv.Addr() == a.state.Master {
		return fmt.Errorf("remove server %s from app %q: %w", c.Server, c.App, ErrServerIsMaster)
	}
	kept := a.state.Servers[:0]
	for _, s := range a.state.Servers {
		if s.Name != srv.Name {
			kept = append(kept, s)
		}
	}
	a.state.Servers = kept
	pruneObservations(&a.state)
	return nil
}

func applyForceUnlock(f *FSM, c *ForceUnlockCmd) any {
	a, err := f.lookup(c.App)
	if err != nil {
		return fmt.Errorf("force unlock: %w", err)
	}
	s := &a.state
	if s.Lock == nil {
		return fmt.Errorf("force unlock app %q: %w", c.App, ErrNoLock)
	}
	if c.Epoch != 0 && c.Epoch != s.Lock.Epoch {
		return fmt.Errorf("force unlock app %q at epoch %d: lock is at epoch %d: %w", c.App, c.Epoch, s.Lock.Epoch, ErrStaleEpoch)
	}
	l := s.Lock
	if !l.Halted {
		addHistory(a, HistoryEntry{
			App: c.App, Kind: l.Kind, Epoch: l.Epoch, OldMaster: l.OldMaster, Holder: l.Holder,
			Started: l.Started, Finished: c.At, Result: ResultHalted, Attempts: 1,
			Summary: fmt.Sprintf("force-unlocked by %s: %s", c.By, c.Reason),
		})
	}
	s.Lock = nil
	return nil
}
