package failover

import "context"

// cleanupNewMaster is phase 5 (MHA's "New master cleanup phase"): the new
// master forgets its replication from the dead master (STOP SLAVE, RESET
// SLAVE ALL). Repeating it changes nothing.
func (r *run) cleanupNewMaster(ctx context.Context, st *failoverState) error {
	if err := st.newM.exec(ctx, st.newM.d.StopReplica(), st.newM.d.ResetReplicaAll()); err != nil {
		return err
	}
	r.rep.addf("%s: Resetting slave info succeeded.", st.newM.srv)
	return nil
}
