package manager

import (
	"context"
	"sort"
	"time"

	"github.com/mharaft/mharaft/fsm"
	"github.com/mharaft/mharaft/topology"
)

// discoverTimeout bounds one discovery of one application.
const discoverTimeout = 5 * time.Second

// discoveryLoop stores a topology summary of every application (leader
// only) so that status on any node shows it: every DiscoveryInterval, and
// at once for the applications requestDiscovery names (a pipeline ended,
// a verdict changed, this node became leader).
func (m *Manager) discoveryLoop(ctx context.Context) {
	tick := time.NewTicker(m.cfg.DiscoveryInterval)
	defer tick.Stop()
	for {
		all := false
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			all = true
		case <-m.discoverWake:
		}
		lctx, _, ok := m.leaderContext()
		if !ok {
			continue
		}
		for _, name := range m.appsToDiscover(all) {
			m.discoverApp(lctx, name)
		}
	}
}

// requestDiscovery asks the discovery loop to discover app now. Requests
// made while a discovery runs are served right after it.
func (m *Manager) requestDiscovery(app string) {
	m.mu.Lock()
	m.rediscover[app] = true
	m.mu.Unlock()
	wake(m.discoverWake)
}

// appsToDiscover takes the pending requests: every application when all,
// else the requested ones, sorted.
func (m *Manager) appsToDiscover(all bool) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for name := range m.apps {
		if all || m.rediscover[name] {
			names = append(names, name)
		}
	}
	clear(m.rediscover)
	sort.Strings(names)
	return names
}

// discoverApp discovers one application and stores its summary. The
// summary's ObservedAt is when the discovery started (this node's m.now()):
// a status compares it with the time the master last changed, and a
// discovery that started before the change may have read the old tree.
func (m *Manager) discoverApp(lctx context.Context, name string) {
	st, ok := m.fsm.App(name)
	if !ok {
		return
	}
	app := m.effectiveApp(name, &st)
	started := m.now()
	dctx, cancel := context.WithTimeout(lctx, discoverTimeout)
	topo := topology.Discover(dctx, app)
	cancel()
	if lctx.Err() != nil {
		return // the period ended during the discovery: nothing to store
	}
	m.observeReplicaLag(name, topo)
	sum := summarize(topo, &st, started)
	m.noteDiscoveryLogins(name, topo, &sum, st.LastEpoch)
	m.mu.Lock()
	if m.verdictOf[name] == st.Master {
		sum.Verdict = m.verdicts[name] // a verdict about an earlier master is not this tree's
	}
	m.mu.Unlock()
	if _, err := m.applyAsLeader(lctx, fsm.EncodeSetTopology(fsm.SetTopologyCmd{App: name, Topology: sum})); err != nil && lctx.Err() == nil {
		m.log.Warn("store topology", "app", name, "error", err, "epoch", st.LastEpoch)
	}
	m.checkFormerMasters(lctx, name, topo)
}

// summarize turns a discovered topology into the FSM's summary, observed
// at at (the start of the discovery).
func summarize(t *topology.Topology, st *fsm.AppState, at time.Time) fsm.Topology {
	out := fsm.Topology{ObservedAt: at}
	if t.Master != nil {
		out.Master = fsmAddr(st, t.Master.Name())
	}
	for _, s := range t.Servers {
		ss := fsm.ServerStatus{Addr: fsmAddr(st, s.Name()), Reachable: s.Reachable, ReadOnly: s.ReadOnly, ObservedAt: at, Role: "unknown"}
		if ss.Addr == "" {
			ss.Addr = s.Server.Addr()
		}
		if s.Err != nil {
			ss.Error = s.Err.Error()
		}
		switch {
		case t.Master != nil && s == t.Master:
			ss.Role = "master"
		case s.Replica != nil:
			ss.Role = "replica"
		}
		if s.MasterStatus != nil {
			ss.MasterFile, ss.MasterPos = s.MasterStatus.File, uint64(s.MasterStatus.Pos)
		}
		if r := s.Replica; r != nil {
			if s.Upstream != nil {
				ss.ReplicatingFrom = fsmAddr(st, s.Upstream.Name())
			}
			fillReplica(&ss, r)
		}
		out.Servers = append(out.Servers, ss)
	}
	return out
}
