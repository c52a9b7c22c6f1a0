package manager

// Prometheus wiring: the manager reports to package metrics at the places
// where things happen (raft role changes, probes, verdict changes, released
// locks, journaled phases, discovery samples). Every call is a no-op when
// Config.Metrics is nil.

import (
	"context"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mharaft/mharaft/detector"
	"github.com/mharaft/mharaft/fsm"
	"github.com/mharaft/mharaft/metrics"
	"github.com/mharaft/mharaft/topology"
)

// raftMetricsBackstop re-reads the raft role and term even without an
// observation (a term can change without a state change of this node).
const raftMetricsBackstop = time.Second

// raftMetricsLoop keeps mharaft_raft_role and mharaft_raft_term current:
// it samples them at start, on every raft state or leader observation and
// every raftMetricsBackstop. Replica lag is the leader's measure: a node
// that is not leader drops those series so a scrape never sees a stale lag.
func (m *Manager) raftMetricsLoop(ctx context.Context) {
	mt := m.cfg.Metrics
	if mt == nil {
		return
	}
	obsCh := make(chan raft.Observation, 16)
	obs := raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.RaftState, raft.LeaderObservation:
			return true
		}
		return false
	})
	r := m.node.Raft()
	r.RegisterObserver(obs)
	defer r.DeregisterObserver(obs)
	tick := time.NewTicker(raftMetricsBackstop)
	defer tick.Stop()
	last := ""
	for {
		rs := m.node.Stats()
		role := strings.ToLower(rs.State)
		mt.SetRaftRole(role)
		mt.SetRaftTerm(rs.Term)
		if role != last && role != "leader" {
			mt.ReplicaLag.Reset()
		}
		last = role
		select {
		case <-ctx.Done():
			mt.SetRaftRole("shutdown")
			return
		case <-obsCh:
		case <-tick.C:
		}
	}
}

// detectorMetrics adapts package metrics to detector.Metrics: a probe of
// kind ok is a latency sample, any other kind a failure of that kind.
type detectorMetrics struct{ m *metrics.Metrics }

var _ detector.Metrics = detectorMetrics{}

func (d detectorMetrics) Probe(app, server, kind string, latency time.Duration) {
	if kind == detector.KindOK {
		d.m.ObserveProbe(app, server, latency)
		return
	}
	d.m.ProbeFailed(app, server, kind)
}

// ReplicaSample is not exported: replica lag comes from the leader's
// discovery (observeReplicaLag), which covers every replica.
func (d detectorMetrics) ReplicaSample(app, server string, ok bool, latency time.Duration) {}

// Published is not exported: a failed publish is logged by the detector.
func (d detectorMetrics) Published(app, server, kind string, err error) {}

// detectorConfigMetrics is the detector.Config.Metrics value: nil (the
// detector's NopMetrics) without a registry.
func (m *Manager) detectorConfigMetrics() detector.Metrics {
	if m.cfg.Metrics == nil {
		return nil
	}
	return detectorMetrics{m.cfg.Metrics}
}

// countVerdict counts a verdict when it differs from the previous one of
// the application (prev "" = none yet on this node).
func (m *Manager) countVerdict(app, prev, verdict string) {
	if prev != verdict {
		m.cfg.Metrics.Verdict(app, verdict)
	}
}

// failoverKind is the kind label of mharaft_failovers_total: "switch" for
// an online switch, "failover" for an automatic or manual failover.
func failoverKind(lockKind string) string {
	if lockKind == fsm.KindSwitch {
		return "switch"
	}
	return "failover"
}

// countFailover counts a pipeline whose lock was released with result.
func (m *Manager) countFailover(app, lockKind, result string) {
	m.cfg.Metrics.Failover(app, failoverKind(lockKind), result)
}

// observePhaseDone records the duration of phase of app at epoch, from its
// "started" journal entry (whichever leader wrote it, so a resumed phase
// counts too) to done.
func (m *Manager) observePhaseDone(app string, epoch uint64, phase string, done time.Time) {
	if m.cfg.Metrics == nil {
		return
	}
	st, ok := m.fsm.App(app)
	if !ok {
		return
	}
	for i := len(st.Journal) - 1; i >= 0; i-- {
		e := st.Journal[i]
		if e.Phase == phase && e.Status == fsm.PhaseStarted {
			if e.Epoch <= epoch && !e.At.After(done) {
				m.cfg.Metrics.ObservePhase(phase, done.Sub(e.At))
			}
			return
		}
	}
}

// observeReplicaLag records Seconds_Behind_Master of every replica the
// discovery reached, and drops the series of servers without a known lag
// (the master, a stopped or unreachable replica).
func (m *Manager) observeReplicaLag(app string, t *topology.Topology) {
	mt := m.cfg.Metrics
	if mt == nil {
		return
	}
	for _, s := range t.Servers {
		if r := s.Replica; r != nil && r.SecondsBehindMaster != nil && (t.Master == nil || s != t.Master) {
			mt.SetReplicaLag(app, s.Name(), float64(*r.SecondsBehindMaster))
			continue
		}
		mt.ReplicaLag.DeleteLabelValues(app, s.Name())
	}
}
