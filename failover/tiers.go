package failover

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mharaft/mharaft/config"
)

// Replication below a replica (multi_tier_slave) and master-master pairs,
// as MHA's validate_current_master, get_primary_master and
// validate_master_ip_port decide them, on the connected servers.
//
//   - A server that replicates from another configured server than the
//     master, whose chain of upstreams leads to the master, is "below a
//     replica" (MHA's unmanaged slave). With multi_tier_slave=1 in its
//     block it is accepted and left where it is: never elected, never
//     repointed, its relay logs never read; servers below it follow its
//     upstream when that one moves. Without the setting it is refused.
//   - Every server such a server replicates from (an intermediate master)
//     must be read_only: MHA refuses "two or more masters writable".
//   - The master itself may replicate from one of its replicas (the
//     passive master of a master-master pair); the switch takes as the
//     current master the one writable server of such a pair.

// upstreamOf is the configured server n replicates from, or nil.
func upstreamOf(app *config.App, n *node) *config.Server {
	if n.replica == nil {
		return nil
	}
	for _, s := range app.Servers {
		if n.isReplicaOf(s) {
			return s
		}
	}
	return nil
}

// leadsTo reports whether the chain of upstreams from n, through
// connected replicas, reaches m.
func leadsTo(app *config.App, nodes map[string]*node, n *node, m *config.Server) bool {
	seen := map[string]bool{n.srv.Name: true}
	for cur := n; ; {
		up := upstreamOf(app, cur)
		switch {
		case up == nil:
			return false
		case up == m:
			return true
		case seen[up.Name]:
			return false
		}
		seen[up.Name] = true
		next, ok := nodes[up.Name]
		if !ok {
			return false
		}
		cur = next
	}
}

// belowReplica finds whether n, which does not replicate from master m,
// is below a replica (its upstream is another configured server whose
// chain leads to m): up is that upstream, nil when n is not below a
// replica; refusal says why it is not accepted there ("" when its block
// has multi_tier_slave=1), in MHA's words.
func belowReplica(app *config.App, nodes map[string]*node, n *node, m *config.Server) (up *config.Server, refusal string) {
	up = upstreamOf(app, n)
	if up == nil || up == m || !leadsTo(app, nodes, n, m) {
		return nil, ""
	}
	if !n.srv.MultiTierSlave {
		return up, fmt.Sprintf("%s replicates from %s, but the real master is %s: a replica of a replica is refused unless "+
			"multi_tier_slave=1 is set (in [server default] or in [%s]), which leaves it below %s in failovers and switches",
			n, up, m, n.srv.Name, up.Name)
	}
	return up, ""
}

// checkIntermediates refuses when a server that replicas below a replica
// hang from is writable (MHA: "two or more masters are either writable
// or dead"): below names each accepted server's upstream.
func checkIntermediates(nodes map[string]*node, below map[string]*config.Server) error {
	var writable []string
	seen := map[string]bool{}
	for _, up := range below {
		n, ok := nodes[up.Name]
		if !ok || seen[up.Name] {
			continue
		}
		seen[up.Name] = true
		if !n.readOnly {
			writable = append(writable, n.String())
		}
	}
	if len(writable) == 0 {
		return nil
	}
	sort.Strings(writable)
	return fmt.Errorf("%w: multi-master configuration detected, but two or more masters are writable: %s has replicas below it and read_only=0; "+
		"SET GLOBAL read_only=1 on it (a replica that other servers replicate from must not take writes)", ErrRefused, strings.Join(writable, ", "))
}

// belowNames lists "server3 below server2" for the log and the report.
func belowNames(below map[string]*config.Server) []string {
	var out []string
	for name, up := range below {
		out = append(out, name+" below "+up.Name)
	}
	sort.Strings(out)
	return out
}

// detachedNode is a server that keeps a replica configuration but
// follows nobody (writable, both threads stopped): the new master of an
// earlier failover or switch with skip_reset_slave=1. It counts as a
// master, as in topology.
func detachedNode(n *node) bool {
	return n.replica != nil && !n.readOnly && !n.replica.SQLRunning && !n.replica.IOThreadRunning()
}

// currentMaster is the master of an online switch: the one connected
// server that is not a replica (or one detachedNode); or, when every server is a replica, the
// writable server of a master-master pair (two servers replicating from
// each other, MHA's active master; the other, read_only, is the passive
// one). A pair with both or neither writable is refused, as MHA does.
func currentMaster(app *config.App, nodes map[string]*node) (*node, error) {
	var orig *node
	for _, s := range app.Servers {
		n, ok := nodes[s.Name]
		if !ok || n.replica != nil && !detachedNode(n) {
			continue
		}
		if orig != nil {
			return nil, fmt.Errorf("%w: two servers are not replicas: %s and %s", ErrRefused, orig, n)
		}
		orig = n
	}
	if orig != nil {
		return orig, nil
	}
	var writable, pair []*node
	for _, s := range app.Servers {
		n, ok := nodes[s.Name]
		if !ok {
			continue
		}
		up := upstreamOf(app, n)
		if up == nil {
			continue
		}
		other, ok := nodes[up.Name]
		if !ok || upstreamOf(app, other) != n.srv {
			continue
		}
		pair = append(pair, n)
		if !n.readOnly {
			writable = append(writable, n)
		}
	}
	switch {
	case len(pair) == 0:
		return nil, fmt.Errorf("%w: no current master: every server is a replica", ErrRefused)
	case len(writable) == 1 && len(pair) == 2:
		return writable[0], nil
	case len(writable) == 0:
		return nil, fmt.Errorf("%w: multi-master configuration detected, but all of them are read-only (%s): "+
			"SET GLOBAL read_only=0 on the active master, the one the application writes to", ErrRefused, nodeNames(pair))
	}
	return nil, fmt.Errorf("%w: multi-master configuration detected, but two or more masters are writable (%s replicate from each other, writable: %s): "+
		"SET GLOBAL read_only=1 on the passive master, so that exactly one takes writes", ErrRefused, nodeNames(pair), nodeNames(writable))
}

func nodeNames(ns []*node) string {
	var out []string
	for _, n := range ns {
		out = append(out, n.String())
	}
	return strings.Join(out, ", ")
}
