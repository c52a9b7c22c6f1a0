package manager

import (
	"time"

	"github.com/hashicorp/raft"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/detector"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/fsm"
)

// The routing view (api.RoutingBackend) behind the load balancers'
// GET .../primary and .../replica (docs/HAPROXY.md). Every manager answers
// alone, from its copy of the replicated state and its own probes; the
// rules:
//
//   - Current: the view counts only on a member that is the leader with
//     its leadership period established (barrier applied), or a follower
//     that knows the leader, heard from it within routingContactBound and
//     has applied all but routingApplyGap of the entries it knows to be
//     committed. Any other manager (candidate, cut off, catching up,
//     removed) answers 503 to everything: its state may be behind.
//   - Primary (writableMaster): with no lock, or a rejoin lock (which
//     changes no master), the FSM's master. Under a failover or switch
//     lock, no server until the journal records the new master writable
//     (PhaseActivate or failover.SwitchPromote done: the moment MHA's IP
//     hook has moved the address too), then that new master, also while a
//     halted lock waits for `mhactl ack`. So one server at most, and none
//     while the master is in transition. A primary that this manager's own
//     latest probe finds unreachable is not primary here.
//   - Replica: this manager's detector watches the FSM's master, and its
//     latest sample of the server (at most routingSampleMaxAge old, local
//     clock) says reachable, replicating from that master, IO and SQL
//     threads Yes. Its lag is Seconds_Behind_Master from the leader's last
//     discovery (the replicated topology), unknown when that is older than
//     routingTopologyMaxAge on this manager's clock (a clock off by more
//     than that makes this manager answer 503 for replicas, never 200 for
//     a primary it would not otherwise give).

const (
	// routingContactBound: a follower that heard nothing from the leader
	// for longer may be behind (Raft's heartbeat timeout is 500 ms).
	routingContactBound = time.Second
	// routingApplyGap: committed entries a follower may not have applied
	// yet (in flight) and still answer; more means it is catching up.
	routingApplyGap = 32
	// routingSampleMaxAge bounds the age of the local replica sample (the
	// detector samples every 2 s while routing asks, every 200 ms while
	// the master is unreachable; a manager asked after ReplicaDemand
	// without a question answers from its last sample once, then fresh).
	routingSampleMaxAge = 5 * time.Second
	// routingMinTopologyAge is the least routingTopologyMaxAge: three
	// discoveries at the default interval.
	routingMinTopologyAge = 15 * time.Second
)

var _ api.RoutingBackend = (*Manager)(nil)

// RoutingView is this manager's view of app for the routing endpoints.
func (m *Manager) RoutingView(app string) (api.RoutingView, bool) {
	st, ok := m.fsm.App(app)
	if !ok {
		return api.RoutingView{}, false
	}
	in := routingInput{
		current:      m.routingCurrent(),
		now:          m.now(),
		topoMaxAge:   max(3*m.cfg.DiscoveryInterval, routingMinTopologyAge),
		sampleMaxAge: routingSampleMaxAge,
	}
	m.mu.Lock()
	ad := m.detectors[app]
	if ad != nil {
		in.watched = ad.master
	}
	m.mu.Unlock()
	if ad != nil {
		for _, o := range ad.d.Local() {
			if o.Server == in.watched {
				in.probe = &o
			}
		}
		in.replicas = ad.d.Replicas()
		in.sampledNow = time.Now()
	}
	return routingView(&st, in), true
}

// routingCurrent tells whether this manager's replicated state is
// current enough to answer (see the rules above).
func (m *Manager) routingCurrent() bool {
	if m.NotMember() != nil {
		return false
	}
	if m.node.IsLeader() {
		_, term, ok := m.leaderContext()
		return ok && term == m.node.Term()
	}
	r := m.node.Raft()
	if r.State() != raft.Follower {
		return false
	}
	if _, id := r.LeaderWithID(); id == "" {
		return false
	}
	if time.Since(r.LastContact()) > routingContactBound {
		return false
	}
	return r.CommitIndex() <= r.AppliedIndex()+routingApplyGap
}

// routingInput is what routingView needs besides the application's state.
type routingInput struct {
	current      bool
	now          time.Time     // this manager's clock (stamps of the replicated topology)
	topoMaxAge   time.Duration // older topology: lag unknown
	sampleMaxAge time.Duration // older local replica sample: not a replica
	watched      string        // the server this manager's detector watches ("" none)
	probe        *detector.Observation
	replicas     []detector.ReplicaView // the detector's samples, relative to watched
	sampledNow   time.Time              // local clock for the samples' SampledAt
}

// routingView applies the rules above to one application.
func routingView(st *fsm.AppState, in routingInput) api.RoutingView {
	v := api.RoutingView{Current: in.current}
	primary := writableMaster(st)
	if primary != "" && primary == in.watched && in.probe != nil && !in.probe.Reachable {
		primary = "" // this manager sees it down
	}
	master := ""
	if s, ok := st.Server(st.Master); ok {
		master = s.Name
	}
	samples := map[string]detector.ReplicaView{}
	if master != "" && in.watched == master {
		for _, r := range in.replicas {
			samples[r.Server] = r
		}
	}
	topo := map[string]fsm.ServerStatus{}
	if t := st.Topology; t != nil && in.now.Sub(t.ObservedAt) <= in.topoMaxAge {
		for _, s := range t.Servers {
			topo[s.Addr] = s
		}
	}
	for _, s := range st.Servers {
		rs := api.RoutingServer{Name: s.Name, Addr: s.Addr(), Primary: s.Name == primary}
		if r, ok := samples[s.Name]; ok && !rs.Primary && r.Reachable && r.ReplicaOfMaster &&
			r.IORunning == "Yes" && r.SQLRunning == "Yes" && in.sampledNow.Sub(r.SampledAt) <= in.sampleMaxAge {
			rs.Replica = true
			if t, ok := topo[s.Addr()]; ok && t.LagKnown {
				lag := t.Lag
				rs.Lag = &lag
			}
		}
		v.Servers = append(v.Servers, rs)
	}
	return v
}

// writableMaster is the name of the server that takes the application's
// writes, "" while none does: the FSM's master without a lock or under a
// rejoin lock; under a failover or switch lock the new master once the
// journal has it writable.
func writableMaster(st *fsm.AppState) string {
	if l := st.Lock; l == nil || fsm.KeepsMaster(l.Kind) {
		if s, ok := st.Server(st.Master); ok {
			return s.Name
		}
		return ""
	}
	for i := len(st.Journal) - 1; i >= 0; i-- {
		e := st.Journal[i]
		if e.Status != fsm.PhaseDone || (e.Phase != PhaseActivate && e.Phase != failover.SwitchPromote) {
			continue
		}
		p, err := failover.DecodePlan(st.PlanAt(e.Epoch))
		if err != nil {
			return ""
		}
		if s, ok := st.Server(p.NewMaster); ok && p.NewMaster != "" {
			return s.Name
		}
		return ""
	}
	return ""
}
