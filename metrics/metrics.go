package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every series of this package.
const Namespace = "mharaft"

// RaftRoles are the values of the role label of mharaft_raft_role; all of
// them are exported from the start, so a scrape always sees the family.
var RaftRoles = []string{"leader", "follower", "candidate", "shutdown"}

// Metrics holds the registry and every collector the daemon updates.
type Metrics struct {
	Registry *prometheus.Registry

	RaftRole      *prometheus.GaugeVec     // role
	RaftTerm      prometheus.Gauge         //
	ProbeLatency  *prometheus.HistogramVec // app, server
	ProbeFailures *prometheus.CounterVec   // app, server, kind
	Verdicts      *prometheus.CounterVec   // app, verdict
	Failovers     *prometheus.CounterVec   // app, kind, result
	PhaseDuration *prometheus.HistogramVec // phase
	ReplicaLag    *prometheus.GaugeVec     // app, server
	RaftEntries   *prometheus.CounterVec   // type
	RaftBytes     *prometheus.CounterVec   // type
	PublishTime   *prometheus.HistogramVec // batch: change, heartbeat
}

// New builds a fresh registry with the Go and process collectors and every
// mharaft collector registered.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		RaftRole: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "raft_role",
			Help: "1 for this manager's current Raft role, 0 for the other roles.",
		}, []string{"role"}),
		RaftTerm: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "raft_term",
			Help: "Current Raft term as this manager sees it.",
		}),
		ProbeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "probe_duration_seconds",
			Help:    "Latency of successful probes of a MySQL server.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, []string{"app", "server"}),
		ProbeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "probe_failures_total",
			Help: "Failed probes of a MySQL server, by failure kind.",
		}, []string{"app", "server", "kind"}),
		Verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "verdicts_total",
			Help: "Verdicts the failure detector reached about an application's master.",
		}, []string{"app", "verdict"}),
		Failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "failovers_total",
			Help: "Finished failovers and switches, by kind and result.",
		}, []string{"app", "kind", "result"}),
		PhaseDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "failover_phase_duration_seconds",
			Help:    "Duration of each failover/switch pipeline phase.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"phase"}),
		ReplicaLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "replica_lag_seconds",
			Help: "Seconds_Behind_Master of a replica at its last sample.",
		}, []string{"app", "server"}),
		RaftEntries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "raft_entries_applied_total",
			Help: "Raft log entries (FSM commands) this manager applied, by command type; every manager applies every entry.",
		}, []string{"type"}),
		RaftBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "raft_entry_bytes_applied_total",
			Help: "Bytes of the Raft log entries this manager applied, by command type.",
		}, []string{"type"}),
		PublishTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "observation_publish_seconds",
			Help:    "Time to commit one batch of this manager's observations through Raft: batch=change (changed observations, flushed at once) or heartbeat (the refresh of unchanged ones).",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, []string{"batch"}),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.RaftRole, m.RaftTerm, m.ProbeLatency, m.ProbeFailures,
		m.Verdicts, m.Failovers, m.PhaseDuration, m.ReplicaLag,
		m.RaftEntries, m.RaftBytes, m.PublishTime,
	)
	m.SetRaftRole("follower")
	return m
}

// SetRaftRole sets the gauge of role to 1 and every other role to 0. An
// unknown role gets its own series, so nothing is lost.
func (m *Metrics) SetRaftRole(role string) {
	if m == nil {
		return
	}
	for _, r := range RaftRoles {
		m.RaftRole.WithLabelValues(r).Set(0)
	}
	m.RaftRole.WithLabelValues(role).Set(1)
}

// SetRaftTerm records the current Raft term.
func (m *Metrics) SetRaftTerm(term uint64) {
	if m == nil {
		return
	}
	m.RaftTerm.Set(float64(term))
}

// ObserveProbe records the latency of a successful probe of server.
func (m *Metrics) ObserveProbe(app, server string, d time.Duration) {
	if m == nil {
		return
	}
	m.ProbeLatency.WithLabelValues(app, server).Observe(d.Seconds())
}

// ProbeFailed counts a failed probe of server; kind says how it failed.
func (m *Metrics) ProbeFailed(app, server, kind string) {
	if m == nil {
		return
	}
	m.ProbeFailures.WithLabelValues(app, server, kind).Inc()
}

// Verdict counts a verdict of the failure detector about app's master.
func (m *Metrics) Verdict(app, verdict string) {
	if m == nil {
		return
	}
	m.Verdicts.WithLabelValues(app, verdict).Inc()
}

// Failover counts a finished pipeline of app.
func (m *Metrics) Failover(app, kind, result string) {
	if m == nil {
		return
	}
	m.Failovers.WithLabelValues(app, kind, result).Inc()
}

// ObservePhase records how long a pipeline phase took.
func (m *Metrics) ObservePhase(phase string, d time.Duration) {
	if m == nil {
		return
	}
	m.PhaseDuration.WithLabelValues(phase).Observe(d.Seconds())
}

// RaftEntryApplied counts one applied Raft log entry of command type
// typ (fsm.CommandType's name) and size bytes.
func (m *Metrics) RaftEntryApplied(typ string, size int) {
	if m == nil {
		return
	}
	m.RaftEntries.WithLabelValues(typ).Inc()
	m.RaftBytes.WithLabelValues(typ).Add(float64(size))
}

// ObservePublish records how long one batch of observations took to
// commit; batch is "change" or "heartbeat".
func (m *Metrics) ObservePublish(batch string, d time.Duration) {
	if m == nil {
		return
	}
	m.PublishTime.WithLabelValues(batch).Observe(d.Seconds())
}

// SetReplicaLag records a replica's lag in seconds.
func (m *Metrics) SetReplicaLag(app, server string, seconds float64) {
	if m == nil {
		return
	}
	m.ReplicaLag.WithLabelValues(app, server).Set(seconds)
}

// ForgetServer drops every series of server in app (probe latency and
// failures, replica lag), for a server removed from the application.
func (m *Metrics) ForgetServer(app, server string) {
	if m == nil {
		return
	}
	labels := prometheus.Labels{"app": app, "server": server}
	m.ProbeLatency.DeletePartialMatch(labels)
	m.ProbeFailures.DeletePartialMatch(labels)
	m.ReplicaLag.DeletePartialMatch(labels)
}
