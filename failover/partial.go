package failover

import "context"

// settleLatest makes sure the latest replica's position, where the dead
// master's tail starts, is a transaction boundary. Its relay log may end
// inside a transaction (see node.partial); the tail must then start where
// that transaction starts, or its first part would be lost and its second
// part applied alone. Only a replica whose SQL thread is behind its IO
// thread can be in that state: its relay log is applied first (as phase 3
// would), and if it turns out partial the latest replica is chosen again.
func (r *run) settleLatest(ctx context.Context, st *failoverState) error {
	for range st.all {
		latest := st.latest
		if latest.replica == nil || latest.execCoord().Compare(latest.readCoord()) >= 0 {
			return nil
		}
		r.logf("Waiting until all relay logs are applied on the latest slave %s (executed %s of %s).", latest, latest.execCoord(), latest.readCoord())
		if err := r.waitRelayApplied(ctx, latest); err != nil {
			return err
		}
		if !latest.partial {
			return nil
		}
		r.identifyLatest(st)
	}
	return nil
}

// waitRelayApplied is node.waitRelayApplied, logging a relay log found to
// end inside a transaction.
func (r *run) waitRelayApplied(ctx context.Context, n *node) error {
	was := n.partial
	if err := n.waitRelayApplied(ctx, r.opts.waitTimeout()); err != nil {
		return err
	}
	if n.partial && !was {
		r.logf("%s: its relay log ends inside a transaction that starts at %s (read up to %s:%d); the rest will not come. "+
			"It counts as having received up to %s: the whole transaction comes from the latest slave's relay log or the dead master's binlog.",
			n, n.execCoord(), n.replica.MasterLogFile, n.replica.ReadMasterLogPos, n.execCoord())
	}
	return nil
}
