package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/testbed"
)

// guardFunc is a Guard from a function.
type guardFunc func(ctx context.Context) error

func (g guardFunc) MayAct(ctx context.Context) error { return g(ctx) }

var errDeposed = errors.New("deposed (test guard)")

func TestSlotName(t *testing.T) {
	if got := slotName("app1", 3); got != "mharaft.app1.3" {
		t.Errorf("slotName(app1, 3) = %q", got)
	}
	long := strings.Repeat("x", 80)
	a, b := slotName(long, 0), slotName(long, 63)
	if len(a) > 64 || len(b) > 64 || a == b || !strings.HasPrefix(a, "mharaft.") {
		t.Errorf("long app name: %q, %q", a, b)
	}
	if slotName(long+"y", 0) == a {
		t.Errorf("two long app names share a slot name")
	}
}

// TestFenceKillsStaleActor: a stale actor (an earlier run, e.g. a deposed
// leader paused for minutes) holds fenced connections to a server: one in
// the middle of a long statement, one with an open transaction that
// inserted rows. A new run's first fenced connection kills both and waits
// until they ended before it returns: the long statement fails, the open
// transaction is rolled back, the stale connection's next statement fails,
// and a connection the stale actor opens later is refused by its guard.
func TestFenceKillsStaleActor(t *testing.T) {
	ctx := context.Background()
	c := testbed.Start(t, testbed.Options{N: 2, NoSSH: true})
	app := loadApp(t, c)
	srv := app.Servers[0]
	if err := c.Servers[0].Exec(ctx, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE test.fence (v INT)"); err != nil {
		t.Fatal(err)
	}

	var staleAllowed atomic.Bool
	staleAllowed.Store(true)
	staleGuard := guardFunc(func(context.Context) error {
		if staleAllowed.Load() {
			return nil
		}
		return errDeposed
	})
	stale := newFencing(app.Name, staleGuard, 0, 0, t.Logf)
	staleNode, err := connect(ctx, srv, 2*time.Second, stale)
	if err != nil {
		t.Fatal(err)
	}
	defer staleNode.close()
	tx, err := staleNode.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	for _, q := range []string{"BEGIN", "INSERT INTO test.fence VALUES (1), (2), (3)"} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	long, err := staleNode.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	sleepDone := make(chan error, 1)
	go func() {
		var v int
		sleepDone <- long.QueryRowContext(ctx, "SELECT SLEEP(30)").Scan(&v)
	}()
	// The long statement runs before the takeover.
	waitFor(t, 5*time.Second, func() bool {
		p, _ := c.Servers[0].QueryString(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(30)%'")
		return p == "1"
	})

	// The stale actor is deposed; a new run connects.
	staleAllowed.Store(false)
	var out bytes.Buffer
	fresh := newFencing(app.Name, guardFunc(func(context.Context) error { return nil }), 20*time.Second, 0,
		func(format string, args ...any) { fmt.Fprintf(&out, format+"\n", args...) })
	t0 := time.Now()
	n, err := connect(ctx, srv, 2*time.Second, fresh)
	if err != nil {
		t.Fatal(err)
	}
	defer n.close()
	took := time.Since(t0)
	t.Log(out.String())
	if took > 10*time.Second {
		t.Errorf("the fenced connect took %s; the stale connections should have been killed at once", took)
	}
	if got := strings.Count(out.String(), "killed connection"); got < 2 {
		t.Errorf("%d stale connection(s) reported killed, want 2 (the transaction and the long statement)", got)
	}
	// The long statement ended before connect returned.
	select {
	case err := <-sleepDone:
		if err == nil {
			t.Errorf("the stale actor's SELECT SLEEP(30) succeeded after the takeover")
		}
	default:
		t.Errorf("the stale actor's SELECT SLEEP(30) still runs after the new run's connect returned")
	}
	// The open transaction was rolled back before connect returned.
	var rows int
	if err := n.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM test.fence").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Errorf("test.fence holds %d row(s) of the stale actor's open transaction", rows)
	}
	// The stale actor wakes up: its next statement fails...
	if _, err := tx.ExecContext(ctx, "INSERT INTO test.fence VALUES (4)"); err == nil {
		t.Errorf("the stale actor's connection still executes statements")
	}
	// ...and so does every new connection of its (database/sql retries on a new one).
	if _, err := staleNode.db.ExecContext(ctx, "INSERT INTO test.fence VALUES (5)"); !errors.Is(err, ErrMayNotAct) {
		t.Errorf("a new connection of the stale actor: %v, want ErrMayNotAct", err)
	}
	if _, err := connect(ctx, srv, 2*time.Second, stale); !errors.Is(err, ErrMayNotAct) {
		t.Errorf("a new pool of the stale actor: %v, want ErrMayNotAct", err)
	}
	// binlog.Apply's connections are fenced the same way.
	_, err = binlog.Apply(ctx, applyTarget(srv, stale), []string{"testdata/none"}, binlog.ApplyOptions{})
	if !errors.Is(err, ErrMayNotAct) {
		t.Errorf("binlog.Apply for the stale actor: %v, want ErrMayNotAct", err)
	}
	if err := n.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM test.fence").Scan(&rows); err != nil || rows != 0 {
		t.Errorf("test.fence holds %d row(s) (%v), want 0", rows, err)
	}
	// The new run's own connections never kill each other.
	before := strings.Count(out.String(), "killed connection")
	for i := 0; i < 3; i++ {
		conn, err := n.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
	}
	if _, err := binlog.Apply(ctx, applyTarget(srv, fresh), nil, binlog.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if after := strings.Count(out.String(), "killed connection"); after != before {
		t.Errorf("the run's own connections killed %d of its connections", after-before)
	}
}

// waitFor polls cond every 10 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not reached within %s", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serverState is what a pipeline would change on a server.
func serverState(t *testing.T, ctx context.Context, s *testbed.Server) string {
	t.Helper()
	ro, err := s.QueryString(ctx, "SELECT @@read_only")
	if err != nil {
		return "unreachable"
	}
	pos, _ := s.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	st, _ := s.SlaveStatus(ctx)
	rows, _ := s.Rows(ctx)
	return fmt.Sprintf("read_only=%s gtid_binlog_pos=%s master_port=%s io=%s sql=%s rows=%v",
		ro, pos, st["Master_Port"], st["Slave_IO_Running"], st["Slave_SQL_Running"], rows)
}

// TestGuardStopsPipeline: a Guard that refuses stops a failover and a
// switch with ErrMayNotAct before they change anything.
func TestGuardStopsPipeline(t *testing.T) {
	ctx := context.Background()
	refuse := guardFunc(func(context.Context) error { return errDeposed })
	t.Run("failover", func(t *testing.T) {
		c, app := deadMasterWalkthrough(t, true)
		before := []string{serverState(t, ctx, c.Servers[1]), serverState(t, ctx, c.Servers[2])}
		_, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: tlog{t}, Guard: refuse,
			NewMaster: c.Servers[1].Addr()}, DeadMaster: c.Servers[0].Addr()})
		if !errors.Is(err, ErrMayNotAct) || !errors.Is(err, errDeposed) {
			t.Fatalf("failover with a refusing guard: %v, want ErrMayNotAct wrapping the guard's error", err)
		}
		after := []string{serverState(t, ctx, c.Servers[1]), serverState(t, ctx, c.Servers[2])}
		for i := range before {
			if before[i] != after[i] {
				t.Errorf("server%d changed: %s -> %s", i+2, before[i], after[i])
			}
		}
	})
	t.Run("switch", func(t *testing.T) {
		c := testbed.Start(t, testbed.Options{N: 3, GTID: true, NoSSH: true})
		if err := c.Servers[0].Exec(ctx, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE IF NOT EXISTS test.t1 (a INT PRIMARY KEY)",
			"INSERT INTO test.t1 VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		app := loadApp(t, c)
		var before []string
		for _, s := range c.Servers {
			before = append(before, serverState(t, ctx, s))
		}
		_, err := Switch(ctx, Options{App: app, Yes: true, Out: tlog{t}, Guard: refuse, NewMaster: c.Servers[1].Addr()})
		if !errors.Is(err, ErrMayNotAct) {
			t.Fatalf("switch with a refusing guard: %v, want ErrMayNotAct", err)
		}
		for i, s := range c.Servers {
			if after := serverState(t, ctx, s); after != before[i] {
				t.Errorf("%s changed: %s -> %s", s.Name(), before[i], after)
			}
		}
	})
}

// TestConnectRemovesLeftoverApply: a replication connection that an
// earlier actor's binlog.Apply left on a server (its IO thread fed by that
// actor's event server) is stopped and removed when a run's fenced pool
// connects, before the state is read; an unfenced (read-only) pool leaves
// it alone.
func TestConnectRemovesLeftoverApply(t *testing.T) {
	ctx := context.Background()
	c := testbed.Start(t, testbed.Options{N: 2, NoSSH: true})
	app := loadApp(t, c)
	s2 := c.Servers[1]
	port, err := testbed.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	q := "'" + binlog.ApplyConnection + "'"
	if err := s2.Exec(ctx, fmt.Sprintf("CHANGE MASTER %s TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='x', MASTER_PASSWORD='x', MASTER_CONNECT_RETRY=1", q, port),
		"START SLAVE "+q); err != nil {
		t.Fatal(err)
	}
	channels := func() int {
		rows, err := s2.QueryRows(ctx, "SHOW ALL SLAVES STATUS")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range rows {
			if r["Connection_name"] == binlog.ApplyConnection {
				n++
			}
		}
		return n
	}
	plain, err := connect(ctx, app.Servers[1], 2*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain.close()
	if channels() != 1 {
		t.Fatalf("an unfenced connect removed the apply connection")
	}
	n, err := connect(ctx, app.Servers[1], 2*time.Second, newFencing(app.Name, nil, 0, 0, t.Logf))
	if err != nil {
		t.Fatal(err)
	}
	defer n.close()
	if got := channels(); got != 0 {
		t.Errorf("%d leftover apply connection(s) after a fenced connect, want 0", got)
	}
	if n.replica == nil || n.replica.MasterPort != c.Servers[0].Port {
		t.Errorf("the default replication of server2 was touched: %+v", n.replica)
	}
}

// TestIsUnreachable: the failover decides "dead" with dialect.Classify
// (no route to host is dead, as for the detector); a refusal of the guard
// or of the fencing is not "dead".
func TestIsUnreachable(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("connect: %w", syscall.EHOSTUNREACH), true},
		{fmt.Errorf("connect: %w", syscall.ECONNREFUSED), true},
		{fmt.Errorf("connect: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("connect: %w", &mysql.MySQLError{Number: 1045}), false},
		{fmt.Errorf("fence: %w: %w", ErrMayNotAct, errDeposed), false},
		{fmt.Errorf("fence: %w: all slots held", errFenceFailed), false},
		{nil, false},
	}
	for _, tc := range cases {
		if got := isUnreachable(tc.err); got != tc.want {
			t.Errorf("isUnreachable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestHookAsksGuard: hooks cannot be fenced through MySQL, so the guard
// is asked right before each one: a refusal runs nothing and wraps
// ErrMayNotAct; report_script is not asked.
func TestHookAsksGuard(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	script := "touch " + marker + " #"
	app := &config.App{Name: "app1", MasterIPFailoverScript: script, ReportScript: "true #"}
	var asked int
	r := newRun(Options{App: app, Guard: guardFunc(func(context.Context) error { asked++; return errDeposed })}, "failover")
	d, _ := testServers()
	_, err := r.runHook(context.Background(), script, FailoverStopArgs(d, false))
	if !errors.Is(err, ErrMayNotAct) || !errors.Is(err, errDeposed) {
		t.Errorf("hook with a refusing guard: %v, want ErrMayNotAct", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the hook ran although the guard refused")
	}
	if _, err := r.runHook(context.Background(), app.ReportScript, nil); err != nil {
		t.Errorf("report_script: %v", err)
	}
	if asked != 1 {
		t.Errorf("the guard was asked %d time(s), want 1 (not for report_script)", asked)
	}
}
