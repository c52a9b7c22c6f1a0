package fsm

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func servers() []Server {
	return []Server{
		{Name: "server1", Hostname: "127.0.0.1", Port: 3306, CandidateMaster: true},
		{Name: "server2", Hostname: "127.0.0.1", Port: 3307, CandidateMaster: true},
		{Name: "server3", Hostname: "127.0.0.1", Port: 3308, NoMaster: true},
	}
}

func register1() []byte {
	return EncodeRegisterApp(RegisterAppCmd{App: "app1", Servers: servers(), LastFailoverMinute: 480, Master: "127.0.0.1:3306", At: t0})
}

func acquire(kind, holder string, at time.Time) []byte {
	return EncodeAcquireLock(AcquireLockCmd{App: "app1", Holder: holder, Kind: kind, OldMaster: "127.0.0.1:3306", At: at})
}

func release(epoch uint64, result, newMaster string, at time.Time) []byte {
	return EncodeReleaseLock(ReleaseLockCmd{App: "app1", Epoch: epoch, Result: result, NewMaster: newMaster, At: at})
}

func phase(epoch uint64, name, status string) []byte {
	return EncodeJournalPhase(JournalPhaseCmd{App: "app1", Entry: JournalEntry{Epoch: epoch, Phase: name, Status: status, At: t0}})
}

// step is one command and what Apply must answer.
type step struct {
	cmd     []byte
	wantErr error  // sentinel the response must wrap; nil = success
	epoch   uint64 // when non-zero, the response must be a Lock with this epoch
}

func run(t *testing.T, f *FSM, steps []step) {
	t.Helper()
	for i, s := range steps {
		resp := f.Apply(&raft.Log{Type: raft.LogCommand, Data: s.cmd})
		err, _ := resp.(error)
		switch {
		case s.wantErr == nil && err != nil:
			t.Fatalf("step %d (type %d): unexpected refusal: %v", i, s.cmd[0], err)
		case s.wantErr != nil && !errors.Is(err, s.wantErr):
			t.Fatalf("step %d (type %d): got response %v, want error wrapping %v", i, s.cmd[0], resp, s.wantErr)
		}
		if s.epoch != 0 {
			l, ok := resp.(Lock)
			if !ok || l.Epoch != s.epoch {
				t.Fatalf("step %d: got response %#v, want Lock with epoch %d", i, resp, s.epoch)
			}
		}
	}
}

func TestHandlers(t *testing.T) {
	min := time.Minute
	tests := []struct {
		name  string
		steps []step
		check func(t *testing.T, a AppState, h []HistoryEntry)
	}{
		{
			name:  "register is idempotent and keeps the master",
			steps: []step{{cmd: register1()}, {cmd: register1()}},
			check: func(t *testing.T, a AppState, _ []HistoryEntry) {
				if len(a.Servers) != 3 || a.Master != "127.0.0.1:3306" || a.LastFailoverMinute != 480 {
					t.Fatalf("state %+v", a)
				}
			},
		},
		{
			name:  "unknown app is refused",
			steps: []step{{cmd: acquire(KindAuto, "m1", t0), wantErr: ErrUnknownApp}},
		},
		{
			name: "lock grants epoch 1 then refuses a second holder",
			steps: []step{
				{cmd: register1()},
				{cmd: acquire(KindAuto, "m1", t0), epoch: 1},
				{cmd: acquire(KindManual, "m2", t0), wantErr: ErrLockHeld},
			},
			check: func(t *testing.T, a AppState, _ []HistoryEntry) {
				if a.Lock == nil || a.Lock.Holder != "m1" || a.LastEpoch != 1 {
					t.Fatalf("lock %+v last epoch %d", a.Lock, a.LastEpoch)
				}
			},
		},
		{
			name: "epochs are not reused across releases",
			steps: []step{
				{cmd: register1()},
				{cmd: acquire(KindSwitch, "m1", t0), epoch: 1},
				{cmd: release(1, ResultFailed, "", t0)},
				{cmd: acquire(KindSwitch, "m2", t0), epoch: 2},
				{cmd: EncodeForceUnlock(ForceUnlockCmd{App: "app1", By: "op", At: t0})},
				{cmd: acquire(KindSwitch, "m1", t0), epoch: 3},
			},
			check: func(t *testing.T, a AppState, h []HistoryEntry) {
				if len(h) != 2 || h[0].Result != ResultFailed || h[1].Result != ResultHalted || h[1].Epoch != 2 {
					t.Fatalf("history %+v", h)
				}
			},
		},
		{
			name: "journal needs the current epoch",
			steps: []step{
				{cmd: register1()},
				{cmd: phase(1, "check", PhaseStarted), wantErr: ErrNoLock},
				{cmd: acquire(KindAuto, "m1", t0), epoch: 1},
				{cmd: phase(1, "check", PhaseStarted)},
				{cmd: phase(1, "check", PhaseDone)},
				{cmd: EncodeAcquireLock(AcquireLockCmd{App: "app1", Holder: "m2", Kind: KindAuto, TakeOver: 1, At: t0}), epoch: 2},
				{cmd: phase(1, "save-binlog", PhaseStarted), wantErr: ErrStaleEpoch},
				{cmd: release(1, ResultSuccess, "127.0.0.1:3307", t0), wantErr: ErrStaleEpoch},
				{cmd: phase(2, "save-binlog", PhaseStarted)},
				{cmd: phase(2, "save-binlog", "bogus"), wantErr: ErrInvalid},
			},
			check: func(t *testing.T, a AppState, _ []HistoryEntry) {
				if len(a.Journal) != 3 || a.Journal[2].Epoch != 2 || a.Lock.Holder != "m2" {
					t.Fatalf("journal %+v lock %+v", a.Journal, a.Lock)
				}
			},
		},
		{
			name: "successful failover sets master, history and anti-flap",
			steps: []step{
				{cmd: register1()},
				{cmd: acquire(KindAuto, "m1", t0), epoch: 1},
				{cmd: EncodeSetMaster(SetMasterCmd{App: "app1", Master: "127.0.0.1:3308", At: t0}), wantErr: ErrStaleEpoch},
				{cmd: release(1, ResultSuccess, "127.0.0.1:3307", t0.Add(10*time.Second))},
				{cmd: acquire(KindAuto, "m1", t0.Add(479*min)), wantErr: ErrAntiFlap},
				{cmd: acquire(KindManual, "m1", t0.Add(479*min)), wantErr: ErrAntiFlap},
				{cmd: EncodeAcquireLock(AcquireLockCmd{App: "app1", Holder: "m1", Kind: KindManual, IgnoreLastFailover: true, At: t0.Add(time.Hour)}), epoch: 2},
				{cmd: release(2, ResultFailed, "", t0.Add(time.Hour))},
				{cmd: acquire(KindSwitch, "m1", t0.Add(time.Hour)), epoch: 3}, // switches are not anti-flapped
				{cmd: release(3, ResultFailed, "", t0.Add(time.Hour))},
				{cmd: acquire(KindAuto, "m1", t0.Add(481*min)), epoch: 4}, // window passed
			},
			check: func(t *testing.T, a AppState, h []HistoryEntry) {
				if a.Master != "127.0.0.1:3307" || a.LastFailover == nil || a.LastFailover.Epoch != 1 || len(h) != 3 {
					t.Fatalf("master %s last failover %+v history %d", a.Master, a.LastFailover, len(h))
				}
			},
		},
		{
			name: "ack lifts anti-flap",
			steps: []step{
				{cmd: register1()},
				{cmd: acquire(KindAuto, "m1", t0), epoch: 1},
				{cmd: release(1, ResultSuccess, "127.0.0.1:3307", t0)},
				{cmd: acquire(KindAuto, "m1", t0.Add(time.Minute)), wantErr: ErrAntiFlap},
				{cmd: EncodeAck(AckCmd{App: "app1", By: "op", At: t0.Add(time.Minute)})},
				{cmd: acquire(KindAuto, "m1", t0.Add(2*time.Minute)), epoch: 2},
				{cmd: release(2, ResultSuccess, "127.0.0.1:3306", t0.Add(3*time.Minute))},
				// a new failover needs a new ack
				{cmd: acquire(KindAuto, "m1", t0.Add(4*time.Minute)), wantErr: ErrAntiFlap},
			},
		},
		{
			name: "pause refuses auto, not manual",
			steps: []step{
				{cmd: register1()},
				{cmd: EncodePause(PauseCmd{App: "app1", By: "op", Reason: "upgrade", At: t0})},
				{cmd: acquire(KindAuto, "m1", t0), wantErr: ErrPaused},
				{cmd: acquire(KindManual, "m1", t0), epoch: 1},
				{cmd: release(1, ResultFailed, "", t0)},
				{cmd: EncodeResume(ResumeCmd{App: "app1", By: "op", At: t0})},
				{cmd: acquire(KindAuto, "m1", t0), epoch: 2},
			},
		},
		{
			name: "halted failover keeps the lock until force unlock",
			steps: []step{
				{cmd: register1()},
				{cmd: acquire(KindAuto, "m1", t0), epoch: 1},
				{cmd: release(1, ResultHalted, "", t0)},
				{cmd: phase(1, "x", PhaseStarted), wantErr: ErrLockHeld},
				{cmd: EncodeAcquireLock(AcquireLockCmd{App: "app1", Holder: "m2", Kind: KindAuto, TakeOver: 1, At: t0}), wantErr: ErrLockHeld},
				{cmd: acquire(KindAuto, "m2", t0), wantErr: ErrLockHeld},
				{cmd: EncodeForceUnlock(ForceUnlockCmd{App: "app1", Epoch: 7, By: "op", At: t0}), wantErr: ErrStaleEpoch},
				{cmd: EncodeForceUnlock(ForceUnlockCmd{App: "app1", Epoch: 1, By: "op", At: t0})},
				{cmd: EncodeForceUnlock(ForceUnlockCmd{App: "app1", By: "op", At: t0}), wantErr: ErrNoLock},
				{cmd: acquire(KindAuto, "m2", t0), epoch: 2},
			},
			check: func(t *testing.T, a AppState, h []HistoryEntry) {
				if len(h) != 1 || h[0].Result != ResultHalted { // halted release wrote it; force unlock did not repeat it
					t.Fatalf("history %+v", h)
				}
			},
		},
		{
			name: "observations keyed by manager and server",
			steps: []step{
				{cmd: register1()},
				{cmd: EncodeObserve(ObserveCmd{App: "app1", Observation: Observation{Manager: "m1", Server: "server1", Reachable: false, Kind: "refused", Since: t0, At: t0}})},
				{cmd: EncodeObserve(ObserveCmd{App: "app1", Observation: Observation{Manager: "m2", Server: "127.0.0.1:3306", Reachable: true, Kind: "ok", Since: t0, At: t0}})},
				{cmd: EncodeObserve(ObserveCmd{App: "app1", Observation: Observation{Manager: "m2", Server: "127.0.0.1:9999", Kind: "ok"}}), wantErr: ErrUnknownServer},
				{cmd: EncodeObserve(ObserveCmd{App: "app1", Observation: Observation{Server: "server1"}}), wantErr: ErrInvalid},
				{cmd: EncodeRemoveServer(RemoveServerCmd{App: "app1", Server: "server1"}), wantErr: ErrServerIsMaster},
				{cmd: EncodeSetMaster(SetMasterCmd{App: "app1", Master: "127.0.0.1:3307", At: t0})},
				{cmd: EncodeRemoveServer(RemoveServerCmd{App: "app1", Server: "server1"})},
			},
			check: func(t *testing.T, a AppState, _ []HistoryEntry) {
				if len(a.Observations) != 0 || len(a.Servers) != 2 {
					t.Fatalf("observations of a removed server kept: %+v servers %d", a.Observations, len(a.Servers))
				}
			},
		},
		{
			name: "add server",
			steps: []step{
				{cmd: register1()},
				{cmd: EncodeAddServer(AddServerCmd{App: "app1", Server: Server{Name: "server4", Hostname: "127.0.0.1", Port: 3309}})},
				{cmd: EncodeAddServer(AddServerCmd{App: "app1", Server: Server{Name: "server5", Hostname: "127.0.0.1", Port: 3309}}), wantErr: ErrServerExists},
				{cmd: EncodeAddServer(AddServerCmd{App: "app1", Server: Server{Name: "server6"}}), wantErr: ErrInvalid},
				{cmd: EncodeRemoveServer(RemoveServerCmd{App: "app1", Server: "nope"}), wantErr: ErrUnknownServer},
			},
			check: func(t *testing.T, a AppState, _ []HistoryEntry) {
				if s, ok := a.Server("server4"); !ok || s.Addr() != "127.0.0.1:3309" {
					t.Fatalf("server4 missing: %+v", a.Servers)
				}
			},
		},
		{
			name: "topology is stored",
			steps: []step{
				{cmd: register1()},
				{cmd: EncodeSetTopology(SetTopologyCmd{App: "app1", Topology: Topology{Master: "127.0.0.1:3306", ObservedAt: t0,
					Servers: []ServerStatus{{Addr: "127.0.0.1:3307", Role: "replica", ReadFile: "mysql-bin.000001", ReadPos: 1234, Reachable: true}}}})},
			},
			check: func(t *testing.T, a AppState, _ []HistoryEntry) {
				if a.Topology == nil || a.Topology.Servers[0].ReadPos != 1234 {
					t.Fatalf("topology %+v", a.Topology)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			run(t, f, tc.steps)
			if tc.check != nil {
				a, ok := f.App("app1")
				if !ok {
					t.Fatal("app1 not registered")
				}
				tc.check(t, a, f.History("app1"))
			}
		})
	}
}

func TestRefusalNamesAppAndEpoch(t *testing.T) {
	f := New()
	run(t, f, []step{{cmd: register1()}, {cmd: acquire(KindAuto, "m1", t0), epoch: 1}})
	err, _ := f.ApplyBytes(phase(5, "check", PhaseStarted)).(error)
	if err == nil || !strings.Contains(err.Error(), `"app1"`) || !strings.Contains(err.Error(), "epoch 5") || !strings.Contains(err.Error(), "epoch 1") {
		t.Fatalf("refusal does not name app and epochs: %v", err)
	}
}

func TestUnknownCommandType(t *testing.T) {
	f := New()
	if resp := f.ApplyBytes([]byte{0x80 | 0x33, '{', '}'}); resp != nil {
		t.Fatalf("ignorable unknown command answered %v", resp)
	}
	mustPanic(t, "unknown type without ignore bit", func() { f.ApplyBytes([]byte{0x33, '{', '}'}) })
	mustPanic(t, "undecodable payload", func() { f.ApplyBytes([]byte{byte(AcquireLockType), '{', 'x'}) })
	mustPanic(t, "empty entry", func() { f.ApplyBytes(nil) })
	if resp := f.Apply(&raft.Log{Type: raft.LogNoop}); resp != nil {
		t.Fatalf("non-command log answered %v", resp)
	}
}

func mustPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("%s: no panic", what)
		}
	}()
	fn()
}

// fakeSink is an in-memory raft.SnapshotSink.
type fakeSink struct {
	bytes.Buffer
	cancelled, closed bool
	failWrites        bool
}

func (s *fakeSink) Write(p []byte) (int, error) {
	if s.failWrites {
		return 0, errors.New("disk full")
	}
	return s.Buffer.Write(p)
}
func (s *fakeSink) Close() error  { s.closed = true; return nil }
func (s *fakeSink) ID() string    { return "test" }
func (s *fakeSink) Cancel() error { s.cancelled = true; return nil }

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	f := New()
	run(t, f, []step{
		{cmd: register1()},
		{cmd: EncodeRegisterApp(RegisterAppCmd{App: "app2", Servers: servers()[:2], LastFailoverMinute: 5, At: t0})},
		{cmd: EncodeObserve(ObserveCmd{App: "app1", Observation: Observation{Manager: "m1", Server: "server1", Kind: "timeout", Since: t0, At: t0, Detail: "i/o timeout"}})},
		{cmd: acquire(KindAuto, "m1", t0), epoch: 1},
		{cmd: release(1, ResultSuccess, "127.0.0.1:3307", t0)},
		{cmd: acquire(KindManual, "m1", t0.Add(time.Hour)), wantErr: ErrAntiFlap},
		{cmd: EncodeAck(AckCmd{App: "app1", By: "op", At: t0})},
		{cmd: acquire(KindManual, "m2", t0.Add(time.Hour)), epoch: 2},
		{cmd: phase(2, "check", PhaseDone)},
		{cmd: EncodePause(PauseCmd{App: "app2", By: "op", At: t0})},
	})
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Changes after Snapshot must not leak into it.
	before := f.Apps()
	f.ApplyBytes(phase(2, "after-snapshot", PhaseStarted))

	sink := &fakeSink{}
	if err := snap.Persist(sink); err != nil || !sink.closed {
		t.Fatalf("persist: %v closed=%v", err, sink.closed)
	}
	g := New()
	g.ApplyBytes(EncodeRegisterApp(RegisterAppCmd{App: "stale", At: t0})) // replaced by Restore
	if err := g.Restore(nopCloser{bytes.NewReader(sink.Bytes())}); err != nil {
		t.Fatal(err)
	}
	if got := g.Apps(); !reflect.DeepEqual(got, before) {
		t.Fatalf("restored state differs:\n got %+v\nwant %+v", got, before)
	}
	if !reflect.DeepEqual(g.History("app1"), f.History("app1")) {
		t.Fatal("history differs after restore")
	}
	// Epochs go on from the restored state.
	if l, ok := g.ApplyBytes(EncodeForceUnlock(ForceUnlockCmd{App: "app1", By: "op", At: t0})).(error); ok {
		t.Fatal(l)
	}
	if l, ok := g.ApplyBytes(acquire(KindSwitch, "m3", t0)).(Lock); !ok || l.Epoch != 3 {
		t.Fatalf("after restore got %+v, want epoch 3", l)
	}

	failing := &fakeSink{failWrites: true}
	if err := snap.Persist(failing); err == nil || !failing.cancelled {
		t.Fatalf("persist to a failing sink: err=%v cancelled=%v", err, failing.cancelled)
	}
	if err := New().Restore(nopCloser{bytes.NewReader([]byte(`{"type":"header","version":99}`))}); err == nil {
		t.Fatal("restore of an unknown snapshot version succeeded")
	}
}

// TestPlanOncePerEpoch: the plan is stored once per epoch, outside the
// journal entries, and entries of an older writer (the plan in
// Detail["plan"] of every entry), replayed from the log or restored from a
// snapshot, have it moved there (invariant 11).
func TestPlanOncePerEpoch(t *testing.T) {
	withPlan := func(epoch uint64, name, status, plan string) []byte {
		return EncodeJournalPhase(JournalPhaseCmd{App: "app1", Plan: plan,
			Entry: JournalEntry{Epoch: epoch, Phase: name, Status: status, At: t0}})
	}
	legacy := func(epoch uint64, name, status string, detail map[string]string) []byte {
		return EncodeJournalPhase(JournalPhaseCmd{App: "app1", Entry: JournalEntry{Epoch: epoch, Phase: name, Status: status, Detail: detail, At: t0}})
	}
	f := New()
	run(t, f, []step{
		{cmd: register1()},
		{cmd: acquire(KindAuto, "m1", t0), epoch: 1},
		{cmd: withPlan(1, "check", PhaseStarted, `{"v":1}`)},
		{cmd: phase(1, "check", PhaseDone)}, // unchanged plan: not sent
		{cmd: withPlan(1, "shutdown", PhaseStarted, `{"v":2}`)},
		{cmd: EncodeAcquireLock(AcquireLockCmd{App: "app1", Holder: "m2", Kind: KindAuto, TakeOver: 1, At: t0}), epoch: 2},
		{cmd: legacy(2, "shutdown", PhaseStarted, map[string]string{"plan": `{"v":3}`, "k": "v"})},
		{cmd: legacy(2, "shutdown", PhaseDone, map[string]string{"plan": `{"v":4}`})},
		{cmd: withPlan(1, "late", PhaseDone, `{"v":9}`), wantErr: ErrStaleEpoch},
	})
	a, _ := f.App("app1")
	want := []EpochPlan{{Epoch: 1, Plan: `{"v":2}`}, {Epoch: 2, Plan: `{"v":4}`}}
	if !reflect.DeepEqual(a.Plans, want) || a.LastPlan() != `{"v":4}` {
		t.Fatalf("plans %+v (last %q), want %+v", a.Plans, a.LastPlan(), want)
	}
	if a.PlanAt(0) != "" || a.PlanAt(1) != `{"v":2}` || a.PlanAt(2) != `{"v":4}` || a.PlanAt(7) != `{"v":4}` {
		t.Fatalf("PlanAt 0, 1, 2, 7: %q %q %q %q", a.PlanAt(0), a.PlanAt(1), a.PlanAt(2), a.PlanAt(7))
	}
	if len(a.Journal) != 5 || a.Journal[3].Detail["k"] != "v" || len(a.Journal[3].Detail) != 1 || a.Journal[4].Detail != nil {
		t.Fatalf("journal %+v: the entries must keep their detail without the plan", a.Journal)
	}

	// A snapshot of a state written before Plans existed.
	old := `{"type":"header","version":1}
{"type":"app","app":{"name":"app1","servers":[],"last_failover_minute":0,"last_epoch":2,
 "lock":{"epoch":2,"holder":"m2","kind":"auto","old_master":"a","started":"2026-11-25T10:00:00Z","granted":"2026-11-25T10:00:00Z"},
 "journal":[
  {"epoch":1,"phase":"lock","status":"done","at":"2026-11-25T10:00:00Z"},
  {"epoch":1,"phase":"check","status":"started","detail":{"plan":"{\"v\":1}"},"at":"2026-11-25T10:00:00Z"},
  {"epoch":1,"phase":"check","status":"done","detail":{"plan":"{\"v\":2}"},"at":"2026-11-25T10:00:00Z"},
  {"epoch":2,"phase":"check","status":"started","detail":{"plan":"{\"v\":3}","k":"v"},"at":"2026-11-25T10:00:00Z"}]}}
`
	g := New()
	if err := g.Restore(nopCloser{bytes.NewReader([]byte(old))}); err != nil {
		t.Fatal(err)
	}
	b, _ := g.App("app1")
	want = []EpochPlan{{Epoch: 1, Plan: `{"v":2}`}, {Epoch: 2, Plan: `{"v":3}`}}
	if !reflect.DeepEqual(b.Plans, want) {
		t.Fatalf("restored plans %+v, want %+v", b.Plans, want)
	}
	for i, e := range b.Journal {
		if _, ok := e.Detail["plan"]; ok || (i == 3) != (e.Detail["k"] == "v") {
			t.Fatalf("restored journal entry %d: %+v", i, e)
		}
	}

	// A new failover starts without plans; a rejoin keeps the last one's.
	run(t, g, []step{
		{cmd: release(2, ResultSuccess, "", t0)},
		{cmd: EncodeAcquireLock(AcquireLockCmd{App: "app1", Holder: "m1", Kind: KindRejoin, IgnoreLastFailover: true, At: t0}), epoch: 3},
	})
	if c, _ := g.App("app1"); !reflect.DeepEqual(c.Plans, want) {
		t.Fatalf("a rejoin lock changed the plans: %+v", c.Plans)
	}
	run(t, g, []step{
		{cmd: release(3, ResultSuccess, "", t0)},
		{cmd: EncodeAcquireLock(AcquireLockCmd{App: "app1", Holder: "m1", Kind: KindManual, IgnoreLastFailover: true, At: t0}), epoch: 4},
	})
	if c, _ := g.App("app1"); c.Plans != nil || c.Journal != nil {
		t.Fatalf("a new failover kept plans %+v, journal %+v", c.Plans, c.Journal)
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func TestReadersGetCopies(t *testing.T) {
	f := New()
	run(t, f, []step{
		{cmd: register1()},
		{cmd: acquire(KindAuto, "m1", t0), epoch: 1},
		{cmd: EncodeJournalPhase(JournalPhaseCmd{App: "app1", Entry: JournalEntry{Epoch: 1, Phase: "p", Status: PhaseDone, Detail: map[string]string{"k": "v"}}})},
		{cmd: EncodeObserve(ObserveCmd{App: "app1", Observation: Observation{Manager: "m1", Server: "server2", Kind: "ok"}})},
	})
	a, _ := f.App("app1")
	a.Lock.Epoch = 99
	a.Servers[0].Port = 1
	a.Journal[0].Detail["k"] = "changed"
	a.Observations["m1"]["127.0.0.1:3307"] = Observation{Kind: "changed"}
	b, _ := f.App("app1")
	if b.Lock.Epoch != 1 || b.Servers[0].Port != 3306 || b.Journal[0].Detail["k"] != "v" || b.Observations["m1"]["127.0.0.1:3307"].Kind != "ok" {
		t.Fatalf("reader changed the state: %+v", b)
	}
}

func TestResponseWireRoundTrip(t *testing.T) {
	f := New()
	f.ApplyBytes(register1())
	cases := []any{
		nil,
		f.ApplyBytes(acquire(KindAuto, "m1", t0)),
		f.ApplyBytes(acquire(KindAuto, "m2", t0)), // ErrLockHeld
	}
	for i, resp := range cases {
		b, err := MarshalResponse(resp)
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnmarshalResponse(b)
		if err != nil {
			t.Fatal(err)
		}
		if orig, ok := resp.(error); ok {
			gotErr, _ := got.(error)
			if !errors.Is(gotErr, ErrLockHeld) || gotErr.Error() != orig.Error() {
				t.Fatalf("case %d: error %v came back as %v", i, orig, got)
			}
			continue
		}
		if !reflect.DeepEqual(got, resp) {
			t.Fatalf("case %d: %#v came back as %#v", i, resp, got)
		}
	}
}
