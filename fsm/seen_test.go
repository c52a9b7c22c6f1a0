package fsm

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func acquireSeen(kind, holder, master string, epoch uint64, at time.Time) []byte {
	return EncodeAcquireLock(AcquireLockCmd{App: "app1", Holder: holder, Kind: kind, OldMaster: "127.0.0.1:3306",
		Seen: &SeenState{Master: master, Epoch: epoch}, At: at})
}

// TestAcquireLockSeen: a lock carrying Seen is a compare-and-set on the
// master and last epoch its verdict read.
func TestAcquireLockSeen(t *testing.T) {
	const m1, m2 = "127.0.0.1:3306", "127.0.0.1:3307"
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name:  "matching master and epoch is granted",
			steps: []step{{cmd: register1()}, {cmd: acquireSeen(KindAuto, "m1", m1, 0, t0), epoch: 1}},
		},
		{
			name:  "no Seen keeps the old behaviour",
			steps: []step{{cmd: register1()}, {cmd: acquire(KindAuto, "m1", t0), epoch: 1}},
		},
		{
			name: "master changed since the verdict",
			steps: []step{
				{cmd: register1()},
				{cmd: EncodeSetMaster(SetMasterCmd{App: "app1", Master: m2, At: t0})},
				{cmd: acquireSeen(KindAuto, "m1", m1, 0, t0), wantErr: ErrStaleVerdict},
				{cmd: acquireSeen(KindAuto, "m1", m2, 0, t0), epoch: 1},
			},
		},
		{
			name: "epoch moved since the verdict (a switch ran and failed)",
			steps: []step{
				{cmd: register1()},
				{cmd: acquire(KindSwitch, "m2", t0), epoch: 1},
				{cmd: release(1, ResultFailed, "", t0)},
				{cmd: acquireSeen(KindAuto, "m1", m1, 0, t0), wantErr: ErrStaleVerdict},
				{cmd: acquireSeen(KindManual, "m1", m1, 0, t0), wantErr: ErrStaleVerdict},
				{cmd: acquireSeen(KindAuto, "m1", m1, 1, t0), epoch: 2},
			},
		},
		{
			name: "a verdict from the future epoch is stale too",
			steps: []step{
				{cmd: register1()},
				{cmd: acquireSeen(KindAuto, "m1", m1, 3, t0), wantErr: ErrStaleVerdict},
			},
		},
		{
			name: "a held lock is reported as held",
			steps: []step{
				{cmd: register1()},
				{cmd: acquire(KindAuto, "m1", t0), epoch: 1},
				{cmd: acquireSeen(KindAuto, "m2", m1, 0, t0), wantErr: ErrLockHeld},
			},
		},
		{
			name: "takeover keeps its own check and ignores Seen",
			steps: []step{
				{cmd: register1()},
				{cmd: acquire(KindAuto, "m1", t0), epoch: 1},
				{cmd: EncodeAcquireLock(AcquireLockCmd{App: "app1", Holder: "m2", Kind: KindAuto, TakeOver: 1,
					Seen: &SeenState{Master: "elsewhere", Epoch: 42}, At: t0}), epoch: 2},
				{cmd: EncodeAcquireLock(AcquireLockCmd{App: "app1", Holder: "m3", Kind: KindAuto, TakeOver: 1,
					Seen: &SeenState{Master: m1, Epoch: 2}, At: t0}), wantErr: ErrStaleEpoch},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run(t, New(), tc.steps)
		})
	}
}

func TestStaleVerdictMessage(t *testing.T) {
	f := New()
	run(t, f, []step{{cmd: register1()}, {cmd: EncodeSetMaster(SetMasterCmd{App: "app1", Master: "127.0.0.1:3307", At: t0})}})
	err, _ := f.ApplyBytes(acquireSeen(KindAuto, "m1", "127.0.0.1:3306", 0, t0)).(error)
	if !errors.Is(err, ErrStaleVerdict) {
		t.Fatalf("got %v, want ErrStaleVerdict", err)
	}
	for _, want := range []string{`"127.0.0.1:3306"`, `"127.0.0.1:3307"`, "epoch 0", "re-evaluated"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("message %q does not contain %q", err, want)
		}
	}
	// The sentinel survives the trip to a follower.
	b, _ := MarshalResponse(err)
	got, _ := UnmarshalResponse(b)
	if e, _ := got.(error); !errors.Is(e, ErrStaleVerdict) {
		t.Fatalf("wire round trip lost the sentinel: %v", got)
	}
}
