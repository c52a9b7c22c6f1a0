package failover

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/internal/secret"
)

// Phases of the dead-master failover, as journaled (MHA's phase numbers).
const (
	PhaseCheck    = "failover.1 configuration check"
	PhaseShutdown = "failover.2 dead master shutdown"
	PhaseRecover  = "failover.3 master recovery"
	PhaseReplicas = "failover.4 replicas recovery"
	PhaseCleanup  = "failover.5 new master cleanup"
)

// FailoverOptions add the dead master to Options.
type FailoverOptions struct {
	Options
	// DeadMaster names the dead master (name, host:port or ip:port).
	DeadMaster string
}

// DeadMaster runs the dead-master failover (masterha_master_switch
// --master_state=dead) and returns its report.
func DeadMaster(ctx context.Context, opts FailoverOptions) (*Report, error) {
	r := newRun(opts.Options, "failover")
	if r.opts.Recovery == nil {
		r.opts.Recovery = DefaultRecovery()
	}
	defer r.closeAll()
	defer r.opts.Recovery.Close()
	defer r.waitReads(10 * time.Second)    // runs after cancel: the reads have ended
	ctx, cancel := context.WithCancel(ctx) // ends background diff generation
	defer cancel()
	err := r.doFailover(ctx, opts.DeadMaster)
	r.releaseDeadFence()
	var slaves []string
	for _, o := range r.rep.Replicas {
		if o.OK {
			if s := r.opts.App.Server(o.Server); s != nil {
				slaves = append(slaves, s.Hostname)
			}
		}
	}
	rep := r.finish(ctx, err, slaves)
	if err == nil && r.opts.App.ManagerWorkdir != "" {
		secret.WriteFile(filepath.Join(r.opts.App.ManagerWorkdir, r.opts.App.Name+".failover.complete"), nil)
	}
	return rep, err
}

// failoverState is what the phases share besides the plan.
type failoverState struct {
	dead     *config.Server
	newM     *node
	latest   *node
	replicas []*node // alive replicas except the new master
	all      []*node // alive replicas
}

// doFailover runs the phases in MHA's order (MasterFailover.pm), each in
// its file: phase1_check.go, phase2_dead_master.go, phase3_new_master.go,
// phase4_replicas.go, phase5_cleanup.go. What they share to resume and to
// work in the background (the tail and relay diffs started in phase 1,
// files missing on another manager host, what an interrupted apply
// committed) is in resume.go.
func (r *run) doFailover(ctx context.Context, deadKey string) error {
	app := r.opts.App
	st := &failoverState{}
	if deadKey == "" && r.plan.OldMaster != "" {
		deadKey = r.plan.OldMaster
	}
	st.dead = app.Server(deadKey)
	if st.dead == nil {
		return fmt.Errorf("%w: dead master %q is not in the configuration of %s", ErrRefused, deadKey, app.Name)
	}
	r.plan.OldMaster = st.dead.Name
	if p := r.opts.Resume; p != nil && p.Interrupted != "" {
		r.logf("Resuming a failover interrupted in %q.", p.Interrupted)
	}

	// Dial SSH to every host while the MySQL connections are made: the
	// dead master's tail and the relay diffs need it soon, and a dial costs
	// more than everything else of phase 1. The connections are kept for
	// the whole run (one per host).
	if !r.done[PhaseRecover] {
		for _, s := range app.Servers {
			if s == st.dead {
				r.startDeadSSH(ctx, s)
				continue
			}
			go r.opts.Recovery.Reach(ctx, s)
		}
	}
	// Connecting is repeated on a resume: it changes nothing.
	t0 := time.Now()
	errs := r.connectJudged(ctx, st.dead)
	r.rep.phase("connect to all servers", time.Since(t0))
	if err := guardRefusal(errs); err != nil {
		return err
	}
	if err := r.phase(ctx, PhaseCheck, func() error { return r.checkFailover(ctx, st, errs) }); err != nil {
		return err
	}
	if r.opts.Switch.SkipChangeMaster && r.plan.GTID {
		return fmt.Errorf("%w: --skip-change-master needs file/position replication: with GTID the replicas catch up by replicating from the new master, which that flag forbids (MHA skips it under GTID too); fail over without it", ErrRefused)
	}
	if err := r.bindPlan(st); err != nil {
		return err
	}
	if err := r.phase(ctx, PhaseShutdown, func() error { return r.shutdownDeadMaster(ctx, st) }); err != nil {
		return err
	}
	if err := r.phase(ctx, PhaseRecover, func() error { return r.recoverNewMaster(ctx, st) }); err != nil {
		return err
	}
	if err := r.phase(ctx, PhaseReplicas, func() error { return r.recoverReplicas(ctx, st) }); err != nil {
		return err
	}
	if r.opts.Switch.SkipChangeMaster {
		// MHA skips its phase 5 too: the new master keeps its replication
		// settings, like every other replica.
		r.rep.addf("All replicas have the missing events applied; none was repointed and %s keeps its replication settings (skip_change_master).", st.newM.srv)
		return nil
	}
	err := r.phase(ctx, PhaseCleanup, func() error { return r.cleanupNewMaster(ctx, st) })
	if err == nil {
		r.rep.addf("Master failover to %s completed successfully.", st.newM.srv)
	}
	return err
}
