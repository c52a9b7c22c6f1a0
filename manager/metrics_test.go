package manager

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/detector"
	"github.com/mharaft/mharaft/dialect"
	"github.com/mharaft/mharaft/fsm"
	"github.com/mharaft/mharaft/metrics"
	"github.com/mharaft/mharaft/topology"
)

func TestDetectorMetricsProbe(t *testing.T) {
	tests := []struct {
		kind         string
		wantLatency  uint64 // probe_duration_seconds samples
		wantFailures float64
	}{
		{detector.KindOK, 1, 0},
		{detector.KindRefused, 0, 1},
		{detector.KindTimeout, 0, 1},
		{detector.KindAuthError, 0, 1}, // alive, but the probe failed
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			m := metrics.New()
			detectorMetrics{m}.Probe("app1", "server1", tc.kind, 3*time.Millisecond)
			if got := seriesCount(t, m, "mharaft_probe_duration_seconds"); uint64(got) != tc.wantLatency {
				t.Errorf("latency series %d, want %d", got, tc.wantLatency)
			}
			if got := valueOf(t, m.ProbeFailures.WithLabelValues("app1", "server1", tc.kind)); got != tc.wantFailures {
				t.Errorf("failures{kind=%s} = %v, want %v", tc.kind, got, tc.wantFailures)
			}
		})
	}
}

func TestCountVerdictOnChangeOnly(t *testing.T) {
	m := &Manager{cfg: Config{Metrics: metrics.New()}}
	seq := []string{"Healthy", "Healthy", "Healthy", "UnreachableMaster", "DeadMaster", "DeadMaster", "Healthy"}
	prev := ""
	for _, v := range seq {
		m.countVerdict("app1", prev, v)
		prev = v
	}
	for v, want := range map[string]float64{"Healthy": 2, "UnreachableMaster": 1, "DeadMaster": 1} {
		if got := valueOf(t, m.cfg.Metrics.Verdicts.WithLabelValues("app1", v)); got != want {
			t.Errorf("verdicts{%s} = %v, want %v", v, got, want)
		}
	}
	(&Manager{}).countVerdict("app1", "", "Healthy") // nil metrics: no panic
}

func TestFailoverKind(t *testing.T) {
	for lock, want := range map[string]string{fsm.KindAuto: "failover", fsm.KindManual: "failover", fsm.KindSwitch: "switch"} {
		if got := failoverKind(lock); got != want {
			t.Errorf("failoverKind(%q) = %q, want %q", lock, got, want)
		}
	}
}

func TestObserveReplicaLag(t *testing.T) {
	lag := func(v int64) *dialect.ReplicaStatus { return &dialect.ReplicaStatus{SecondsBehindMaster: &v} }
	srv := func(name string) *config.Server { return &config.Server{Name: name} }
	master := &topology.ServerState{Server: srv("server1")}
	topo := &topology.Topology{Master: master, Servers: []*topology.ServerState{
		master,
		{Server: srv("server2"), Replica: lag(3)},
		{Server: srv("server3"), Replica: &dialect.ReplicaStatus{}}, // SQL thread stopped: NULL
	}}
	m := &Manager{cfg: Config{Metrics: metrics.New()}}
	// server3 and server1 had a lag before (server1 was a replica).
	m.cfg.Metrics.SetReplicaLag("app1", "server1", 1)
	m.cfg.Metrics.SetReplicaLag("app1", "server3", 1)
	m.observeReplicaLag("app1", topo)
	if got := valueOf(t, m.cfg.Metrics.ReplicaLag.WithLabelValues("app1", "server2")); got != 3 {
		t.Errorf("lag of server2 = %v, want 3", got)
	}
	m.cfg.Metrics.ReplicaLag.DeleteLabelValues("app1", "server2")
	if n := seriesCount(t, m.cfg.Metrics, "mharaft_replica_lag_seconds"); n != 0 {
		t.Errorf("%d lag series left for the master and the replica without a lag, want 0", n)
	}
	(&Manager{}).observeReplicaLag("app1", topo) // nil metrics: no panic
}

// valueOf reads a counter's or gauge's value.
func valueOf(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// seriesCount is the number of series of the family name in the registry.
func seriesCount(t *testing.T, m *metrics.Metrics, name string) int {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return len(f.Metric)
		}
	}
	return 0
}
