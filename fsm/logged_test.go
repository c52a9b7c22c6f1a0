package fsm

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func observeLog(kind string, reachable bool, observerAt, appendedAt time.Time, term uint64) *raft.Log {
	return &raft.Log{Type: raft.LogCommand, Term: term, AppendedAt: appendedAt,
		Data: EncodeObserve(ObserveCmd{App: "app1", Observation: Observation{
			Manager: "m1", Server: "server1", Reachable: reachable, Kind: kind, Since: observerAt, At: observerAt,
			// A proposer cannot choose the logged values: Apply overwrites them.
			LoggedAt: observerAt.Add(time.Hour), LoggedTerm: 99, SinceLogged: observerAt.Add(time.Hour),
		}})}
}

// TestObservationLoggedTimes: observations record the leader's append time
// and term, and SinceLogged stays at the first entry of the current Kind.
func TestObservationLoggedTimes(t *testing.T) {
	skewed := t0.Add(60 * time.Second) // the observer's clock runs ahead; the leader's does not
	local := time.FixedZone("leader", 3600)
	steps := []struct {
		log             *raft.Log
		wantLogged      time.Time
		wantTerm        uint64
		wantSinceLogged time.Time
	}{
		{observeLog("ok", true, skewed, t0, 3), t0, 3, t0},
		{observeLog("ok", true, skewed, t0.Add(time.Second), 3), t0.Add(time.Second), 3, t0},
		{observeLog("refused", false, skewed, t0.Add(2*time.Second), 3), t0.Add(2 * time.Second), 3, t0.Add(2 * time.Second)},
		// A new leader (term 4, another clock and zone): same Kind keeps SinceLogged.
		{observeLog("refused", false, skewed, t0.Add(5*time.Second).In(local), 4), t0.Add(5 * time.Second), 4, t0.Add(2 * time.Second)},
		{observeLog("timeout", false, skewed, t0.Add(6*time.Second), 4), t0.Add(6 * time.Second), 4, t0.Add(6 * time.Second)},
		// An entry without AppendedAt (old raft): not logged.
		{observeLog("ok", true, skewed, time.Time{}, 4), time.Time{}, 4, time.Time{}},
		// The next logged entry of the same Kind starts SinceLogged there.
		{observeLog("ok", true, skewed, t0.Add(8*time.Second), 4), t0.Add(8 * time.Second), 4, t0.Add(8 * time.Second)},
	}
	f := New()
	f.ApplyBytes(register1())
	for i, s := range steps {
		if err, ok := f.Apply(s.log).(error); ok {
			t.Fatalf("step %d: %v", i, err)
		}
		a, _ := f.App("app1")
		o := a.Observations["m1"]["127.0.0.1:3306"]
		if !o.LoggedAt.Equal(s.wantLogged) || o.LoggedTerm != s.wantTerm || !o.SinceLogged.Equal(s.wantSinceLogged) {
			t.Fatalf("step %d: logged at %v term %d since %v, want %v term %d since %v",
				i, o.LoggedAt, o.LoggedTerm, o.SinceLogged, s.wantLogged, s.wantTerm, s.wantSinceLogged)
		}
		if o.LoggedAt.Location() != time.UTC && !o.LoggedAt.IsZero() {
			t.Fatalf("step %d: logged time kept zone %v: replicas would store different values", i, o.LoggedAt.Location())
		}
		if !o.At.Equal(skewed) || !o.Since.Equal(skewed) {
			t.Fatalf("step %d: observer's At/Since changed: %v %v", i, o.At, o.Since)
		}
	}
}

// TestApplyStripsMonotonic: the leader's AppendedAt carries a monotonic
// reading that followers do not have; the stored value must not.
func TestApplyStripsMonotonic(t *testing.T) {
	now := time.Now()
	f := New()
	f.ApplyBytes(register1())
	f.Apply(observeLog("ok", true, t0, now, 1))
	a, _ := f.App("app1")
	got := a.Observations["m1"]["127.0.0.1:3306"].LoggedAt
	if got != now.UTC().Round(0) || got.String() != now.UTC().Round(0).String() {
		t.Fatalf("stored %v, want %v without monotonic reading", got, now.UTC().Round(0))
	}
}
