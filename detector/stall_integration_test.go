package detector

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// sampleCounter counts replica status queries per replica (a real Metrics
// implementation, as the daemon's is).
type sampleCounter struct {
	NopMetrics
	mu sync.Mutex
	n  map[string]int
}

func (c *sampleCounter) ReplicaSample(_, server string, _ bool, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[server]++
}

func (c *sampleCounter) count(server string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[server]
}

// TestSignallessMasterRealHeartbeats runs the replica-silence rule against
// real MariaDB heartbeats (MASTER_HEARTBEAT_PERIOD=0.25, the chaos
// harness's) with the harness's window of 3 s:
//   - while the master is fine, the watch loop samples each replica once per
//     two ping_intervals (2 s), not eight times (issue 17's steady cost);
//   - once the master looks unreachable it samples every RetryInterval;
//   - the detector suspects a paused master (Suspects: a late sentinel
//     sleep) within about half a ping_interval, before it times out;
//   - a pause of half the window (jepsen's pause-master-short) never makes
//     the verdict actionable, evaluated as the leader does (a fresh sample
//     at every evaluation, every 20 ms here);
//   - a long pause is DeadMaster, after more than half the window (the
//     silence the replicas witness counts from their last heartbeat, up to
//     one period before the SIGSTOP).
func TestSignallessMasterRealHeartbeats(t *testing.T) {
	const hb = 250 * time.Millisecond
	c := testbed.Start(t, testbed.Options{N: 3, NoSSH: true, HeartbeatPeriod: hb})
	ctx := context.Background()
	app := appFor(c, "SELECT", time.Second)
	window := DefaultWindow(app)
	stall := ReplicaStall(window, hb)
	st := newStore()
	counter := &sampleCounter{n: map[string]int{}}
	d1 := New(Config{Manager: "m1", Metrics: counter}, st, testLogger(t).With("m", "m1"))
	d1.Watch(ctx, app, app.Servers[0])
	t.Cleanup(d1.Stop)
	startDetector(t, "m2", app, st)
	startDetector(t, "m3", app, st)
	replica := app.Servers[1].Name
	waitFor(t, "healthy, and heartbeats arrive", 15*time.Second, func() bool {
		rs := d1.Replicas()
		if len(rs) != 2 || evaluate(app, st, nil, "m1", "m2", "m3").Kind != Healthy {
			return false
		}
		for _, r := range rs {
			if r.Heartbeats < 2 || r.HeartbeatPeriod != hb || r.SampledAt.Sub(r.TrackedSince) <= stall {
				return false
			}
		}
		return true
	})

	// Steady state: one sample per two ping_intervals.
	before := counter.count(replica)
	time.Sleep(8 * time.Second) // a span to count samples in, not a wait for a condition
	steady := counter.count(replica) - before
	t.Logf("steady state: %d samples of %s in 8 s (ping_interval 1 s)", steady, replica)
	// 4, one per two ping_intervals; a sentinel sleep late under load adds one each.
	if steady < 3 || steady > 7 {
		t.Fatalf("%d samples of %s in 8 s of a healthy master, want 4 (one per two ping_intervals)", steady, replica)
	}

	m := c.Master()
	t.Cleanup(func() { m.Resume() })
	// A pause of half the window: never actionable.
	short := window / 2
	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resumed := false
	for time.Since(start) < short+2*time.Second {
		if !resumed && time.Since(start) >= short {
			if err := m.Resume(); err != nil {
				t.Fatal(err)
			}
			resumed = true
		}
		v := evaluate(app, st, d1.CheckReplicas(ctx, app, app.Servers[0]), "m1", "m2", "m3")
		if v.Actionable() {
			t.Fatalf("verdict %s %s after a pause of %s (half the window %s; stall %s): reasons %q",
				v.Kind, time.Since(start).Round(time.Millisecond), short, window, stall, v.Reasons)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, "healthy again after the short pause", 15*time.Second, func() bool {
		return evaluate(app, st, d1.CheckReplicas(ctx, app, app.Servers[0]), "m1", "m2", "m3").Kind == Healthy
	})

	// A long pause: DeadMaster, no sooner than the stall; the watch loop
	// samples fast once m1 cannot reach the master.
	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	// m1 suspects the master (a late sentinel sleep) within half a
	// ping_interval and suspectLate, plus scheduling: long before its
	// observation times out at the deadline.
	var suspected time.Duration
	for deadline := start.Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if d1.Suspects() {
			suspected = time.Since(start)
			break
		}
	}
	if suspected == 0 || suspected > time.Second/sentinelSleeps+suspectLate+300*time.Millisecond {
		t.Fatalf("m1 suspected the paused master after %s (0: not within 3 s), want within %s", suspected,
			time.Second/sentinelSleeps+suspectLate+300*time.Millisecond)
	}
	if k := localKind(d1); k != KindOK {
		t.Fatalf("m1's observation is %q when it first suspects the master, want ok (the deadline has not passed)", k)
	}
	waitFor(t, "m1 times out", 10*time.Second, func() bool { return localKind(d1) == KindTimeout })
	timedOut := time.Since(start)
	if !d1.Suspects() {
		t.Fatal("m1 does not suspect the master it times out on")
	}
	before = counter.count(replica)
	var v Verdict
	waitFor(t, "DeadMaster", 20*time.Second, func() bool {
		v = evaluate(app, st, d1.Replicas(), "m1", "m2", "m3")
		return v.Actionable()
	})
	elapsed := time.Since(start)
	fast := counter.count(replica) - before
	span := elapsed - timedOut
	t.Logf("long pause: m1 suspected it after %s, timed out after %s, DeadMaster after %s (stall %s); %d samples of %s in the %s between",
		suspected.Round(time.Millisecond), timedOut.Round(time.Millisecond),
		elapsed.Round(time.Millisecond), stall, fast, replica, span.Round(time.Millisecond))
	if v.Kind != DeadMaster {
		t.Fatalf("verdict %s, want DeadMaster: %q", v.Kind, v.Reasons)
	}
	// The silence counts from the replicas' last heartbeat, up to one
	// period before the SIGSTOP: the pause itself must exceed half the
	// window.
	if elapsed <= window/2 {
		t.Fatalf("DeadMaster %s after SIGSTOP, within half the window %s: %q", elapsed, window/2, v.Reasons)
	}
	if span > time.Second && float64(fast) < span.Seconds()*2 {
		t.Fatalf("%d samples of %s in %s while m1 could not reach the master, want one per RetryInterval (200 ms)", fast, replica, span)
	}
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
}

// TestReplicaSamplingOnDemand: a detector with Config.OnDemand (the
// daemon's) takes no steady replica samples until Replicas is called
// (routing asks), then samples every ReplicaInterval while asked; one
// without it samples without being asked. The sample counts are over a
// span of 1.5 s at ReplicaInterval 200 ms (about 7).
func TestReplicaSamplingOnDemand(t *testing.T) {
	c := testbed.Start(t, testbed.Options{N: 3, NoSSH: true})
	ctx := context.Background()
	app := appFor(c, "SELECT", time.Second)
	replica := app.Servers[1].Name
	for _, tc := range []struct {
		name        string
		onDemand    bool
		asks        bool
		least, most int
	}{
		// A late sentinel sleep under load asks for one sample each.
		{"on demand, nobody asks", true, false, 0, 2},
		{"on demand, routing asks", true, true, 4, 10},
		{"always, nobody asks", false, false, 4, 10},
	} {
		counter := &sampleCounter{n: map[string]int{}}
		d := New(Config{Manager: "m1", Metrics: counter, ReplicaInterval: 200 * time.Millisecond, OnDemand: tc.onDemand},
			newStore(), testLogger(t).With("m", "m1"))
		d.Watch(ctx, app, app.Servers[0])
		waitFor(t, "the master observed reachable", 15*time.Second, func() bool {
			l := d.Local()
			return len(l) == 1 && l[0].Reachable
		})
		before := counter.count(replica)
		var fresh bool
		end := time.Now().Add(1500 * time.Millisecond)
		for time.Now().Before(end) {
			if tc.asks {
				for _, r := range d.Replicas() {
					fresh = fresh || (r.Server == replica && time.Since(r.SampledAt) < 500*time.Millisecond)
				}
			}
			time.Sleep(100 * time.Millisecond) // a span to count samples in, not a wait for a condition
		}
		d.Stop()
		n := counter.count(replica) - before
		t.Logf("%s: %d samples of %s in 1.5 s", tc.name, n, replica)
		if n < tc.least || n > tc.most {
			t.Errorf("%s: %d samples of %s in 1.5 s, want %d to %d", tc.name, n, replica, tc.least, tc.most)
		}
		if tc.asks && !fresh {
			t.Errorf("%s: Replicas never returned a sample of %s younger than 500 ms", tc.name, replica)
		}
	}
}
