package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// The randomized test of the FSM (issue 12): long random command sequences
// across three applications, with right and wrong epochs, and the
// invariants of doc.go checked after EVERY command by checkState (what any
// state must satisfy) and checkTransition (what one command may change).

var (
	randomSeed  = flag.Uint64("fsm.seed", 20261125, "seed of TestRandomCommands (printed; rerun a failure with -fsm.seed=N)")
	randomSteps = flag.Int("fsm.steps", 20000, "commands applied by TestRandomCommands")
)

var randomApps = []string{"a1", "a2", "a3"}

// randomServers are the servers the generator registers, observes and
// names as masters.
var randomServers = []Server{
	{Name: "s1", Hostname: "10.0.0.1", Port: 3306, CandidateMaster: true},
	{Name: "s2", Hostname: "10.0.0.2", Port: 3306, CandidateMaster: true},
	{Name: "s3", Hostname: "10.0.0.3", Port: 3306},
	{Name: "s4", Hostname: "10.0.0.4", Port: 3306, NoMaster: true},
}

// chooser is the source of every random choice: a PRNG for the long test,
// the fuzzer's bytes for FuzzFSM.
type chooser interface {
	Intn(n int) int
}

type rngChooser struct{ r *rand.Rand }

func (c rngChooser) Intn(n int) int { return c.r.IntN(n) }

// byteChooser reads choices from fuzz input; done once it is used up.
type byteChooser struct {
	b []byte
	i int
}

func (c *byteChooser) Intn(n int) int {
	if c.i >= len(c.b) {
		return 0
	}
	v := int(c.b[c.i])
	c.i++
	return v % n
}

func (c *byteChooser) done() bool { return c.i >= len(c.b) }

// view is what the checker compares: every application's state and history.
type view map[string]appView

type appView struct {
	State   AppState
	History []HistoryEntry
}

func viewOf(f *FSM) view {
	v := view{}
	for _, a := range f.Apps() {
		v[a.Name] = appView{State: a, History: f.History(a.Name)}
	}
	return v
}

// tracker is what the checker remembers across the whole run (snapshots
// and restores included): the highest epoch ever granted per application.
type tracker struct {
	maxGranted map[string]uint64
}

func newTracker() *tracker { return &tracker{maxGranted: map[string]uint64{}} }

// sim generates commands against one FSM.
type sim struct {
	c    chooser
	f    *FSM
	now  time.Time
	term uint64
	// A refusal loop: for burst more commands, the automatic failover of
	// burstApp is locked and refused again and again (the retry policy's
	// path), with the other commands still mixed in.
	burst    int
	burstApp string
	// side makes the choices of ObserveBatch entries (batch or single,
	// what a batch refreshes), apart from c so that adding them did not
	// change the sequence of the other commands.
	side chooser
}

func (s *sim) pick(xs ...string) string { return xs[s.c.Intn(len(xs))] }

func (s *sim) app() string {
	if s.c.Intn(50) == 0 {
		return "nope" // unknown application
	}
	return randomApps[s.c.Intn(len(randomApps))]
}

func (s *sim) addr() string {
	if s.c.Intn(20) == 0 {
		return "10.9.9.9:3306" // not registered
	}
	return randomServers[s.c.Intn(len(randomServers))].Addr()
}

// epoch returns the right fencing token for app (the held lock's epoch, or
// LastEpoch when free) most of the time, else a wrong one.
func (s *sim) epoch(app string) uint64 {
	st, _ := s.f.App(app)
	right := st.LastEpoch
	if st.Lock != nil {
		right = st.Lock.Epoch
	}
	switch s.c.Intn(10) {
	case 0:
		return 0
	case 1:
		return right + 1 + uint64(s.c.Intn(3))
	case 2:
		if right > 1 {
			return right - 1 - uint64(s.c.Intn(int(min(right-1, 3))))
		}
		return right + 1
	default:
		return right
	}
}

// at is a command's timestamp: the proposer's clock, up to 2 s off.
func (s *sim) at() time.Time {
	return s.now.Add(time.Duration(s.c.Intn(4000)-2000) * time.Millisecond)
}

// next returns the next command, as a raft.Log stamped by the "leader".
func (s *sim) next() *raft.Log {
	// The clock advances; sometimes by hours, so anti-flapping windows,
	// backoffs and the retry window all expire now and then.
	switch s.c.Intn(200) {
	case 0:
		s.now = s.now.Add(9 * time.Hour)
	case 1, 2:
		s.now = s.now.Add(11 * time.Minute)
	default:
		s.now = s.now.Add(time.Duration(s.c.Intn(600)) * time.Millisecond)
	}
	if s.c.Intn(300) == 0 {
		s.term++
	}
	l := &raft.Log{Type: raft.LogCommand, Term: s.term, AppendedAt: s.now}
	if s.c.Intn(20) == 0 {
		l.AppendedAt = time.Time{} // an entry of an old raft
	}
	if s.burst == 0 && s.c.Intn(300) == 0 {
		s.burst, s.burstApp = 10+s.c.Intn(30), randomApps[s.c.Intn(len(randomApps))]
	}
	if s.burst > 0 && s.c.Intn(3) != 0 {
		s.burst--
		s.now = s.now.Add(time.Duration(s.c.Intn(8000)) * time.Millisecond)
		st, _ := s.f.App(s.burstApp)
		if st.Lock == nil {
			l.Data = EncodeAcquireLock(AcquireLockCmd{App: s.burstApp, Holder: "m1", Kind: KindAuto, OldMaster: st.Master, At: s.now})
		} else {
			l.Data = EncodeReleaseLock(ReleaseLockCmd{App: s.burstApp, Epoch: s.epoch(s.burstApp), Result: ResultRefused,
				Summary: s.pick("replica s3 down", "replica s3 down", "not dead"), At: s.now})
		}
		return l
	}
	app := s.app()
	switch s.c.Intn(24) {
	case 0:
		var srv []Server
		for _, x := range randomServers {
			if s.c.Intn(5) != 0 {
				srv = append(srv, x)
			}
		}
		l.Data = EncodeRegisterApp(RegisterAppCmd{App: app, Servers: srv, Master: s.addr(),
			LastFailoverMinute: []int{0, 1, 480, 1, 0, 480, -1}[s.c.Intn(7)], At: s.at()})
	case 1, 2, 3:
		kind := s.pick("ok", "refused", "timeout", "auth-error")
		o := Observation{Manager: s.pick("m1", "m2", "m3", ""), Server: s.addr(), Reachable: kind == "ok" || kind == "auth-error",
			Kind: kind, Since: s.at(), At: s.at()}
		if s.side.Intn(2) == 0 {
			l.Data = EncodeObserve(ObserveCmd{App: app, Observation: o})
			break
		}
		// The same as a batch, with a refresh of a stored observation
		// (sometimes of an earlier Since, which must match nothing).
		side := func(xs ...string) string { return xs[s.side.Intn(len(xs))] }
		c := ObserveBatchCmd{Manager: side("m1", "m2", "m3"), At: o.At}
		if s.side.Intn(3) != 0 {
			o.Manager = side(c.Manager, c.Manager, "")
			c.Observations = append(c.Observations, ObserveCmd{App: app, Observation: o})
		}
		st, _ := s.f.App(randomApps[s.side.Intn(len(randomApps))])
		for addr, stored := range st.Observations[c.Manager] {
			since := stored.Since.UnixNano()
			if s.side.Intn(4) == 0 {
				since--
			}
			c.Refresh = append(c.Refresh, ObserveRefresh{App: st.Name, Server: addr, Since: since})
		}
		l.Data = EncodeObserveBatch(c)
	case 4, 5, 6, 7, 8:
		st, _ := s.f.App(app)
		c := AcquireLockCmd{App: app, Holder: s.pick("m1", "m2", "m3"),
			Kind:      s.pick(KindAuto, KindAuto, KindAuto, KindManual, KindSwitch, KindRejoin),
			OldMaster: st.Master, NewMaster: s.pick("", s.addr()), IgnoreLastFailover: s.c.Intn(3) == 0, At: s.at()}
		switch s.c.Intn(6) {
		case 0:
			c.TakeOver = s.epoch(app)
		case 1, 2:
			c.Seen = &SeenState{Master: st.Master, Epoch: st.LastEpoch}
			if s.c.Intn(3) == 0 {
				c.Seen.Epoch = s.epoch(app)
			}
			if s.c.Intn(4) == 0 {
				c.Seen.Master = s.addr()
			}
		}
		if s.c.Intn(50) == 0 {
			c.Holder, c.Kind = "", "bogus"
		}
		l.Data = EncodeAcquireLock(c)
	case 9, 10, 11, 12:
		c := JournalPhaseCmd{App: app, Entry: JournalEntry{Epoch: s.epoch(app),
			Phase:  s.pick("check", "save-binlog", "elect", "apply", "promote"),
			Status: s.pick(PhaseStarted, PhaseDone, PhaseFailed, PhaseDone, PhaseStarted, PhaseDone, PhaseStarted, "bogus"), At: s.at()}}
		switch s.c.Intn(4) {
		case 0:
			c.Plan = s.pick(`{"new_master":"s2"}`, `{"new_master":"s3"}`)
		case 1: // a writer from before EpochPlan: the plan in the detail
			c.Entry.Detail = map[string]string{legacyPlanKey: s.pick(`{"new_master":"s2"}`, `{"new_master":"s3"}`)}
			if s.c.Intn(2) == 0 {
				c.Entry.Detail["k"] = "v"
			}
		}
		l.Data = EncodeJournalPhase(c)
	case 13:
		l.Data = EncodeSetMaster(SetMasterCmd{App: app, Master: s.addr(), Epoch: s.epoch(app), At: s.at()})
	case 14, 15, 16, 17:
		l.Data = EncodeReleaseLock(ReleaseLockCmd{App: app, Epoch: s.epoch(app),
			Result:    s.pick(ResultSuccess, ResultFailed, ResultHalted, ResultRefused, ResultRefused, ResultRefused, ResultRefused, ResultSuccess, "bogus"),
			NewMaster: s.pick("", s.addr()), Summary: s.pick("replica s3 down", "replica s3 down", "not dead", ""), At: s.at()})
	case 18:
		var e uint64
		if s.c.Intn(2) == 0 {
			e = s.epoch(app)
		}
		l.Data = EncodeForceUnlock(ForceUnlockCmd{App: app, Epoch: e, By: "op", Reason: "test", At: s.at()})
	case 19:
		l.Data = EncodeAck(AckCmd{App: app, By: "op", At: s.at()})
	case 21:
		l.Data = EncodePause(PauseCmd{App: app, By: "op", Reason: "maintenance", At: s.at()})
	case 22:
		l.Data = EncodeResume(ResumeCmd{App: app, By: "op", At: s.at()})
	default:
		if s.c.Intn(2) == 0 {
			l.Data = EncodeAddServer(AddServerCmd{App: app, Server: randomServers[s.c.Intn(len(randomServers))]})
		} else {
			l.Data = EncodeRemoveServer(RemoveServerCmd{App: app, Server: randomServers[s.c.Intn(len(randomServers))].Name})
		}
	}
	return l
}

// checkState checks what every state must satisfy, for every application.
func checkState(v view) error {
	for name, a := range v {
		s := a.State
		if s.Lock != nil && s.Lock.Epoch != s.LastEpoch {
			return fmt.Errorf("app %s: lock at epoch %d but LastEpoch %d", name, s.Lock.Epoch, s.LastEpoch)
		}
		var prev uint64
		for i, e := range s.Journal {
			if e.Epoch < prev || e.Epoch > s.LastEpoch {
				return fmt.Errorf("app %s: journal entry %d at epoch %d (previous %d, last epoch %d)", name, i, e.Epoch, prev, s.LastEpoch)
			}
			prev = e.Epoch
		}
		prev = 0
		for i, p := range s.Plans {
			if p.Epoch <= prev || p.Epoch > s.LastEpoch || p.Plan == "" {
				return fmt.Errorf("app %s: plan %d at epoch %d (previous %d, last epoch %d, %d bytes): one plan per epoch, epochs increasing",
					name, i, p.Epoch, prev, s.LastEpoch, len(p.Plan))
			}
			prev = p.Epoch
		}
		for i, e := range s.Journal {
			if _, ok := e.Detail[legacyPlanKey]; ok {
				return fmt.Errorf("app %s: journal entry %d holds a plan in its detail", name, i)
			}
		}
		prev = 0
		for i, h := range a.History {
			if h.Epoch <= prev || h.Epoch > s.LastEpoch {
				return fmt.Errorf("app %s: history entry %d at epoch %d after epoch %d (last epoch %d): history epochs must strictly increase",
					name, i, h.Epoch, prev, s.LastEpoch)
			}
			prev = h.Epoch
			if h.Attempts < 1 || (h.Attempts > 1 && (h.Result != ResultRefused || h.FirstEpoch >= h.Epoch)) {
				return fmt.Errorf("app %s: history entry %d: %d attempts, result %s, epochs %d..%d", name, i, h.Attempts, h.Result, h.FirstEpoch, h.Epoch)
			}
		}
		if r := s.AutoRetry; r != nil {
			if r.Refusals > AutoRetryMaxRefusals || (r.Halted && r.HaltReason == "") || (r.Refusals >= AutoRetryMaxRefusals && !r.Halted) {
				return fmt.Errorf("app %s: auto retry %+v", name, *r)
			}
		}
		for m, byServer := range s.Observations {
			for addr, o := range byServer {
				if _, ok := s.Server(addr); !ok || o.Manager != m || o.Server != addr {
					return fmt.Errorf("app %s: observation %s/%s of an unregistered server or misfiled: %+v", name, m, addr, o)
				}
				if !o.LoggedAt.IsZero() && (o.SinceLogged.IsZero() || o.SinceLogged.After(o.LoggedAt)) {
					return fmt.Errorf("app %s: observation %s/%s logged at %v since %v", name, m, addr, o.LoggedAt, o.SinceLogged)
				}
			}
		}
	}
	return nil
}

// checkTransition checks one applied command: data is the entry, resp
// what Apply answered, prev and cur the views before and after.
func (tr *tracker) checkTransition(prev, cur view, data []byte, resp any) error {
	typ := CommandType(data[0])
	var hdr struct {
		App string `json:"app"`
	}
	if err := json.Unmarshal(data[1:], &hdr); err != nil {
		return fmt.Errorf("decode command %d: %v", typ, err)
	}
	touches := map[string]bool{hdr.App: true}
	if typ == ObserveBatchType { // one manager's observations of several apps
		var b ObserveBatchCmd
		if err := json.Unmarshal(data[1:], &b); err != nil {
			return fmt.Errorf("decode command %d: %v", typ, err)
		}
		for _, o := range b.Observations {
			touches[o.App] = true
		}
		for _, r := range b.Refresh {
			touches[r.App] = true
		}
	}
	for name, p := range prev {
		c, ok := cur[name]
		if !ok {
			return fmt.Errorf("app %s disappeared", name)
		}
		if c.State.LastEpoch < p.State.LastEpoch {
			return fmt.Errorf("app %s: LastEpoch went back from %d to %d", name, p.State.LastEpoch, c.State.LastEpoch)
		}
		if !touches[name] && !sameApp(p, c) {
			return fmt.Errorf("app %s changed by a command for app %q", name, hdr.App)
		}
	}
	if err, ok := resp.(error); ok {
		same := len(prev) == len(cur)
		for name := range touches {
			same = same && sameApp(prev[name], cur[name])
		}
		if !same {
			return fmt.Errorf("refused command (%v) changed the state", err)
		}
		return nil
	}
	p, c := prev[hdr.App].State, cur[hdr.App].State
	granted, isLock := resp.(Lock)
	if isLock {
		if typ != AcquireLockType {
			return fmt.Errorf("command %d answered a lock", typ)
		}
		var cmd AcquireLockCmd
		json.Unmarshal(data[1:], &cmd)
		switch {
		case cmd.TakeOver == 0 && p.Lock != nil:
			return fmt.Errorf("app %s: lock granted to %s at epoch %d while %s held epoch %d: two holders",
				hdr.App, granted.Holder, granted.Epoch, p.Lock.Holder, p.Lock.Epoch)
		case cmd.TakeOver != 0 && (p.Lock == nil || p.Lock.Epoch != cmd.TakeOver || p.Lock.Halted):
			return fmt.Errorf("app %s: takeover of epoch %d granted, lock was %+v", hdr.App, cmd.TakeOver, p.Lock)
		case granted.Epoch != p.LastEpoch+1 || c.LastEpoch != granted.Epoch:
			return fmt.Errorf("app %s: grant at epoch %d, LastEpoch was %d and is %d", hdr.App, granted.Epoch, p.LastEpoch, c.LastEpoch)
		case granted.Epoch <= tr.maxGranted[hdr.App]:
			return fmt.Errorf("app %s: grant at epoch %d, epoch %d was granted earlier", hdr.App, granted.Epoch, tr.maxGranted[hdr.App])
		case c.Lock == nil || *c.Lock != granted:
			return fmt.Errorf("app %s: granted %+v, state holds %+v", hdr.App, granted, c.Lock)
		case cmd.TakeOver == 0 && cmd.Seen != nil && (cmd.Seen.Master != p.Master || cmd.Seen.Epoch != p.LastEpoch):
			return fmt.Errorf("app %s: granted on a stale verdict %+v (master %s epoch %d)", hdr.App, *cmd.Seen, p.Master, p.LastEpoch)
		case cmd.TakeOver == 0 && cmd.Kind == KindAuto && p.AutoLockRefusal(cmd.At) != "":
			return fmt.Errorf("app %s: automatic lock granted although %s", hdr.App, p.AutoLockRefusal(cmd.At))
		}
		tr.maxGranted[hdr.App] = granted.Epoch
	} else if c.LastEpoch != p.LastEpoch {
		return fmt.Errorf("app %s: LastEpoch moved from %d to %d without a grant", hdr.App, p.LastEpoch, c.LastEpoch)
	}
	if typ == AcquireLockType && !isLock {
		return fmt.Errorf("accepted AcquireLock answered %T", resp)
	}
	// The journal only grows by entries of the held lock's epoch; a new
	// (not taken over) lock starts an empty one, except a rejoin, which
	// keeps the last failover's journal as it is.
	switch {
	case isLock && p.Lock == nil && granted.Kind != KindRejoin:
		if len(c.Journal) != 0 {
			return fmt.Errorf("app %s: new lock kept a journal of %d entries", hdr.App, len(c.Journal))
		}
	case len(c.Journal) < len(p.Journal) || (len(p.Journal) > 0 && !reflect.DeepEqual(c.Journal[:len(p.Journal)], p.Journal)):
		return fmt.Errorf("app %s: journal rewritten", hdr.App)
	default:
		for _, e := range c.Journal[len(p.Journal):] {
			if p.Lock == nil || e.Epoch != p.Lock.Epoch || p.Lock.Halted {
				return fmt.Errorf("app %s: journal entry at epoch %d accepted, lock was %+v", hdr.App, e.Epoch, p.Lock)
			}
		}
	}
	// The plans (invariant 11): a new lock empties them with the journal,
	// an accepted journal entry sets its epoch's plan (the newest), and
	// nothing else changes them.
	switch {
	case isLock && p.Lock == nil && granted.Kind != KindRejoin:
		if len(c.Plans) != 0 {
			return fmt.Errorf("app %s: new lock kept %d plans", hdr.App, len(c.Plans))
		}
	case typ == JournalPhaseType:
		var cmd JournalPhaseCmd
		json.Unmarshal(data[1:], &cmd)
		plan := cmd.Plan
		if plan == "" {
			plan = cmd.Entry.Detail[legacyPlanKey]
		}
		want := append([]EpochPlan(nil), p.Plans...)
		if n := len(want); plan != "" && n > 0 && want[n-1].Epoch == cmd.Entry.Epoch {
			want[n-1].Plan = plan
		} else if plan != "" {
			want = append(want, EpochPlan{Epoch: cmd.Entry.Epoch, Plan: plan})
		}
		if !reflect.DeepEqual(c.Plans, want) {
			return fmt.Errorf("app %s: plans %+v after a journal entry with plan %q at epoch %d, want %+v", hdr.App, c.Plans, plan, cmd.Entry.Epoch, want)
		}
	case !reflect.DeepEqual(c.Plans, p.Plans):
		return fmt.Errorf("app %s: plans changed by command %d", hdr.App, typ)
	}
	switch typ {
	case ReleaseLockType:
		var cmd ReleaseLockCmd
		json.Unmarshal(data[1:], &cmd)
		if p.Lock == nil || p.Lock.Epoch != cmd.Epoch {
			return fmt.Errorf("app %s: release at epoch %d accepted, lock was %+v", hdr.App, cmd.Epoch, p.Lock)
		}
		if cmd.Result == ResultRefused && (c.Master != p.Master || !reflect.DeepEqual(c.LastFailover, p.LastFailover) || c.Lock != nil) {
			return fmt.Errorf("app %s: a refused failover changed master %s->%s or anti-flapping %+v->%+v, or kept the lock",
				hdr.App, p.Master, c.Master, p.LastFailover, c.LastFailover)
		}
	case SetMasterType:
		var cmd SetMasterCmd
		json.Unmarshal(data[1:], &cmd)
		if p.Lock != nil && cmd.Epoch != p.Lock.Epoch {
			return fmt.Errorf("app %s: set master at epoch %d accepted during the lock of epoch %d", hdr.App, cmd.Epoch, p.Lock.Epoch)
		}
	}
	return nil
}

// sameApp compares two views of an application. The history is compared
// by length and its first and last entries (the FSM only appends, merges
// into the last entry or drops the oldest), which keeps 20,000 steps fast.
func sameApp(a, b appView) bool {
	ha, hb := a.History, b.History
	if len(ha) != len(hb) || (len(ha) > 0 && (ha[0] != hb[0] || ha[len(ha)-1] != hb[len(hb)-1])) {
		return false
	}
	return reflect.DeepEqual(a.State, b.State)
}

// snapshotRoundTrip persists f and restores it into a new FSM, which must
// hold the same state.
func snapshotRoundTrip(f *FSM) (*FSM, error) {
	snap, err := f.Snapshot()
	if err != nil {
		return nil, err
	}
	sink := &fakeSink{}
	if err := snap.Persist(sink); err != nil {
		return nil, err
	}
	g := New()
	if err := g.Restore(nopCloser{bytes.NewReader(sink.Bytes())}); err != nil {
		return nil, err
	}
	if want, got := viewOf(f), viewOf(g); !reflect.DeepEqual(want, got) {
		return nil, fmt.Errorf("restored snapshot differs from the state: %s", viewDiff(want, got))
	}
	return g, nil
}

// viewDiff names the first field that differs between two views.
func viewDiff(want, got view) string {
	for name, w := range want {
		g := got[name]
		if !reflect.DeepEqual(w.History, g.History) {
			return fmt.Sprintf("app %s history: got %+v, want %+v", name, g.History, w.History)
		}
		wv, gv := reflect.ValueOf(w.State), reflect.ValueOf(g.State)
		for i := 0; i < wv.NumField(); i++ {
			if !reflect.DeepEqual(wv.Field(i).Interface(), gv.Field(i).Interface()) {
				return fmt.Sprintf("app %s field %s: got %#v, want %#v", name, wv.Type().Field(i).Name, gv.Field(i).Interface(), wv.Field(i).Interface())
			}
		}
	}
	return fmt.Sprintf("apps: got %d, want %d", len(got), len(want))
}

// runRandom applies up to steps commands chosen by c and checks every one;
// it stops early when done reports true. It returns what was applied.
func runRandom(c chooser, steps int, done func() bool) (stats map[string]int, err error) {
	s := &sim{c: c, f: New(), now: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), term: 1,
		side: rngChooser{rand.New(rand.NewPCG(17, 20261125))}}
	tr := newTracker()
	stats = map[string]int{}
	prev := viewOf(s.f)
	for i := 0; i < steps && !done(); i++ {
		if i == steps/2 || s.c.Intn(400) == 0 {
			g, err := snapshotRoundTrip(s.f)
			if err != nil {
				return stats, fmt.Errorf("step %d: %w", i, err)
			}
			s.f = g
			stats["snapshot"]++
		}
		l := s.next()
		resp := s.f.Apply(l)
		cur := viewOf(s.f)
		if err := checkState(cur); err != nil {
			return stats, fmt.Errorf("step %d (command %d %s): %w", i, l.Data[0], l.Data[1:], err)
		}
		if err := tr.checkTransition(prev, cur, l.Data, resp); err != nil {
			return stats, fmt.Errorf("step %d (command %d %s, response %v): %w", i, l.Data[0], l.Data[1:], resp, err)
		}
		prev = cur
		switch r := resp.(type) {
		case Lock:
			stats["grant"]++
		case error:
			for code, sentinel := range sentinels {
				if errors.Is(r, sentinel) {
					stats[code]++
				}
			}
		default:
			stats[fmt.Sprintf("ok-%d", l.Data[0])]++
		}
	}
	return stats, nil
}

func TestRandomCommands(t *testing.T) {
	seed, steps := *randomSeed, *randomSteps
	if testing.Short() && steps > 5000 {
		steps = 5000
	}
	t.Logf("seed %d, %d commands (rerun with -fsm.seed=%d)", seed, steps, seed)
	stats, err := runRandom(rngChooser{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}, steps, func() bool { return false })
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	t.Logf("outcomes: %v", stats)
	// The run must have reached the interesting states, else it proves little.
	for _, code := range []string{"grant", "snapshot", "lock_held", "stale_epoch", "no_lock", "stale_verdict", "anti_flap",
		"paused", "retry_backoff", "auto_halted", "invalid", "unknown_app"} {
		if stats[code] == 0 {
			t.Errorf("seed %d: no %q outcome in %d commands: the generator does not reach it", seed, code, steps)
		}
	}
}

// FuzzFSM drives the same generator and checker with the fuzzer's bytes
// (go test -fuzz=FuzzFSM ./fsm/); as a plain test it runs the seeds below.
func FuzzFSM(f *testing.F) {
	f.Add([]byte{4, 4, 14, 3, 0, 9, 9, 14, 14})
	f.Add(bytes.Repeat([]byte{5, 1, 17, 3, 2, 200, 11}, 40))
	f.Add([]byte(strings.Repeat("acquire-journal-release-refuse", 20)))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &byteChooser{b: data}
		if _, err := runRandom(c, 1000, c.done); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCheckerCatches shows that the checker fails on broken states and
// transitions, so a green random run means something.
func TestCheckerCatches(t *testing.T) {
	base := func() view {
		return view{"a1": {State: AppState{Name: "a1", Master: "m", LastEpoch: 3,
			Journal: []JournalEntry{{Epoch: 2, Phase: "p", Status: PhaseDone}}},
			History: []HistoryEntry{{Epoch: 1, Result: ResultFailed, Attempts: 1}, {Epoch: 2, Result: ResultSuccess, Attempts: 1}}}}
	}
	if err := checkState(base()); err != nil {
		t.Fatalf("the good base state fails: %v", err)
	}
	held := func(v view, epoch uint64) view {
		a := v["a1"]
		a.State.Lock = &Lock{Epoch: epoch, Holder: "m1", Kind: KindAuto}
		a.State.LastEpoch = epoch
		v["a1"] = a
		return v
	}
	states := []struct {
		name    string
		breakIt func(v view)
		want    string
	}{
		{"history epochs out of order", func(v view) {
			a := v["a1"]
			a.History[0].Epoch, a.History[1].Epoch = 2, 1
		}, "history epochs must strictly increase"},
		{"two history entries of one epoch", func(v view) { v["a1"].History[1].Epoch = 1 }, "strictly increase"},
		{"lock epoch behind LastEpoch", func(v view) {
			a := held(v, 3)["a1"]
			a.State.LastEpoch = 4
			v["a1"] = a
		}, "LastEpoch 4"},
		{"journal from the future", func(v view) { v["a1"].State.Journal[0].Epoch = 9 }, "journal entry 0 at epoch 9"},
		{"merged history that is not a refusal", func(v view) { v["a1"].History[1].Attempts = 3 }, "3 attempts"},
		{"two plans of one epoch", func(v view) {
			a := v["a1"]
			a.State.Plans = []EpochPlan{{Epoch: 2, Plan: "{}"}, {Epoch: 2, Plan: "{}"}}
			v["a1"] = a
		}, "one plan per epoch"},
		{"a plan left in a journal entry", func(v view) {
			v["a1"].State.Journal[0].Detail = map[string]string{legacyPlanKey: "{}"}
		}, "holds a plan in its detail"},
	}
	for _, tc := range states {
		t.Run(tc.name, func(t *testing.T) {
			v := base()
			tc.breakIt(v)
			if err := checkState(v); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("checkState = %v, want an error saying %q", err, tc.want)
			}
		})
	}

	acquireCmd := func(c AcquireLockCmd) []byte { c.App = "a1"; return EncodeAcquireLock(c) }
	transitions := []struct {
		name      string
		prev, cur view
		data      []byte
		resp      any
		maxGrant  uint64
		want      string
	}{
		{"grant while another holder holds the lock", held(base(), 3), held(base(), 4),
			acquireCmd(AcquireLockCmd{Holder: "m2", Kind: KindAuto}), Lock{Epoch: 4, Holder: "m2"}, 3, "two holders"},
		{"LastEpoch goes back", base(), func() view { v := base(); a := v["a1"]; a.State.LastEpoch = 2; v["a1"] = a; return v }(),
			EncodeAck(AckCmd{App: "a1"}), nil, 3, "went back"},
		{"grant reuses an epoch granted before a restore", base(), held(base(), 4),
			acquireCmd(AcquireLockCmd{Holder: "m1", Kind: KindAuto}), Lock{Epoch: 4, Holder: "m1", Kind: KindAuto}, 7, "granted earlier"},
		{"journal entry of an old epoch", held(base(), 3), func() view {
			v := held(base(), 3)
			a := v["a1"]
			a.State.Journal = append(a.State.Journal, JournalEntry{Epoch: 2, Phase: "late"})
			v["a1"] = a
			return v
		}(), EncodeJournalPhase(JournalPhaseCmd{App: "a1", Entry: JournalEntry{Epoch: 2}}), nil, 3, "journal entry at epoch 2 accepted"},
		{"a journal entry whose plan was not stored", held(base(), 3), func() view {
			v := held(base(), 3)
			a := v["a1"]
			a.State.Journal = append(a.State.Journal, JournalEntry{Epoch: 3, Phase: "p"})
			v["a1"] = a
			return v
		}(), EncodeJournalPhase(JournalPhaseCmd{App: "a1", Entry: JournalEntry{Epoch: 3, Phase: "p"}, Plan: "{}"}), nil, 3, "want [{Epoch:3"},
		{"a refusal that changed the state", base(), held(base(), 4),
			acquireCmd(AcquireLockCmd{Holder: "m1", Kind: KindAuto}), fmt.Errorf("x: %w", ErrLockHeld), 3, "changed the state"},
		{"a grant on a stale verdict", base(), held(base(), 4),
			acquireCmd(AcquireLockCmd{Holder: "m1", Kind: KindAuto, Seen: &SeenState{Master: "other", Epoch: 3}}),
			Lock{Epoch: 4, Holder: "m1", Kind: KindAuto}, 3, "stale verdict"},
	}
	for _, tc := range transitions {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker()
			tr.maxGranted["a1"] = tc.maxGrant
			if err := tr.checkTransition(tc.prev, tc.cur, tc.data, tc.resp); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("checkTransition = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
