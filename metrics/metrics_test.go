package metrics_test

import (
	"testing"
	"time"

	"github.com/mharaft/mharaft/metrics"
	dto "github.com/prometheus/client_model/go"
)

// value gathers m's registry and returns the value of the series of family
// name with exactly these label values (gauge, counter, or a histogram's
// sample count), and how many series the family has.
func value(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) (v float64, series int) {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	v = -1
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		series = len(f.GetMetric())
		for _, s := range f.GetMetric() {
			if matches(s, labels) {
				switch {
				case s.Gauge != nil:
					v = s.GetGauge().GetValue()
				case s.Counter != nil:
					v = s.GetCounter().GetValue()
				case s.Histogram != nil:
					v = float64(s.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return v, series
}

func matches(s *dto.Metric, labels map[string]string) bool {
	if len(s.GetLabel()) != len(labels) {
		return false
	}
	for _, l := range s.GetLabel() {
		if labels[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}

func TestRaftRoleIsExclusive(t *testing.T) {
	m := metrics.New()
	for _, role := range []string{"leader", "candidate", "follower"} {
		m.SetRaftRole(role)
		for _, r := range metrics.RaftRoles {
			want := 0.0
			if r == role {
				want = 1
			}
			if got, _ := value(t, m, "mharaft_raft_role", map[string]string{"role": r}); got != want {
				t.Errorf("after SetRaftRole(%s): role %s = %v, want %v", role, r, got, want)
			}
		}
	}
}

func TestCollectors(t *testing.T) {
	m := metrics.New()
	m.SetRaftTerm(12)
	m.ProbeFailed("app1", "server1", "timeout")
	m.ProbeFailed("app1", "server1", "timeout")
	m.ProbeFailed("app1", "server1", "refused")
	m.Verdict("app1", "DeadMaster")
	m.Failover("app1", "failover", "success")
	m.SetReplicaLag("app1", "server2", 4)
	m.SetReplicaLag("app1", "server1", 0)
	m.ObserveProbe("app1", "server1", 2*time.Millisecond)
	m.ObserveProbe("app1", "server1", 3*time.Millisecond)
	m.ObservePhase("save_binlog", 300*time.Millisecond)

	type L = map[string]string
	s1 := L{"app": "app1", "server": "server1"}
	tests := []struct {
		family string
		labels L
		want   float64
	}{
		{"mharaft_raft_term", L{}, 12},
		{"mharaft_probe_failures_total", L{"app": "app1", "server": "server1", "kind": "timeout"}, 2},
		{"mharaft_probe_failures_total", L{"app": "app1", "server": "server1", "kind": "refused"}, 1},
		{"mharaft_verdicts_total", L{"app": "app1", "verdict": "DeadMaster"}, 1},
		{"mharaft_failovers_total", L{"app": "app1", "kind": "failover", "result": "success"}, 1},
		{"mharaft_replica_lag_seconds", L{"app": "app1", "server": "server2"}, 4},
		{"mharaft_probe_duration_seconds", s1, 2},
		{"mharaft_failover_phase_duration_seconds", L{"phase": "save_binlog"}, 1},
	}
	for _, tc := range tests {
		if got, _ := value(t, m, tc.family, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.family, tc.labels, got, tc.want)
		}
	}

	m.ForgetServer("app1", "server1")
	if _, n := value(t, m, "mharaft_probe_failures_total", nil); n != 0 {
		t.Errorf("after ForgetServer: %d probe failure series left", n)
	}
	if _, n := value(t, m, "mharaft_replica_lag_seconds", nil); n != 1 {
		t.Errorf("after ForgetServer(server1): %d lag series, want server2's only", n)
	}
}

func TestNilMetricsIsSafe(t *testing.T) {
	var m *metrics.Metrics
	m.SetRaftRole("leader")
	m.SetRaftTerm(1)
	m.ObserveProbe("a", "s", time.Second)
	m.ProbeFailed("a", "s", "timeout")
	m.Verdict("a", "Healthy")
	m.Failover("a", "switch", "success")
	m.ObservePhase("p", time.Second)
	m.SetReplicaLag("a", "s", 1)
	m.ForgetServer("a", "s")
}
