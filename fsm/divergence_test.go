package fsm

import (
	"errors"
	"testing"
)

// TestRecordDivergence: a divergence is recorded only under the held lock
// of a kind that keeps the master (with its epoch), for a registered
// server and a known state; it replaces the server's earlier record,
// survives a snapshot, and an active one marks the server diverged. Locks
// of kinds divergence and reconcile keep the journal and plans and arm no
// anti-flapping, as rejoin does.
func TestRecordDivergence(t *testing.T) {
	f := New()
	f.ApplyBytes(EncodeRegisterApp(RegisterAppCmd{App: "app1", Servers: servers(), Master: "127.0.0.1:3307", At: t0}))
	lock := func(kind string) Lock {
		t.Helper()
		resp := f.ApplyBytes(EncodeAcquireLock(AcquireLockCmd{App: "app1", Holder: "m1", Kind: kind, OldMaster: "127.0.0.1:3306", At: t0}))
		l, ok := resp.(Lock)
		if !ok {
			t.Fatalf("acquire %s lock: %v", kind, resp)
		}
		return l
	}
	release := func(l Lock) {
		t.Helper()
		if err, _ := f.ApplyBytes(EncodeReleaseLock(ReleaseLockCmd{App: "app1", Epoch: l.Epoch, Result: ResultSuccess, At: t0})).(error); err != nil {
			t.Fatal(err)
		}
	}
	record := func(epoch uint64, d Divergence) error {
		err, _ := f.ApplyBytes(EncodeRecordDivergence(RecordDivergenceCmd{App: "app1", LockEpoch: epoch, Divergence: d})).(error)
		return err
	}
	d := Divergence{Server: "server1", Epoch: 1, Transactions: 3, State: DivergenceDetected}
	if err := record(1, d); !errors.Is(err, ErrNoLock) {
		t.Fatalf("record without a lock: %v", err)
	}
	l := lock(KindDivergence)
	cases := []struct {
		name  string
		epoch uint64
		d     Divergence
		want  error
	}{
		{"stale epoch", l.Epoch + 1, d, ErrStaleEpoch},
		{"unknown server", l.Epoch, Divergence{Server: "server9", State: DivergenceDetected}, ErrUnknownServer},
		{"unknown state", l.Epoch, Divergence{Server: "server1", State: "gone"}, ErrInvalid},
		{"recorded", l.Epoch, d, nil},
	}
	for _, tc := range cases {
		if err := record(tc.epoch, tc.d); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	release(l)
	st, _ := f.App("app1")
	if !st.Diverged("server1") || !st.Diverged("127.0.0.1:3306") || st.Diverged("server2") || st.LastFailover != nil {
		t.Fatalf("after detection: %+v", st)
	}
	l = lock(KindReconcile)
	d.State, d.Applied = DivergenceReconciled, 3
	if err := record(l.Epoch, d); err != nil {
		t.Fatal(err)
	}
	release(l)
	g := roundTrip(t, f)
	st, _ = g.App("app1")
	if got, ok := st.DivergenceOf("server1"); !ok || got.State != DivergenceReconciled || got.Applied != 3 || len(st.Divergences) != 1 || !st.Diverged("server1") {
		t.Fatalf("after reconcile and a snapshot: %+v", st.Divergences)
	}
	l = lock(KindRejoin)
	d.State = DivergenceRejoined
	if err := record(l.Epoch, d); err != nil {
		t.Fatal(err)
	}
	st, _ = f.App("app1")
	if st.Diverged("server1") {
		t.Fatal("a rejoined server is still diverged")
	}
	if !KeepsMaster(KindDivergence) || !KeepsMaster(KindReconcile) || KeepsMaster(KindSwitch) || KeepsMaster(KindAuto) {
		t.Fatal("KeepsMaster")
	}
	if RecordDivergenceType.String() != "record_divergence" || RecordDivergenceType&IgnoreUnknown == 0 {
		t.Fatal("command type")
	}
}
