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
	stall := window // > 2 heartbeat periods of 500 ms
	tests := []struct {
		name     string
		obs      []Observation
		replicas []ReplicaView
		want     VerdictKind
	}{
		{"majority times out, replicas silent beyond the stall", []Observation{timeout("m1"), timeout("m2")},
			[]ReplicaView{silent("server2", stall+100*time.Millisecond), silent("server3", stall+100*time.Millisecond)}, DeadMaster},
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

// TestDefaultReplicaInterval: replicas are sampled at least four times per
// ping_interval and at least every 250 ms.
func TestDefaultReplicaInterval(t *testing.T) {
	for _, tc := range []struct {
		ping, want time.Duration
	}{
		{0, 250 * time.Millisecond}, // ping_interval default 3 s
		{time.Second, 250 * time.Millisecond},
		{3 * time.Second, 250 * time.Millisecond},
		{400 * time.Millisecond, 100 * time.Millisecond},
	} {
		app := &config.App{Name: "app1", PingInterval: tc.ping}
		if got := DefaultReplicaInterval(app); got != tc.want {
			t.Errorf("ping_interval %s: replica interval %s, want %s", tc.ping, got, tc.want)
		}
	}
}
