package failover

import (
	"context"
	"fmt"
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

// SwitchOptions are the flags of masterha_master_switch
// --master_state=alive beyond --new_master_host and
// --orig_master_is_new_slave (Options.OrigMasterIsNewSlave).
type SwitchOptions struct {
	// CheckOnly (--check_only) runs phase 1 (every check, the election,
	// the plan) and stops there: nothing is changed or journaled, no hook
	// runs, and the connections are not fenced (they only read, like
	// check-repl's). Switch returns nil when the switch would proceed.
	CheckOnly bool
	// SkipChangeMaster (--skip_change_master): the other replicas are not
	// repointed; they go on replicating from the old master. A dead-master
	// failover (mhactl failover --local only) honours it too, as MHA's
	// does: every replica gets the missing events applied but none is
	// repointed, and phase 5 (RESET SLAVE ALL on the new master) is
	// skipped; refused under GTID, where replicas catch up by replicating.
	SkipChangeMaster bool
	// SkipDisableReadOnly (--skip_disable_read_only): the new master is
	// promoted but left read_only=1 (switch and dead-master failover).
	SkipDisableReadOnly bool
	// OrigMasterSSH (--ssh_reachable) says whether the old master is
	// reachable over SSH, for master_ip_online_change_script: when it is
	// not, the script is not given the old master's SSH user and address
	// (--orig_master_ssh_*), so it does not try to reach it over SSH.
	// Unknown, the default, is treated as reachable: the old master is
	// alive, and MHA's online switch always passes them.
	OrigMasterSSH SSHReachability
	// RunningUpdatesLimit (--running_updates_limit), when > 0, replaces
	// the configuration's running_updates_limit: an update (not a SELECT
	// or SHOW) running that long on the old master refuses the switch.
	RunningUpdatesLimit time.Duration
	// RunningSecondsLimit (--running_seconds_limit, default 10 s): any
	// query running that long on the new master refuses the switch.
	RunningSecondsLimit time.Duration
}

// DefaultRunningSecondsLimit is MHA's --running_seconds_limit default.
const DefaultRunningSecondsLimit = 10 * time.Second

// SSHReachability is MHA's --ssh_reachable: whether a master is
// reachable over SSH (MHA's 1), not (0), or unknown (2, the default).
type SSHReachability int

// The values of SSHReachability; the zero value is unknown.
const (
	SSHUnknown SSHReachability = iota
	SSHReachable
	SSHUnreachable
)

// ParseSSHReachable turns MHA's --ssh_reachable value (0, 1 or 2) into
// an SSHReachability.
func ParseSSHReachable(v int) (SSHReachability, error) {
	switch v {
	case 0:
		return SSHUnreachable, nil
	case 1:
		return SSHReachable, nil
	case 2:
		return SSHUnknown, nil
	}
	return SSHUnknown, fmt.Errorf("--ssh_reachable=%d: it takes 0 (not reachable over SSH), 1 (reachable) or 2 (unknown)", v)
}

// MHA is the value as MHA's --ssh_reachable spells it.
func (s SSHReachability) MHA() int {
	switch s {
	case SSHUnreachable:
		return 0
	case SSHReachable:
		return 1
	}
	return 2
}

// Switch is the online master switch (masterha_master_switch
// --master_state=alive): check, fence the old master, let the new master
// and the replicas reach the old master's final position, promote, repoint.
// If anything fails before the promotion the fence is undone. With
// Options.Switch.CheckOnly it only checks (checkOnly).
func Switch(ctx context.Context, opts Options) (*Report, error) {
	r := newRun(opts, "switch")
	defer r.closeAll()
	if opts.Switch.CheckOnly {
		return r.checkOnly(ctx)
	}
	err := r.doSwitch(ctx)
	var slaves []string
	for _, o := range r.rep.Replicas {
		if !o.OK {
			continue
		}
		if r.opts.Switch.SkipChangeMaster && o.Server != r.plan.OldMaster {
			continue // still a replica of the old master
		}
		slaves = append(slaves, r.opts.App.Server(o.Server).Hostname)
	}
	return r.finish(ctx, err, slaves), err
}

// checkOnly is --check_only: phase 1 over connections that only read (not
// fenced: they take no lock slot and kill nothing, so a check never
// disturbs a running pipeline), not journaled, no hook, no report file;
// nil when the switch would proceed.
func (r *run) checkOnly(ctx context.Context) (*Report, error) {
	r.fence = nil
	r.journal = nopJournal{}
	r.done = map[string]bool{}
	st := &switchState{}
	t0 := time.Now()
	st.errs = r.connectAll(ctx)
	r.rep.phase("connect to all servers", time.Since(t0))
	err := r.phase(ctx, SwitchCheck, func() error { return r.checkSwitch(ctx, st) })
	r.rep.Finished = time.Now()
	r.rep.Total = r.rep.Finished.Sub(r.rep.Started).Seconds()
	r.rep.OK = err == nil
	r.rep.OldMaster, r.rep.NewMaster = r.plan.OldMaster, r.plan.NewMaster
	r.rep.Subject = fmt.Sprintf("%s: MySQL Master online switch check", r.opts.App.Name)
	if err != nil {
		r.rep.Error = err.Error()
		r.rep.Subject += " failed"
		r.rep.addf("--check_only: the switch would be refused: %v", err)
	} else {
		r.rep.Subject += fmt.Sprintf(" passed: %s to %s", r.opts.App.Server(r.plan.OldMaster), r.opts.App.Server(r.plan.NewMaster))
		r.rep.addf("--check_only: every check passed; a switch would promote %s. Nothing was changed.", r.opts.App.Server(r.plan.NewMaster))
	}
	r.rep.Print(r.out)
	return r.rep, err
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
	if !promoted && st.newM != nil && (st.newM.replica == nil || keptReplication(st.newM, r.plan)) {
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
		if st.newM.refresh(ctx) == nil && st.newM.replica != nil && !keptReplication(st.newM, r.plan) {
			// Not promoted yet (still a replica): safe to give the old master back.
			return r.undoFence(ctx, st.orig, st.fence, err)
		}
		r.releaseFence(st.fence)
		return err
	}
	if r.opts.Switch.SkipChangeMaster {
		r.leaveReplicas(st)
	} else if err := r.phase(ctx, SwitchReplicas, func() error { return r.repointReplicas(ctx, st) }); err != nil {
		r.releaseFence(st.fence)
		return err
	}
	if !r.opts.OrigMasterIsNewSlave {
		r.releaseFence(st.fence) // read_only=1 stays
		if st.orig != nil && st.orig.isReplicaOf(st.newM.srv) {
			// The passive side of a master-master pair already replicates
			// from the new master: it stays in the pair.
			r.rep.addf("%s: left read_only=1, replicating from %s as before (master-master pair).", st.orig.srv, st.newM.srv)
		} else if st.orig != nil {
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
