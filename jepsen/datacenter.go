package jepsen

import (
	"fmt"
	"sort"
	"strings"
)

// Datacenter layouts (RoundSetup.Layout, Options.Layout).
const (
	// LayoutThreeDC: dc1 holds db1 (the master), m1 and its clients; the
	// other DB hosts are split between dc2 (the first half) and dc3; m2
	// is in dc2, m3 in dc3 (more managers go round the three). Any one
	// datacenter can be lost and the two others keep a majority of
	// managers that spans two datacenters.
	LayoutThreeDC = "3dc"
	// LayoutTieBreaker: two datacenters with DB hosts and a manager each
	// (dc1: db1 and m1; dc2: every other DB host and m2) and a third one
	// with a manager only (dc3: m3), the tie-breaker. It has no clients.
	LayoutTieBreaker = "2dc+tb"
)

// Layouts are the layouts a campaign knows.
var Layouts = []string{LayoutThreeDC, LayoutTieBreaker}

// DCLayout says which datacenter every host of a round belongs to.
type DCLayout struct {
	Name string            `json:"name"`
	DCs  []string          `json:"dcs"`  // dc1, dc2, dc3
	Of   map[string]string `json:"of"`   // host name (db1, m2) -> datacenter
	Addr map[string]string `json:"addr"` // datacenter -> its clients' source address ("" when it has none)
}

// NewLayout places dbs DB hosts (db1 is the master) and managers managers
// in the named layout.
func NewLayout(name string, dbs, managers int) (*DCLayout, error) {
	if dbs < 2 || managers < 1 {
		return nil, fmt.Errorf("datacenter layout %s needs at least 2 DB hosts and 1 manager (have %d and %d)", name, dbs, managers)
	}
	l := &DCLayout{Name: name, DCs: []string{"dc1", "dc2", "dc3"}, Of: map[string]string{}, Addr: map[string]string{}}
	l.Of["db1"] = "dc1"
	switch name {
	case LayoutThreeDC:
		rest := dbs - 1
		toDC2 := (rest + 1) / 2
		for i := 2; i <= dbs; i++ {
			if i-1 <= toDC2 {
				l.Of[fmt.Sprintf("db%d", i)] = "dc2"
			} else {
				l.Of[fmt.Sprintf("db%d", i)] = "dc3"
			}
		}
		for i := 1; i <= managers; i++ {
			l.Of[fmt.Sprintf("m%d", i)] = l.DCs[(i-1)%3]
		}
	case LayoutTieBreaker:
		for i := 2; i <= dbs; i++ {
			l.Of[fmt.Sprintf("db%d", i)] = "dc2"
		}
		// m1 dc1, m2 dc2, m3 dc3 (the tie-breaker); more managers go to
		// dc1 and dc2 in turn: the tie-breaker stays one manager.
		for i := 1; i <= managers; i++ {
			dc := "dc3"
			if i != 3 {
				dc = l.DCs[(i-1)%2]
				if i > 3 {
					dc = l.DCs[i%2]
				}
			}
			l.Of[fmt.Sprintf("m%d", i)] = dc
		}
	default:
		return nil, fmt.Errorf("unknown datacenter layout %q (known: %s)", name, strings.Join(Layouts, ", "))
	}
	return l, nil
}

// Hosts returns the hosts (db and manager names) of dc, sorted.
func (l *DCLayout) Hosts(dc string) []string {
	var out []string
	for h, d := range l.Of {
		if d == dc {
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out
}

// HasDB reports whether dc holds a DB host (then it has clients).
func (l *DCLayout) HasDB(dc string) bool {
	for _, h := range l.Hosts(dc) {
		if strings.HasPrefix(h, "db") {
			return true
		}
	}
	return false
}

// ClientDCs are the datacenters with clients (those with a DB host).
func (l *DCLayout) ClientDCs() []string {
	var out []string
	for _, dc := range l.DCs {
		if l.HasDB(dc) {
			out = append(out, dc)
		}
	}
	return out
}

// String is "dc1: db1 m1 clients; dc2: ...".
func (l *DCLayout) String() string {
	var parts []string
	for _, dc := range l.DCs {
		hs := l.Hosts(dc)
		if l.Addr[dc] != "" {
			hs = append(hs, "clients("+l.Addr[dc]+")")
		}
		parts = append(parts, dc+": "+strings.Join(hs, " "))
	}
	return l.Name + " (" + strings.Join(parts, "; ") + ")"
}

// clientOctet is the last octet of dc's client address on the harness's
// veth: dc1 .241, dc2 .242, ...
func clientOctet(l *DCLayout, dc string) int {
	for i, d := range l.DCs {
		if d == dc {
			return 241 + i
		}
	}
	return 0
}
