package detector

import (
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
)

// TestSignallessQuorumRule: issue 16 item 4 makes a signalless master's
// failover faster (SSH dialled at the first suspicion, replicas sampled
// every DefaultReplicaInterval) without touching the rule. A master that
// gives no signal (paused, host cut off) is seen as timeouts by the
// managers and as silence by its replicas, whose IO threads stay
// connected; it is dead only when a majority of ALL managers time out, none
// reaches it, and every replica has been silent for longer than the window
// and two heartbeat periods.
func TestSignallessQuorumRule(t *testing.T) {
	timeout := func(m string) Observation { return obs(m, false, KindTimeout, 100*time.Millisecond) }
	three := managers("m1", "m2", "m3")
	stall := ReplicaStall(window, 500*time.Millisecond) // the views' heartbeat period; silent() samples 50 ms before t0
	tests := []struct {
		name     string
		obs      []Observation
		replicas []ReplicaView
		want     VerdictKind
	}{
		{"majority times out, replicas silent beyond the stall", []Observation{timeout("m1"), timeout("m2")},
			[]ReplicaView{silent("server2", stall+100*time.Millisecond), silent("server3", stall+100*time.Millisecond)}, DeadMaster},
		{"majority times out, replicas silent exactly the stall when sampled", []Observation{timeout("m1"), timeout("m2")},
			[]ReplicaView{silent("server2", stall+50*time.Millisecond), silent("server3", stall+50*time.Millisecond)}, UnreachableMaster},
		{"one manager of three times out", []Observation{timeout("m1"), up("m2")},
			[]ReplicaView{silent("server2", stall+time.Second), silent("server3", stall+time.Second)}, UnreachableMaster},
		{"one manager of three times out, the others unknown", []Observation{timeout("m1")},
			[]ReplicaView{silent("server2", stall+time.Second), silent("server3", stall+time.Second)}, UnreachableMaster},
		{"majority times out, one manager reaches it", []Observation{timeout("m1"), timeout("m2"), up("m3")},
			[]ReplicaView{silent("server2", stall+time.Second), silent("server3", stall+time.Second)}, UnreachableMaster},
		{"majority times out, replicas silent for less than the stall (a short pause)", []Observation{timeout("m1"), timeout("m2"), timeout("m3")},
			[]ReplicaView{silent("server2", stall-100*time.Millisecond), silent("server3", stall-100*time.Millisecond)}, UnreachableMaster},
		{"majority times out, one replica still receives", []Observation{timeout("m1"), timeout("m2"), timeout("m3")},
			[]ReplicaView{silent("server2", stall+time.Second), streaming("server3")}, UnreachableMaster},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Evaluate(Input{Master: "server1", Managers: three, Observations: tc.obs, Replicas: tc.replicas, Now: t0, Window: window})
			if v.Kind != tc.want {
				t.Fatalf("verdict %s, want %s (%v)", v.Kind, tc.want, v.Reasons)
			}
		})
	}
}

// TestDefaultReplicaInterval: while the master looks fine, replicas are
// sampled every two ping_intervals, at most every two seconds (issue 17's
// steady cost: one status query per replica and manager every two
// seconds); the fast cadence is for a suspected master only.
func TestDefaultReplicaInterval(t *testing.T) {
	for _, tc := range []struct {
		ping, want time.Duration
	}{
		{0, 2 * time.Second}, // ping_interval default 3 s
		{time.Second, 2 * time.Second},
		{3 * time.Second, 2 * time.Second},
		{400 * time.Millisecond, 800 * time.Millisecond},
	} {
		app := &config.App{Name: "app1", PingInterval: tc.ping}
		if got := DefaultReplicaInterval(app); got != tc.want {
			t.Errorf("ping_interval %s: replica interval %s, want %s", tc.ping, got, tc.want)
		}
	}
}

// TestReplicaStall: a connected replica confirms a silent master only after
// half the window, one heartbeat period and ReplicaJitter without an event
// or heartbeat, measured from its last progress to the sample that
// witnessed the silence (never to now). The rows are the harness's window
// of 3 s (ping_interval=1, connect_timeout=1), whose pause-master-short
// pauses the master for 1.5 s: a pause of P lets a sample witness at most
// P + one heartbeat period (+ jitter) of silence, under the stall for every
// heartbeat period.
func TestReplicaStall(t *testing.T) {
	const w = 3 * time.Second
	for _, tc := range []struct {
		name      string
		heartbeat time.Duration
		stall     time.Duration // ReplicaStall(w, heartbeat)
		quiet     time.Duration // silence from the last progress to the sample
		sampleAge time.Duration // how long before now the sample was taken
		want      replicaSays
	}{
		{"heartbeat 1 s: the worst short pause (1.5 s + one period) refutes", time.Second, 2750 * time.Millisecond, 2500 * time.Millisecond, 0, replicaRefutes},
		{"heartbeat 1 s: beyond the stall confirms", time.Second, 2750 * time.Millisecond, 2800 * time.Millisecond, 0, replicaConfirms},
		{"heartbeat 0.5 s: the worst short pause refutes", 500 * time.Millisecond, 2250 * time.Millisecond, 2000 * time.Millisecond, 0, replicaRefutes},
		{"heartbeat 0.5 s: beyond the stall confirms", 500 * time.Millisecond, 2250 * time.Millisecond, 2300 * time.Millisecond, 0, replicaConfirms},
		{"heartbeat 0.25 s (the harness): the worst short pause refutes", 250 * time.Millisecond, 2 * time.Second, 1750 * time.Millisecond, 0, replicaRefutes},
		{"heartbeat 0.25 s: exactly the stall refutes", 250 * time.Millisecond, 2 * time.Second, 2 * time.Second, 0, replicaRefutes},
		{"heartbeat 0.25 s: beyond the stall confirms", 250 * time.Millisecond, 2 * time.Second, 2050 * time.Millisecond, 0, replicaConfirms},
		{"heartbeat 30 s (MariaDB's default with slave_net_timeout=60): a quiet master between heartbeats refutes", 30 * time.Second, 31750 * time.Millisecond, 30500 * time.Millisecond, 0, replicaRefutes},
		{"an old sample witnessed 1.9 s of silence: refutes, though now is 2.4 s after its last progress", 250 * time.Millisecond, 2 * time.Second, 1900 * time.Millisecond, 500 * time.Millisecond, replicaRefutes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReplicaStall(w, tc.heartbeat); got != tc.stall {
				t.Fatalf("ReplicaStall(%s, %s) = %s, want %s", w, tc.heartbeat, got, tc.stall)
			}
			sampled := t0.Add(-tc.sampleAge)
			v := ReplicaView{Server: "server2", Reachable: true, SampledAt: sampled, ReplicaOfMaster: true, IORunning: "Yes",
				Heartbeats: 7, HeartbeatPeriod: tc.heartbeat, TrackedSince: sampled.Add(-time.Minute), LastProgress: sampled.Add(-tc.quiet)}
			if got, why := v.judge(t0, w); got != tc.want {
				t.Fatalf("testimony %d, want %d: %s", got, tc.want, why)
			}
		})
	}
}
