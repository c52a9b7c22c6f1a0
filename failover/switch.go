package failover

import (
	"context"
	"time"
)

// Phases of the online switch, as journaled.
const (
	SwitchCheck    = "switch.1 check"
	SwitchFence    = "switch.2 reject updates on the old master"
	SwitchWait     = "switch.3 new master catches up"
	SwitchPromote  = "switch.4 promote the new master"
	SwitchReplicas = "switch.5 repoint replicas"
	SwitchOldSlave = "switch.6 old master becomes a replica"
)

// Switch is the online master switch (masterha_master_switch
// --master_state=alive): check, fence the old master, let the new master
// and the replicas reach the old master's final position, promote, repoint.
// If anything fails before the promotion the fence is undone.
func Switch(ctx context.Context, opts Options) (*Report, error) {
	r := newRun(opts, "switch")
	defer r.closeAll()
	err := r.doSwitch(ctx)
	var slaves []string
	for _, o := range r.rep.Replicas {
		if o.OK {
			slaves = append(slaves, r.opts.App.Server(o.Server).Hostname)
		}
	}
	return r.finish(ctx, err, slaves), err
}

// switchState is what the phases of a switch share besides the plan.
type switchState struct {
	orig, newM *node
	others     []*node // replicas other than the new master
	errs       map[string]error
	// fence holds the old master read-only from phase 2 until the new
	// master is writable (nil when not fenced by this run).
	fence *fence
}

// doSwitch runs the phases in order, each in its file: switch1_check.go,
// switch2_fence.go, switch3_wait.go, switch4_promote.go,
// switch5_replicas.go, switch6_old_master.go. Every phase can be resumed
// (Options.Resume): the servers are connected (and fenced) first, outside
// any phase; a resume binds the plan's servers, fences the old master
// again while the new master is not promoted yet (the earlier run's FLUSH
// TABLES WITH READ LOCK ended with it), skips what a server's state shows
// done, and halts with ErrUnsafeResume naming the phase and what to check
// where it cannot tell.
func (r *run) doSwitch(ctx context.Context) error {
	app := r.opts.App
	st := &switchState{}
	if p := r.opts.Resume; p != nil && p.Interrupted != "" {
		r.logf("Resuming a switch interrupted in %q.", p.Interrupted)
	}
	t0 := time.Now()
	st.errs = r.connectAll(ctx)
	r.rep.phase("connect to all servers", time.Since(t0))
	if err := guardRefusal(st.errs); err != nil {
		return err
	}
	if err := r.phase(ctx, SwitchCheck, func() error { return r.checkSwitch(ctx, st) }); err != nil {
		return err
	}
	if err := r.bindSwitch(st); err != nil {
		return err
	}
	promoted := r.done[SwitchPromote]
	if !promoted && st.newM != nil && st.newM.replica == nil {
		// Resumed: the new master is no longer a replica, so the earlier
		// run got past RESET SLAVE ALL of the promotion.
		promoted = true
	}

	// Fence the old master. From here on, until the promotion, a failure
	// undoes the fence.
	if !promoted && r.done[SwitchFence] {
		if err := r.fenceAgain(ctx, st); err != nil {
			return r.undoFence(ctx, st.orig, st.fence, err)
		}
	}
	if err := r.phase(ctx, SwitchFence, func() error { return r.rejectUpdates(ctx, st) }); err != nil {
		return r.undoFence(ctx, st.orig, st.fence, err)
	}
	if !promoted {
		if err := r.phase(ctx, SwitchWait, func() error { return r.waitFinalPosition(ctx, st) }); err != nil {
			return r.undoFence(ctx, st.orig, st.fence, err)
		}
		if app.FenceMode == "shutdown" && st.orig != nil {
			// Before the new master is writable: the old master stops for good.
			if err := r.shutdownOldMaster(ctx, st.orig, st.fence); err != nil {
				return r.undoFence(ctx, st.orig, st.fence, err)
			}
		}
	}

	if err := r.phase(ctx, SwitchPromote, func() error { return r.promoteSwitch(ctx, st) }); err != nil {
		if st.newM.refresh(ctx) == nil && st.newM.replica != nil {
			// Not promoted yet (still a replica): safe to give the old master back.
			return r.undoFence(ctx, st.orig, st.fence, err)
		}
		r.releaseFence(st.fence)
		return err
	}
	if err := r.phase(ctx, SwitchReplicas, func() error { return r.repointReplicas(ctx, st) }); err != nil {
		r.releaseFence(st.fence)
		return err
	}
	if !r.opts.OrigMasterIsNewSlave {
		r.releaseFence(st.fence) // read_only=1 stays
		if st.orig != nil {
			r.rep.addf("%s: left read_only=1 (not made a replica).", st.orig.srv)
		}
		r.rep.addf("Master switch to %s completed successfully.", st.newM.srv)
		return nil
	}
	err := r.phase(ctx, SwitchOldSlave, func() error { return r.origBecomesReplica(ctx, st) })
	if err == nil {
		r.rep.addf("Master switch to %s completed successfully.", st.newM.srv)
	}
	return err
}
