package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
)

// RejoinOptions name the repaired old master.
type RejoinOptions struct {
	Options
	// Host is the old master (name, host:port or ip:port).
	Host string
	// Plan is the failover's recorded plan; nil reads the newest failover
	// report in manager_workdir whose old master is Host.
	Plan *Plan
	// Replayed, when set, is the reconcile's replay of Host's divergent
	// transactions on the new master: Host may then hold exactly that many
	// transactions after the failover point, and replicates everything of
	// the new master except the replay (it has its own copies).
	Replayed *Replayed
	// skipReplay makes a rejoin after a replay skip the replay's range
	// even where the old master's transactions could be rewound (tests).
	skipReplay bool
}

// Replayed is a replay of divergent transactions on a master
// (ReplayDivergence), as the replicated state records it.
type Replayed struct {
	Transactions int
	Epoch        uint64 // the failover's epoch (names the divergence file)
	Master       string // name of the master it was replayed on
	GTID         string
	Start, End   Coord // its range in that master's binlog
}

// RejoinResult says what Rejoin did or why it refused.
type RejoinResult struct {
	Server    string   `json:"server"`
	NewMaster string   `json:"new_master"`
	Mode      string   `json:"mode"` // "gtid" or "file/position"
	From      string   `json:"from"` // where replication starts
	Extra     []string `json:"extra,omitempty"`
}

// LastFailoverPlan reads the newest failover report of app in dir whose
// old master is name ("" for any).
func LastFailoverPlan(dir, app, name string) (*Plan, error) {
	paths, _ := filepath.Glob(filepath.Join(dir, "failover_report_"+app+"_*.json"))
	sort.Sort(sort.Reverse(sort.StringSlice(paths))) // timestamps sort as strings
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var rep Report
		if json.Unmarshal(b, &rep) != nil || rep.Plan == nil || !rep.OK {
			continue
		}
		if name == "" || rep.Plan.OldMaster == name {
			return rep.Plan, nil
		}
	}
	return nil, fmt.Errorf("%w: no successful failover report of %s for %s in %s", ErrRefused, app, name, dir)
}

// Rejoin makes a repaired old master a replica of the new master at the
// recorded coordinates, after proving that it holds no transaction the new
// master lacks: by GTID (MariaDB gtid_binlog_pos, compared per domain) and
// by binlog coordinates (no event in its binlog after the end of what the
// failover recovered from it). Otherwise it refuses and lists them.
func Rejoin(ctx context.Context, opts RejoinOptions) (*RejoinResult, error) {
	app := opts.App
	srv := app.Server(opts.Host)
	if srv == nil {
		return nil, fmt.Errorf("%w: %s is not in the configuration of %s", ErrRefused, opts.Host, app.Name)
	}
	plan := opts.Plan
	if plan == nil {
		var err error
		if plan, err = LastFailoverPlan(app.ManagerWorkdir, app.Name, srv.Name); err != nil {
			return nil, err
		}
	}
	newSrv := app.Server(plan.NewMaster)
	if newSrv == nil {
		return nil, fmt.Errorf("%w: new master %s of the recorded failover is not configured", ErrRefused, plan.NewMaster)
	}
	timeout := 2 * time.Second
	if app.ConnectTimeout > 0 {
		timeout = app.ConnectTimeout
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	fc := newFencing(app.Name, opts.Guard, opts.FenceWait, timeout, func(format string, args ...any) {
		fmt.Fprintf(out, "%s - [info] %s\n", time.Now().Format("Mon Jan _2 15:04:05.000 2006"), fmt.Sprintf(format, args...))
	})
	old, err := connect(ctx, srv, timeout, fc)
	if err != nil {
		return nil, fmt.Errorf("rejoin %s: %w", srv, err)
	}
	defer old.close()
	newM, err := connect(ctx, newSrv, timeout, fc)
	if err != nil {
		return nil, fmt.Errorf("rejoin %s: %w", srv, err)
	}
	defer newM.close()
	res := &RejoinResult{Server: srv.Name, NewMaster: newSrv.Name, Mode: "file/position"}
	if plan.GTID {
		res.Mode = "gtid"
	}
	if old.isReplicaOf(newSrv) {
		res.From = "already replicating"
		return res, nil
	}
	if newM.replica != nil {
		return nil, fmt.Errorf("%w: %s is a replica, not the master", ErrRefused, newM)
	}
	if opts.Replayed != nil {
		return rejoinReplayed(ctx, opts, fc, old, newM, plan, res)
	}

	// 1. GTID: everything the old master logged must be on the new master.
	if old.d.V.IsMariaDB() {
		have, err1 := dialect.ParseMariaDBPos(newM.gtidBinlogPos)
		oldPos, err2 := dialect.ParseMariaDBPos(old.gtidBinlogPos)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("rejoin %s: parse GTID positions: %v %v", srv, err1, err2)
		}
		res.Extra = append(res.Extra, have.Missing(oldPos)...)
	}
	// 2. Coordinates: nothing in the old master's binlog after what was recovered.
	extra, err := eventsAfter(ctx, old, DivergencePoint(plan))
	if err != nil {
		return nil, fmt.Errorf("rejoin %s: %w", srv, err)
	}
	res.Extra = append(res.Extra, extra...)
	if len(res.Extra) > 0 {
		return res, fmt.Errorf("%w: %s holds %d transaction(s)/event(s) the new master %s lacks: %s",
			ErrRefused, srv, len(res.Extra), newSrv, strings.Join(res.Extra, "; "))
	}

	stmts := []string{old.d.StopReplica(), old.d.ResetReplicaAll()}
	stmts = append(stmts, old.d.SetReadOnly(true)...)
	stmts = append(stmts, semiSyncMasterOff(ctx, old)...)
	if plan.GTID && old.d.V.IsMariaDB() {
		stmts = append(stmts, "SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos")
	}
	if err := old.exec(ctx, stmts...); err != nil {
		return nil, fmt.Errorf("rejoin %s: %w", srv, err)
	}
	pos := dialect.Pos{File: plan.NewMasterPos.File, Pos: plan.NewMasterPos.Pos}
	if err := old.changeMaster(ctx, newSrv, plan.GTID, pos, opts.replicaStartTimeout()); err != nil {
		return nil, fmt.Errorf("rejoin %s: %w", srv, err)
	}
	res.From = pos.String()
	if plan.GTID {
		res.From = "gtid slave_pos " + old.gtidBinlogPos
	}
	return res, nil
}

// semiSyncMasterOff is the statement that stops a rejoining old master
// from being a semi-sync master, when it is one: as a replica, every
// transaction its applier commits (binlogged with log_slave_updates)
// would wait for an acknowledgement no replica of it sends, up to
// rpl_semi_sync_master_timeout, and the rejoined server would not catch
// up (the lossless datacenter round's old master stalled at its first
// replicated transaction). Semi-sync on the replica side is left as it is.
func semiSyncMasterOff(ctx context.Context, n *node) []string {
	ss, err := readSemiSync(ctx, n)
	if err != nil || !ss.Known || !ss.MasterEnabled {
		return nil
	}
	return []string{n.d.SetSemiSyncMaster(false)}
}

// eventsAfter lists the transaction events in n's binlog after end.
func eventsAfter(ctx context.Context, n *node, end Coord) ([]string, error) {
	var out []string
	err := binlogEventsAfter(ctx, n, end, func(file string, rows []map[string]string) {
		for _, e := range rows {
			switch e["Event_type"] {
			case "Format_desc", "Rotate", "Stop", "Gtid_list", "Binlog_checkpoint", "Start_encryption", "Previous_gtids":
				continue
			}
			if e["Event_type"] == "Gtid" || e["Event_type"] == "Anonymous_Gtid" || e["Event_type"] == "Query" && !strings.HasPrefix(e["Info"], "BEGIN") {
				out = append(out, fmt.Sprintf("%s:%s %s %s", file, e["Pos"], e["Event_type"], e["Info"]))
			}
		}
	})
	return out, err
}

// rejoinReplayed rejoins an old master whose divergent transactions a
// reconcile replayed on the new master as one transaction (r): it must
// hold exactly r.Transactions transactions after the failover point (none
// more: anything written since was not reviewed nor replayed). It then
// replicates the new master's binlog from the failover's position up to
// the replay's start (START SLAVE UNTIL), skips the replay (it has its own
// copies of those transactions) and replicates from the replay's end:
// by file and position, or by GTID with the replay's GTID in
// gtid_slave_pos.
func rejoinReplayed(ctx context.Context, opts RejoinOptions, fc *fencing, old, newM *node, plan *Plan, res *RejoinResult) (*RejoinResult, error) {
	r := opts.Replayed
	if r.Master != newM.srv.Name {
		return nil, fmt.Errorf("%w: the divergent transactions of %s were replayed on %s, but the master is now %s: its binlog does not hold the replay where it was recorded",
			ErrRefused, old, r.Master, newM)
	}
	held, err := transactionsAfter(ctx, old, DivergencePoint(plan))
	if err != nil {
		return nil, fmt.Errorf("rejoin %s: %w", old, err)
	}
	if len(held) != r.Transactions {
		res.Extra = held
		return res, fmt.Errorf("%w: %s holds %d transaction(s) after the failover point, the reconcile replayed %d: %s; run `mhactl reconcile` again",
			ErrRefused, old, len(held), r.Transactions, strings.Join(held, "; "))
	}
	if r.Transactions > 0 && (r.Start.IsZero() || r.End.IsZero()) {
		return nil, fmt.Errorf("%w: the replay on %s has no recorded binlog range", ErrRefused, newM)
	}
	// Rewind when every transaction can be reverted row by row: the old
	// master is then at the failover point and replicates everything of
	// the new master, the replay included, whatever the new master wrote
	// before the replay (also to the same rows).
	var txs []DivergentTx
	if !opts.skipReplay && r.Transactions > 0 {
		dopts := DivergenceOptions{Options: opts.Options, Host: old.srv.Name, Plan: plan, Epoch: r.Epoch}
		d, err := ReadDivergence(ctx, dopts)
		switch {
		case err != nil:
			fc.logf("Cannot read the divergent transactions of %s to rewind them (%v): skipping the replay instead.", old, err)
		case len(d.Transactions) != r.Transactions || !invertible(d.Transactions):
			fc.logf("The divergent transactions of %s cannot all be reverted row by row: skipping the replay instead.", old)
		default:
			txs = d.Transactions
		}
	}
	stmts := []string{old.d.StopReplica(), old.d.ResetReplicaAll()}
	stmts = append(stmts, old.d.SetReadOnly(true)...)
	stmts = append(stmts, semiSyncMasterOff(ctx, old)...)
	if err := old.exec(ctx, stmts...); err != nil {
		return nil, fmt.Errorf("rejoin %s: %w", old, err)
	}
	from := dialect.Pos{File: plan.NewMasterPos.File, Pos: plan.NewMasterPos.Pos}
	if txs != nil {
		if err := rewind(ctx, old, fc, opts.App.ConnectTimeout, txs); err != nil {
			return nil, fmt.Errorf("rejoin %s: %w", old, err)
		}
		res.From = fmt.Sprintf("%s (its %d divergent transaction(s) rewound; the replay %s comes through replication)", from, len(txs), r.GTID)
		if plan.GTID && old.d.V.IsMariaDB() {
			if plan.NewMasterGTID == "" {
				return nil, fmt.Errorf("%w: the failover's plan has no GTID position of %s", ErrRefused, newM)
			}
			if err := old.exec(ctx, "SET GLOBAL gtid_slave_pos = "+dialect.QuoteString(plan.NewMasterGTID)); err != nil {
				return nil, fmt.Errorf("rejoin %s: %w", old, err)
			}
			res.From = fmt.Sprintf("gtid slave_pos %s (its %d divergent transaction(s) rewound; the replay %s comes through replication)", plan.NewMasterGTID, len(txs), r.GTID)
		}
		if err := old.changeMaster(ctx, newM.srv, plan.GTID, from, opts.replicaStartTimeout()); err != nil {
			return nil, fmt.Errorf("rejoin %s: %w", old, err)
		}
		return res, nil
	}
	if r.Transactions > 0 {
		if err := replicateUntil(ctx, old, newM.srv, from, r.Start, opts.replicaStartTimeout()+opts.waitTimeout()); err != nil {
			return nil, fmt.Errorf("rejoin %s: %w", old, err)
		}
		from = dialect.Pos{File: r.End.File, Pos: r.End.Pos}
	}
	res.From = from.String() + " (the replay " + r.GTID + " at " + r.Start.String() + " skipped)"
	if plan.GTID && old.d.V.IsMariaDB() {
		pos, err := gtidSlavePosAfter(ctx, old, r.GTID)
		if err != nil {
			return nil, fmt.Errorf("rejoin %s: %w", old, err)
		}
		if err := old.exec(ctx, old.d.StopReplica(), "SET GLOBAL gtid_slave_pos = "+dialect.QuoteString(pos)); err != nil {
			return nil, fmt.Errorf("rejoin %s: %w", old, err)
		}
		res.From = "gtid slave_pos " + pos + " (the replay " + r.GTID + " skipped)"
	}
	if err := old.changeMaster(ctx, newM.srv, plan.GTID, from, opts.replicaStartTimeout()); err != nil {
		return nil, fmt.Errorf("rejoin %s: %w", old, err)
	}
	return res, nil
}

// replicateUntil makes n replicate from m by file and position, from
// `from` up to until (START SLAVE UNTIL), and waits until its SQL thread
// stopped there; the replication is left stopped.
func replicateUntil(ctx context.Context, n *node, m *config.Server, from dialect.Pos, until Coord, timeout time.Duration) error {
	o := dialect.ChangeMasterOpts{Host: m.IP, Port: m.Port, User: n.srv.ReplUser, Password: n.srv.ReplPassword,
		ConnectRetry: time.Second, Mode: dialect.FilePos, File: from.File, Pos: from.Pos}
	if m.IP == "" {
		o.Host = m.Hostname
	}
	if err := n.exec(ctx, n.d.ChangeMaster(o), fmt.Sprintf("%s UNTIL MASTER_LOG_FILE = %s, MASTER_LOG_POS = %d",
		n.d.StartReplica(), dialect.QuoteString(until.File), until.Pos)); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		if err := n.refreshReplica(ctx); err != nil {
			return err
		}
		r := n.replica
		if r == nil {
			return fmt.Errorf("%s is not a replica after START SLAVE UNTIL", n)
		}
		exec := Coord{File: r.RelayMasterLogFile, Pos: r.ExecMasterLogPos}
		switch {
		case r.LastSQLErrno != 0:
			return fmt.Errorf("replicating %s up to the replay at %s: Last_SQL_Error (%d): %s", n, until, r.LastSQLErrno, r.LastSQLError)
		case authErrors[r.LastIOErrno]:
			return fmt.Errorf("replicating %s up to the replay at %s: Last_IO_Error (%d): %s", n, until, r.LastIOErrno, r.LastIOError)
		case !r.SQLRunning && exec.Compare(until) == 0:
			return n.exec(ctx, n.d.StopReplica())
		case !r.SQLRunning && exec.Compare(until) > 0:
			return fmt.Errorf("%s stopped at %s, past the replay's start %s", n, exec, until)
		case time.Now().After(deadline):
			return fmt.Errorf("%s did not reach the replay's start %s within %s (executed up to %s, Slave_IO_Running=%s)", n, until, timeout, exec, r.IORunning)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// gtidSlavePosAfter is n's gtid_slave_pos with the domain of gtid set to
// gtid: replication by GTID then starts right after it.
func gtidSlavePosAfter(ctx context.Context, n *node, gtid string) (string, error) {
	if err := n.refreshGTID(ctx); err != nil {
		return "", err
	}
	g, err := dialect.ParseMariaDBPos(gtid)
	if err != nil || len(g) != 1 {
		return "", fmt.Errorf("the replay's GTID %q: %v", gtid, err)
	}
	cur, err := dialect.ParseMariaDBPos(n.gtidSlavePos)
	if err != nil {
		return "", fmt.Errorf("gtid_slave_pos %q of %s: %w", n.gtidSlavePos, n, err)
	}
	var out []string
	for _, c := range cur {
		if c.Domain != g[0].Domain {
			out = append(out, c.String())
		}
	}
	out = append(out, g[0].String())
	sort.Strings(out)
	return strings.Join(out, ","), nil
}
