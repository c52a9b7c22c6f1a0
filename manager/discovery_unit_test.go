package manager

import (
	"context"
	"testing"

	"github.com/mharaft/mharaft/topology"
)

// TestLightBase: a periodic discovery carries settings from the last one
// of the same leadership period, but every FullDiscoveryEvery-th reads in
// full; a requested one and the first one always read in full.
func TestLightBase(t *testing.T) {
	lctx := context.Background()
	other, cancel := context.WithCancel(lctx) // a later leadership period
	defer cancel()
	topo := &topology.Topology{}
	tests := []struct {
		name     string
		last     *lastDiscovery
		periodic bool
		want     bool // light
	}{
		{"first discovery", nil, true, false},
		{"periodic after a full one", &lastDiscovery{lctx: lctx, topo: topo}, true, true},
		{"requested", &lastDiscovery{lctx: lctx, topo: topo}, false, false},
		{"another leadership period", &lastDiscovery{lctx: other, topo: topo}, true, false},
		{"fifth light one", &lastDiscovery{lctx: lctx, topo: topo, light: FullDiscoveryEvery - 2}, true, true},
		{"sixth: full", &lastDiscovery{lctx: lctx, topo: topo, light: FullDiscoveryEvery - 1}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := lightBase(lctx, tc.last, tc.periodic)
			if (got != nil) != tc.want || got != nil && got != topo {
				t.Errorf("lightBase = %v, want light %v", got, tc.want)
			}
		})
	}
	// Counting from a full read: one full, five light, one full.
	var last *lastDiscovery
	var kinds []bool
	for range 2*FullDiscoveryEvery + 1 {
		base := lightBase(lctx, last, true)
		next := &lastDiscovery{lctx: lctx, topo: topo}
		if base != nil {
			next.light = last.light + 1
		}
		kinds = append(kinds, base != nil)
		last = next
	}
	for i, light := range kinds {
		if want := i%FullDiscoveryEvery != 0; light != want {
			t.Errorf("discovery %d light %v, want %v (sequence %v)", i, light, want, kinds)
		}
	}
}
