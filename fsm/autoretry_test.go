package fsm

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func refuse(epoch uint64, summary string, at time.Time) []byte {
	return EncodeReleaseLock(ReleaseLockCmd{App: "app1", Epoch: epoch, Result: ResultRefused, NewMaster: "127.0.0.1:3307", Summary: summary, At: at})
}

const why = "phase 1: replica server3 is down and has no ignore_fail"

func TestAutoRetryPolicy(t *testing.T) {
	s := time.Second
	tests := []struct {
		name  string
		steps []step
		check func(t *testing.T, a AppState, h []HistoryEntry)
	}{
		{
			name: "a refusal releases without anti-flapping and backs off",
			steps: []step{
				{cmd: register1()},
				{cmd: acquire(KindAuto, "m1", t0), epoch: 1},
				{cmd: refuse(1, why, t0)},
				{cmd: acquire(KindAuto, "m1", t0.Add(999*time.Millisecond)), wantErr: ErrRetryBackoff},
				{cmd: acquire(KindAuto, "m1", t0.Add(s)), epoch: 2},
			},
			check: func(t *testing.T, a AppState, h []HistoryEntry) {
				if a.LastFailover != nil || a.Master != "127.0.0.1:3306" {
					t.Fatalf("a refusal changed the master or armed anti-flapping: master %s last failover %+v", a.Master, a.LastFailover)
				}
				if r := a.AutoRetry; r == nil || r.Refusals != 1 || !r.NextAttempt.Equal(t0.Add(s)) || r.LastReason != why {
					t.Fatalf("auto retry %+v", a.AutoRetry)
				}
				if len(h) != 1 || h[0].Result != ResultRefused || h[0].NewMaster != "" || h[0].Attempts != 1 {
					t.Fatalf("history %+v", h)
				}
			},
		},
		{
			name: "backoff doubles, five refusals within ten minutes halt until ack",
			steps: []step{
				{cmd: register1()},
				{cmd: acquire(KindAuto, "m1", t0), epoch: 1},
				{cmd: refuse(1, why, t0)}, // next at +1s
				{cmd: acquire(KindAuto, "m1", t0.Add(s)), epoch: 2},
				{cmd: refuse(2, why, t0.Add(s))}, // next at +3s
				{cmd: acquire(KindAuto, "m1", t0.Add(2*s)), wantErr: ErrRetryBackoff},
				{cmd: acquire(KindAuto, "m1", t0.Add(3*s)), epoch: 3},
				{cmd: refuse(3, why, t0.Add(3*s))}, // next at +7s
				{cmd: acquire(KindAuto, "m1", t0.Add(6*s)), wantErr: ErrRetryBackoff},
				{cmd: acquire(KindAuto, "m1", t0.Add(7*s)), epoch: 4},
				{cmd: refuse(4, why, t0.Add(7*s))}, // next at +15s
				{cmd: acquire(KindAuto, "m1", t0.Add(15*s)), epoch: 5},
				{cmd: refuse(5, why, t0.Add(15*s))}, // the fifth: halted
				{cmd: acquire(KindAuto, "m1", t0.Add(time.Hour)), wantErr: ErrAutoHalted},
				{cmd: EncodePause(PauseCmd{App: "app1", By: "op", At: t0})},
				{cmd: acquire(KindAuto, "m1", t0.Add(time.Hour)), wantErr: ErrPaused},
				{cmd: EncodeResume(ResumeCmd{App: "app1", By: "op", At: t0})},
				{cmd: EncodeAck(AckCmd{App: "app1", By: "op", At: t0.Add(time.Hour)})},
				{cmd: acquire(KindAuto, "m1", t0.Add(time.Hour)), epoch: 6},
			},
			check: func(t *testing.T, a AppState, h []HistoryEntry) {
				if a.AutoRetry != nil {
					t.Fatalf("ack kept the retry state: %+v", a.AutoRetry)
				}
				if len(h) != 1 || h[0].Attempts != 5 || h[0].Epoch != 5 || h[0].FirstEpoch != 1 ||
					!h[0].Started.Equal(t0) || !h[0].Finished.Equal(t0.Add(15*s)) {
					t.Fatalf("history does not show one entry for the five attempts: %+v", h)
				}
			},
		},
		{
			name: "refusals spread over more than the window do not halt",
			steps: []step{
				{cmd: register1()},
				{cmd: acquire(KindAuto, "m1", t0), epoch: 1},
				{cmd: refuse(1, why, t0)},
				{cmd: acquire(KindAuto, "m1", t0.Add(4*time.Minute)), epoch: 2},
				{cmd: refuse(2, why, t0.Add(4*time.Minute))},
				{cmd: acquire(KindAuto, "m1", t0.Add(8*time.Minute)), epoch: 3},
				{cmd: refuse(3, why, t0.Add(8*time.Minute))},
				{cmd: acquire(KindAuto, "m1", t0.Add(11*time.Minute)), epoch: 4},
				{cmd: refuse(4, why, t0.Add(11*time.Minute))}, // a new window starts here
				{cmd: acquire(KindAuto, "m1", t0.Add(12*time.Minute)), epoch: 5},
				{cmd: refuse(5, why, t0.Add(12*time.Minute))},
				{cmd: acquire(KindAuto, "m1", t0.Add(13*time.Minute)), epoch: 6},
			},
			check: func(t *testing.T, a AppState, _ []HistoryEntry) {
				if r := a.AutoRetry; r == nil || r.Halted || r.Refusals != 2 || !r.WindowStart.Equal(t0.Add(11*time.Minute)) {
					t.Fatalf("auto retry %+v", a.AutoRetry)
				}
			},
		},
		{
			name: "different refusals get their own history entries; other results are one entry each",
			steps: []step{
				{cmd: register1()},
				{cmd: acquire(KindAuto, "m1", t0), epoch: 1},
				{cmd: refuse(1, why, t0)},
				{cmd: acquire(KindAuto, "m1", t0.Add(s)), epoch: 2},
				{cmd: refuse(2, "another reason", t0.Add(s))},
				{cmd: acquire(KindAuto, "m1", t0.Add(time.Minute)), epoch: 3},
				{cmd: refuse(3, "another reason", t0.Add(time.Minute))},
				{cmd: acquire(KindSwitch, "m1", t0.Add(time.Minute)), epoch: 4},
				{cmd: release(4, ResultFailed, "", t0.Add(time.Minute))},
				{cmd: acquire(KindSwitch, "m1", t0.Add(time.Minute)), epoch: 5},
				{cmd: release(5, ResultFailed, "", t0.Add(time.Minute))},
			},
			check: func(t *testing.T, a AppState, h []HistoryEntry) {
				if len(h) != 4 || h[0].Attempts != 1 || h[1].Attempts != 2 || h[1].Epoch != 3 || h[1].FirstEpoch != 2 ||
					h[2].Attempts != 1 || h[3].Attempts != 1 {
					t.Fatalf("history %+v", h)
				}
				if r := a.AutoRetry; r == nil || r.Refusals != 3 {
					t.Fatalf("switch failures changed the auto retry state: %+v", r)
				}
			},
		},
		{
			name: "a manual lock resets the counters but not halted; a refused manual lock does not count",
			steps: []step{
				{cmd: register1()},
				{cmd: acquire(KindAuto, "m1", t0), epoch: 1},
				{cmd: refuse(1, why, t0)},
				{cmd: acquire(KindManual, "op", t0), epoch: 2},
				{cmd: refuse(2, why, t0)},
				{cmd: acquire(KindAuto, "m1", t0), epoch: 3}, // no backoff left
			},
			check: func(t *testing.T, a AppState, h []HistoryEntry) {
				if a.AutoRetry != nil {
					t.Fatalf("auto retry %+v", a.AutoRetry)
				}
				if len(h) != 2 || h[1].Kind != KindManual {
					t.Fatalf("a manual refusal merged into an auto one: %+v", h)
				}
			},
		},
		{
			name: "a successful failover resets everything, halted included",
			steps: func() []step {
				st := []step{{cmd: register1()}}
				for i := uint64(1); i <= AutoRetryMaxRefusals; i++ {
					at := t0.Add(time.Duration(i) * time.Minute)
					st = append(st, step{cmd: acquire(KindAuto, "m1", at), epoch: i}, step{cmd: refuse(i, why, at)})
				}
				return append(st,
					step{cmd: acquire(KindAuto, "m1", t0.Add(time.Hour)), wantErr: ErrAutoHalted},
					step{cmd: acquire(KindManual, "op", t0.Add(time.Hour)), epoch: 6},
					step{cmd: acquire(KindAuto, "m1", t0.Add(time.Hour)), wantErr: ErrLockHeld},
					step{cmd: release(6, ResultSuccess, "127.0.0.1:3307", t0.Add(time.Hour))})
			}(),
			check: func(t *testing.T, a AppState, _ []HistoryEntry) {
				if a.AutoRetry != nil || a.Master != "127.0.0.1:3307" {
					t.Fatalf("auto retry %+v master %s", a.AutoRetry, a.Master)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			run(t, f, tc.steps)
			if tc.check != nil {
				a, _ := f.App("app1")
				tc.check(t, a, f.History("app1"))
			}
		})
	}
}

func TestAutoBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute, time.Minute}
	for i, w := range want {
		if got := autoBackoff(i + 1); got != w {
			t.Fatalf("backoff after %d refusals: %v, want %v", i+1, got, w)
		}
	}
	if autoBackoff(1000) != AutoRetryMaxBackoff {
		t.Fatal("backoff not capped")
	}
}

func TestAutoHaltedMessage(t *testing.T) {
	f := New()
	f.ApplyBytes(register1())
	for i := uint64(1); i <= AutoRetryMaxRefusals; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		f.ApplyBytes(acquire(KindAuto, "m1", at))
		f.ApplyBytes(refuse(i, why, at))
	}
	err, _ := f.ApplyBytes(acquire(KindAuto, "m1", t0.Add(time.Hour))).(error)
	if !errors.Is(err, ErrAutoHalted) {
		t.Fatalf("got %v, want ErrAutoHalted", err)
	}
	for _, want := range []string{"fix the cause", "mhactl ack --app app1", why, "5 automatic failovers refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("message %q does not say %q", err, want)
		}
	}
}

// TestAutoLockRefusal: the manager's prediction agrees with Apply on
// every policy, without writing an entry.
func TestAutoLockRefusal(t *testing.T) {
	halted := func(f *FSM) {
		for i := uint64(1); i <= AutoRetryMaxRefusals; i++ {
			at := t0.Add(time.Duration(i) * time.Minute)
			f.ApplyBytes(acquire(KindAuto, "m1", at))
			f.ApplyBytes(refuse(i, why, at))
		}
	}
	tests := []struct {
		name  string
		setup func(f *FSM)
		at    time.Time
		want  error // nil: granted
	}{
		{"free", func(*FSM) {}, t0, nil},
		{"held", func(f *FSM) { f.ApplyBytes(acquire(KindSwitch, "m1", t0)) }, t0, ErrLockHeld},
		{"paused", func(f *FSM) { f.ApplyBytes(EncodePause(PauseCmd{App: "app1", By: "op", At: t0})) }, t0, ErrPaused},
		{"anti-flap", func(f *FSM) {
			f.ApplyBytes(acquire(KindAuto, "m1", t0))
			f.ApplyBytes(release(1, ResultSuccess, "127.0.0.1:3307", t0))
		}, t0.Add(time.Hour), ErrAntiFlap},
		{"anti-flap acknowledged", func(f *FSM) {
			f.ApplyBytes(acquire(KindAuto, "m1", t0))
			f.ApplyBytes(release(1, ResultSuccess, "127.0.0.1:3307", t0))
			f.ApplyBytes(EncodeAck(AckCmd{App: "app1", By: "op", At: t0}))
		}, t0.Add(time.Hour), nil},
		{"backoff", func(f *FSM) {
			f.ApplyBytes(acquire(KindAuto, "m1", t0))
			f.ApplyBytes(refuse(1, why, t0))
		}, t0.Add(500 * time.Millisecond), ErrRetryBackoff},
		{"backoff over", func(f *FSM) {
			f.ApplyBytes(acquire(KindAuto, "m1", t0))
			f.ApplyBytes(refuse(1, why, t0))
		}, t0.Add(time.Second), nil},
		{"halted", halted, t0.Add(time.Hour), ErrAutoHalted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			f.ApplyBytes(register1())
			tc.setup(f)
			a, _ := f.App("app1")
			before := a.LastEpoch
			got := a.AutoLockRefusal(tc.at)
			if after, _ := f.App("app1"); after.LastEpoch != before {
				t.Fatal("AutoLockRefusal changed the state")
			}
			resp := f.ApplyBytes(acquire(KindAuto, "m2", tc.at))
			err, _ := resp.(error)
			switch {
			case tc.want == nil && (got != "" || err != nil):
				t.Fatalf("predicted %q, Apply %v; want both to grant", got, resp)
			case tc.want != nil && (!errors.Is(err, tc.want) || got != err.Error()):
				t.Fatalf("predicted %q, Apply %v; want both to refuse with %v", got, resp, tc.want)
			}
		})
	}
}

func TestAutoRetrySnapshot(t *testing.T) {
	f := New()
	f.ApplyBytes(register1())
	for i := uint64(1); i <= AutoRetryMaxRefusals; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		f.ApplyBytes(acquire(KindAuto, "m1", at))
		f.ApplyBytes(refuse(i, why, at))
	}
	g := roundTrip(t, f)
	a, _ := g.App("app1")
	if r := a.AutoRetry; r == nil || !r.Halted || r.Refusals != AutoRetryMaxRefusals {
		t.Fatalf("restored auto retry %+v", a.AutoRetry)
	}
	if h := g.History("app1"); len(h) != 1 || h[0].Attempts != AutoRetryMaxRefusals {
		t.Fatalf("restored history %+v", h)
	}
	if err, _ := g.ApplyBytes(acquire(KindAuto, "m1", t0.Add(time.Hour))).(error); !errors.Is(err, ErrAutoHalted) {
		t.Fatalf("restored state grants an automatic lock: %v", err)
	}
}

// roundTrip persists f's snapshot and restores it into a new FSM.
func roundTrip(t testing.TB, f *FSM) *FSM {
	t.Helper()
	g := New()
	restoreFrom(t, f, g)
	return g
}

// restoreFrom persists from's snapshot and restores it into into (which
// may be from itself).
func restoreFrom(t testing.TB, from, into *FSM) {
	t.Helper()
	snap, err := from.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &fakeSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	if err := into.Restore(nopCloser{bytes.NewReader(sink.Bytes())}); err != nil {
		t.Fatal(err)
	}
}
