package manager

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/mharaft/mharaft/fsm"
	"github.com/mharaft/mharaft/topology"
)

// discoverTimeout bounds one discovery of one application.
const discoverTimeout = 5 * time.Second

// DefaultDiscoveryConcurrency is how many applications the leader's
// periodic discovery reads at once; urgentDiscoveries more may run for the
// applications requestDiscovery names (a pipeline ended, a verdict
// changed), so that these never wait behind a periodic round.
const (
	DefaultDiscoveryConcurrency = 8
	urgentDiscoveries           = 4
)

// FullDiscoveryEvery: every this many periodic discoveries of an
// application, one is a full read (every variable, semi-sync, grants: 30 s
// at the default 5 s interval); the others in between are light
// (topology.Options.Light): they read what changes between discoveries
// (reachability, master and replica status, read_only, the GTID positions,
// server_id and uptime) and carry the rest from the last discovery. A
// requested discovery (requestDiscovery: a pipeline ended, a verdict
// changed, an operator's action) and the first one of an application in a
// leadership period are always full; the topology package reads in full
// whatever it cannot carry (a restart, a change of master or of servers,
// settings FullReadPeriod old).
const FullDiscoveryEvery = 6

// lastDiscovery is an application's last discovery by this leader: the
// base of the next light one.
type lastDiscovery struct {
	lctx  context.Context    // the leadership period it was made in
	topo  *topology.Topology // what it read
	light int                // light discoveries since the last full one
}

// lightBase returns the discovery a discovery of app may carry settings
// from (nil: read in full): only a periodic one, in the same leadership
// period lctx, fewer than FullDiscoveryEvery-1 light ones after a full one.
func lightBase(lctx context.Context, last *lastDiscovery, periodic bool) *topology.Topology {
	if !periodic || last == nil || last.lctx != lctx || last.light >= FullDiscoveryEvery-1 {
		return nil
	}
	return last.topo
}

// anyCarried reports whether some server of t was read light.
func anyCarried(t *topology.Topology) bool {
	for _, s := range t.Servers {
		if s.Carried {
			return true
		}
	}
	return false
}

// discoveryLoop stores a topology summary of every application (leader
// only) so that status on any node shows it: every DiscoveryInterval, and
// at once for the applications requestDiscovery names (a pipeline ended,
// a verdict changed, this node became leader).
//
// Discoveries run in parallel, at most DiscoveryConcurrency periodic ones
// plus urgentDiscoveries requested ones at a time, each bounded by
// discoverTimeout: an unreachable application holds one slot for at most
// that long and delays no other. An application is never discovered twice
// at once: a periodic round skips one still running, and a request made
// while it runs is served right after it. The connections are long-lived
// (topology.Pool, one per server and set of credentials): kept between
// discoveries, closed when a read through them fails, when their server
// left the configuration (checked every round) and when this node is not
// the leader.
func (m *Manager) discoveryLoop(ctx context.Context) {
	tick := time.NewTicker(m.cfg.DiscoveryInterval)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		m.discoPool.Close()
	}()
	periodic := make(chan struct{}, m.cfg.DiscoveryConcurrency)
	urgent := make(chan struct{}, urgentDiscoveries)
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
			m.discoPool.Reset() // only the leader discovers: hold no connections
			m.mu.Lock()
			clear(m.lastDisco)
			m.mu.Unlock()
			continue
		}
		if all {
			m.discoPool.Retain(m.discoveryKeys())
		}
		for _, d := range m.appsToDiscover(all) {
			if !m.startDiscovery(d.name, d.urgent) {
				continue
			}
			sem := periodic
			if d.urgent {
				sem = urgent
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer m.endDiscovery(d.name)
				select {
				case sem <- struct{}{}:
				case <-lctx.Done():
					return
				}
				defer func() { <-sem }()
				m.discoverApp(lctx, d.name, !d.urgent)
			}()
		}
	}
}

// requestDiscovery asks the discovery loop to discover app now. Requests
// made while a discovery of app runs are served right after it.
func (m *Manager) requestDiscovery(app string) {
	m.mu.Lock()
	m.rediscover[app] = true
	m.mu.Unlock()
	wake(m.discoverWake)
}

// pendingDiscovery is one application to discover; urgent when requested.
type pendingDiscovery struct {
	name   string
	urgent bool
}

// appsToDiscover takes the pending requests: every application when all,
// else the requested ones, sorted.
func (m *Manager) appsToDiscover(all bool) []pendingDiscovery {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []pendingDiscovery
	for name := range m.apps {
		if all || m.rediscover[name] {
			out = append(out, pendingDiscovery{name: name, urgent: m.rediscover[name]})
		}
	}
	clear(m.rediscover)
	if all {
		for name := range m.lastDisco {
			if m.apps[name] == nil {
				delete(m.lastDisco, name) // no longer watched
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// startDiscovery marks app as being discovered; false when it already is
// (an urgent request is then kept for endDiscovery to serve).
func (m *Manager) startDiscovery(app string, urgent bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.discovering[app] {
		if urgent {
			m.rediscover[app] = true
		}
		return false
	}
	m.discovering[app] = true
	return true
}

// endDiscovery unmarks app and wakes the loop when a request for it came
// in meanwhile.
func (m *Manager) endDiscovery(app string) {
	m.mu.Lock()
	delete(m.discovering, app)
	again := m.rediscover[app]
	m.mu.Unlock()
	if again {
		wake(m.discoverWake)
	}
}

// discoveryKeys are the pool keys of every server of every application as
// discoverApp reads them: the pool closes the connections of the others.
func (m *Manager) discoveryKeys() map[string]bool {
	m.mu.Lock()
	names := make([]string, 0, len(m.apps))
	for name := range m.apps {
		names = append(names, name)
	}
	m.mu.Unlock()
	keys := map[string]bool{}
	for _, name := range names {
		st, ok := m.fsm.App(name)
		if !ok {
			continue
		}
		app := m.effectiveApp(name, &st)
		if app == nil {
			continue
		}
		for _, srv := range app.Servers {
			keys[topology.PoolKey(app, srv, topology.Options{})] = true
		}
	}
	return keys
}

// discoverApp discovers one application and stores its summary. The
// summary's ObservedAt is when the discovery started (this node's m.now()):
// a status compares it with the time the master last changed, and a
// discovery that started before the change may have read the old tree.
//
// A periodic discovery whose summary equals the stored one (all but the
// times) is not stored while the stored one is younger than
// topologyRefresh and later than the master's last change: an unchanged
// application costs a Raft entry every other interval instead of every
// interval, and its rows stay well within the status's and routing's age
// limits (3 intervals). A periodic summary is stored with others, one
// entry for many applications (topobatch.go). A requested discovery (a
// pipeline ended, a verdict changed, a new leader) is always stored, at
// once.
//
// A periodic discovery is light but every FullDiscoveryEvery-th (see
// there); a requested one reads in full.
func (m *Manager) discoverApp(lctx context.Context, name string, periodic bool) {
	st, ok := m.fsm.App(name)
	if !ok {
		return
	}
	app := m.effectiveApp(name, &st)
	m.mu.Lock()
	last := m.lastDisco[name]
	m.mu.Unlock()
	opts := topology.Options{Pool: m.discoPool, Light: lightBase(lctx, last, periodic)}
	started := m.now()
	dctx, cancel := context.WithTimeout(lctx, discoverTimeout)
	topo := topology.DiscoverWith(dctx, app, opts)
	cancel()
	if lctx.Err() != nil {
		return // the period ended during the discovery: nothing to store
	}
	next := &lastDiscovery{lctx: lctx, topo: topo}
	if opts.Light != nil && anyCarried(topo) {
		next.light = last.light + 1
	}
	m.mu.Lock()
	m.lastDisco[name] = next
	m.mu.Unlock()
	m.observeReplicaLag(name, topo)
	sum := summarize(topo, &st, started)
	m.noteDiscoveryLogins(name, topo, &sum, st.LastEpoch)
	m.mu.Lock()
	if m.verdictOf[name] == st.Master {
		sum.Verdict = m.verdicts[name] // a verdict about an earlier master is not this tree's
	}
	m.mu.Unlock()
	switch {
	case !periodic:
		if _, err := m.applyAsLeader(lctx, fsm.EncodeSetTopology(fsm.SetTopologyCmd{App: name, Topology: sum})); err != nil && lctx.Err() == nil {
			m.log.Warn("store topology", "app", name, "error", err, "epoch", st.LastEpoch)
		}
	case !m.unchangedTopology(name, &st, &sum):
		m.queueTopology(lctx, name, sum) // stored with others (topobatch.go)
	}
	m.checkFormerMasters(lctx, name, topo)
}

// topologyRefresh is the age from which an unchanged summary is stored
// again: one and a half intervals, so that every other periodic discovery
// stores it even when the rounds start a little late or early.
func (m *Manager) topologyRefresh() time.Duration {
	return m.cfg.DiscoveryInterval + m.cfg.DiscoveryInterval/2
}

// unchangedTopology reports whether sum need not be stored: st holds a
// summary equal to it but for the times, younger than topologyRefresh and
// not older than the master's last change.
func (m *Manager) unchangedTopology(name string, st *fsm.AppState, sum *fsm.Topology) bool {
	old := st.Topology
	if old == nil || sum.ObservedAt.Sub(old.ObservedAt) >= m.topologyRefresh() {
		return false
	}
	if c, ok := masterChange(m.fsm.History(name), st.Master); ok && !old.ObservedAt.After(c.Finished) {
		return false
	}
	return sameTopology(old, sum)
}

// sameTopology compares two summaries but for their ObservedAt times.
func sameTopology(a, b *fsm.Topology) bool {
	if a.Master != b.Master || a.Verdict != b.Verdict || len(a.Servers) != len(b.Servers) {
		return false
	}
	for i := range a.Servers {
		x, y := a.Servers[i], b.Servers[i]
		x.ObservedAt, y.ObservedAt = time.Time{}, time.Time{}
		if x != y {
			return false
		}
	}
	return true
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
