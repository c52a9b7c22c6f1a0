package detector

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mharaft/mharaft/testbed"
)

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		wantErr  bool
	}{
		{"", ModeFast, false},
		{"fast", ModeFast, false},
		{"mha", ModeMHA, false},
		{"MHA", "", true},
		{"slow", "", true},
	} {
		got, err := ParseMode(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseMode(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestMHACounter replays sequences of round results through MHA's
// error_count: only the 4th failure in a row is observed as unreachable,
// a success resets, an alive error at connect neither counts nor resets.
func TestMHACounter(t *testing.T) {
	refused := fmt.Errorf("connect to server1: %w", syscall.ECONNREFUSED)
	timeout := fmt.Errorf("select ping to server1: %w", context.DeadlineExceeded)
	lost := fmt.Errorf("select ping to server1: %w", mysql.ErrInvalidConn)
	tooMany := &mysql.MySQLError{Number: 1040, Message: "Too many connections"}
	readOnly := &mysql.MySQLError{Number: 1290, Message: "read only"}
	type step struct {
		phase    string
		err      error
		kind     string
		observe  bool
		failures int
	}
	tests := []struct {
		name     string
		pingType string
		steps    []step
	}{
		{"kill -9: a lost ping then three refused connects", "SELECT", []step{
			{"ping", nil, KindOK, true, 0},
			{"ping", lost, KindLost, false, 1},
			{"connect", refused, KindRefused, false, 2},
			{"connect", refused, KindRefused, false, 3},
			{"connect", refused, KindRefused, true, 4},
			{"connect", refused, KindRefused, true, 5}, // stays reported
			{"connect", nil, KindOK, true, 0},          // restarted
		}},
		{"pause: four timeouts", "SELECT", []step{
			{"ping", timeout, KindTimeout, false, 1},
			{"connect", timeout, KindTimeout, false, 2},
			{"connect", timeout, KindTimeout, false, 3},
			{"connect", timeout, KindTimeout, true, 4},
		}},
		{"a success in between resets the count", "SELECT", []step{
			{"ping", lost, KindLost, false, 1},
			{"connect", refused, KindRefused, false, 2},
			{"connect", refused, KindRefused, false, 3},
			{"ping", nil, KindOK, true, 0},
			{"ping", timeout, KindTimeout, false, 1},
			{"connect", refused, KindRefused, false, 2},
		}},
		{"alive error at connect neither counts nor resets", "SELECT", []step{
			{"ping", lost, KindLost, false, 1},
			{"connect", refused, KindRefused, false, 2},
			{"connect", tooMany, KindAliveRefusing, true, 2},
			{"connect", refused, KindRefused, false, 3},
			{"connect", refused, KindRefused, true, 4},
		}},
		{"INSERT failing on a read-only master counts and is reported at the 4th", "INSERT", []step{
			{"ping", readOnly, KindWriteFailed, false, 1},
			{"connect", nil, KindOK, true, 0}, // a connect that works resets, as in MHA
			{"ping", readOnly, KindWriteFailed, false, 1},
			{"ping", readOnly, KindWriteFailed, false, 2},
			{"ping", readOnly, KindWriteFailed, false, 3},
			{"ping", readOnly, KindWriteFailed, true, 4},
		}},
		{"a SELECT ping's server error is counted but reported at once (reachable)", "SELECT", []step{
			{"ping", readOnly, KindServerError, true, 1},
			{"connect", refused, KindRefused, false, 2},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c mhaCounter
			for i, s := range tc.steps {
				kind, reachable, observe := c.add(s.phase, s.err, tc.pingType)
				if kind != s.kind || observe != s.observe || c.failures != s.failures {
					t.Fatalf("step %d (%s %v): kind %q observe %v failures %d; want %q %v %d",
						i, s.phase, s.err, kind, observe, c.failures, s.kind, s.observe, s.failures)
				}
				wantReachable := s.err == nil || kind == KindAliveRefusing || kind == KindServerError
				if reachable != wantReachable {
					t.Fatalf("step %d: reachable %v, want %v", i, reachable, wantReachable)
				}
			}
		})
	}
}

// probeLog is a Metrics that remembers every master probe with its time.
type probeLog struct {
	NopMetrics
	mu     sync.Mutex
	probes []probeAt
}

type probeAt struct {
	at   time.Time
	kind string
}

func (p *probeLog) Probe(_, _, kind string, _ time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.probes = append(p.probes, probeAt{time.Now(), kind})
}

// failuresBetween counts the probes after from and up to to that were not ok.
func (p *probeLog) failuresBetween(from, to time.Time) (n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.probes {
		if pr.at.After(from) && !pr.at.After(to) && pr.kind != KindOK {
			n++
		}
	}
	return n
}

// TestMHACadence runs the MHA-cadence detector against a real mariadbd
// next to a fast one: the fast detector reports a kill -9 at once, the
// MHA one only at its 4th failed ping, 3 ping intervals after the first;
// a SIGSTOP costs four ping timeouts of one ping_interval each.
func TestMHACadence(t *testing.T) {
	c := testbed.Start(t, testbed.Options{N: 1, NoSSH: true})
	const iv = time.Second
	app := appFor(c, "SELECT", iv)
	st := newStore()
	probes := &probeLog{}
	mha := New(Config{Manager: "mha", Mode: ModeMHA, Metrics: probes}, st, testLogger(t).With("m", "mha"))
	mha.Watch(context.Background(), app, app.Servers[0])
	t.Cleanup(mha.Stop)
	fast := startDetector(t, "fast", app, st)
	waitFor(t, "both detectors reach the master", 10*time.Second, func() bool {
		return localKind(mha) == KindOK && localKind(fast) == KindOK
	})

	// reported waits until the MHA detector reports the master
	// unreachable and checks that nothing unreachable was published by it
	// between the fault and the report, and how many failed pings led there.
	reported := func(t *testing.T, fault time.Time) (after time.Duration, failures int) {
		t.Helper()
		waitFor(t, "the mha detector reports the master unreachable", 20*time.Second, func() bool {
			l := mha.Local()
			return len(l) == 1 && !l[0].Reachable
		})
		o := mha.Local()[0]
		for _, p := range st.published() {
			if p.Manager == "mha" && !p.Reachable && p.At.After(fault) && p.At.Before(o.Since) {
				t.Errorf("published %s at %s, before the report at %s", p.Kind, p.At.Format(time.StampMilli), o.Since.Format(time.StampMilli))
			}
		}
		return o.Since.Sub(fault), probes.failuresBetween(fault, o.Since)
	}

	t.Run("SIGSTOP: four pings time out", func(t *testing.T) {
		fault := time.Now()
		if err := c.Master().Pause(); err != nil {
			t.Fatal(err)
		}
		after, failures := reported(t, fault)
		if err := c.Master().Resume(); err != nil {
			t.Fatal(err)
		}
		t.Logf("paused master reported unreachable (%s) after %s and %d failed pings", localKind(mha), after, failures)
		if failures != mhaDeadAfter {
			t.Errorf("%d failed pings before the report, want %d", failures, mhaDeadAfter)
		}
		if k := localKind(mha); k != KindTimeout {
			t.Errorf("reported kind %q, want %q", k, KindTimeout)
		}
		if after < mhaDeadAfter*iv-100*time.Millisecond || after > (mhaDeadAfter+1)*iv+time.Second {
			t.Errorf("reported after %s, want about 4-5 ping intervals of %s", after, iv)
		}
		waitFor(t, "the mha detector sees the resumed master", 10*time.Second, func() bool { return localKind(mha) == KindOK })
		waitFor(t, "the fast detector sees the resumed master", 10*time.Second, func() bool { return localKind(fast) == KindOK })
	})

	t.Run("kill -9: reported after 4 pings, not at once", func(t *testing.T) {
		if err := c.Master().Kill9(); err != nil {
			t.Fatal(err)
		}
		killed := time.Now() // the process is gone
		fastAfter := waitFor(t, "the fast detector notices", 5*time.Second, func() bool { return localKind(fast) == KindRefused })
		if l := mha.Local(); len(l) != 1 || !l[0].Reachable {
			t.Errorf("the mha detector reported %v together with the fast one, want its last ok", l)
		}
		after, failures := reported(t, killed)
		t.Logf("kill -9: fast detector %s, mha detector %s (%s) after %d failed pings", fastAfter, after, localKind(mha), failures)
		if failures != mhaDeadAfter {
			t.Errorf("%d failed pings before the report, want %d", failures, mhaDeadAfter)
		}
		if k := localKind(mha); k != KindRefused {
			t.Errorf("reported kind %q, want %q", k, KindRefused)
		}
		// First failure in the first round after the kill (0-1 interval),
		// then three refused connects one interval apart.
		if after < (mhaDeadAfter-1)*iv-100*time.Millisecond || after > mhaDeadAfter*iv+time.Second {
			t.Errorf("reported after %s, want 3-4 ping intervals of %s", after, iv)
		}
		if fastAfter >= iv {
			t.Errorf("the fast detector took %s, want less than one ping interval", fastAfter)
		}
	})
}
