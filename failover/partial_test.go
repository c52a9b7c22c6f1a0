package failover

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/dialect"
	"github.com/mharaft/mharaft/testbed"
)

// TestFailoverRelayLogEndsInsideTransaction: the new master's relay log
// ends inside a transaction (its IO thread stopped mid-transaction, as
// when it is stopped while a large transaction streams in, or restarted
// after a crash). Its SQL thread applies what it can and then waits
// forever for the rest, so Exec_Master_Log_Pos never reaches
// Read_Master_Log_Pos: the failover must not wait for it (it once waited
// until WaitTimeout, chaos round 180 of 2026-12-07), and it must apply
// that transaction whole, from the dead master's binlog, to every
// survivor: neither lose it nor apply its second half alone.
//
// The partial relay log is made with slave_max_allowed_packet: server2's
// IO thread receives the transaction's 200 small row events and stops with
// an error at its last, 200 KB, event.
func TestFailoverRelayLogEndsInsideTransaction(t *testing.T) {
	for _, gtid := range []bool{false, true} {
		t.Run(map[bool]string{false: "filepos", true: "gtid"}[gtid], func(t *testing.T) {
			ctx := context.Background()
			c := testbed.Start(t, testbed.Options{N: 3, GTID: gtid})
			m, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
			if err := m.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test",
				"CREATE TABLE test.big (id INT PRIMARY KEY, pad MEDIUMTEXT)",
				"INSERT INTO test.big VALUES (0, 'before')"); err != nil {
				t.Fatal(err)
			}
			if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			// server3 gets none of the transaction, server2 its first part.
			if err := s3.Exec(ctx, "STOP SLAVE IO_THREAD"); err != nil {
				t.Fatal(err)
			}
			if err := s2.Exec(ctx, "SET GLOBAL slave_max_allowed_packet = 65536", "STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD"); err != nil {
				t.Fatal(err)
			}
			const small = 200
			stmts := []string{"BEGIN"}
			for i := 1; i <= small; i++ {
				stmts = append(stmts, fmt.Sprintf("INSERT INTO test.big VALUES (%d, REPEAT('x', 1000))", i))
			}
			stmts = append(stmts, "INSERT INTO test.big VALUES (1000, REPEAT('y', 200000))", "COMMIT")
			if err := m.Exec(ctx, stmts...); err != nil {
				t.Fatal(err)
			}
			waitIOError(t, ctx, s2)
			if err := s2.Exec(ctx, "SET GLOBAL slave_max_allowed_packet = DEFAULT"); err != nil {
				t.Fatal(err)
			}
			st := waitSQLIdle(t, ctx, s2)
			read, _ := strconv.ParseUint(st["Read_Master_Log_Pos"], 10, 64)
			exec, _ := strconv.ParseUint(st["Exec_Master_Log_Pos"], 10, 64)
			if exec >= read {
				t.Fatalf("server2 executed to %d of the %d it read: its relay log does not end inside the transaction", exec, read)
			}
			t.Logf("server2: read %d, executed %d (where the transaction starts)", read, exec)

			if err := m.Shutdown(); err != nil {
				t.Fatal(err)
			}
			app := loadApp(t, c)
			t0 := time.Now()
			rep, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: tlog{t},
				NewMaster: s2.Addr(), WaitTimeout: 60 * time.Second}, DeadMaster: m.Addr()})
			if err != nil {
				t.Fatalf("failover: %v", err)
			}
			t.Logf("failover took %s", time.Since(t0).Round(time.Millisecond))
			if took := time.Since(t0); took > 30*time.Second {
				t.Errorf("the failover took %s: it waited for a transaction the relay log holds only in part", took)
			}
			if rep.NewMaster != s2.Name() {
				t.Errorf("new master %q, want %s", rep.NewMaster, s2.Name())
			}
			if err := s3.Exec(ctx, "DO 1"); err != nil {
				t.Fatal(err)
			}
			for _, s := range []*testbed.Server{s2, s3} {
				waitBigRows(t, ctx, s, small+2, small*1000+200000+len("before"))
			}
			wantReplicaOf(t, ctx, s3, s2, gtid)
		})
	}
}

// waitIOError waits until s's IO thread stopped with an error.
func waitIOError(t *testing.T, ctx context.Context, s *testbed.Server) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		st, err := s.SlaveStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st["Slave_IO_Running"] == "No" && st["Last_IO_Errno"] != "0" {
			t.Logf("%s: IO thread stopped: %s %s", s.Name(), st["Last_IO_Errno"], st["Last_IO_Error"])
			return
		}
	}
	t.Fatalf("%s's IO thread did not stop at the oversized event in 20 s", s.Name())
}

// waitSQLIdle waits until s's SQL thread has read all its relay log.
func waitSQLIdle(t *testing.T, ctx context.Context, s *testbed.Server) map[string]string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		st, err := s.SlaveStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if dialect.SQLThreadIdle(st["Slave_SQL_Running_State"]) {
			return st
		}
	}
	t.Fatalf("%s's SQL thread did not reach the end of its relay log in 20 s", s.Name())
	return nil
}

// waitBigRows waits until s holds want rows in test.big holding bytes
// bytes in all.
func waitBigRows(t *testing.T, ctx context.Context, s *testbed.Server, want, bytes int) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var err error
		got, err = s.QueryString(ctx, "SELECT CONCAT(COUNT(*), ',', COALESCE(SUM(LENGTH(pad)), 0)) FROM test.big")
		if err != nil {
			t.Fatal(err)
		}
		if got == fmt.Sprintf("%d,%d", want, bytes) {
			return
		}
	}
	n, _, _ := strings.Cut(got, ",")
	t.Fatalf("%s holds %s rows in test.big (count,bytes %s), want %d", s.Name(), n, got, want)
}
