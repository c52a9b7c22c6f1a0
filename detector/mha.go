package detector

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Detection modes (Config.Mode).
const (
	// ModeFast is mharaft's detector: a sentinel connection blocked in
	// SELECT SLEEP notices a dead mysqld at once and reconnects at once.
	ModeFast = "fast"
	// ModeMHA reproduces MHA's detection cadence, as a benchmark baseline
	// only: one ping every ping_interval and "unreachable" only after 4
	// failed pings in a row. Not for production.
	ModeMHA = "mha"
)

// ParseMode checks the name of a detection mode; "" is ModeFast.
func ParseMode(s string) (string, error) {
	switch s {
	case "", ModeFast:
		return ModeFast, nil
	case ModeMHA:
		return ModeMHA, nil
	}
	return "", fmt.Errorf("detection mode %q: want %q or %q", s, ModeFast, ModeMHA)
}

// mhaDeadAfter is MHA's count of failed pings in a row after which the
// master is declared unreachable ("if ( $error_count >= 4 )").
const mhaDeadAfter = 4

// The MHA cadence, copied from MHA::HealthCheck::wait_until_unreachable
// (lib/MHA/HealthCheck.pm of yoshinorim/mha4mysql-manager, commit
// abe11f9abb74bc5886012ff5cc9e209fb9b093c1, MHA 0.58):
//
//   - Every round starts a clock ($self->{_tstart} = [gettimeofday]) and
//     ends with sleep_until(): the next round starts ping_interval after the
//     start of this one, or at once when this one took longer.
//   - A round first connects when it has no connection ($_need_reconnect),
//     with mysql_connect_timeout = ping_interval (connect() defaults its
//     timeout to $self->{interval}). A failed connect is a failure
//     ($error_count++) unless the server answered with one of
//     @ALIVE_ERROR_CODES ("this is not a MySQL crash"): then the round
//     counts nothing and resets nothing. Only this branch tests
//     "$error_count >= 4" and declares the master dead.
//   - A round with a connection runs the ping_type query (SELECT 1, or the
//     infra.chk_masterha CREATEs and upsert for INSERT, or a new connection
//     plus SELECT 1 for CONNECT) in a child process that is killed after
//     ping_interval seconds (terminate_child's default timeout is
//     $self->{interval}). Success resets $error_count to 0; an error or the
//     timeout is a failure and drops the connection.
//
// So a kill -9 is declared after the failed ping of the first round after
// it and three refused connects, one per round: 3 intervals after the first
// failure, 9-12 s after the kill at the default ping_interval=3, matching
// MHA's documentation ("the maximum time for discovering a failure through
// the ping mechanism is four times the ping interval"). A silent master
// (SIGSTOP, a cut network) costs one timeout per round: about 12 s.
//
// Where the baseline differs from MHA: no advisory lock (GET_LOCK; several
// managers watch the same master here), no wait_timeout change, and the
// CONNECT ping does not hold its connection for ping_interval-1.5 s. After
// the 4th failure MHA runs its secondary checks and stops monitoring; here
// the verdict (quorum, replicas, secondary_check_script) is Evaluate's, as
// in ModeFast, and the probe goes on: every further failure is reported
// unreachable until a ping succeeds. connect_timeout is not used: MHA's
// timeouts are ping_interval.

// mhaCounter is MHA's $error_count.
type mhaCounter struct{ failures int }

// add applies the result of one round (phase "connect" or "ping", err nil
// on success) and says what to observe. A reachable result (ok, alive but
// refusing, a server error) is observed at once, as in ModeFast; a failure
// that means unreachable is observed only from the mhaDeadAfter-th failure
// in a row on. Until then the manager keeps its last observation, which
// ages and goes stale: a failed ping is no proof that the master is alive.
func (c *mhaCounter) add(phase string, err error, pingType string) (kind string, reachable, observe bool) {
	kind, reachable = Classify(err)
	switch {
	case err == nil:
		c.failures = 0
		return kind, true, true
	case phase == "connect" && (kind == KindAliveRefusing || kind == KindAuthError):
		return kind, reachable, true
	}
	if phase == "ping" && pingType == "INSERT" && kind == KindServerError {
		kind, reachable = KindWriteFailed, false // MHA counts a failed INSERT
	}
	c.failures++
	return kind, reachable, reachable || c.failures >= mhaDeadAfter
}

// mhaProbeLoop probes the master with MHA's cadence (see above). It
// replaces probeLoop when Config.Mode is ModeMHA; the replica and publish
// loops are the same in both modes.
func (w *watch) mhaProbeLoop(ctx context.Context) {
	iv := pingInterval(w.app)
	pt := pingType(w.app)
	db, err := openDB(w.master, iv)
	if err != nil {
		w.observe(KindError, false, err.Error())
		return
	}
	db.SetMaxIdleConns(0) // every Conn is a fresh connection
	defer db.Close()
	var conn *sql.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	var count mhaCounter
	for ctx.Err() == nil {
		round := time.Now()
		phase := "ping"
		if conn == nil && pt != "CONNECT" {
			phase = "connect"
			conn, err = mhaConnect(ctx, db, iv)
			if err != nil {
				err = fmt.Errorf("connect to %s: %w", w.master, err)
			}
		}
		if conn != nil || pt == "CONNECT" {
			phase = "ping"
			err = w.mhaPing(ctx, db, conn, iv)
			if err != nil && conn != nil {
				conn.Close() // MHA: $self->{_need_reconnect} = 1
				conn = nil
			}
		}
		if ctx.Err() != nil {
			return
		}
		kind, reachable, observe := count.add(phase, err, pt)
		w.d.cfg.Metrics.Probe(w.app.Name, w.master.Name, kind, time.Since(round))
		if observe {
			w.observe(kind, reachable, detail(phase, err))
		} else {
			w.d.log.Info("master ping failed (mha cadence)", "app", w.app.Name, "server", w.master.Name,
				"failures", count.failures, "declare_after", mhaDeadAfter, "kind", kind,
				"detail", redact(err.Error(), w.master.Password))
		}
		w.pause(ctx, time.Until(round.Add(iv))) // MHA's sleep_until()
	}
}

// mhaConnect opens a connection within timeout (MHA's connect()).
func mhaConnect(ctx context.Context, db *sql.DB, timeout time.Duration) (*sql.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.PingContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// mhaPing runs MHA's ping_type query within timeout: SELECT 1 on conn
// (ping_select), the CREATEs and the upsert on conn (ping_insert, which
// runs all three every time), or a new connection plus SELECT 1
// (ping_connect; conn is nil then).
func (w *watch) mhaPing(ctx context.Context, db *sql.DB, conn *sql.Conn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch pingType(w.app) {
	case "CONNECT":
		c, err := db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("connect ping to %s: %w", w.master, err)
		}
		defer c.Close()
		conn = c
	case "INSERT":
		for _, q := range []string{
			"CREATE DATABASE IF NOT EXISTS infra",
			"CREATE TABLE IF NOT EXISTS infra.chk_masterha (`key` tinyint NOT NULL primary key, `val` int(10) unsigned NOT NULL DEFAULT '0')",
			"INSERT INTO infra.chk_masterha VALUES (1, unix_timestamp()) ON DUPLICATE KEY UPDATE val=unix_timestamp()",
		} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("insert ping to %s: %w", w.master, err)
			}
		}
		return nil
	}
	var one int
	if err := conn.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("select ping to %s: %w", w.master, err)
	}
	return nil
}
