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
	end := plan.TailEnd
	if end.IsZero() || plan.TailFile == "" {
		end = plan.LatestRead
	}
	extra, err := eventsAfter(ctx, old, end)
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

// eventsAfter lists the transaction events in n's binlog after end.
func eventsAfter(ctx context.Context, n *node, end Coord) ([]string, error) {
	logs, err := n.queryRows(ctx, n.d.ShowBinaryLogs())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range logs {
		file := l["Log_name"]
		from := uint64(4)
		switch c := (Coord{File: file}).Compare(Coord{File: end.File}); {
		case c < 0:
			continue
		case c == 0:
			from = end.Pos
		}
		rows, err := n.queryRows(ctx, fmt.Sprintf("SHOW BINLOG EVENTS IN %s FROM %d", dialect.QuoteString(file), from))
		if err != nil {
			return nil, err
		}
		for _, e := range rows {
			switch e["Event_type"] {
			case "Format_desc", "Rotate", "Stop", "Gtid_list", "Binlog_checkpoint", "Start_encryption", "Previous_gtids":
				continue
			}
			if e["Event_type"] == "Gtid" || e["Event_type"] == "Anonymous_Gtid" || e["Event_type"] == "Query" && !strings.HasPrefix(e["Info"], "BEGIN") {
				out = append(out, fmt.Sprintf("%s:%s %s %s", file, e["Pos"], e["Event_type"], e["Info"]))
			}
		}
	}
	return out, nil
}
