package failover

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
	"github.com/mharaft/mharaft/topology"
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
	if app.FenceMode == "shutdown" && r.opts.Switch.SkipChangeMaster {
		return fmt.Errorf("%w: fence_mode=shutdown stops the old master, so the replicas --skip_change_master leaves on it would replicate from nothing", ErrRefused)
	}
	// The current master is the server that is not a replica and that
	// every replica replicates from, or the writable one of a
	// master-master pair (tiers.go).
	orig, err := currentMaster(app, r.nodes)
	if err != nil {
		return err
	}
	r.plan.OldMaster = orig.srv.Name
	var cands []*Candidate
	below := map[string]*config.Server{}
	for _, s := range app.Servers {
		n, ok := r.nodes[s.Name]
		if !ok || n == orig {
			continue
		}
		if up, refusal := belowReplica(app, r.nodes, n, orig.srv); up != nil {
			if refusal != "" {
				return fmt.Errorf("%w: %s", ErrRefused, refusal)
			}
			r.logf("%s replicates from %s: left below it (multi_tier_slave).", n, up)
			below[s.Name] = up
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
	if err := checkIntermediates(r.nodes, below); err != nil {
		return err
	}
	if len(below) > 0 {
		r.addf("Left below their upstream (multi_tier_slave): %s.", strings.Join(belowNames(below), ", "))
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
	el, err := r.elect(ctx, ElectionInput{Candidates: cands, Preferred: r.opts.NewMaster,
		DeadMasterDC: orig.srv.Datacenter, PreventCrossDC: app.PreventCrossDCFailover})
	for _, l := range el.logLines() {
		r.logf("%s", l)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	newM := r.nodes[el.NewMaster.Server.Name]
	if app.CheckReplFilter {
		if err := r.checkSwitchFilters(ctx, orig, newM); err != nil {
			return err
		}
	}
	if err := r.checkNewMasterQueries(ctx, newM); err != nil {
		return err
	}
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
	if r.opts.Switch.SkipChangeMaster {
		newRepl = nil
		if r.opts.OrigMasterIsNewSlave {
			newRepl = []*config.Server{orig.srv}
		}
		r.logf("--skip_change_master: %d replica(s) stay replicas of %s.", len(r.plan.Replicas), orig)
	}
	// The replicas will log in to the new master as repl_user: a refused
	// login would leave them stopped in "Connecting" after the switch, so
	// it is refused now, while nothing has changed (MHA's online switch
	// fails here too).
	if len(newRepl) > 0 {
		if err := topology.ReplLogin(ctx, newM.srv, r.opts.connectTimeout()); err != nil {
			return fmt.Errorf("%w: the replicas could not replicate from the new master %s ([%s] in the configuration): repl_user %q cannot log in there: %v; %s",
				ErrRefused, newM, newM.srv.Name, newM.srv.ReplUser, err, topology.ReplLoginFix(newM.srv))
		}
	}
	fmt.Fprintf(r.out, "\n%s\n", Topology(orig.srv, oldRepl, newM.srv, newRepl, "current master"))
	if r.opts.Switch.CheckOnly {
		r.logf("--check_only: every check passed; stopping before anything is changed.")
		return nil
	}
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
// RunningUpdatesLimit (MHA's get_running_update_threads): the fence would
// kill them (their work rolled back) or wait for them.
func (r *run) checkRunningUpdates(ctx context.Context, m *node) error {
	limit := r.opts.Switch.RunningUpdatesLimit
	if limit <= 0 {
		limit = r.opts.App.RunningUpdatesLimit
	}
	if limit <= 0 {
		limit = time.Second
	}
	long, err := longThreads(ctx, m, limit, true)
	if err != nil {
		return err
	}
	if len(long) > 0 {
		return fmt.Errorf("%w: %d update(s) running longer than %s on the current master %s: %s",
			ErrRefused, len(long), limit, m, strings.Join(long, "; "))
	}
	return nil
}

// checkNewMasterQueries refuses when any query (SELECT included) has run
// RunningSecondsLimit or longer on the new master (MHA's
// get_running_threads on the new master): its SQL thread can wait on such
// a query (a lock, a table it must alter) while the old master is fenced,
// so writes would be blocked until it ends.
func (r *run) checkNewMasterQueries(ctx context.Context, n *node) error {
	limit := r.opts.Switch.RunningSecondsLimit
	if limit <= 0 {
		limit = DefaultRunningSecondsLimit
	}
	long, err := longThreads(ctx, n, limit, false)
	if err != nil {
		return err
	}
	if len(long) > 0 {
		return fmt.Errorf("%w: %d query(ies) running for %s or longer on the new master %s: %s; "+
			"while they run, its SQL thread may wait on them with writes blocked: let them end or KILL them, then switch again "+
			"(or raise --running_seconds_limit)", ErrRefused, len(long), limit, n, strings.Join(long, "; "))
	}
	return nil
}

// longThreads lists the client threads of n whose statement has run for
// limit or longer, skipping idle ones (Sleep, Connect), replication
// threads and server daemons; updatesOnly also skips SELECT and SHOW.
// Each is named with its id, user, time and statement.
func longThreads(ctx context.Context, n *node, limit time.Duration, updatesOnly bool) ([]string, error) {
	rows, err := n.queryRows(ctx, "SHOW FULL PROCESSLIST")
	if err != nil {
		return nil, err
	}
	var long []string
	for _, p := range rows {
		if skipThread(p) || p["Command"] == "Sleep" || p["Command"] == "Connect" {
			continue
		}
		info := strings.TrimSpace(p["Info"])
		lower := strings.ToLower(info)
		if info == "" || strings.HasPrefix(lower, "show") {
			continue
		}
		if updatesOnly && strings.HasPrefix(lower, "select") {
			continue
		}
		var secs float64
		fmt.Sscan(p["Time"], &secs)
		if time.Duration(secs*float64(time.Second)) >= limit {
			long = append(long, fmt.Sprintf("id %s user %s for %ss: %.80s", p["Id"], p["User"], p["Time"], info))
		}
	}
	return long, nil
}

// checkSwitchFilters is MHA's check_filter (check_repl_filter=1): the
// new master must log the same databases as the old one (SHOW MASTER
// STATUS's Binlog_Do_DB and Binlog_Ignore_DB), or the replicas would
// silently miss or receive other data after the switch; with
// --orig_master_is_new_slave, the old master must also filter what it
// replicates as the new master does (its replicate_* settings).
func (r *run) checkSwitchFilters(ctx context.Context, orig, newM *node) error {
	of, err := binlogFilters(ctx, orig)
	if err != nil {
		return err
	}
	nf, err := binlogFilters(ctx, newM)
	if err != nil {
		return err
	}
	if !of.equal(nf) {
		return fmt.Errorf("%w: binlog filters differ: the current master %s has %s, the new master %s has %s; "+
			"after the switch the replicas would receive other databases: use the same binlog-do-db and binlog-ignore-db in both servers' my.cnf "+
			"(SHOW MASTER STATUS shows them) and restart the one that differs, or switch to another server", ErrRefused, orig, of, newM, nf)
	}
	r.logf("Binlog filters of %s and %s agree (%s).", orig, newM, of)
	if !r.opts.OrigMasterIsNewSlave {
		return nil
	}
	if !orig.d.V.IsMariaDB() || !newM.d.V.IsMariaDB() {
		// MySQL keeps a server's replicate_* filters with its replica
		// configuration, which the old master does not have yet.
		r.logf("Replication filters of %s are not compared with %s's (MySQL: not readable before it is a replica).", orig, newM)
		return nil
	}
	orf, err := replicateFilters(ctx, orig)
	if err != nil {
		return err
	}
	nrf, err := replicateFilters(ctx, newM)
	if err != nil {
		return err
	}
	if !orf.Equal(nrf) {
		return fmt.Errorf("%w: replication filters differ: the current master %s, which --orig_master_is_new_slave makes a replica, has %s, the new master %s has %s; "+
			"it would replicate other data than the replicas: use the same replicate_* settings on both (SET GLOBAL replicate_...; and in my.cnf)",
			ErrRefused, orig, orf, newM, nrf)
	}
	return nil
}

// binlogFilter is a master's binlog-do-db and binlog-ignore-db.
type binlogFilter struct{ doDB, ignoreDB string }

func (f binlogFilter) String() string {
	if f.doDB == "" && f.ignoreDB == "" {
		return "none"
	}
	var parts []string
	if f.doDB != "" {
		parts = append(parts, "binlog-do-db="+f.doDB)
	}
	if f.ignoreDB != "" {
		parts = append(parts, "binlog-ignore-db="+f.ignoreDB)
	}
	return strings.Join(parts, " ")
}

// equal compares the lists whatever their order.
func (f binlogFilter) equal(o binlogFilter) bool {
	return sortedList(f.doDB) == sortedList(o.doDB) && sortedList(f.ignoreDB) == sortedList(o.ignoreDB)
}

func sortedList(s string) string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// binlogFilters reads Binlog_Do_DB and Binlog_Ignore_DB of SHOW MASTER STATUS.
func binlogFilters(ctx context.Context, n *node) (binlogFilter, error) {
	rows, err := n.queryRows(ctx, n.d.ShowMasterStatus())
	if err != nil {
		return binlogFilter{}, err
	}
	if len(rows) == 0 {
		return binlogFilter{}, fmt.Errorf("%w: %s on %s: binary logging is off", ErrRefused, n.d.ShowMasterStatus(), n)
	}
	return binlogFilter{doDB: rows[0]["Binlog_Do_DB"], ignoreDB: rows[0]["Binlog_Ignore_DB"]}, nil
}

// replicateFilters reads a MariaDB server's replicate_* filters from its
// global variables, which a server has whether or not it is a replica.
func replicateFilters(ctx context.Context, n *node) (dialect.ReplFilters, error) {
	rows, err := n.queryRows(ctx, "SELECT @@GLOBAL.replicate_do_db AS do_db, @@GLOBAL.replicate_ignore_db AS ignore_db, "+
		"@@GLOBAL.replicate_do_table AS do_table, @@GLOBAL.replicate_ignore_table AS ignore_table, "+
		"@@GLOBAL.replicate_wild_do_table AS wild_do_table, @@GLOBAL.replicate_wild_ignore_table AS wild_ignore_table")
	if err != nil {
		return dialect.ReplFilters{}, err
	}
	if len(rows) == 0 {
		return dialect.ReplFilters{}, fmt.Errorf("read the replicate_* filters of %s: no row", n)
	}
	v := rows[0]
	return dialect.ReplFilters{DoDB: v["do_db"], IgnoreDB: v["ignore_db"], DoTable: v["do_table"], IgnoreTable: v["ignore_table"],
		WildDoTable: v["wild_do_table"], WildIgnoreTable: v["wild_ignore_table"]}, nil
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
