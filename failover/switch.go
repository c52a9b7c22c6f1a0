package failover

import (
	"context"
	"database/sql"
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

func (r *run) doSwitch(ctx context.Context) error {
	app := r.opts.App
	var orig, newM *node
	var others []*node

	err := r.phase(ctx, SwitchCheck, func() error {
		// Unreachable servers are refused unless they have ignore_fail
		// (then they are left out, as MHA does).
		errs := r.connectAll(ctx)
		if err := notLeader(errs); err != nil {
			return err
		}
		var msgs []string
		r.plan.Ignored = nil
		for _, s := range app.Servers {
			e, failed := errs[s.Name]
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
		newM = r.nodes[el.NewMaster.Server.Name]
		r.plan.NewMaster = newM.srv.Name
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
	})
	if err != nil {
		return err
	}
	for _, name := range r.plan.Replicas {
		others = append(others, r.nodes[name])
	}

	// Fence the old master. From here on, until the promotion, a failure
	// undoes the fence.
	var f *fence
	err = r.phase(ctx, SwitchFence, func() error {
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
		f, err = r.fenceOldMaster(ctx, orig)
		if err != nil {
			return err
		}
		pos, err := orig.masterStatus(ctx)
		if err != nil {
			return err
		}
		r.plan.OrigMasterPos = Coord{pos.File, pos.Pos}
		if err := orig.refreshGTID(ctx); err != nil {
			return err
		}
		r.plan.OrigGTID = orig.gtidBinlogPos
		if !orig.d.V.IsMariaDB() {
			r.plan.OrigGTID = orig.gtidExecuted
		}
		r.logf("Orig master binlog:pos is %s (GTID %s).", r.plan.OrigMasterPos, r.plan.OrigGTID)
		return nil
	})
	if err != nil {
		return r.undoFence(ctx, orig, f, err)
	}

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
	if app.FenceMode == "shutdown" {
		// Before the new master is writable: the old master stops for good.
		if err := r.shutdownOldMaster(ctx, orig, f); err != nil {
			return r.undoFence(ctx, orig, f, err)
		}
	}

	err = r.phase(ctx, SwitchPromote, func() error {
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
		if app.MasterIPOnlineChangeScript != "" {
			res, err := r.runHook(ctx, app.MasterIPOnlineChangeScript, OnlineChangeArgs("start", orig.srv, newM.srv, r.opts.OrigMasterIsNewSlave))
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
		if f != nil {
			r.rep.WritesBlocked = time.Since(f.started)
			r.rep.WritesBlockedSecs = r.rep.WritesBlocked.Seconds()
		}
		r.logf("New master %s is writable at %s; writes were blocked for %.3f s.", newM, r.plan.NewMasterPos, r.rep.WritesBlockedSecs)
		r.rep.addf("%s: OK: promoted to master at %s.", newM.srv, r.plan.NewMasterPos)
		return nil
	})
	if err != nil {
		if newM.refresh(ctx) == nil && newM.replica != nil {
			// Not promoted yet (still a replica): safe to give the old master back.
			return r.undoFence(ctx, orig, f, err)
		}
		r.releaseFence(f)
		return err
	}

	err = r.phase(ctx, SwitchReplicas, func() error {
		errs := parallel(others, func(n *node) error {
			if err := r.waitReached(ctx, n); err != nil {
				return err
			}
			return n.changeMaster(ctx, newM.srv, r.plan.GTID, dialect.Pos{File: r.plan.NewMasterPos.File, Pos: r.plan.NewMasterPos.Pos})
		})
		for _, n := range others {
			if e := errs[n.srv.Name]; e != nil {
				r.rep.Replicas = append(r.rep.Replicas, ReplicaOutcome{Server: n.srv.Name, State: e.Error()})
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
			return fmt.Errorf("%d replica(s) could not be repointed", len(errs))
		}
		return nil
	})
	if err != nil {
		r.releaseFence(f)
		return err
	}

	if !r.opts.OrigMasterIsNewSlave {
		r.releaseFence(f) // read_only=1 stays
		r.rep.addf("%s: left read_only=1 (not made a replica).", orig.srv)
		r.rep.addf("Master switch to %s completed successfully.", newM.srv)
		return nil
	}
	err = r.phase(ctx, SwitchOldSlave, func() error {
		r.releaseFence(f)
		if orig.d.V.IsMariaDB() && r.plan.GTID {
			if err := orig.exec(ctx, orig.d.StopReplica(), "SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos"); err != nil {
				return err
			}
		}
		if err := orig.changeMaster(ctx, newM.srv, r.plan.GTID, dialect.Pos{File: r.plan.NewMasterPos.File, Pos: r.plan.NewMasterPos.Pos}); err != nil {
			return err
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
