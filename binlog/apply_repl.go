package binlog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// ApplyConnection is the name of the MariaDB replication connection Apply
// creates on the target while it serves events (and removes after).
const ApplyConnection = "mharaft_apply"

// applyReplication applies the files through the target's own replication
// threads (see doc.go). why is non-empty when this method cannot be used
// for the target or these files and NOTHING was applied (the caller may
// then apply with statements); otherwise res and err are the outcome.
func applyReplication(ctx context.Context, conn *client.Conn, t Target, files []string, opts ApplyOptions) (res ApplyResult, why string, err error) {
	r, err := conn.Execute("SELECT VERSION(), @@server_id")
	if err != nil {
		return res, "", fmt.Errorf("read the version and server_id: %w", err)
	}
	version, _ := r.GetString(0, 0)
	serverID, _ := r.GetUint(0, 1)
	if !strings.Contains(version, "MariaDB") {
		return res, "the target is not MariaDB (" + version + "): Apply uses a MariaDB named replication connection", nil
	}
	if why, err := replicationBlockers(conn, opts); why != "" || err != nil {
		return res, why, err
	}
	st, err := buildServed(files)
	if err != nil {
		return res, fmt.Sprintf("the events cannot be served as one binlog file (%v)", err), nil
	}
	res.Bytes = st.bytes
	if st.serverIDs[uint32(serverID)] {
		return res, fmt.Sprintf("some events carry the target's own server_id %d, which its replication would skip", serverID), nil
	}
	if opts.Method == MethodAuto && st.onlyServer == "" && (opts.ReplicationMinBytes <= 0 || st.bytes < opts.ReplicationMinBytes) {
		return res, "statements apply these events (auto uses replication only for events statements cannot apply)", nil
	}
	if len(st.txs) == 0 {
		if st.incomplete {
			return res, "", errors.New("the last file ends inside a transaction (not applied)")
		}
		return res, "", nil
	}

	listen := opts.ListenAddr
	if listen == "" {
		// This host's address on the route to the target: the target can
		// reach it (it answers our packets there).
		host, _, _ := net.SplitHostPort(conn.LocalAddr().String())
		listen = net.JoinHostPort(host, "0")
	}
	srv, err := startEventServer(listen, st, version)
	if err != nil {
		return res, err.Error(), nil
	}
	defer srv.Close()
	ad := srv.Addr()
	host, port := ad.IP.String(), ad.Port
	if ad.IP.IsUnspecified() {
		host, _, _ = net.SplitHostPort(conn.LocalAddr().String())
	}
	if opts.AdvertiseAddr != "" {
		h, p, err := net.SplitHostPort(opts.AdvertiseAddr)
		if err != nil {
			return res, "", fmt.Errorf("advertise address %q: %w (want host:port, port 0 for the listening port)", opts.AdvertiseAddr, err)
		}
		if n, _ := strconv.Atoi(p); n > 0 {
			port = n
		}
		host = h
	}

	change := fmt.Sprintf("CHANGE MASTER '%s' TO MASTER_HOST=%s, MASTER_PORT=%d, MASTER_USER=%s, MASTER_PASSWORD=%s, "+
		"MASTER_LOG_FILE='%s', MASTER_LOG_POS=4, MASTER_USE_GTID=no, MASTER_CONNECT_RETRY=1, MASTER_SSL=0",
		ApplyConnection, quoteString(host), port, quoteString(srv.user), quoteString(srv.password), servedFile)
	if _, err := conn.Execute(change); err != nil {
		// The statement holds the one-time password: not in the error.
		return res, fmt.Sprintf("CHANGE MASTER '%s' TO MASTER_HOST='%s', MASTER_PORT=%d, ... failed: %v", ApplyConnection, host, port, err), nil
	}
	if _, err := conn.Execute("START SLAVE '" + ApplyConnection + "'"); err != nil {
		stopAndRemove(conn)
		return res, fmt.Sprintf("START SLAVE '%s' failed: %v", ApplyConnection, err), nil
	}

	waitErr := waitServed(ctx, conn, st, min(opts.ConnectTimeout, 5*time.Second))
	// The final state, after the threads stopped. A cancelled ctx closed
	// conn: then a new connection stops them (a manager that stops must
	// not leave the target applying) and says what was applied.
	c := conn
	if ctx.Err() != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.ConnectTimeout)
		defer cancel()
		nc, err := connectTarget(cctx, t, opts.ConnectTimeout)
		if err != nil {
			return res, "", fmt.Errorf("%w; then could not connect to stop the replication connection '%s' (a later Apply removes it): %v",
				ctx.Err(), ApplyConnection, err)
		}
		defer nc.Close()
		c = nc
	}
	status, statusErr := stopAndRemove(c)
	if statusErr != nil {
		return res, "", statusErr
	}
	exec, _ := strconv.ParseUint(status["Exec_Master_Log_Pos"], 10, 32)
	n := st.txAt(uint32(exec))
	res = st.result(n, res.Bytes)
	res.Method = MethodReplication
	if ctx.Err() != nil {
		return res, "", fmt.Errorf("%w (applying through replication: %d of %d transactions applied; the connection '%s' was stopped and removed)",
			ctx.Err(), n, len(st.txs), ApplyConnection)
	}
	if n < len(st.txs) {
		var notConnected *notConnectedError
		if n == 0 && errors.As(waitErr, &notConnected) {
			return res, notConnected.Error(), nil
		}
		next := st.txs[n]
		msg := status["Last_SQL_Error"]
		if msg == "" {
			if waitErr == nil {
				waitErr = fmt.Errorf("the SQL thread stopped at %s:%d of %d", servedFile, exec, st.end)
			}
			return res, "", fmt.Errorf("apply through replication: %w; %s", waitErr, srv.history())
		}
		stmt := "(a row event group; see the error)"
		if i := strings.Index(msg, "Query: '"); i >= 0 {
			stmt = strings.TrimSuffix(msg[i+len("Query: '"):], "'")
		}
		// The error names the failing event by its end in the served
		// file: name it in the input instead.
		file, off := files[next.file], next.start
		const endPos = "end_log_pos "
		if i := strings.Index(msg, servedFile+", "+endPos); i >= 0 {
			rest := msg[i+len(servedFile)+2+len(endPos):]
			if j := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); j != 0 {
				if j < 0 {
					j = len(rest)
				}
				if p, err := strconv.ParseUint(rest[:j], 10, 32); err == nil {
					if f, o, ok := st.locate(uint32(p)); ok {
						file, off = f, o
						msg += fmt.Sprintf(" (that event is at %s:%d)", f, o)
					}
				}
			}
		}
		return res, "", &ApplyError{Server: t.Name, File: file, Offset: off, Statement: stmt,
			Err: fmt.Errorf("the target's SQL thread failed (error %s): %s", status["Last_SQL_Errno"], msg)}
	}
	if st.incomplete {
		return res, "", errors.New("the last file ends inside a transaction (not applied)")
	}
	return res, "", nil
}

// replicationBlockers returns why the target's replication threads would
// not apply the events the way statements do: filters and skipped errors
// would drop some, and binary logging would differ from what
// DisableLogBin asks.
func replicationBlockers(conn *client.Conn, opts ApplyOptions) (string, error) {
	vars := []string{"log_bin", "log_slave_updates", "slave_skip_errors", "replicate_do_db", "replicate_ignore_db",
		"replicate_do_table", "replicate_ignore_table", "replicate_wild_do_table", "replicate_wild_ignore_table"}
	r, err := conn.Execute("SELECT @@" + strings.Join(vars, ", @@"))
	if err != nil {
		return "", fmt.Errorf("read replication settings: %w", err)
	}
	val := map[string]string{}
	for i, v := range vars {
		val[v], _ = r.GetString(0, i)
	}
	for _, v := range vars[3:] {
		if val[v] != "" {
			return fmt.Sprintf("the target has a replication filter (%s=%s)", v, val[v]), nil
		}
	}
	if s := val["slave_skip_errors"]; s != "" && s != "OFF" {
		return fmt.Sprintf("the target skips replication errors (slave_skip_errors=%s)", s), nil
	}
	logBin, logSlave := val["log_bin"] == "1", val["log_slave_updates"] == "1"
	switch {
	case logBin && !opts.DisableLogBin && !logSlave:
		return "the target has log_slave_updates off: its replication would not write the events to its binlog", nil
	case logBin && opts.DisableLogBin && logSlave:
		return "disable_log_bin is set but the target has log_slave_updates on: its replication would write the events to its binlog", nil
	}
	return "", nil
}

// notConnectedError: the target never fetched an event from us.
type notConnectedError struct{ msg string }

func (e *notConnectedError) Error() string { return e.msg }

// waitServed waits until the target's SQL thread executed the whole served
// file, its SQL thread stopped (an error), or its IO thread could not
// fetch anything for connectTimeout.
func waitServed(ctx context.Context, conn *client.Conn, st *servedStream, connectTimeout time.Duration) error {
	t0 := time.Now()
	wait := fmt.Sprintf("SELECT MASTER_POS_WAIT('%s', %d, 1, '%s')", servedFile, st.end, ApplyConnection)
	for {
		r, err := conn.Execute(wait)
		if err != nil {
			return fmt.Errorf("%s: %w", wait, err)
		}
		v, _ := r.GetString(0, 0)
		if v != "" && v != "-1" {
			return nil // reached
		}
		status, err := slaveStatus(conn)
		if err != nil {
			return err
		}
		if status["Slave_SQL_Running"] != "Yes" {
			return fmt.Errorf("the SQL thread stopped: %s", status["Last_SQL_Error"])
		}
		read, _ := strconv.ParseUint(status["Read_Master_Log_Pos"], 10, 32)
		if read <= 4 && time.Since(t0) > connectTimeout {
			return &notConnectedError{fmt.Sprintf("the target did not fetch events from this host (%s:%s) within %v: %s",
				status["Master_Host"], status["Master_Port"], connectTimeout, status["Last_IO_Error"])}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// stopAndRemove stops Apply's replication connection (STOP SLAVE waits
// for the SQL thread to commit or roll back its transaction), reads its
// final status and removes it with its relay logs.
func stopAndRemove(conn *client.Conn) (map[string]string, error) {
	if _, err := conn.Execute("STOP SLAVE '" + ApplyConnection + "'"); err != nil {
		return nil, fmt.Errorf("STOP SLAVE '%s': %w", ApplyConnection, err)
	}
	status, err := slaveStatus(conn)
	if _, rerr := conn.Execute("RESET SLAVE '" + ApplyConnection + "' ALL"); err == nil && rerr != nil {
		err = fmt.Errorf("RESET SLAVE '%s' ALL: %w", ApplyConnection, rerr)
	}
	return status, err
}

// slaveStatus is SHOW SLAVE '<ApplyConnection>' STATUS as a map.
func slaveStatus(conn *client.Conn) (map[string]string, error) {
	r, err := conn.Execute("SHOW SLAVE '" + ApplyConnection + "' STATUS")
	if err != nil {
		return nil, fmt.Errorf("SHOW SLAVE '%s' STATUS: %w", ApplyConnection, err)
	}
	if r.Resultset == nil || r.RowNumber() == 0 {
		return nil, fmt.Errorf("SHOW SLAVE '%s' STATUS: no row", ApplyConnection)
	}
	m := map[string]string{}
	for name, i := range r.FieldNames {
		m[name], _ = r.GetString(0, i)
	}
	return m, nil
}

// RemoveLeftoverApply connects to the target and stops and removes the
// replication connection an interrupted Apply left there (a manager that
// died while the target applied through replication): until then its SQL
// thread may still apply relay logs, so what the target holds is not
// settled. Apply does it itself; a resumed failover calls it before it
// reads what the target already holds.
func RemoveLeftoverApply(ctx context.Context, t Target, timeout time.Duration) error {
	conn, err := connectTarget(ctx, t, timeout)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", t.Name, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := removeLeftover(conn); err != nil {
		return fmt.Errorf("%s: %w", t.Name, err)
	}
	return nil
}

// removeLeftover stops and removes the replication connection an
// interrupted Apply left on the target (its SQL thread may still be
// applying relay logs). It does nothing when there is none or the target
// is not MariaDB.
func removeLeftover(conn *client.Conn) error {
	r, err := conn.Execute("SHOW ALL SLAVES STATUS")
	if err != nil {
		var me *mysql.MyError
		if errors.As(err, &me) && me.Code == mysql.ER_PARSE_ERROR {
			return nil // MySQL: no named connections
		}
		return fmt.Errorf("SHOW ALL SLAVES STATUS: %w", err)
	}
	i, ok := r.FieldNames["Connection_name"]
	if !ok {
		return nil
	}
	for row := 0; row < r.RowNumber(); row++ {
		if name, _ := r.GetString(row, i); strings.EqualFold(name, ApplyConnection) {
			for _, q := range []string{"STOP SLAVE '" + ApplyConnection + "'", "RESET SLAVE '" + ApplyConnection + "' ALL"} {
				if _, err := conn.Execute(q); err != nil {
					return fmt.Errorf("remove the replication connection an interrupted apply left: %s: %w", q, err)
				}
			}
		}
	}
	return nil
}

// result is what n complete transactions of the stream amount to.
func (s *servedStream) result(n int, bytes int64) ApplyResult {
	res := ApplyResult{Transactions: n, Bytes: bytes}
	for _, tx := range s.txs[:n] {
		res.Events += tx.events
	}
	if n > 0 {
		last := s.txs[n-1]
		res.LastFile, res.LastPos, res.LastGTID = s.files[last.stopFile], last.stop, last.gtid
	}
	return res
}
