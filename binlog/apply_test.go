package binlog_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/testbed"
)

// TestApplyPipelinedBatches applies a real binlog with both methods. With
// statements, tiny batches keep two batches always in flight and split a
// 600 KB transaction across many batches and BINLOG statements. With
// replication, the target's own threads fetch the events from Apply's
// event server. Everything applied must equal the master, and a failing
// transaction must stop Apply exactly there (with statements: the batch
// already sent behind it must not run) and be reported with its file and
// offset.
func TestApplyPipelinedBatches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, startFile, startPos := applyFixture(t, ctx, 5, "CREATE TABLE test.a (id INT PRIMARY KEY, pad VARCHAR(255))")
	m := c.Servers[0]
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// 40 transactions of 50 rows (ids i*1000 ...), then one of 3000 rows.
	const txs, rowsPerTx, failAt = 40, 50, 25
	var gtidBeforeFail string
	var err error
	for i := 1; i <= txs; i++ {
		must(m.Exec(ctx, "INSERT INTO test.a SELECT "+strconv.Itoa(i*1000)+"+seq, REPEAT('x', 200) FROM test.seq_0_to_"+strconv.Itoa(rowsPerTx-1)))
		if i == failAt-1 {
			gtidBeforeFail, err = m.QueryString(ctx, "SELECT @@gtid_binlog_pos")
			must(err)
		}
	}
	must(m.Exec(ctx, "INSERT INTO test.a SELECT 1000000+seq, REPEAT('y', 200) FROM test.seq_1_to_3000"))

	saved := filepath.Join(t.TempDir(), "saved.binlog")
	f, err := os.Create(saved)
	must(err)
	sres, err := binlog.SaveMasterTail(ctx, binlog.LocalFS{}, m.DataDir, "", startFile, uint64(startPos), f)
	f.Close()
	must(err)
	if sres.Transactions != txs+1 {
		t.Fatalf("saved %d transactions, want %d", sres.Transactions, txs+1)
	}

	for i, tc := range []struct {
		opts binlog.ApplyOptions
		stmt string // how the failing statement is reported
	}{
		{binlog.ApplyOptions{Method: binlog.MethodStatements, BatchBytes: 32 << 10, BatchTransactions: 2}, "BINLOG '"},
		{binlog.ApplyOptions{Method: binlog.MethodReplication}, "(a row event group"},
	} {
		ok, bad := c.Servers[1+2*i], c.Servers[2+2*i]
		t.Run(string(tc.opts.Method), func(t *testing.T) {
			t.Run("everything", func(t *testing.T) {
				res, err := binlog.Apply(ctx, target(ok), []string{saved}, tc.opts)
				if err != nil {
					b, _ := os.ReadFile(ok.LogPath)
					t.Logf("%s", b)
					t.Fatal(err)
				}
				if res.Method != tc.opts.Method || res.Transactions != sres.Transactions || res.LastFile != saved {
					t.Errorf("applied %+v, saved %d transactions", res, sres.Transactions)
				}
				sameAsMaster(ctx, t, ok, m, "test.a", res)
				// The batch guards and markers are session variables: nothing of
				// them reaches the target's binlog.
				out, err := exec.CommandContext(ctx, "mariadb-binlog", ok.BinlogBase()+".000001").Output()
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(out), "mharaft_apply") {
					t.Errorf("the target's binlog holds the batch guard")
				}
				// Nor a copy of the BINLOG statements as annotations.
				if n := strings.Count(string(out), "#Q> BINLOG"); n > 0 {
					t.Errorf("the target's binlog holds %d BINLOG statements as annotations", n)
				}
				// Nothing is left of the replication connection.
				if rows, err := ok.QueryRows(ctx, "SHOW ALL SLAVES STATUS"); err != nil || len(rows) != 1 {
					t.Errorf("SHOW ALL SLAVES STATUS: %d connections (%v), want only the default one", len(rows), err)
				}
			})

			t.Run("stops at the first failing transaction", func(t *testing.T) {
				// Transaction failAt will hit a duplicate key.
				must(bad.Exec(ctx, "SET sql_log_bin=0", "INSERT INTO test.a VALUES ("+strconv.Itoa(failAt*1000+7)+", 'local')", "SET sql_log_bin=1"))
				res, err := binlog.Apply(ctx, target(bad), []string{saved}, tc.opts)
				var ae *binlog.ApplyError
				if !errors.As(err, &ae) {
					t.Fatalf("want an *ApplyError, got %v", err)
				}
				t.Logf("error: %v", err)
				if ae.Server != bad.Name() || ae.File != saved || ae.Offset <= 4 || !strings.HasPrefix(ae.Statement, tc.stmt) ||
					!strings.Contains(err.Error(), "Duplicate entry") {
					t.Errorf("error names %q %q %d %.40q", ae.Server, ae.File, ae.Offset, ae.Statement)
				}
				if res.Transactions != failAt-1 || res.LastGTID != gtidBeforeFail {
					t.Errorf("reports %d transactions up to %q applied, want %d up to %q", res.Transactions, res.LastGTID, failAt-1, gtidBeforeFail)
				}
				n, err := bad.QueryString(ctx, "SELECT COUNT(*) FROM test.a")
				if err != nil {
					t.Fatal(err)
				}
				if want := strconv.Itoa((failAt-1)*rowsPerTx + 1); n != want {
					t.Errorf("%s has %s rows, want %s: the transactions before the failing one and the local row", bad.Name(), n, want)
					rows, _ := bad.QueryRows(ctx, "SELECT id DIV 1000 AS tx, COUNT(*) AS n FROM test.a GROUP BY 1")
					t.Logf("rows per transaction: %v", rows)
				}
				if g, _ := bad.QueryString(ctx, "SELECT @@gtid_binlog_pos"); g != gtidBeforeFail {
					t.Errorf("gtid_binlog_pos %q, want %q", g, gtidBeforeFail)
				}
			})
		})
	}
}

// TestApplyFragments applies big BINLOG statements the way they travel on
// MariaDB: their base64 text as long data for parameters, in fragments.
// One row event (2 MB) is bigger than the target's max_allowed_packet
// allows for one literal or one fragment: it must apply in two fragments,
// each sent in several packets. Then 60 transactions of ~20 KB of base64
// each, more per batch than there are fragment parameters (the rest go as
// literals): a failing one in the middle of a batch must stop Apply
// exactly there.
func TestApplyFragments(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, startFile, startPos := applyFixture(t, ctx, 3, "CREATE TABLE test.big (id INT PRIMARY KEY, b LONGBLOB)")
	m, ok, bad := c.Servers[0], c.Servers[1], c.Servers[2]
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	const small, failAt = 60, 30
	must(m.Exec(ctx, "INSERT INTO test.big VALUES (1, REPEAT('z', 2000000))"))
	var gtidBeforeFail string
	var err error
	for i := 1; i <= small; i++ {
		must(m.Exec(ctx, "INSERT INTO test.big VALUES ("+strconv.Itoa(100+i)+", REPEAT(CHAR(64+"+strconv.Itoa(i%26)+"), 15000))"))
		if i == failAt-1 {
			gtidBeforeFail, err = m.QueryString(ctx, "SELECT @@gtid_binlog_pos")
			must(err)
		}
	}
	saved := filepath.Join(t.TempDir(), "saved.binlog")
	f, err := os.Create(saved)
	must(err)
	sres, err := binlog.SaveMasterTail(ctx, binlog.LocalFS{}, m.DataDir, "", startFile, uint64(startPos), f)
	f.Close()
	must(err)
	if sres.Transactions != small+1 {
		t.Fatalf("saved %d transactions, want %d", sres.Transactions, small+1)
	}

	t.Run("an event bigger than max_allowed_packet", func(t *testing.T) {
		// Apply's session reads the global value when it connects.
		must(ok.Exec(ctx, "SET GLOBAL max_allowed_packet=2097152"))
		res, err := binlog.Apply(ctx, target(ok), []string{saved}, binlog.ApplyOptions{Method: binlog.MethodStatements, BatchBytes: 256 << 10})
		if err != nil {
			t.Fatal(err)
		}
		if res.Transactions != sres.Transactions || res.LastFile != saved {
			t.Errorf("applied %+v, saved %d transactions", res, sres.Transactions)
		}
		sameAsMaster(ctx, t, ok, m, "test.big", res)
	})

	t.Run("stops at the failing transaction in the middle of a batch", func(t *testing.T) {
		must(bad.Exec(ctx, "SET sql_log_bin=0", "INSERT INTO test.big VALUES ("+strconv.Itoa(100+failAt)+", 'local')", "SET sql_log_bin=1"))
		res, err := binlog.Apply(ctx, target(bad), []string{saved}, binlog.ApplyOptions{Method: binlog.MethodStatements, BatchBytes: 1 << 20})
		var ae *binlog.ApplyError
		if !errors.As(err, &ae) {
			t.Fatalf("want an *ApplyError, got %v", err)
		}
		t.Logf("error: %.200s ... %s", err, ae.Statement[len(ae.Statement)-80:])
		if ae.Server != bad.Name() || ae.File != saved || ae.Offset <= 4 ||
			!strings.HasPrefix(ae.Statement, "BINLOG '") || !strings.Contains(ae.Statement, "sent as BINLOG @mharaft_apply_rows_") {
			t.Errorf("error names %q %q %d %.40q...%q", ae.Server, ae.File, ae.Offset, ae.Statement, ae.Statement[max(0, len(ae.Statement)-80):])
		}
		if res.Transactions != failAt || res.LastGTID != gtidBeforeFail {
			t.Errorf("reports %d transactions up to %q applied, want %d up to %q", res.Transactions, res.LastGTID, failAt, gtidBeforeFail)
		}
		n, err := bad.QueryString(ctx, "SELECT COUNT(*) FROM test.big")
		must(err)
		if want := strconv.Itoa(failAt + 1); n != want {
			t.Errorf("%s has %s rows, want %s: the transactions before the failing one and the local row", bad.Name(), n, want)
		}
		if g, _ := bad.QueryString(ctx, "SELECT @@gtid_binlog_pos"); g != gtidBeforeFail {
			t.Errorf("gtid_binlog_pos %q, want %q", g, gtidBeforeFail)
		}
	})
}

// applyFixture starts three servers, creates test and the table of ddl on
// the master (replicated), then stops replication on the other servers,
// the targets Apply writes to. The test's own events start at the
// returned master binlog file and position.
func applyFixture(t *testing.T, ctx context.Context, n int, ddl string) (c *testbed.Cluster, startFile string, startPos int64) {
	t.Helper()
	c = testbed.Start(t, testbed.Options{N: n, NoSSH: true})
	m := c.Servers[0]
	if err := m.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test", ddl); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Servers[1:] {
		if err := r.Exec(ctx, "STOP SLAVE"); err != nil {
			t.Fatal(err)
		}
	}
	st, err := m.QueryRows(ctx, "SHOW MASTER STATUS")
	if err != nil || len(st) == 0 {
		t.Fatalf("show master status: %v", err)
	}
	startPos, err = strconv.ParseInt(st[0]["Position"], 10, 64)
	if err != nil {
		t.Fatalf("SHOW MASTER STATUS position %q: %v", st[0]["Position"], err)
	}
	return c, st[0]["File"], startPos
}

// sameAsMaster checks that s holds what the master holds after Apply
// applied everything: the same table checksum, the same gtid_binlog_pos,
// and res.LastGTID is the master's last GTID.
func sameAsMaster(ctx context.Context, t *testing.T, s, m *testbed.Server, table string, res binlog.ApplyResult) {
	t.Helper()
	if got, want := checksum(ctx, t, s, table), checksum(ctx, t, m, table); got != want {
		t.Errorf("CHECKSUM TABLE %s = %s, master has %s", table, got, want)
	}
	gm, _ := m.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	if g, _ := s.QueryString(ctx, "SELECT @@gtid_binlog_pos"); g != gm || res.LastGTID != gm {
		t.Errorf("gtid_binlog_pos %q, LastGTID %q, master has %q", g, res.LastGTID, gm)
	}
}
