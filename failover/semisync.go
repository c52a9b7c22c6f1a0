package failover

import (
	"context"
	"fmt"
	"strings"

	"github.com/mharaft/mharaft/dialect"
)

// Semi-synchronous replication across a failover or a switch.
//
// The election prefers a replica with semi-sync enabled
// (rpl_semi_sync_slave_enabled, rpl_semi_sync_replica_enabled on MySQL
// 8.0.26+): with the wait point AFTER_SYNC every write the master
// acknowledged to a client is in the relay log of at least one such
// replica, so promoting one needs no other server's logs for them.
//
// "As configured" means: semi-sync is in use when any server of the new
// topology (the new master, the replicas repointed to it and, in a switch,
// the old master) has it enabled as a master or as a replica. Then the new
// master gets rpl_semi_sync_master_enabled=ON before its replicas connect
// to it; each replica keeps its own rpl_semi_sync_slave_enabled (its
// my.cnf), and its IO thread, restarted by the repointing, acknowledges
// the new master. Nothing is turned off, and an application without
// semi-sync anywhere is left without it. The decision is made from the
// servers' variables at the time, so a resumed run makes the same one.

// readSemiSync reads n's semi-sync state (either spelling).
func readSemiSync(ctx context.Context, n *node) (dialect.SemiSync, error) {
	vals := func(q string) (map[string]string, error) {
		rows, err := n.queryRows(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", q, n, err)
		}
		out := map[string]string{}
		for _, row := range rows {
			out[row["Variable_name"]] = row["Value"]
		}
		return out, nil
	}
	vars, err := vals(dialect.SemiSyncVariables)
	if err != nil {
		return dialect.SemiSync{}, err
	}
	status, err := vals(dialect.SemiSyncStatus)
	if err != nil {
		return dialect.SemiSync{}, err
	}
	return dialect.ParseSemiSync(vars, status), nil
}

// elect is Elect after marking the candidates that have semi-sync
// enabled; a server whose state cannot be read counts as asynchronous.
func (r *run) elect(ctx context.Context, in ElectionInput) (*Election, error) {
	for _, c := range in.Candidates {
		n := r.nodes[c.Server.Name]
		if n == nil {
			continue
		}
		ss, err := readSemiSync(ctx, n)
		if err != nil {
			r.logf("Semi-sync state of %s: %v (taken as asynchronous)", n, err)
			continue
		}
		c.SemiSync = ss.ReplicaEnabled
	}
	return Elect(in)
}

// enableSemiSync enables semi-sync on the new master as configured (see
// above), before the replicas are repointed to it. A failure is a warning
// in the report, never a failed failover: the topology works
// asynchronously.
func (r *run) enableSemiSync(ctx context.Context, newM *node, others ...*node) {
	inUse := false
	var seen []string
	for _, n := range append([]*node{newM}, others...) {
		if n == nil {
			continue
		}
		ss, err := readSemiSync(ctx, n)
		if err != nil {
			r.logf("Semi-sync state of %s: %v", n, err)
			continue
		}
		if ss.MasterEnabled || ss.ReplicaEnabled {
			inUse = true
			seen = append(seen, n.srv.Name)
		}
	}
	if !inUse {
		return
	}
	mss, err := readSemiSync(ctx, newM)
	if err == nil && mss.MasterEnabled {
		r.logf("Semi-sync (enabled on %s): %s already has %s=ON.", strings.Join(seen, ", "), newM, newM.d.SemiSyncMasterEnabledVar())
		return
	}
	if err == nil && !mss.Known {
		r.rep.addf("%s: WARNING: semi-sync is enabled on %s but %s has no semi-sync variables (plugin not loaded): it runs asynchronously; load the plugin and SET GLOBAL %s=ON",
			newM.srv, strings.Join(seen, ", "), newM.srv, newM.d.SemiSyncMasterEnabledVar())
		return
	}
	if err := newM.exec(ctx, newM.d.SetSemiSyncMaster(true)); err != nil {
		r.rep.addf("%s: WARNING: semi-sync could not be enabled (%v): it runs asynchronously; SET GLOBAL %s=ON on it and in its my.cnf",
			newM.srv, err, newM.d.SemiSyncMasterEnabledVar())
		return
	}
	r.rep.addf("%s: semi-sync enabled on the new master (%s=ON), as on %s.", newM.srv, newM.d.SemiSyncMasterEnabledVar(), strings.Join(seen, ", "))
}
