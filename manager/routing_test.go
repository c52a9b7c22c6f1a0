package manager

import (
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/detector"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/fsm"
)

// TestRoutingView: the primary and the replicas a manager reports to the
// load balancers, from the replicated state and its own samples.
func TestRoutingView(t *testing.T) {
	now := time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)
	servers := []fsm.Server{
		{Name: "server1", Hostname: "127.0.0.1", Port: 3306},
		{Name: "server2", Hostname: "127.0.0.1", Port: 3307},
		{Name: "server3", Hostname: "127.0.0.1", Port: 3308},
	}
	topo := func(age time.Duration, lag2, lag3 time.Duration) *fsm.Topology {
		return &fsm.Topology{ObservedAt: now.Add(-age), Servers: []fsm.ServerStatus{
			{Addr: "127.0.0.1:3306", Role: "master", Reachable: true},
			{Addr: "127.0.0.1:3307", Role: "replica", Reachable: true, Lag: lag2, LagKnown: true},
			{Addr: "127.0.0.1:3308", Role: "replica", Reachable: true, Lag: lag3, LagKnown: true},
		}}
	}
	healthy := func() fsm.AppState {
		return fsm.AppState{Name: "app1", Servers: servers, Master: "127.0.0.1:3306", Topology: topo(2*time.Second, 0, 3*time.Second)}
	}
	sample := func(name string, age time.Duration) detector.ReplicaView {
		return detector.ReplicaView{Server: name, Reachable: true, SampledAt: now.Add(-age), ReplicaOfMaster: true, IORunning: "Yes", SQLRunning: "Yes"}
	}
	watching1 := routingInput{current: true, now: now, sampledNow: now, topoMaxAge: 15 * time.Second, sampleMaxAge: 5 * time.Second,
		watched: "server1", probe: &detector.Observation{Server: "server1", Reachable: true},
		replicas: []detector.ReplicaView{sample("server2", time.Second), sample("server3", time.Second)}}
	journal := func(phase, status string) fsm.JournalEntry {
		return fsm.JournalEntry{Epoch: 4, Phase: phase, Status: status}
	}
	plans := func(newMaster string) []fsm.EpochPlan {
		return []fsm.EpochPlan{{Epoch: 4, Plan: (&failover.Plan{NewMaster: newMaster}).Encode()}}
	}
	lock := func(kind string) *fsm.Lock {
		return &fsm.Lock{Epoch: 4, Holder: "m1", Kind: kind, OldMaster: "127.0.0.1:3306"}
	}

	type want struct {
		primary  string
		replicas map[string]time.Duration // name -> lag (-1: lag unknown)
	}
	lags := func(kv ...any) map[string]time.Duration {
		m := map[string]time.Duration{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(time.Duration)
		}
		return m
	}
	tests := []struct {
		name string
		st   func() fsm.AppState
		in   func(routingInput) routingInput
		want want
	}{
		{"healthy", healthy, nil, want{"server1", lags("server2", time.Duration(0), "server3", 3*time.Second)}},
		{"no master known yet", func() fsm.AppState { s := healthy(); s.Master = ""; return s }, nil,
			want{"", lags()}},
		{"master down in this manager's probe", healthy, func(in routingInput) routingInput {
			in.probe = &detector.Observation{Server: "server1", Reachable: false, Kind: "refused"}
			return in
		}, want{"", lags("server2", time.Duration(0), "server3", 3*time.Second)}},
		{"no probe yet", healthy, func(in routingInput) routingInput { in.probe = nil; return in },
			want{"server1", lags("server2", time.Duration(0), "server3", 3*time.Second)}},
		{"failover lock, before activation", func() fsm.AppState {
			s := healthy()
			s.Lock = lock(fsm.KindAuto)
			s.Journal = []fsm.JournalEntry{journal(PhaseActivate, fsm.PhaseStarted)}
			s.Plans = plans("server2")
			return s
		}, nil, want{"", lags("server2", time.Duration(0), "server3", 3*time.Second)}},
		{"failover lock, new master activated", func() fsm.AppState {
			s := healthy()
			s.Lock = lock(fsm.KindAuto)
			s.Journal = []fsm.JournalEntry{journal(PhaseActivate, fsm.PhaseStarted), journal(PhaseActivate, fsm.PhaseDone),
				journal(failover.PhaseReplicas, fsm.PhaseStarted)}
			s.Plans = plans("server2")
			return s
		}, nil, want{"server2", lags("server3", 3*time.Second)}},
		{"halted after activation", func() fsm.AppState {
			s := healthy()
			s.Lock = lock(fsm.KindManual)
			s.Lock.Halted = true
			s.Journal = []fsm.JournalEntry{journal(PhaseActivate, fsm.PhaseDone), journal(failover.PhaseReplicas, fsm.PhaseFailed)}
			s.Plans = plans("server3")
			return s
		}, nil, want{"server3", lags("server2", time.Duration(0))}},
		{"switch lock, old master fenced", func() fsm.AppState {
			s := healthy()
			s.Lock = lock(fsm.KindSwitch)
			s.Journal = []fsm.JournalEntry{journal(failover.SwitchFence, fsm.PhaseDone)}
			s.Plans = plans("server2")
			return s
		}, nil, want{"", lags("server2", time.Duration(0), "server3", 3*time.Second)}},
		{"switch lock, new master promoted", func() fsm.AppState {
			s := healthy()
			s.Lock = lock(fsm.KindSwitch)
			s.Journal = []fsm.JournalEntry{journal(failover.SwitchPromote, fsm.PhaseDone)}
			s.Plans = plans("server2")
			return s
		}, nil, want{"server2", lags("server3", 3*time.Second)}},
		{"rejoin lock keeps the master", func() fsm.AppState {
			s := healthy()
			s.Lock = lock(fsm.KindRejoin)
			s.Journal = []fsm.JournalEntry{journal(PhaseActivate, fsm.PhaseDone)} // the last failover's
			s.Plans = plans("server3")
			return s
		}, nil, want{"server1", lags("server2", time.Duration(0), "server3", 3*time.Second)}},
		{"lagging replica", func() fsm.AppState { s := healthy(); s.Topology = topo(time.Second, 0, 90*time.Second); return s }, nil,
			want{"server1", lags("server2", time.Duration(0), "server3", 90*time.Second)}},
		{"stale topology: lag unknown", func() fsm.AppState { s := healthy(); s.Topology = topo(20*time.Second, 0, 0); return s }, nil,
			want{"server1", lags("server2", time.Duration(-1), "server3", time.Duration(-1))}},
		{"no topology: lag unknown", func() fsm.AppState { s := healthy(); s.Topology = nil; return s }, nil,
			want{"server1", lags("server2", time.Duration(-1), "server3", time.Duration(-1))}},
		{"old sample: not a replica", healthy, func(in routingInput) routingInput {
			in.replicas = []detector.ReplicaView{sample("server2", 6*time.Second), sample("server3", time.Second)}
			return in
		}, want{"server1", lags("server3", 3*time.Second)}},
		{"IO thread connecting: not a replica", healthy, func(in routingInput) routingInput {
			s := sample("server2", time.Second)
			s.IORunning = "Connecting"
			in.replicas = []detector.ReplicaView{s, sample("server3", time.Second)}
			return in
		}, want{"server1", lags("server3", 3*time.Second)}},
		{"SQL thread stopped: not a replica", healthy, func(in routingInput) routingInput {
			s := sample("server3", time.Second)
			s.SQLRunning = "No"
			in.replicas = []detector.ReplicaView{sample("server2", time.Second), s}
			return in
		}, want{"server1", lags("server2", time.Duration(0))}},
		{"replicating from another server: not a replica", healthy, func(in routingInput) routingInput {
			s := sample("server3", time.Second)
			s.ReplicaOfMaster = false
			in.replicas = []detector.ReplicaView{sample("server2", time.Second), s}
			return in
		}, want{"server1", lags("server2", time.Duration(0))}},
		{"detector still on the old master", func() fsm.AppState { s := healthy(); s.Master = "127.0.0.1:3307"; return s }, nil,
			want{"server2", lags()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := watching1
			if tc.in != nil {
				in = tc.in(in)
			}
			st := tc.st()
			v := routingView(&st, in)
			if !v.Current || len(v.Servers) != 3 {
				t.Fatalf("view %+v, want current with 3 servers", v)
			}
			var primaries []string
			got := map[string]time.Duration{}
			for _, s := range v.Servers {
				if s.Primary {
					primaries = append(primaries, s.Name)
				}
				if s.Replica {
					got[s.Name] = -1
					if s.Lag != nil {
						got[s.Name] = *s.Lag
					}
				}
				if s.Primary && s.Replica {
					t.Errorf("%s is primary and replica", s.Name)
				}
			}
			if tc.want.primary == "" && len(primaries) != 0 || tc.want.primary != "" && (len(primaries) != 1 || primaries[0] != tc.want.primary) {
				t.Errorf("primaries %v, want %q", primaries, tc.want.primary)
			}
			if len(got) != len(tc.want.replicas) {
				t.Errorf("replicas %v, want %v", got, tc.want.replicas)
			}
			for n, l := range tc.want.replicas {
				if g, ok := got[n]; !ok || g != l {
					t.Errorf("replica %s lag %v (listed %v), want %v", n, g, ok, l)
				}
			}
		})
	}
}

// TestRoutingViewNotCurrent: a manager whose state may be behind says so;
// the API then answers 503 whatever the view holds.
func TestRoutingViewNotCurrent(t *testing.T) {
	st := fsm.AppState{Name: "app1", Master: "127.0.0.1:3306", Servers: []fsm.Server{{Name: "server1", Hostname: "127.0.0.1", Port: 3306}}}
	v := routingView(&st, routingInput{current: false})
	if v.Current {
		t.Fatalf("view %+v is current", v)
	}
	want := api.RoutingServer{Name: "server1", Addr: "127.0.0.1:3306", Primary: true}
	if len(v.Servers) != 1 || v.Servers[0].Name != want.Name || v.Servers[0].Addr != want.Addr {
		t.Fatalf("servers %+v, want %+v", v.Servers, want)
	}
}
