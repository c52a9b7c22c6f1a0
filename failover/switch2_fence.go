package failover

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
)

// fence is the old master held read-only: read_only=1 and FLUSH TABLES WITH
// READ LOCK held on a dedicated connection. The dead master's fence
// (phase2_dead_master.go) is one too.
type fence struct {
	conn    *sql.Conn
	started time.Time
	locked  bool
	killed  int // client connections killed
}

// rejectUpdates is phase 2 (MHA's "Rejecting updates phase"):
// master_ip_online_change_script stop, then the old master fenced
// (read_only=1, its application connections killed, FLUSH TABLES WITH
// READ LOCK held) and its final position recorded.
func (r *run) rejectUpdates(ctx context.Context, st *switchState) error {
	app := r.opts.App
	orig, newM := st.orig, st.newM
	if orig == nil {
		return fmt.Errorf("%w: resuming the switch: the old master %s is unreachable (%v), so it cannot be fenced; "+
			"check that it takes no writes (it may be read_only=1 already), then run a dead-master failover or, once it answers, a new switch",
			ErrUnsafeResume, r.plan.OldMaster, st.errs[r.plan.OldMaster])
	}
	if app.MasterIPOnlineChangeScript != "" {
		res, err := r.runHook(ctx, app.MasterIPOnlineChangeScript, r.onlineChangeArgs("stop", orig.srv, newM.srv))
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
	st.fence, err = r.fenceAndReadPos(ctx, orig)
	return err
}

// onlineChangeArgs are master_ip_online_change_script's arguments. With
// --ssh_reachable=0 the old master's SSH user and address
// (--orig_master_ssh_*) are left out: the script is told not to reach it
// over SSH (it must disable writes or move the address by other means).
func (r *run) onlineChangeArgs(command string, orig, newM *config.Server) []Arg {
	args := OnlineChangeArgs(command, orig, newM, r.opts.OrigMasterIsNewSlave)
	if r.opts.Switch.OrigMasterSSH != SSHUnreachable {
		return args
	}
	var out []Arg
	for _, a := range args {
		if !strings.HasPrefix(a.Name, "orig_master_ssh_") {
			out = append(out, a)
		}
	}
	r.logf("--ssh_reachable=0: master_ip_online_change_script --command=%s is not given the SSH user and address of %s.", command, orig)
	return out
}

// fenceAgain is phase 2 again on a resume after it completed but before
// the promotion: the earlier run's FLUSH TABLES WITH READ LOCK ended with
// it (read_only=1 may remain). Fence again and read the final position
// again: a write that slipped in since is in the new position, which
// phase 3 (run again) then covers. An unreachable old master cannot be
// fenced: ErrUnsafeResume, unless fence_mode=shutdown left it down after
// phase 3.
func (r *run) fenceAgain(ctx context.Context, st *switchState) error {
	kind, _ := dialect.Classify(st.errs[r.plan.OldMaster])
	switch {
	case st.orig == nil && r.opts.App.FenceMode == "shutdown" && r.done[SwitchWait] && kind == dialect.KindRefused:
		r.logf("The old master %s is down (connection refused), as fence_mode=shutdown leaves it.", r.plan.OldMaster)
	case st.orig == nil:
		return fmt.Errorf("%w: resuming the switch after %q: the old master %s is unreachable (%v), so it cannot be fenced again "+
			"before %s is promoted; check that it takes no writes, then run a dead-master failover (or repair it and switch again)",
			ErrUnsafeResume, SwitchFence, r.plan.OldMaster, st.errs[r.plan.OldMaster], r.plan.NewMaster)
	default:
		var err error
		if st.fence, err = r.fenceAndReadPos(ctx, st.orig); err != nil {
			return err
		}
		// The final position may have moved: wait for it again.
		delete(r.done, SwitchWait)
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
	killed, _, err := killConnections(ctx, conn, myID)
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
// threads; it returns how many it killed and how many of those were
// committing and waiting for a semi-sync acknowledgement (see
// semiSyncWaiting).
func killConnections(ctx context.Context, conn *sql.Conn, myID int64) (killed, waiting int, err error) {
	rows, err := conn.QueryContext(ctx, "SHOW PROCESSLIST")
	if err != nil {
		return 0, 0, err
	}
	threads, err := dialect.ScanRows(rows)
	if err != nil {
		return 0, 0, err
	}
	for _, p := range threads {
		if p["Id"] == fmt.Sprint(myID) || skipThread(p) {
			continue
		}
		if _, err := conn.ExecContext(ctx, "KILL "+p["Id"]); err != nil {
			continue // an unknown thread id has simply gone already
		}
		killed++
		if semiSyncWaiting(p) {
			waiting++
		}
	}
	return killed, waiting, nil
}

// semiSyncWaiting reports whether a SHOW PROCESSLIST row is a commit
// waiting for a semi-sync acknowledgement ("Waiting for semi-sync ACK
// from slave" on MariaDB; MySQL says replica since 8.0.26). Its
// transaction is already in the binlog. Killed, its client may be told OK
// or lose the connection: MariaDB 10.11 answered OK in 5 of 47 fences of
// four busy clients under CPU load, about one killed waiting commit in
// forty (failover's TestDivergenceSemiSyncBusyClients), a race inside the
// server between the killed thread's OK and the closing of its socket.
func semiSyncWaiting(p map[string]string) bool {
	return strings.Contains(strings.ToLower(p["State"]), "semi-sync ack")
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
