package failover

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
)

// node is one connected MySQL/MariaDB server and what we read from it.
type node struct {
	srv *config.Server
	db  *sql.DB
	d   dialect.Dialect

	version   string
	logBin    bool
	readOnly  bool
	serverID  uint32
	relayBase string                 // @@relay_log_basename
	replica   *dialect.ReplicaStatus // nil when not a replica
	// partial is set once waitRelayApplied found the relay log ending
	// inside a transaction that will never be completed (the IO thread is
	// stopped and the SQL thread waits at the end of the relay log). The
	// server then counts as having received its master's binlog up to the
	// start of that transaction (readCoord is execCoord): STOP SLAVE rolls
	// the transaction's applied part back, and the whole transaction comes
	// from the latest replica's relay log or the dead master's binlog.
	partial bool

	// MariaDB GTID state (empty on MySQL).
	gtidBinlogPos, gtidSlavePos, gtidCurrentPos string
	// MySQL GTID state.
	gtidExecuted string
}

func (n *node) String() string { return n.srv.String() }

// driverConfig is the go-sql-driver configuration for the server's
// manager user.
func driverConfig(s *config.Server, timeout time.Duration) *mysql.Config {
	c := dialect.DriverConfig(s)
	c.Timeout = timeout
	c.ReadTimeout = 10 * time.Minute // applying logs or waiting may take long; contexts cut it short
	c.WriteTimeout = time.Minute
	return c
}

// connect opens a pool to s and reads its state. timeout bounds the dial
// and handshake of every connection (and, plus 3 s, the state queries).
// With a fencing (every pipeline: they may change s), every connection of
// the pool is fenced before it is used (see doc.go), so also before the
// state is read; an apply through replication that an earlier actor left
// on s is stopped and removed right after the first one.
func connect(ctx context.Context, s *config.Server, timeout time.Duration, f *fencing) (*node, error) {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	c, err := newConnector(s, driverConfig(s, timeout), timeout, f)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	db.SetMaxIdleConns(4)
	db.SetMaxOpenConns(maxPoolConns)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %w", s, err)
	}
	conn.Close() // back to the pool
	n := &node{srv: s, db: db}
	rctx, cancel := context.WithTimeout(ctx, timeout+3*time.Second)
	defer cancel()
	if f != nil {
		removed, err := n.removeLeftoverApply(rctx)
		if err != nil {
			db.Close()
			return nil, err
		}
		if removed {
			f.logf("%s: stopped and removed the replication connection '%s' that an earlier run left applying logs.", s, binlog.ApplyConnection)
		}
	}
	if err := n.refresh(rctx); err != nil {
		db.Close()
		return nil, err
	}
	return n, nil
}

// removeLeftoverApply stops and removes the replication connection
// binlog.Apply creates while it applies through replication, if an earlier
// actor left one (it died, or was paused and fenced off): its IO thread
// may still be fed by that actor's event server and its SQL thread still
// apply, so what the server holds would not be settled. MySQL has no
// named connections: nothing to do.
func (n *node) removeLeftoverApply(ctx context.Context) (removed bool, err error) {
	rows, err := n.db.QueryContext(ctx, "SHOW ALL SLAVES STATUS")
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1064 {
			return false, nil // MySQL: a syntax error
		}
		return false, fmt.Errorf("SHOW ALL SLAVES STATUS on %s: %w", n, err)
	}
	all, err := dialect.ScanRows(rows)
	if err != nil {
		return false, fmt.Errorf("SHOW ALL SLAVES STATUS on %s: %w", n, err)
	}
	for _, r := range all {
		if !strings.EqualFold(r["Connection_name"], binlog.ApplyConnection) {
			continue
		}
		q := "'" + binlog.ApplyConnection + "'"
		if err := n.exec(ctx, "STOP SLAVE "+q, "RESET SLAVE "+q+" ALL"); err != nil {
			return false, fmt.Errorf("remove the log apply an earlier run left on %s: %w", n, err)
		}
		return true, nil
	}
	return false, nil
}

func (n *node) close() {
	if n != nil && n.db != nil {
		n.db.Close()
	}
}

// refresh reads version, log_bin, read_only, replica status and GTID state.
func (n *node) refresh(ctx context.Context) error {
	var version, comment string
	var logBin, readOnly int
	err := n.db.QueryRowContext(ctx, "SELECT @@version, @@version_comment, @@log_bin, @@read_only").
		Scan(&version, &comment, &logBin, &readOnly)
	if err != nil {
		return fmt.Errorf("read state of %s: %w", n, err)
	}
	v, err := dialect.ParseVersion(version, comment)
	if err != nil {
		return fmt.Errorf("parse version of %s: %w", n, err)
	}
	n.version, n.d, n.logBin, n.readOnly = version, dialect.For(v), logBin == 1, readOnly == 1
	var relayBase sql.NullString
	if err := n.db.QueryRowContext(ctx, "SELECT @@server_id, @@relay_log_basename").Scan(&n.serverID, &relayBase); err != nil {
		return fmt.Errorf("read server_id of %s: %w", n, err)
	}
	n.relayBase = relayBase.String
	if err := n.refreshReplica(ctx); err != nil {
		return err
	}
	return n.refreshGTID(ctx)
}

func (n *node) refreshReplica(ctx context.Context) error {
	rows, err := n.queryRows(ctx, n.d.ShowReplicaStatus())
	if err != nil {
		return err
	}
	n.replica = nil
	if len(rows) > 0 {
		if n.replica, err = dialect.ParseReplicaStatus(rows[0]); err != nil {
			return fmt.Errorf("replica status of %s: %w", n, err)
		}
	}
	return nil
}

func (n *node) refreshGTID(ctx context.Context) error {
	if n.d.V.IsMariaDB() {
		err := n.db.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos, @@gtid_slave_pos, @@gtid_current_pos").
			Scan(&n.gtidBinlogPos, &n.gtidSlavePos, &n.gtidCurrentPos)
		if err != nil {
			return fmt.Errorf("read GTID state of %s: %w", n, err)
		}
		return nil
	}
	var s sql.NullString
	if err := n.db.QueryRowContext(ctx, "SELECT @@global.gtid_executed").Scan(&s); err != nil {
		return fmt.Errorf("read GTID state of %s: %w", n, err)
	}
	n.gtidExecuted = s.String
	return nil
}

// queryRows returns every row as column -> value (NULL as "").
func (n *node) queryRows(ctx context.Context, q string, args ...any) ([]map[string]string, error) {
	rows, err := n.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", q, n, err)
	}
	out, err := dialect.ScanRows(rows)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", q, n, err)
	}
	return out, nil
}

// exec runs statements in order on one connection. Statements holding a
// password are logged by callers through dialect.RedactPassword only.
func (n *node) exec(ctx context.Context, stmts ...string) error {
	conn, err := n.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", n, err)
	}
	defer conn.Close()
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s on %s: %w", dialect.RedactPassword(q), n, err)
		}
	}
	return nil
}

// masterStatus is SHOW MASTER STATUS: the position the server writes at.
func (n *node) masterStatus(ctx context.Context) (dialect.Pos, error) {
	rows, err := n.queryRows(ctx, n.d.ShowMasterStatus())
	if err != nil {
		return dialect.Pos{}, err
	}
	if len(rows) == 0 {
		return dialect.Pos{}, fmt.Errorf("%s on %s: binary logging is off", n.d.ShowMasterStatus(), n)
	}
	p, err := dialect.ParsePos(rows[0]["File"] + ":" + rows[0]["Position"])
	if err != nil {
		return dialect.Pos{}, fmt.Errorf("master status of %s: %w", n, err)
	}
	return p, nil
}

// usesGTID reports whether the server replicates by GTID.
func (n *node) usesGTID() bool { return n.replica != nil && n.replica.UsesGTID() }

// readCoord and execCoord are the replica's coordinates in its master's
// binlog. readCoord is where the last transaction it received in full ends:
// Read_Master_Log_Pos, or Exec_Master_Log_Pos once the relay log was found
// to end inside a transaction (partial).
func (n *node) readCoord() Coord {
	if n.replica == nil {
		return Coord{}
	}
	if n.partial {
		return n.execCoord()
	}
	return Coord{n.replica.MasterLogFile, n.replica.ReadMasterLogPos}
}

func (n *node) execCoord() Coord {
	if n.replica == nil {
		return Coord{}
	}
	return Coord{n.replica.RelayMasterLogFile, n.replica.ExecMasterLogPos}
}

// waitRelayApplied waits until the SQL thread executed everything the IO
// thread had read (MHA's wait_until_relay_log_applied). A stopped SQL thread
// is started first; an SQL error fails at once.
//
// A relay log can end inside a transaction: the IO thread was stopped, or
// the server restarted, while a transaction streamed in. With the IO thread
// stopped, the rest never comes; the SQL thread executes what it can and
// waits at the end of the relay log with Exec_Master_Log_Pos below
// Read_Master_Log_Pos for good. Seen for 100 ms with the same coordinates,
// that state ends the wait and marks the node partial (see node.partial):
// waiting longer would only run into the timeout.
func (n *node) waitRelayApplied(ctx context.Context, timeout time.Duration) error {
	if err := n.refreshReplica(ctx); err != nil {
		return err
	}
	if n.replica == nil {
		return nil
	}
	if !n.replica.SQLRunning && n.replica.LastSQLErrno == 0 && n.execCoord().Compare(n.readCoord()) < 0 {
		if err := n.exec(ctx, n.d.StartSQLThread()); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(timeout)
	var idleAt Coord // exec coordinate since idleSince, while the SQL thread waits for more
	var idleSince time.Time
	for {
		if err := n.refreshReplica(ctx); err != nil {
			return err
		}
		r := n.replica
		if r.LastSQLErrno != 0 {
			return fmt.Errorf("wait for relay log apply on %s: SQL thread error %d: %s", n, r.LastSQLErrno, r.LastSQLError)
		}
		if n.execCoord().Compare(n.readCoord()) >= 0 {
			return nil
		}
		if r.SQLRunning && !r.IOThreadRunning() && dialect.SQLThreadIdle(r.SQLState) {
			switch {
			case idleAt != n.execCoord():
				idleAt, idleSince = n.execCoord(), time.Now()
			case time.Since(idleSince) >= 100*time.Millisecond:
				n.partial = true
				return nil
			}
		} else {
			idleAt = Coord{}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for relay log apply on %s: executed %s of %s after %s", n, n.execCoord(), n.readCoord(), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitExecuted waits until the server has executed the events up to the
// given coordinates of its master (MASTER_POS_WAIT) or GTID position
// (MASTER_GTID_WAIT / WAIT_FOR_EXECUTED_GTID_SET).
func (n *node) waitPos(ctx context.Context, p dialect.Pos, timeout time.Duration) error {
	var res sql.NullInt64
	q := n.d.MasterPosWait(p.File, p.Pos, timeout)
	if err := n.db.QueryRowContext(ctx, q).Scan(&res); err != nil {
		return fmt.Errorf("%s on %s: %w", q, n, err)
	}
	if !res.Valid || res.Int64 < 0 {
		return fmt.Errorf("%s on %s: not reached (result %v)", q, n, res)
	}
	return nil
}

func (n *node) waitGTID(ctx context.Context, gtid string, timeout time.Duration) error {
	var res sql.NullInt64
	q := n.d.GTIDWait(gtid, timeout)
	if err := n.db.QueryRowContext(ctx, q).Scan(&res); err != nil {
		return fmt.Errorf("%s on %s: %w", q, n, err)
	}
	if !res.Valid || !n.d.GTIDWaitReached(res.Int64) {
		return fmt.Errorf("%s on %s: not reached (result %v)", q, n, res)
	}
	return nil
}

// isReplicaOf reports whether the replica status points at m.
func (n *node) isReplicaOf(m *config.Server) bool {
	if n.replica == nil {
		return false
	}
	return n.replica.MasterPort == m.Port && (n.replica.MasterHost == m.IP || n.replica.MasterHost == m.Hostname)
}

// writable reports a server that is not read_only and not a replica.
func (n *node) writable() bool { return !n.readOnly && n.replica == nil }

// changeMaster points n at m, starts replication and waits (bounded by
// timeout) until it runs: the IO thread connected to m and the SQL thread
// running; otherwise it fails naming n, m and the replication errors.
// With gtid the replica positions itself by GTID (MariaDB slave_pos /
// MySQL auto-position), otherwise at pos.
func (n *node) changeMaster(ctx context.Context, m *config.Server, gtid bool, pos dialect.Pos, timeout time.Duration) error {
	o := dialect.ChangeMasterOpts{Host: m.IP, Port: m.Port, User: n.srv.ReplUser, Password: n.srv.ReplPassword,
		ConnectRetry: time.Second}
	if m.IP == "" {
		o.Host = m.Hostname
	}
	if gtid {
		o.Mode = dialect.GTIDSlavePos
	} else {
		o.Mode, o.File, o.Pos = dialect.FilePos, pos.File, pos.Pos
	}
	// RESET SLAVE ALL forgets MASTER_HEARTBEAT_PERIOD; the replica keeps
	// the one it had (the detector's replica-silence threshold counts on
	// it: MariaDB's default, slave_net_timeout/2, would slow the next
	// failover of a silent master to half a minute).
	o.HeartbeatPeriod = n.heartbeatPeriod(ctx)
	if err := n.exec(ctx, n.d.StopReplica(), n.d.ResetReplicaAll(), n.d.ChangeMaster(o), n.d.StartReplica()); err != nil {
		return err
	}
	if err := n.waitReplicaRunning(ctx, timeout); err != nil {
		return fmt.Errorf("repoint %s to %s as %s: %w", n, m, n.srv.ReplUser, err)
	}
	return nil
}

// heartbeatPeriod is n's current replication heartbeat period, 0 when
// it is not a replica or the period cannot be read (CHANGE MASTER then
// leaves it to the server's default).
func (n *node) heartbeatPeriod(ctx context.Context) time.Duration {
	var v sql.NullString
	if err := n.db.QueryRowContext(ctx, n.d.HeartbeatPeriodQuery()).Scan(&v); err != nil || !v.Valid {
		return 0
	}
	secs, err := strconv.ParseFloat(v.String, 64)
	if err != nil || secs <= 0 {
		return 0
	}
	return time.Duration(secs * float64(time.Second))
}

// authErrors are Last_IO_Errno values that retrying does not cure.
var authErrors = map[int]bool{1044: true, 1045: true, 1130: true, 1251: true}

// waitReplicaRunning polls the replica status every 50 ms until the IO
// thread is connected (Slave_IO_Running=Yes) and the SQL thread runs. An
// SQL thread error or a refused login fails at once; otherwise it fails
// after timeout (default 15 s) with Last_IO_Error / Last_SQL_Error (the
// server's texts hold no password).
func (n *node) waitReplicaRunning(ctx context.Context, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		if err := n.refreshReplica(ctx); err != nil {
			return err
		}
		r := n.replica
		if r == nil {
			return fmt.Errorf("%s is not a replica after START SLAVE", n)
		}
		if r.IOThreadRunning() && r.SQLRunning {
			return nil
		}
		state := fmt.Sprintf("replication on %s from %s:%d is not running: Slave_IO_Running=%s, Slave_SQL_Running=%s",
			n, r.MasterHost, r.MasterPort, r.IORunning, map[bool]string{true: "Yes", false: "No"}[r.SQLRunning])
		if r.LastIOError != "" {
			state += fmt.Sprintf(", Last_IO_Error (%d): %s", r.LastIOErrno, r.LastIOError)
		}
		if r.LastSQLError != "" {
			state += fmt.Sprintf(", Last_SQL_Error (%d): %s", r.LastSQLErrno, r.LastSQLError)
		}
		switch {
		case !r.SQLRunning && r.LastSQLErrno != 0, authErrors[r.LastIOErrno]:
			return errors.New(state + "; fix it, then START SLAVE on it")
		case time.Now().After(deadline):
			return fmt.Errorf("%s after %s; check repl_user/repl_password and that %s can reach its master", state, timeout, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// isUnreachable tells "the server did not answer" (dialect.Classify)
// from an answer; a refusal of the guard or of the fencing is not that.
func isUnreachable(err error) bool {
	if err == nil || errors.Is(err, ErrMayNotAct) || errors.Is(err, errFenceFailed) {
		return false
	}
	return dialect.Unreachable(err)
}
