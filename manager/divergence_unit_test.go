package manager

import (
	"slices"
	"testing"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/fsm"
)

// TestWithoutDiverged: a server with an active divergence is left out of a
// pipeline's servers, unless it is rejoined, the master, or seen
// replicating from the master.
func TestWithoutDiverged(t *testing.T) {
	app := &config.App{Name: "app1", Servers: []*config.Server{
		{Name: "server1", Hostname: "h", IP: "10.0.0.1", Port: 3306},
		{Name: "server2", Hostname: "h", IP: "10.0.0.2", Port: 3306},
		{Name: "server3", Hostname: "h", IP: "10.0.0.3", Port: 3306},
	}}
	base := fsm.AppState{Name: "app1", Master: "10.0.0.2:3306"}
	for _, s := range app.Servers {
		base.Servers = append(base.Servers, fsmServer(s))
	}
	div := func(state string) []fsm.Divergence {
		return []fsm.Divergence{{Server: "server1", State: state}}
	}
	tests := []struct {
		name string
		divs []fsm.Divergence
		topo *fsm.Topology
		want []string
	}{
		{"none", nil, nil, []string{"server1", "server2", "server3"}},
		{"detected", div(fsm.DivergenceDetected), nil, []string{"server2", "server3"}},
		{"reconciled", div(fsm.DivergenceReconciled), nil, []string{"server2", "server3"}},
		{"rejoined", div(fsm.DivergenceRejoined), nil, []string{"server1", "server2", "server3"}},
		{"replicating from the master", div(fsm.DivergenceDetected),
			&fsm.Topology{Servers: []fsm.ServerStatus{{Addr: "10.0.0.1:3306", Role: "replica", Reachable: true, ReplicatingFrom: "10.0.0.2:3306"}}},
			[]string{"server1", "server2", "server3"}},
		{"the master itself", []fsm.Divergence{{Server: "server2", State: fsm.DivergenceDetected}}, nil, []string{"server1", "server2", "server3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := base
			st.Divergences, st.Topology = tc.divs, tc.topo
			var got []string
			for _, s := range withoutDiverged(app, &st).Servers {
				got = append(got, s.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("servers %v, want %v", got, tc.want)
			}
			if len(app.Servers) != 3 {
				t.Fatal("the configured app was modified")
			}
		})
	}
}
