package failover

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
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

// fence is the old master held read-only: read_only=1 and FLUSH TABLES WITH
// READ LOCK held on a dedicated connection.
type fence struct {
	conn    *sql.Conn
	started time.Time
	locked  bool
	killed  int // client connections killed
}

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
}

// doSwitch runs the phases. Every phase can be resumed (Options.Resume):
// the servers are connected (and fenced) first, outside any phase; a
// resume binds the plan's servers, fences the old master again while the
// new master is not promoted yet (the earlier run's FLUSH TABLES WITH READ
// LOCK ended with it), skips what a server's state shows done, and halts
// with ErrUnsafeResume naming the phase and what to check where it cannot
// tell.
func (r *run) doSwitch(ctx context.Context) error {
	app := r.opts.App
	st := &switchState{}
	if p := r.opts.Resume; p != nil && p.Interrupted != "" {
		r.logf("Resuming a switch interrupted in %q.", p.Interrupted)
	}
	t0 := time.Now()
	st.errs = r.connectAll(ctx)
	r.rep.phase("connect to all servers", time.Since(t0))
	if err := notLeader(st.errs); err != nil {
		return err
	}
	if err := r.phase(ctx, SwitchCheck, func() error { return r.checkSwitch(ctx, st) }); err != nil {
		return err
	}
	if err := r.bindSwitch(st); err != nil {
		return err
	}
	orig, newM, others := st.orig, st.newM, st.others
	promoted := r.done[SwitchPromote]
	if !promoted && newM != nil && newM.replica == nil {
		// Resumed: the new master is no longer a replica, so the earlier
		// run got past RESET SLAVE ALL of the promotion.
		promoted = true
	}

	// Fence the old master. From here on, until the promotion, a failure
	// undoes the fence.
	var f *fence
	if !promoted && r.done[SwitchFence] {
		// Resumed after the fence: its FLUSH TABLES WITH READ LOCK ended
		// with the earlier run (read_only=1 may remain). Fence again and
		// read the final position again: a write that slipped in since is
		// in the new position, which the waits below then cover.
		kind, _ := dialect.Classify(st.errs[r.plan.OldMaster])
		switch {
		case orig == nil && app.FenceMode == "shutdown" && r.done[SwitchWait] && kind == dialect.KindRefused:
			r.logf("The old master %s is down (connection refused), as fence_mode=shutdown leaves it.", r.plan.OldMaster)
		case orig == nil:
			return fmt.Errorf("%w: resuming the switch after %q: the old master %s is unreachable (%v), so it cannot be fenced again "+
				"before %s is promoted; check that it takes no writes, then run a dead-master failover (or repair it and switch again)",
				ErrUnsafeResume, SwitchFence, r.plan.OldMaster, st.errs[r.plan.OldMaster], r.plan.NewMaster)
		default:
			var err error
			if f, err = r.fenceAndReadPos(ctx, orig); err != nil {
				return r.undoFence(ctx, orig, f, err)
			}
			// The final position may have moved: wait for it again.
			delete(r.done, SwitchWait)
		}
	}
	err := r.phase(ctx, SwitchFence, func() error {
		if orig == nil {
			return fmt.Errorf("%w: resuming the switch: the old master %s is unreachable (%v), so it cannot be fenced; "+
				"check that it takes no writes (it may be read_only=1 already), then run a dead-master failover or, once it answers, a new switch",
				ErrUnsafeResume, r.plan.OldMaster, st.errs[r.plan.OldMaster])
		}
		if app.MasterIPOnlineChangeScript != "" {
			res, err := r.runHook(ctx, app.MasterIPOnlineChangeScript, OnlineChangeArgs("stop", orig.srv, newM.srv, r.opts.OrigMasterIsNewSlave))
			if err != nil {
				return err
			}
			switch IPHookOutcome(res.ExitCode) {
			case HookAbort:
				return fmt.Errorf("%w: master_ip_online_change_script --command=stop exited %d: %s", ErrHookFailed, res.ExitCode, strings.TrimSpace(res.Output))
			case HookProceed:
				r.logf("master_ip_online_change_script --command=stop exited 10: proceeding.")
			}
		}
		var err error
		f, err = r.fenceAndReadPos(ctx, orig)
		return err
	})
	if err != nil {
		return r.undoFence(ctx, orig, f, err)
	}

	if !promoted {
		err = r.phase(ctx, SwitchWait, func() error {
			if app.FenceMode != "shutdown" {
				return r.waitReached(ctx, newM)
			}
			// The old master is about to stop: every replica must have
			// received and executed all it wrote first.
			all := append([]*node{newM}, others...)
			if errs := parallel(all, func(n *node) error { return r.waitReached(ctx, n) }); len(errs) > 0 {
				return fmt.Errorf("replicas did not reach the old master's final position: %v", errs)
			}
			return nil
		})
		if err != nil {
			return r.undoFence(ctx, orig, f, err)
		}
		if app.FenceMode == "shutdown" && orig != nil {
			// Before the new master is writable: the old master stops for good.
			if err := r.shutdownOldMaster(ctx, orig, f); err != nil {
				return r.undoFence(ctx, orig, f, err)
			}
		}
	}

	err = r.phase(ctx, SwitchPromote, func() error { return r.promoteSwitch(ctx, st, f) })
	if err != nil {
		if newM.refresh(ctx) == nil && newM.replica != nil {
			// Not promoted yet (still a replica): safe to give the old master back.
			return r.undoFence(ctx, orig, f, err)
		}
		r.releaseFence(f)
		return err
	}

	err = r.phase(ctx, SwitchReplicas, func() error {
		pos := dialect.Pos{File: r.plan.NewMasterPos.File, Pos: r.plan.NewMasterPos.Pos}
		errs := parallel(others, func(n *node) error {
			if err := n.refreshReplica(ctx); err != nil {
				return err
			}
			if n.isReplicaOf(newM.srv) {
				r.logf("%s already replicates from %s (an earlier run repointed it).", n, newM)
				return n.waitReplicaRunning(ctx, r.opts.replicaStartTimeout())
			}
			if err := r.waitReached(ctx, n); err != nil {
				return err
			}
			return n.changeMaster(ctx, newM.srv, r.plan.GTID, pos, r.opts.replicaStartTimeout())
		})
		for _, n := range others {
			if e := errs[n.srv.Name]; e != nil {
				r.rep.Replicas = append(r.rep.Replicas, ReplicaOutcome{Server: n.srv.Name, State: e.Error()})
				r.rep.addf("%s: FAILED: %v", n.srv, e)
			} else {
				r.rep.Replicas = append(r.rep.Replicas, ReplicaOutcome{Server: n.srv.Name, OK: true, State: "replicating from " + newM.srv.String()})
				r.rep.addf("%s: OK: replicating from %s.", n.srv, newM.srv)
			}
		}
		for _, name := range r.plan.Ignored {
			r.rep.Replicas = append(r.rep.Replicas, ReplicaOutcome{Server: name, State: "unreachable; ignored (ignore_fail)"})
			r.rep.addf("%s: unreachable; ignored (ignore_fail): repoint it to %s by hand.", name, newM.srv)
		}
		if len(errs) > 0 {
			var names []string
			var all []error
			for _, n := range others {
				if e := errs[n.srv.Name]; e != nil {
					names = append(names, n.srv.Name)
					all = append(all, fmt.Errorf("%s: %w", n.srv.Name, e))
				}
			}
			return fmt.Errorf("%d replica(s) could not be repointed (%s): %w", len(errs), strings.Join(names, ", "), errors.Join(all...))
		}
		return nil
	})
	if err != nil {
		r.releaseFence(f)
		return err
	}

	if !r.opts.OrigMasterIsNewSlave {
		r.releaseFence(f) // read_only=1 stays
		if orig != nil {
			r.rep.addf("%s: left read_only=1 (not made a replica).", orig.srv)
		}
		r.rep.addf("Master switch to %s completed successfully.", newM.srv)
		return nil
	}
	err = r.phase(ctx, SwitchOldSlave, func() error {
		r.releaseFence(f)
		if orig == nil {
			return fmt.Errorf("the old master %s is unreachable (%v): it cannot become a replica of %s; "+
				"repair it and make it a replica (mhactl rejoin), or leave it out", r.plan.OldMaster, st.errs[r.plan.OldMaster], newM.srv)
		}
		if err := orig.refreshReplica(ctx); err != nil {
			return err
		}
		if orig.isReplicaOf(newM.srv) {
			r.logf("%s already replicates from %s (an earlier run made it a replica).", orig, newM)
			if err := orig.waitReplicaRunning(ctx, r.opts.replicaStartTimeout()); err != nil {
				return err
			}
		} else {
			if orig.d.V.IsMariaDB() && r.plan.GTID {
				if err := orig.exec(ctx, orig.d.StopReplica(), "SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos"); err != nil {
					return err
				}
			}
			if err := orig.changeMaster(ctx, newM.srv, r.plan.GTID, dialect.Pos{File: r.plan.NewMasterPos.File, Pos: r.plan.NewMasterPos.Pos}, r.opts.replicaStartTimeout()); err != nil {
				return err
			}
		}
		r.rep.Replicas = append(r.rep.Replicas, ReplicaOutcome{Server: orig.srv.Name, OK: true, State: "old master, replicating from " + newM.srv.String()})
		r.rep.addf("%s: OK: old master now replicates from %s.", orig.srv, newM.srv)
		return nil
	})
	if err == nil {
		r.rep.addf("Master switch to %s completed successfully.", newM.srv)
	}
	return err
}

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

// fenceAndReadPos fences the old master and records its final position.
func (r *run) fenceAndReadPos(ctx context.Context, orig *node) (*fence, error) {
	f, err := r.fenceOldMaster(ctx, orig)
	if err != nil {
		return f, err
	}
	pos, err := orig.masterStatus(ctx)
	if err != nil {
		return f, err
	}
	r.plan.OrigMasterPos = Coord{pos.File, pos.Pos}
	if err := orig.refreshGTID(ctx); err != nil {
		return f, err
	}
	r.plan.OrigGTID = orig.gtidBinlogPos
	if !orig.d.V.IsMariaDB() {
		r.plan.OrigGTID = orig.gtidExecuted
	}
	r.logf("Orig master binlog:pos is %s (GTID %s).", r.plan.OrigMasterPos, r.plan.OrigGTID)
	return f, nil
}

// promoteSwitch is phase 4: the new master stops replicating, its
// position is recorded, it forgets its master, the IP hook moves the
// address, it becomes writable. A resumed phase skips what the new
// master's state shows done.
func (r *run) promoteSwitch(ctx context.Context, st *switchState, f *fence) error {
	app := r.opts.App
	orig, newM := st.orig, st.newM
	if err := newM.refresh(ctx); err != nil {
		return err
	}
	if newM.replica != nil {
		if err := newM.exec(ctx, newM.d.StopReplica()); err != nil {
			return err
		}
		pos, err := newM.masterStatus(ctx)
		if err != nil {
			return err
		}
		r.plan.NewMasterPos = Coord{pos.File, pos.Pos}
		if err := newM.refreshGTID(ctx); err != nil {
			return err
		}
		r.plan.NewMasterGTID = newM.gtidBinlogPos
		if err := newM.exec(ctx, newM.d.ResetReplicaAll()); err != nil {
			return err
		}
	} else {
		// Resumed after RESET SLAVE ALL. Without GTID the replicas need the
		// position the earlier run read before the new master took writes.
		if r.plan.NewMasterPos.IsZero() {
			if !newM.readOnly && !r.plan.GTID {
				return fmt.Errorf("%w: resuming %q: the new master %s is already writable and the earlier run recorded no position "+
					"for the replicas (file/position replication); find the position in %s's binlog where it was promoted and repoint the replicas by hand",
					ErrUnsafeResume, SwitchPromote, newM, newM)
			}
			// read_only=1 and the old master fenced: nothing was written since.
			pos, err := newM.masterStatus(ctx)
			if err != nil {
				return err
			}
			r.plan.NewMasterPos = Coord{pos.File, pos.Pos}
			r.plan.NewMasterGTID = newM.gtidBinlogPos
		}
		r.logf("%s is no longer a replica: an earlier run promoted it at %s.", newM, r.plan.NewMasterPos)
	}
	if app.MasterIPOnlineChangeScript != "" {
		var origSrv = newM.srv
		if orig != nil {
			origSrv = orig.srv
		} else if s := app.Server(r.plan.OldMaster); s != nil {
			origSrv = s
		}
		res, err := r.runHook(ctx, app.MasterIPOnlineChangeScript, OnlineChangeArgs("start", origSrv, newM.srv, r.opts.OrigMasterIsNewSlave))
		if err != nil {
			return err
		}
		if IPHookOutcome(res.ExitCode) == HookAbort {
			return fmt.Errorf("%w: master_ip_online_change_script --command=start exited %d: %s", ErrHookFailed, res.ExitCode, strings.TrimSpace(res.Output))
		}
	}
	if err := newM.exec(ctx, newM.d.SetReadOnly(false)...); err != nil {
		return err
	}
	newM.readOnly = false
	if f != nil {
		r.rep.WritesBlocked = time.Since(f.started)
		r.rep.WritesBlockedSecs = r.rep.WritesBlocked.Seconds()
	}
	r.logf("New master %s is writable at %s; writes were blocked for %.3f s.", newM, r.plan.NewMasterPos, r.rep.WritesBlockedSecs)
	r.rep.addf("%s: OK: promoted to master at %s.", newM.srv, r.plan.NewMasterPos)
	return nil
}

func fmtLag(p *int64) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprint(*p)
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

// skipThread: replication threads and server daemons are never killed nor counted.
func skipThread(p map[string]string) bool {
	cmd := p["Command"]
	return strings.HasPrefix(cmd, "Binlog Dump") || cmd == "Daemon" || cmd == "Slave_IO" || cmd == "Slave_SQL" ||
		cmd == "Slave_worker" || p["User"] == "system user" || p["User"] == "event_scheduler"
}

// fenceOldMaster: SET GLOBAL read_only=1, kill the application's
// connections, FLUSH TABLES WITH READ LOCK held on a dedicated connection
// (MariaDB has no super_read_only and read_only does not stop SUPER users).
func (r *run) fenceOldMaster(ctx context.Context, m *node) (*fence, error) {
	return r.fenceNode(ctx, m, r.opts.App.FenceMode != "read_only")
}

// fenceNode sets read_only=1, kills the client connections and, with lock,
// takes FLUSH TABLES WITH READ LOCK on the fence's own connection.
func (r *run) fenceNode(ctx context.Context, m *node, lock bool) (*fence, error) {
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("fence %s: connect: %w", m, err)
	}
	f := &fence{conn: conn, started: time.Now()}
	for _, q := range m.d.SetReadOnly(true) {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			conn.Close()
			return nil, fmt.Errorf("fence %s: %s: %w", m, q, err)
		}
	}
	var myID int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&myID); err != nil {
		return f, fmt.Errorf("fence %s: %w", m, err)
	}
	killed, err := killConnections(ctx, conn, myID)
	if err != nil {
		return f, fmt.Errorf("fence %s: %w", m, err)
	}
	r.logf("Set read_only=1 on %s and killed %d application connection(s).", m, killed)
	f.killed = killed
	if !lock {
		r.logf("fence_mode=read_only: not locking tables on %s.", m)
		return f, nil
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := conn.ExecContext(lctx, "FLUSH TABLES WITH READ LOCK"); err != nil {
		return f, fmt.Errorf("fence %s: FLUSH TABLES WITH READ LOCK: %w", m, err)
	}
	f.locked = true
	r.logf("Locked all tables on %s (FLUSH TABLES WITH READ LOCK).", m)
	return f, nil
}

// killConnections kills every connection except ours and the replication
// threads; it returns how many it killed.
func killConnections(ctx context.Context, conn *sql.Conn, myID int64) (int, error) {
	rows, err := conn.QueryContext(ctx, "SHOW PROCESSLIST")
	if err != nil {
		return 0, err
	}
	threads, err := dialect.ScanRows(rows)
	if err != nil {
		return 0, err
	}
	var ids []string
	for _, p := range threads {
		if p["Id"] == fmt.Sprint(myID) || skipThread(p) {
			continue
		}
		ids = append(ids, p["Id"])
	}
	n := 0
	for _, id := range ids {
		if _, err := conn.ExecContext(ctx, "KILL "+id); err == nil {
			n++
		} // an unknown thread id has simply gone already
	}
	return n, nil
}

// shutdownOldMaster is fence_mode=shutdown: SHUTDOWN on the fenced old
// master (its lock connection issues it), then a check that it no longer
// answers.
func (r *run) shutdownOldMaster(ctx context.Context, orig *node, f *fence) error {
	if f == nil || f.conn == nil {
		return fmt.Errorf("shut down %s: no fence connection", orig)
	}
	if f.locked {
		if _, err := f.conn.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
			return fmt.Errorf("shut down %s: UNLOCK TABLES: %w", orig, err)
		}
		f.locked = false
	}
	if _, err := f.conn.ExecContext(ctx, "SHUTDOWN"); err != nil && !isUnreachable(err) {
		return fmt.Errorf("shut down %s (fence_mode=shutdown): %w", orig, err)
	}
	f.conn.Close()
	f.conn = nil
	deadline := time.Now().Add(r.opts.waitTimeout())
	for {
		err := orig.db.PingContext(ctx)
		if err != nil && isUnreachable(err) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("shut down %s (fence_mode=shutdown): it still answers after %s", orig, r.opts.waitTimeout())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	r.logf("fence_mode=shutdown: %s is shut down.", orig)
	r.addf("%s: shut down (fence_mode=shutdown) at %s.", orig.srv, r.plan.OrigMasterPos)
	return nil
}

// releaseFence drops the FTWRL (read_only stays as it is).
func (r *run) releaseFence(f *fence) {
	if f == nil || f.conn == nil {
		return
	}
	if f.locked {
		f.conn.ExecContext(context.Background(), "UNLOCK TABLES")
	}
	f.conn.Close()
	f.conn = nil
}

// undoFence gives the old master back: UNLOCK TABLES, read_only=0, and the
// online change script's start for the old master. It returns cause.
func (r *run) undoFence(ctx context.Context, orig *node, f *fence, cause error) error {
	if f == nil || orig == nil {
		return cause
	}
	r.releaseFence(f)
	if err := orig.exec(context.WithoutCancel(ctx), orig.d.SetReadOnly(false)...); err != nil {
		r.rep.addf("could not undo the fence on %s: %v", orig.srv, err)
		return fmt.Errorf("%w (and undoing the fence failed: %v)", cause, err)
	}
	r.rep.addf("Switch aborted before the promotion: %s is writable again (fence undone).", orig.srv)
	r.logf("Fence on %s undone: UNLOCK TABLES, read_only=0.", orig.srv)
	return cause
}

// waitReached waits until n executed everything the fenced old master wrote.
func (r *run) waitReached(ctx context.Context, n *node) error {
	if r.plan.GTID && r.plan.OrigGTID != "" {
		return n.waitGTID(ctx, r.plan.OrigGTID, r.opts.waitTimeout())
	}
	return n.waitPos(ctx, dialect.Pos{File: r.plan.OrigMasterPos.File, Pos: r.plan.OrigMasterPos.Pos}, r.opts.waitTimeout())
}

func (e *Election) logLines() []string {
	if e == nil {
		return nil
	}
	return e.Log
}
