package detector

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const term = 7

// logged is obs with the Raft log's time: appended loggedAge before t0 in
// term tm, the observer's At offset by skew from the leader's clock.
func logged(m string, reachable bool, kind string, loggedAge, skew time.Duration, tm uint64) Observation {
	o := obs(m, reachable, kind, 0)
	o.At = t0.Add(-loggedAge + skew)
	o.Since = o.At.Add(-time.Second)
	o.LoggedAt, o.LoggedTerm, o.SinceLogged = t0.Add(-loggedAge), tm, t0.Add(-loggedAge-time.Second)
	return o
}

func TestFreshAt(t *testing.T) {
	tests := []struct {
		name string
		o    Observation
		want bool
	}{
		{"logged now in this term", logged("m1", false, KindRefused, 0, 0, term), true},
		{"logged at the window's edge", logged("m1", false, KindRefused, window, 0, term), true},
		{"logged just past the window", logged("m1", false, KindRefused, window+time.Millisecond, 0, term), false},
		{"observer clock 60s ahead, logged long ago", logged("m1", false, KindRefused, 10*time.Second, 60*time.Second, term), false},
		{"observer clock 60s behind, logged just now", logged("m1", true, KindOK, 500*time.Millisecond, -60*time.Second, term), true},
		{"logged just now but in an earlier term", logged("m1", false, KindRefused, 0, 0, term-1), false},
		{"logged in a later term (evaluator is not the leader)", logged("m1", false, KindRefused, 0, 0, term+1), false},
		{"stamped far after now (leader clock stepped back)", logged("m1", false, KindRefused, -2*window, 0, term), false},
		{"not logged: observer's At within the window", obs("m1", false, KindRefused, time.Second), true},
		{"not logged: observer's At too old", obs("m1", false, KindRefused, 10*time.Second), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.o.FreshAt(t0, term, window); got != tc.want {
				t.Fatalf("FreshAt = %v, want %v (%+v)", got, tc.want, tc.o)
			}
		})
	}
}

// TestEvaluateClockSkew: freshness follows the leader's log time, not the
// observers' clocks (issue 12 finding 7).
func TestEvaluateClockSkew(t *testing.T) {
	three := managers("m1", "m2", "m3")
	dead := []ReplicaView{ioError("server2", 2003), ioError("server3", 2013)}
	ahead, behind := 60*time.Second, -60*time.Second
	tests := []struct {
		name    string
		obs     []Observation
		want    VerdictKind
		unknown []string
		reason  string // a reason that must be given
	}{
		{
			// m2's clock runs 60 s ahead: its At says "just now" for a
			// minute, but its last entry was logged 10 s ago.
			name: "a clock ahead does not keep a cannot-reach vote fresh",
			obs: []Observation{logged("m1", false, KindRefused, 0, 0, term),
				logged("m2", false, KindRefused, 10*time.Second, ahead, term), logged("m3", true, KindOK, 10*time.Second, 0, term)},
			want: UnreachableMaster, unknown: []string{"m2", "m3"},
			reason: "manager m2's observation of server1 is stale: logged 10s ago",
		},
		{
			// m3's clock runs 60 s behind: its At looks a minute old, but the
			// entry was logged half a second ago, so its veto holds.
			name: "a clock behind keeps its veto while its entry is fresh",
			obs: []Observation{logged("m1", false, KindRefused, 0, 0, term),
				logged("m2", false, KindRefused, 0, 0, term), logged("m3", true, KindOK, 500*time.Millisecond, behind, term)},
			want:   UnreachableMaster,
			reason: "1 manager(s) still reach server1",
		},
		{
			name: "the same clock behind, once its entry is stale, is unknown",
			obs: []Observation{logged("m1", false, KindRefused, 0, 0, term),
				logged("m2", false, KindRefused, 0, 0, term), logged("m3", true, KindOK, 5*time.Second, behind, term)},
			want: DeadMaster, unknown: []string{"m3"},
		},
		{
			name: "entries of an earlier term never count",
			obs: []Observation{logged("m1", false, KindRefused, 0, 0, term-1),
				logged("m2", false, KindRefused, 0, 0, term-1), logged("m3", false, KindRefused, 0, 0, term)},
			want: UnreachableMaster, unknown: []string{"m1", "m2"},
			reason: "logged in term 6, not in the current term 7",
		},
		{
			name: "not logged (old entries): the observer's At decides",
			obs:  []Observation{down("m1"), down("m2"), obs("m3", true, KindOK, 10*time.Second)},
			want: DeadMaster, unknown: []string{"m3"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Evaluate(Input{Master: "server1", Managers: three, Observations: tc.obs, Replicas: dead,
				Now: t0, Term: term, Window: window})
			if v.Kind != tc.want {
				t.Fatalf("verdict %s, want %s: %v", v.Kind, tc.want, v.Reasons)
			}
			if tc.unknown != nil && !slices.Equal(v.Unknown, tc.unknown) {
				t.Fatalf("unknown %v, want %v: %v", v.Unknown, tc.unknown, v.Reasons)
			}
			if tc.reason != "" && !strings.Contains(strings.Join(v.Reasons, "; "), tc.reason) {
				t.Fatalf("reasons %q do not say %q", v.Reasons, tc.reason)
			}
		})
	}
	// The same inputs judged by the observers' clocks alone (the old rule)
	// get both cases wrong, which is what the logged times fix.
	strip := func(os ...Observation) []Observation {
		for i := range os {
			os[i].LoggedAt, os[i].LoggedTerm, os[i].SinceLogged = time.Time{}, 0, time.Time{}
		}
		return os
	}
	aheadIn := strip(logged("m1", false, KindRefused, 0, 0, term), logged("m2", false, KindRefused, 10*time.Second, ahead, term), logged("m3", true, KindOK, 10*time.Second, 0, term))
	if v := Evaluate(Input{Master: "server1", Managers: three, Observations: aheadIn, Replicas: dead, Now: t0, Window: window}); v.Kind != DeadMaster {
		t.Fatalf("old rule: the clock ahead should have made a (wrong) majority: %s %v", v.Kind, v.Reasons)
	}
	behindIn := strip(logged("m1", false, KindRefused, 0, 0, term), logged("m2", false, KindRefused, 0, 0, term), logged("m3", true, KindOK, 500*time.Millisecond, behind, term))
	if v := Evaluate(Input{Master: "server1", Managers: three, Observations: behindIn, Replicas: dead, Now: t0, Window: window}); v.Kind != DeadMaster {
		t.Fatalf("old rule: the clock behind should have lost its veto: %s %v", v.Kind, v.Reasons)
	}
}

// TestEvaluateLatestByLog: of two observations of one manager, the one
// logged later wins, whatever the observer's At says.
func TestEvaluateLatestByLog(t *testing.T) {
	older := logged("m1", true, KindOK, 2*time.Second, 60*time.Second, term) // At far ahead
	newer := logged("m1", false, KindRefused, 0, 0, term)
	v := Evaluate(Input{Master: "server1", Managers: managers("m1"), Observations: []Observation{newer, older},
		Replicas: []ReplicaView{ioError("server2", 2003)}, Now: t0, Term: term, Window: window})
	if !slices.Equal(v.NonReachers, []string{"m1"}) {
		t.Fatalf("non-reachers %v, want [m1]: the later log entry must win (%v)", v.NonReachers, v.Reasons)
	}
	if !strings.Contains(strings.Join(v.Reasons, "; "), newer.SinceLogged.Format(time.RFC3339Nano)) {
		t.Fatalf("reasons %v do not give the logged since time %v", v.Reasons, newer.SinceLogged)
	}
}
