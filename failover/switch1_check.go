package failover

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mharaft/mharaft/config"
)

// checkSwitch is phase 1: every server reachable (or ignore_fail), one
// current master that every replica follows with little lag, no long
// update running; elect the new master, print the plan, confirm.
func (r *run) checkSwitch(ctx context.Context, st *switchState) error {
	app := r.opts.App
	// Unreachable servers are refused unless they have ignore_fail
	// (then they are left out, as MHA does).
	var msgs []string
	r.plan.Ignored = nil
	for _, s := range app.Servers {
		e, failed := st.errs[s.Name]
		if !failed {
			continue
		}
		if s.IgnoreFail {
			r.logf("%s is unreachable (%v); ignored (ignore_fail).", s, e)
			r.plan.Ignored = append(r.plan.Ignored, s.Name)
			continue
		}
		msgs = append(msgs, fmt.Sprintf("%s: %v", s.Name, e))
	}
	if len(msgs) > 0 {
		sort.Strings(msgs)
		return fmt.Errorf("%w: every server without ignore_fail must be reachable for an online switch: %s", ErrRefused, strings.Join(msgs, "; "))
	}
	if app.FenceMode == "shutdown" && r.opts.OrigMasterIsNewSlave {
		return fmt.Errorf("%w: fence_mode=shutdown stops the old master, so it cannot become a replica (--orig_master_is_new_slave)", ErrRefused)
	}
	// The current master is the server that is not a replica and that
	// every replica replicates from.
	var orig *node
	for _, s := range app.Servers {
		n, ok := r.nodes[s.Name]
		if !ok {
			continue
		}
		if n.replica == nil {
			if orig != nil {
				return fmt.Errorf("%w: two servers are not replicas: %s and %s", ErrRefused, orig, n)
			}
			orig = n
		}
	}
	if orig == nil {
		return fmt.Errorf("%w: no current master: every server is a replica", ErrRefused)
	}
	r.plan.OldMaster = orig.srv.Name
	var cands []*Candidate
	for _, s := range app.Servers {
		n, ok := r.nodes[s.Name]
		if !ok || n == orig {
			continue
		}
		if !n.isReplicaOf(orig.srv) {
			return fmt.Errorf("%w: %s does not replicate from the current master %s", ErrRefused, n, orig)
		}
		if !n.replica.IOThreadRunning() || !n.replica.SQLRunning {
			return fmt.Errorf("%w: replication on %s is not running (io=%s sql=%v)", ErrRefused, n, n.replica.IORunning, n.replica.SQLRunning)
		}
		lag := app.MaxLagForSwitch
		if lag <= 0 {
			lag = time.Second
		}
		if sbm := n.replica.SecondsBehindMaster; sbm == nil || time.Duration(*sbm)*time.Second > lag {
			return fmt.Errorf("%w: %s is %v seconds behind the master (limit %s)", ErrRefused, n, fmtLag(sbm), lag)
		}
		cands = append(cands, &Candidate{Server: n.srv, LogBin: n.logBin, Version: n.version, Read: n.readCoord(), Exec: n.execCoord()})
	}
	r.plan.GTID = len(cands) > 0
	for _, c := range cands {
		if !r.nodes[c.Server.Name].usesGTID() {
			r.plan.GTID = false
		}
	}
	if err := r.checkRunningUpdates(ctx, orig); err != nil {
		return err
	}
	el, err := Elect(ElectionInput{Candidates: cands, Preferred: r.opts.NewMaster,
		DeadMasterDC: orig.srv.Datacenter, PreventCrossDC: app.PreventCrossDCFailover})
	for _, l := range el.logLines() {
		r.logf("%s", l)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	newM := r.nodes[el.NewMaster.Server.Name]
	r.plan.NewMaster = newM.srv.Name
	r.plan.Replicas = nil
	var oldRepl, newRepl []*config.Server
	for _, c := range cands {
		oldRepl = append(oldRepl, c.Server)
		if c.Server != newM.srv {
			newRepl = append(newRepl, c.Server)
			r.plan.Replicas = append(r.plan.Replicas, c.Server.Name)
		}
	}
	if r.opts.OrigMasterIsNewSlave {
		newRepl = append(newRepl, orig.srv)
	}
	fmt.Fprintf(r.out, "\n%s\n", Topology(orig.srv, oldRepl, newM.srv, newRepl, "current master"))
	return r.confirm(fmt.Sprintf("Starting master switch from %s to %s?", orig.srv, newM.srv))
}

// bindSwitch finds the plan's servers among the connected nodes (after
// phase 1, or on a resume where phase 1 was skipped). The new master and
// the replicas must be reachable; the old master may be missing only
// where the phases left to run do not need it (checked by them).
func (r *run) bindSwitch(st *switchState) error {
	resumed := func(what string, name string) error {
		phase := SwitchCheck
		if r.opts.Resume != nil && r.opts.Resume.Interrupted != "" {
			phase = r.opts.Resume.Interrupted
		}
		return fmt.Errorf("%w: resuming the switch (interrupted in %q): %s %s of the plan is unreachable (%v); "+
			"check the servers' replication by hand (SHOW SLAVE STATUS, @@read_only on %s and %s), then finish the switch by hand or run a new one",
			ErrUnsafeResume, phase, what, name, st.errs[name], r.plan.OldMaster, r.plan.NewMaster)
	}
	if r.plan.OldMaster == "" || r.plan.NewMaster == "" {
		return fmt.Errorf("%w: the journal of the switch holds no plan (old master %q, new master %q); check the servers and run a new switch",
			ErrUnsafeResume, r.plan.OldMaster, r.plan.NewMaster)
	}
	var ok bool
	if st.newM, ok = r.nodes[r.plan.NewMaster]; !ok {
		return resumed("the new master", r.plan.NewMaster)
	}
	st.orig = r.nodes[r.plan.OldMaster] // nil when unreachable
	if st.orig == nil && !r.done[SwitchCheck] {
		return resumed("the old master", r.plan.OldMaster)
	}
	st.others = nil
	for _, name := range r.plan.Replicas {
		n, ok := r.nodes[name]
		if !ok {
			return resumed("the replica", name)
		}
		st.others = append(st.others, n)
	}
	return nil
}

// checkRunningUpdates refuses when the master runs writes longer than
// RunningUpdatesLimit (MHA's get_running_update_threads).
func (r *run) checkRunningUpdates(ctx context.Context, m *node) error {
	limit := r.opts.App.RunningUpdatesLimit
	if limit <= 0 {
		limit = time.Second
	}
	rows, err := m.queryRows(ctx, "SHOW FULL PROCESSLIST")
	if err != nil {
		return err
	}
	var long []string
	for _, p := range rows {
		if skipThread(p) || p["Command"] == "Sleep" || p["Command"] == "Connect" {
			continue
		}
		info := strings.TrimSpace(p["Info"])
		lower := strings.ToLower(info)
		if info == "" || strings.HasPrefix(lower, "select") || strings.HasPrefix(lower, "show") {
			continue
		}
		var secs float64
		fmt.Sscan(p["Time"], &secs)
		if time.Duration(secs*float64(time.Second)) >= limit {
			long = append(long, fmt.Sprintf("id %s user %s for %ss: %.80s", p["Id"], p["User"], p["Time"], info))
		}
	}
	if len(long) > 0 {
		return fmt.Errorf("%w: %d update(s) running longer than %s on the current master %s: %s",
			ErrRefused, len(long), limit, m, strings.Join(long, "; "))
	}
	return nil
}

func fmtLag(p *int64) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprint(*p)
}

// skipThread: replication threads and server daemons are never killed nor counted.
func skipThread(p map[string]string) bool {
	cmd := p["Command"]
	return strings.HasPrefix(cmd, "Binlog Dump") || cmd == "Daemon" || cmd == "Slave_IO" || cmd == "Slave_SQL" ||
		cmd == "Slave_worker" || p["User"] == "system user" || p["User"] == "event_scheduler"
}
