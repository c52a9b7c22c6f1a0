package fsm

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// batchLog is an ObserveBatch entry appended by a leader of term at appendedAt.
func batchLog(c ObserveBatchCmd, appendedAt time.Time, term uint64) *raft.Log {
	return &raft.Log{Type: raft.LogCommand, Term: term, AppendedAt: appendedAt, Data: EncodeObserveBatch(c)}
}

func observation(kind string, since time.Time) Observation {
	return Observation{Server: "server1", Kind: kind, Reachable: kind == "ok", Since: since, At: since}
}

// TestObserveBatch: a batch stores changed observations of several
// applications as Observe does, and a refresh re-stamps only the stored
// observation it names (same manager, server and Since), never an earlier
// or another manager's one.
func TestObserveBatch(t *testing.T) {
	f := New()
	f.ApplyBytes(register1())
	f.ApplyBytes(EncodeRegisterApp(RegisterAppCmd{App: "app2", Servers: servers(), Master: "127.0.0.1:3306", At: t0}))
	since1 := t0.Add(-time.Minute).Add(123 * time.Nanosecond) // the observer's clock, nanoseconds matter
	since2 := t0.Add(-30 * time.Second)

	// 1. Two applications' changes in one entry, term 3.
	r := f.Apply(batchLog(ObserveBatchCmd{Manager: "m1", At: t0, Observations: []ObserveCmd{
		{App: "app1", Observation: observation("refused", since1)},
		{App: "app2", Observation: observation("ok", since2)},
	}}, t0, 3))
	if r != nil {
		t.Fatalf("batch: %v", r)
	}
	stored := func(app, mgr string) Observation {
		a, _ := f.App(app)
		return a.Observations[mgr]["127.0.0.1:3306"]
	}
	if o := stored("app1", "m1"); o.Kind != "refused" || !o.LoggedAt.Equal(t0) || o.LoggedTerm != 3 || !o.SinceLogged.Equal(t0) || o.Manager != "m1" {
		t.Fatalf("app1 stored %+v", o)
	}
	if o := stored("app2", "m1"); o.Kind != "ok" || !o.LoggedAt.Equal(t0) {
		t.Fatalf("app2 stored %+v", o)
	}

	// 2. A refresh in a new term re-stamps both, keeps Kind, Since and SinceLogged.
	t1 := t0.Add(2 * time.Second)
	r = f.Apply(batchLog(ObserveBatchCmd{Manager: "m1", At: t1.Add(time.Hour), Refresh: []ObserveRefresh{
		{App: "app1", Server: "server1", Since: since1.UnixNano()},
		{App: "app2", Server: "127.0.0.1:3306", Since: since2.UnixNano()},
	}}, t1, 4))
	if r != nil {
		t.Fatalf("refresh: %v", r)
	}
	if o := stored("app1", "m1"); o.Kind != "refused" || !o.LoggedAt.Equal(t1) || o.LoggedTerm != 4 || !o.SinceLogged.Equal(t0) ||
		!o.Since.Equal(since1) || !o.At.Equal(t1.Add(time.Hour)) {
		t.Fatalf("app1 after refresh %+v", o)
	}

	// 3. A refresh naming an earlier observation (another Since), another
	// manager's, an unknown server or application: nothing changes, every
	// one comes back unmatched.
	t2 := t0.Add(4 * time.Second)
	bad := []ObserveRefresh{
		{App: "app1", Server: "server1", Since: since1.UnixNano() - 1},
		{App: "app1", Server: "server2", Since: since1.UnixNano()},
		{App: "app1", Server: "nosuch", Since: since1.UnixNano()},
		{App: "nosuch", Server: "server1", Since: since1.UnixNano()},
	}
	before := f.Apps()
	r = f.Apply(batchLog(ObserveBatchCmd{Manager: "m1", At: t2, Refresh: bad}, t2, 4))
	if res, ok := r.(ObserveBatchResult); !ok || !reflect.DeepEqual(res.Unmatched, bad) || res.Rejected != nil {
		t.Fatalf("unmatched refreshes: got %#v", r)
	}
	r = f.Apply(batchLog(ObserveBatchCmd{Manager: "m2", At: t2, Refresh: bad[:1]}, t2, 4))
	if res, ok := r.(ObserveBatchResult); !ok || len(res.Unmatched) != 1 {
		t.Fatalf("another manager's refresh: got %#v", r)
	}
	if after := f.Apps(); !reflect.DeepEqual(after, before) {
		t.Fatal("an unmatched refresh changed the state")
	}

	// 4. A new observation (new Since) replaces the old one; a refresh of
	// the old one then matches nothing: a stale "cannot reach" cannot be
	// revived by a heartbeat built before the change.
	since3 := t0.Add(3 * time.Second)
	f.Apply(batchLog(ObserveBatchCmd{Manager: "m1", At: t2, Observations: []ObserveCmd{{App: "app1", Observation: observation("ok", since3)}}}, t2, 4))
	t3 := t0.Add(5 * time.Second)
	r = f.Apply(batchLog(ObserveBatchCmd{Manager: "m1", At: t3, Refresh: []ObserveRefresh{{App: "app1", Server: "server1", Since: since1.UnixNano()}}}, t3, 4))
	if res, ok := r.(ObserveBatchResult); !ok || len(res.Unmatched) != 1 {
		t.Fatalf("refresh of a replaced observation: got %#v", r)
	}
	if o := stored("app1", "m1"); o.Kind != "ok" || !o.LoggedAt.Equal(t2) {
		t.Fatalf("app1 after the stale refresh %+v", o)
	}

	// 5. Rejected items do not stop the others.
	r = f.Apply(batchLog(ObserveBatchCmd{Manager: "m3", At: t3, Observations: []ObserveCmd{
		{App: "nosuch", Observation: observation("ok", t3)},
		{App: "app1", Observation: Observation{Server: "nosuch", Kind: "ok", Reachable: true, Since: t3, At: t3}},
		{App: "app1", Observation: observation("timeout", t3)},
	}}, t3, 4))
	res, ok := r.(ObserveBatchResult)
	if !ok || len(res.Rejected) != 2 || res.Rejected[0].App != "nosuch" || res.Rejected[1].Server != "nosuch" {
		t.Fatalf("rejected: got %#v", r)
	}
	if o := stored("app1", "m3"); o.Kind != "timeout" || o.Manager != "m3" {
		t.Fatalf("m3's valid item not stored: %+v", o)
	}
}

// TestObserveBatchRefused: a batch without a manager, or carrying an
// observation of another manager, is refused whole.
func TestObserveBatchRefused(t *testing.T) {
	for _, c := range []ObserveBatchCmd{
		{Observations: []ObserveCmd{{App: "app1", Observation: observation("ok", t0)}}},
		{Manager: "m1", Observations: []ObserveCmd{
			{App: "app1", Observation: observation("ok", t0)},
			{App: "app1", Observation: Observation{Manager: "m2", Server: "server2", Kind: "refused", Since: t0, At: t0}},
		}},
	} {
		f := New()
		f.ApplyBytes(register1())
		before := f.Apps()
		err, ok := f.Apply(batchLog(c, t0, 1)).(error)
		if !ok || !errors.Is(err, ErrInvalid) {
			t.Fatalf("%+v: got %v, want ErrInvalid", c, err)
		}
		if !reflect.DeepEqual(f.Apps(), before) {
			t.Fatalf("%+v: a refused batch changed the state", c)
		}
	}
}

// TestObserveBatchSnapshotAndOldLog: a state built from an old-format log
// (ObserveCmd entries) and batches survives a snapshot; after the restore a
// refresh still matches (Since keeps its nanoseconds through the
// snapshot's JSON) and the restored FSM answers like the original.
func TestObserveBatchSnapshotAndOldLog(t *testing.T) {
	since := time.Date(2026, 11, 25, 9, 59, 1, 987654321, time.FixedZone("observer", -5*3600))
	f := New()
	f.ApplyBytes(register1())
	// The old format, as logs and snapshots written before ObserveBatch hold it.
	f.Apply(&raft.Log{Type: raft.LogCommand, Term: 2, AppendedAt: t0, Data: EncodeObserve(ObserveCmd{App: "app1",
		Observation: Observation{Manager: "m1", Server: "server1", Kind: "refused", Since: since, At: since}})})
	f.Apply(batchLog(ObserveBatchCmd{Manager: "m2", At: t0, Observations: []ObserveCmd{{App: "app1", Observation: observation("ok", since)}}}, t0, 2))

	g := roundTrip(t, f)
	if !reflect.DeepEqual(g.Apps(), f.Apps()) {
		t.Fatalf("restored state differs:\n got %+v\nwant %+v", g.Apps(), f.Apps())
	}
	// The observation written by the old command is refreshed by the new one.
	t1 := t0.Add(time.Second)
	refresh := ObserveBatchCmd{Manager: "m1", At: t1, Refresh: []ObserveRefresh{{App: "app1", Server: "server1", Since: since.UnixNano()}}}
	for name, fs := range map[string]*FSM{"original": f, "restored": g} {
		if r := fs.Apply(batchLog(refresh, t1, 3)); r != nil {
			t.Fatalf("%s: refresh after restore: %#v", name, r)
		}
		a, _ := fs.App("app1")
		if o := a.Observations["m1"]["127.0.0.1:3306"]; !o.LoggedAt.Equal(t1) || o.LoggedTerm != 3 || o.Kind != "refused" || !o.SinceLogged.Equal(t0) {
			t.Fatalf("%s: refreshed %+v", name, o)
		}
	}
	if !reflect.DeepEqual(g.Apps(), f.Apps()) {
		t.Fatal("original and restored FSM diverged after the same entry")
	}
}

// TestObserveBatchResponseWire: the batch's result crosses the forwarding
// wire intact.
func TestObserveBatchResponseWire(t *testing.T) {
	in := ObserveBatchResult{Unmatched: []ObserveRefresh{{App: "a", Server: "s", Since: 42}},
		Rejected: []RejectedObservation{{App: "b", Server: "x", Error: "unknown server"}}}
	b, err := MarshalResponse(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := UnmarshalResponse(b)
	if err != nil || !reflect.DeepEqual(out, in) {
		t.Fatalf("round trip: %#v, %v", out, err)
	}
}

// TestCommandTypeNames: every command type has a stable metric name.
func TestCommandTypeNames(t *testing.T) {
	for typ := range handlers {
		if _, named := commandNames[typ]; !named {
			t.Errorf("type %d has no name", typ)
		}
	}
	if ObserveBatchType.String() != "observe_batch" || ObserveType.String() != "observe" || CommandType(99).String() != "type_99" {
		t.Fatalf("names: %s %s %s", ObserveBatchType, ObserveType, CommandType(99))
	}
}

// TestAppChanged: the number the leader's evaluator compares moves when an
// application's state may have changed, and only for that application: an
// observation stored, a refresh of a "cannot reach" or of an observation
// logged in an earlier term, a lock, a restore; not a refresh that only
// re-stamps a reachable observation of the current term, and not another
// application's entry.
func TestAppChanged(t *testing.T) {
	f := New()
	f.ApplyBytes(register1())
	f.ApplyBytes(EncodeRegisterApp(RegisterAppCmd{App: "app2", Servers: servers(), Master: "127.0.0.1:3306", At: t0}))
	since := t0.Add(-time.Minute)
	f.Apply(batchLog(ObserveBatchCmd{Manager: "m1", At: t0, Observations: []ObserveCmd{
		{App: "app1", Observation: observation("ok", since)},
		{App: "app2", Observation: observation("refused", since)},
	}}, t0, 3))
	refresh := func(app string, term uint64) {
		t.Helper()
		if r := f.Apply(batchLog(ObserveBatchCmd{Manager: "m1", At: t0, Refresh: []ObserveRefresh{
			{App: app, Server: "server1", Since: since.UnixNano()}}}, t0.Add(time.Second), term)); r != nil {
			t.Fatalf("refresh %s: %v", app, r)
		}
	}
	tests := []struct {
		name       string
		apply      func()
		app1, app2 bool // changed?
	}{
		{"a reachable observation re-stamped in its term", func() { refresh("app1", 3) }, false, false},
		{"a cannot-reach observation re-stamped", func() { refresh("app2", 3) }, false, true},
		{"a reachable observation turning fresh in a new term", func() { refresh("app1", 4) }, true, false},
		{"an observation stored", func() {
			f.Apply(batchLog(ObserveBatchCmd{Manager: "m2", At: t0, Observations: []ObserveCmd{
				{App: "app1", Observation: observation("timeout", since)}}}, t0, 4))
		}, true, false},
		{"a lock", func() {
			f.ApplyBytes(EncodeAcquireLock(AcquireLockCmd{App: "app2", Kind: KindManual, Holder: "m1", At: t0}))
		}, false, true},
		{"a restore", func() { restoreFrom(t, f, f) }, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b1, b2 := f.AppChanged("app1"), f.AppChanged("app2")
			tc.apply()
			if got := f.AppChanged("app1") != b1; got != tc.app1 {
				t.Errorf("app1 changed: %v, want %v", got, tc.app1)
			}
			if got := f.AppChanged("app2") != b2; got != tc.app2 {
				t.Errorf("app2 changed: %v, want %v", got, tc.app2)
			}
		})
	}
	if f.AppChanged("nosuch") != 0 {
		t.Error("an unknown application has a change number")
	}
}

// TestSetTopologyBatch: one entry stores the summaries of several
// applications; a summary observed before the stored one is skipped (a
// batch collected before a requested discovery stored a newer summary
// must not bring the older back); an unknown application is an error that
// does not stop the others.
func TestSetTopologyBatch(t *testing.T) {
	f := New()
	f.ApplyBytes(register1())
	f.ApplyBytes(EncodeRegisterApp(RegisterAppCmd{App: "app2", Servers: servers(), Master: "127.0.0.1:3306", At: t0}))
	topo := func(at time.Time, verdict string) Topology {
		return Topology{Master: "127.0.0.1:3306", ObservedAt: at, Verdict: verdict}
	}
	// app2 already holds a summary newer than the batch's.
	f.ApplyBytes(EncodeSetTopology(SetTopologyCmd{App: "app2", Topology: topo(t0.Add(time.Second), "requested")}))
	r := f.ApplyBytes(EncodeSetTopologyBatch(SetTopologyBatchCmd{Topologies: []SetTopologyCmd{
		{App: "app1", Topology: topo(t0, "periodic")},
		{App: "nosuch", Topology: topo(t0, "periodic")},
		{App: "app2", Topology: topo(t0, "periodic")},
	}}))
	err, _ := r.(error)
	if err == nil || !errors.Is(err, ErrUnknownApp) || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("batch with an unknown application: %v, want an ErrUnknownApp naming it", r)
	}
	for _, tc := range []struct{ app, want string }{{"app1", "periodic"}, {"app2", "requested"}} {
		a, _ := f.App(tc.app)
		if a.Topology == nil || a.Topology.Verdict != tc.want {
			t.Errorf("%s's summary: %+v, want the %s one", tc.app, a.Topology, tc.want)
		}
	}
	if typ, _ := TypeOf(EncodeSetTopologyBatch(SetTopologyBatchCmd{})); typ&IgnoreUnknown == 0 || typ.String() != "set_topology_batch" {
		t.Errorf("type %v: want the IgnoreUnknown bit (rolling upgrades) and the name set_topology_batch", typ)
	}
}
