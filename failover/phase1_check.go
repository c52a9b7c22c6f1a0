package failover

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mharaft/mharaft/config"
)

// ErrRecentFailover: the last failover is younger than last_failover_minute.
var ErrRecentFailover = errors.New("a failover happened recently")

// CheckLastFailover refuses (like MHA) when manager_workdir holds an
// <app>.failover.complete file or a failover report younger than
// last_failover_minute. The caller runs it before the pipeline (mhactl
// --local; the managers keep this record in the replicated state).
func CheckLastFailover(app *config.App, now time.Time) error {
	if app.ManagerWorkdir == "" {
		return nil
	}
	limit := time.Duration(app.LastFailoverMinute) * time.Minute
	if app.LastFailoverMinute == 0 {
		limit = 480 * time.Minute
	}
	var paths []string
	paths = append(paths, filepath.Join(app.ManagerWorkdir, app.Name+".failover.complete"))
	m, _ := filepath.Glob(filepath.Join(app.ManagerWorkdir, "failover_report_"+app.Name+"_*.json"))
	paths = append(paths, m...)
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if age := now.Sub(fi.ModTime()); age < limit {
			return fmt.Errorf("%w: %s is %s old (last_failover_minute=%d); pass --ignore-last-failover or remove it",
				ErrRecentFailover, p, age.Round(time.Second), int(limit.Minutes()))
		}
	}
	return nil
}

// connectJudged connects to every configured server in parallel, as
// connectAll, but when the caller's quorum verdict judged the dead master
// unreachable (Options.DeadJudgedUnreachable) it waits for the dead master
// only as long as for the others: a dead master that refuses (mysqld
// killed) does so in a millisecond, one that gives no signal (paused, host
// cut off) would cost the whole connect timeout, and the verdict already
// says that a majority of managers cannot reach it and every replica
// confirms. Its connect goes on in the background: if it answers after
// all, the connection is closed and phase 2's fence, which tries it again
// after the IP hook, fences it. Without a verdict (mhactl, a resumed run)
// it is connectAll.
func (r *run) connectJudged(ctx context.Context, dead *config.Server) map[string]error {
	if !r.opts.DeadJudgedUnreachable || dead == nil {
		return r.connectAll(ctx)
	}
	type res struct {
		n   *node
		err error
	}
	deadCh := make(chan res, 1)
	go func() {
		n, err := connect(ctx, dead, r.opts.connectTimeout(), r.fence)
		deadCh <- res{n, err}
	}()
	errs := r.connectServers(ctx, func(s *config.Server) bool { return s != dead })
	select {
	case x := <-deadCh:
		if x.err != nil {
			errs[dead.Name] = x.err
		} else {
			r.nodes[dead.Name] = x.n
		}
		return errs
	default:
	}
	errs[dead.Name] = fmt.Errorf("connect to the dead master %s: %w: no answer while the other servers connected, and the managers' quorum verdict "+
		"judged it unreachable; not waited for (connect_timeout %s), phase 2 tries it again to fence it", dead, context.DeadlineExceeded, r.opts.connectTimeout())
	r.logf("The dead master %s has not answered over MySQL while the other servers connected; the managers judged it unreachable: not waiting for its connect_timeout (%s).",
		dead, r.opts.connectTimeout())
	go func() {
		x := <-deadCh
		if x.err == nil {
			r.logf("The dead master %s answered over MySQL after phase 1 went on without it; phase 2 fences it.", dead)
			x.n.close()
		}
	}()
	return errs
}

// checkFailover is phase 1 (MHA's "Configuration Check Phase"): the master
// is really unreachable, every alive replica replicates from it, dead
// replicas only with ignore_fail. Then, ahead of MHA's order so that the
// operator confirms the whole plan and the slow reads start early: the
// latest and oldest replicas (MHA's 3.1), the dead master's tail and the
// relay diffs started in the background (3.2 and 3.4, see startReads in
// resume.go), the new master elected (3.3); print the plan, confirm.
func (r *run) checkFailover(ctx context.Context, st *failoverState, errs map[string]error) error {
	app := r.opts.App
	if n, ok := r.nodes[st.dead.Name]; ok {
		if n.replica == nil {
			return fmt.Errorf("%w: master %s is alive (reachable over MySQL); use an online switch", ErrRefused, st.dead)
		}
		return fmt.Errorf("%w: %s is reachable and is a replica, not the dead master", ErrRefused, st.dead)
	}
	if e := errs[st.dead.Name]; e != nil && !isUnreachable(e) {
		return fmt.Errorf("%w: %s answered (%v): it is not dead", ErrRefused, st.dead, e)
	}
	r.logf("Dead Servers:\n  %s", st.dead)
	var cands []*Candidate
	r.plan.Ignored = nil
	below := map[string]*config.Server{}
	for _, s := range app.Servers {
		if s == st.dead {
			continue
		}
		n, ok := r.nodes[s.Name]
		if !ok {
			if !s.IgnoreFail {
				return fmt.Errorf("%w: replica %s is unreachable (%v) and ignore_fail is not set", ErrRefused, s, errs[s.Name])
			}
			r.logf("Replica %s is dead; ignored (ignore_fail).", s)
			r.plan.Ignored = append(r.plan.Ignored, s.Name)
			continue
		}
		if up, refusal := belowReplica(app, r.nodes, n, st.dead); up != nil {
			if refusal != "" {
				return fmt.Errorf("%w: %s", ErrRefused, refusal)
			}
			r.logf("%s replicates from %s: left below it (multi_tier_slave).", n, up)
			below[s.Name] = up
			continue
		}
		if why := notWorkingReplica(n, st.dead); why != "" {
			if s.IgnoreFail {
				r.logf("%s is alive but not a working replica of %s: %s; ignored (ignore_fail).", n, st.dead, why)
				r.plan.Ignored = append(r.plan.Ignored, s.Name)
				continue
			}
			return fmt.Errorf("%w: %s, [%s] in the configuration, is alive but not a working replica of the dead master %s: %s. "+
				"Repair its replication from the dead master, or set ignore_fail=1 in its block to leave it out of the failover",
				ErrRefused, n, s.Name, st.dead, why)
		}
		r.logf("Alive Slave: %s Version=%s log-bin:%v, replicating from %s, read %s exec %s", n, n.version, n.logBin, st.dead, n.readCoord(), n.execCoord())
		cands = append(cands, &Candidate{Server: s, LogBin: n.logBin, Version: n.version, Read: n.readCoord(), Exec: n.execCoord()})
		st.all = append(st.all, n)
	}
	if len(cands) == 0 {
		return fmt.Errorf("%w: no alive replica of %s", ErrRefused, st.dead)
	}
	if err := checkIntermediates(r.nodes, below); err != nil {
		return err
	}
	if len(below) > 0 {
		r.logf("Below a replica, left where they are (multi_tier_slave): %s", strings.Join(belowNames(below), ", "))
		r.addf("Left below their upstream (multi_tier_slave): %s.", strings.Join(belowNames(below), ", "))
	}
	r.plan.GTID = true
	for _, n := range st.all {
		if !n.usesGTID() {
			r.plan.GTID = false
		}
	}
	r.logf("GTID failover mode = %v", r.plan.GTID)
	// MHA's 3.1 from the positions just read (phase 2 reads them again).
	latest, oldest := LatestOf(cands), OldestOf(cands)
	r.plan.Latest, r.plan.LatestRead = latest[0].Server.Name, latest[0].Read
	r.plan.Oldest, r.plan.OldestRead = oldest[0].Server.Name, oldest[0].Read
	// Start the read-only work now, from the positions just read: the
	// dead master cannot send more events, so they are final unless an
	// IO thread still receives some; phase 2 re-reads them after stopping
	// the IO threads and redoes what changed.
	r.startReads(ctx, st, r.nodes[r.plan.Latest], r.plan.LatestRead)
	// MHA's 3.3: the new master.
	el, err := r.elect(ctx, ElectionInput{Candidates: cands, Preferred: r.opts.NewMaster,
		CheckReplDelay: latest[0].Server.CheckReplDelay, DeadMasterDC: st.dead.Datacenter, PreventCrossDC: app.PreventCrossDCFailover, Behind: r.behind(ctx)})
	for _, l := range el.logLines() {
		r.logf("%s", l)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	r.plan.NewMaster = el.NewMaster.Server.Name
	r.plan.Replicas = nil
	var oldRepl, newRepl []*config.Server
	for _, c := range cands {
		oldRepl = append(oldRepl, c.Server)
		if c != el.NewMaster {
			newRepl = append(newRepl, c.Server)
			r.plan.Replicas = append(r.plan.Replicas, c.Server.Name)
		}
	}
	fmt.Fprintf(r.out, "\n%s\n", Topology(st.dead, oldRepl, el.NewMaster.Server, newRepl, "current master"))
	return r.confirm(fmt.Sprintf("Master %s is dead. Failover to %s?", st.dead, el.NewMaster.Server))
}

// notWorkingReplica says why n, which answered, cannot be recovered as a
// replica of the dead master ("" when it can), as MHA's configuration
// check refuses it: it has no replica status (RESET SLAVE ALL, or never
// configured), replicates from another master, has no position in the
// master's binlog (RESET SLAVE, or configured by GTID and never started),
// or has received nothing since its replication was configured (CHANGE
// MASTER and never started, or never connected: its IO thread, its SQL
// thread and its relay log are all still at position 4). Accepted, it
// would claim a position it does not hold: phase 4 would apply a relay
// diff it partly has, or fail or wait on it after the new master is
// promoted.
func notWorkingReplica(n *node, dead *config.Server) string {
	rs := n.replica
	switch {
	case rs == nil:
		return "it is not a replica (no replica status: RESET SLAVE ALL, or replication never configured)"
	case !n.isReplicaOf(dead):
		return fmt.Sprintf("it replicates from %s:%d", rs.MasterHost, rs.MasterPort)
	case rs.MasterLogFile == "":
		return "its replication has no position in the master's binlog (Master_Log_File is empty: RESET SLAVE, or configured by GTID and never started)"
	case rs.ReadMasterLogPos <= 4 && rs.ExecMasterLogPos <= 4 && rs.RelayLogPos <= 4:
		return fmt.Sprintf("its replication was configured but never started: it has received nothing (Master_Log_File %s, "+
			"Read_Master_Log_Pos %d, Exec_Master_Log_Pos %d, Relay_Log_Pos %d)", rs.MasterLogFile, rs.ReadMasterLogPos, rs.ExecMasterLogPos, rs.RelayLogPos)
	}
	return ""
}

// bindPlan finds the plan's servers among the connected nodes (also on a
// resume, where phase 1 was skipped).
func (r *run) bindPlan(st *failoverState) error {
	get := func(name string) (*node, error) {
		n, ok := r.nodes[name]
		if !ok {
			return nil, fmt.Errorf("%w: %s of the plan is unreachable", ErrRefused, name)
		}
		return n, nil
	}
	var err error
	if st.newM, err = get(r.plan.NewMaster); err != nil {
		return err
	}
	if st.latest, err = get(r.plan.Latest); err != nil {
		return err
	}
	st.replicas = nil
	for _, name := range r.plan.Replicas {
		n, err := get(name)
		if err != nil {
			return err
		}
		st.replicas = append(st.replicas, n)
	}
	st.all = append([]*node{st.newM}, st.replicas...)
	return nil
}
