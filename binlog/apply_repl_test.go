package binlog_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/testbed"
)

// TestApplyMethodChoice covers how Apply picks its method and what it
// leaves behind: small inputs go as statements; a target that cannot
// connect back to the event server, or whose replication would filter
// events, gets statements under MethodAuto (and an error naming why under
// MethodReplication) with nothing applied twice; a replication connection
// left by an interrupted Apply is stopped and removed first.
func TestApplyMethodChoice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, startFile, startPos := applyFixture(t, ctx, 5, "CREATE TABLE test.c (id INT PRIMARY KEY, pad VARCHAR(255))")
	m := c.Servers[0]
	for i := 1; i <= 30; i++ {
		if err := m.Exec(ctx, "INSERT INTO test.c SELECT "+strconv.Itoa(i*100)+"+seq, REPEAT('c', 100) FROM test.seq_0_to_9"); err != nil {
			t.Fatal(err)
		}
	}
	saved := filepath.Join(t.TempDir(), "saved.binlog")
	f, err := os.Create(saved)
	if err != nil {
		t.Fatal(err)
	}
	sres, err := binlog.SaveMasterTail(ctx, binlog.LocalFS{}, m.DataDir, "", startFile, uint64(startPos), f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := checksum(ctx, t, m, "test.c")
	closed, err := testbed.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	// applied checks the target ends equal to the master with no
	// replication connection of Apply's left.
	applied := func(t *testing.T, s *testbed.Server, res binlog.ApplyResult) {
		t.Helper()
		if res.Transactions != sres.Transactions {
			t.Errorf("%s: applied %d transactions, want %d", s.Name(), res.Transactions, sres.Transactions)
		}
		if got := checksum(ctx, t, s, "test.c"); got != want {
			t.Errorf("%s: CHECKSUM TABLE test.c = %s, master has %s", s.Name(), got, want)
		}
		rows, err := s.QueryRows(ctx, "SHOW ALL SLAVES STATUS")
		if err != nil || len(rows) != 1 || rows[0]["Connection_name"] != "" {
			t.Errorf("%s: replication connections %v (%v), want only the default one", s.Name(), rows, err)
		}
	}

	t.Run("unknown method", func(t *testing.T) {
		_, err := binlog.Apply(ctx, target(c.Servers[1]), []string{saved}, binlog.ApplyOptions{Method: "fast"})
		if err == nil || !strings.Contains(err.Error(), `unknown method "fast"`) {
			t.Errorf("want an error naming the unknown method, got %v", err)
		}
	})

	t.Run("auto: statements by default", func(t *testing.T) {
		s := c.Servers[1]
		res, err := binlog.Apply(ctx, target(s), []string{saved}, binlog.ApplyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Method != binlog.MethodStatements || !strings.Contains(res.Fallback, "statements apply these events") {
			t.Errorf("method %q, fallback %q: want statements, the default", res.Method, res.Fallback)
		}
		applied(t, s, res)
	})

	t.Run("target cannot connect back", func(t *testing.T) {
		s := c.Servers[2]
		opts := binlog.ApplyOptions{ReplicationMinBytes: 1, AdvertiseAddr: "127.0.0.1:" + strconv.Itoa(closed)}
		t0 := time.Now()
		res, err := binlog.Apply(ctx, target(s), []string{saved}, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("fell back after %v: %s", time.Since(t0).Round(time.Millisecond), res.Fallback)
		if res.Method != binlog.MethodStatements || !strings.Contains(res.Fallback, "did not fetch") {
			t.Errorf("method %q, fallback %q: want statements because the target could not connect", res.Method, res.Fallback)
		}
		applied(t, s, res)
	})

	t.Run("replication filter", func(t *testing.T) {
		s := c.Servers[3]
		if err := s.Exec(ctx, "SET GLOBAL replicate_ignore_db='other'"); err != nil {
			t.Fatal(err)
		}
		_, err := binlog.Apply(ctx, target(s), []string{saved}, binlog.ApplyOptions{Method: binlog.MethodReplication})
		if err == nil || !strings.Contains(err.Error(), "replicate_ignore_db=other") {
			t.Fatalf("MethodReplication with a filter: want an error naming it, got %v", err)
		}
		if n, _ := s.QueryString(ctx, "SELECT COUNT(*) FROM test.c"); n != "0" {
			t.Fatalf("the refused apply left %s rows", n)
		}
		res, err := binlog.Apply(ctx, target(s), []string{saved}, binlog.ApplyOptions{ReplicationMinBytes: 1})
		if err != nil {
			t.Fatal(err)
		}
		if res.Method != binlog.MethodStatements || !strings.Contains(res.Fallback, "filter") {
			t.Errorf("method %q, fallback %q: want statements because of the filter", res.Method, res.Fallback)
		}
		applied(t, s, res)
	})

	t.Run("leftover connection", func(t *testing.T) {
		s := c.Servers[4]
		leftover := func() {
			t.Helper()
			if err := s.Exec(ctx, "CHANGE MASTER '"+binlog.ApplyConnection+"' TO MASTER_HOST='127.0.0.1', MASTER_PORT="+strconv.Itoa(closed)+
				", MASTER_USER='x', MASTER_CONNECT_RETRY=1", "START SLAVE '"+binlog.ApplyConnection+"'"); err != nil {
				t.Fatal(err)
			}
		}
		leftover()
		if err := binlog.RemoveLeftoverApply(ctx, target(s), 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if rows, _ := s.QueryRows(ctx, "SHOW ALL SLAVES STATUS"); len(rows) != 1 {
			t.Fatalf("RemoveLeftoverApply left %d replication connections", len(rows))
		}
		leftover()
		res, err := binlog.Apply(ctx, target(s), []string{saved}, binlog.ApplyOptions{Method: binlog.MethodReplication})
		if err != nil {
			t.Fatal(err)
		}
		if res.Method != binlog.MethodReplication {
			t.Errorf("method %q (fallback %q)", res.Method, res.Fallback)
		}
		applied(t, s, res)
	})
}

// TestApplyOnlyReplicationCan applies events that statements refuse: LOAD
// DATA logged as a statement (its file travels in the binlog) and an XA
// transaction. Statements stop with an error naming the event; the
// default method picks replication for them although the input is small,
// and the target ends equal to the master.
func TestApplyOnlyReplicationCan(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, startFile, startPos := applyFixture(t, ctx, 3, "CREATE TABLE test.l (id INT PRIMARY KEY, v VARCHAR(20))")
	m := c.Servers[0]
	data := filepath.Join(t.TempDir(), "rows.tsv")
	var b strings.Builder
	for i := 1; i <= 100; i++ {
		b.WriteString(strconv.Itoa(i) + "\tv" + strconv.Itoa(i) + "\n")
	}
	if err := os.WriteFile(data, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Exec(ctx, "SET SESSION binlog_format='STATEMENT'",
		"LOAD DATA INFILE '"+data+"' INTO TABLE test.l (id, v)",
		"XA START 'x1'", "INSERT INTO test.l VALUES (1000, 'xa')", "XA END 'x1'", "XA PREPARE 'x1'", "XA COMMIT 'x1'"); err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(t.TempDir(), "saved.binlog")
	f, err := os.Create(saved)
	if err != nil {
		t.Fatal(err)
	}
	_, err = binlog.SaveMasterTail(ctx, binlog.LocalFS{}, m.DataDir, "", startFile, uint64(startPos), f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}

	_, err = binlog.Apply(ctx, target(c.Servers[1]), []string{saved}, binlog.ApplyOptions{Method: binlog.MethodStatements})
	if err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("statements: want an error naming the unsupported event, got %v", err)
	}

	s := c.Servers[2]
	res, err := binlog.Apply(ctx, target(s), []string{saved}, binlog.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Method != binlog.MethodReplication {
		t.Errorf("method %q (fallback %q), want replication", res.Method, res.Fallback)
	}
	if got, want := checksum(ctx, t, s, "test.l"), checksum(ctx, t, m, "test.l"); got != want {
		t.Errorf("CHECKSUM TABLE test.l = %s, master has %s", got, want)
	}
	if n, _ := s.QueryString(ctx, "SELECT COUNT(*) FROM test.l"); n != "101" {
		t.Errorf("%s has %s rows, want 101", s.Name(), n)
	}
	gm, _ := m.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	if g, _ := s.QueryString(ctx, "SELECT @@gtid_binlog_pos"); g != gm || res.LastGTID == "" {
		t.Errorf("gtid_binlog_pos %q (LastGTID %q), master has %q", g, res.LastGTID, gm)
	}
}

// TestApplyReplicationCancelled stops a replication apply in the middle:
// Apply must stop the target's threads (not leave it applying), remove
// its connection, and report exactly the transactions the target holds.
func TestApplyReplicationCancelled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, startFile, startPos := applyFixture(t, ctx, 2, "CREATE TABLE test.k (id INT PRIMARY KEY, pad VARCHAR(255))")
	m, s := c.Servers[0], c.Servers[1]
	const txs, rowsPerTx = 100, 2000
	for i := 0; i < txs; i++ {
		if err := m.Exec(ctx, "INSERT INTO test.k SELECT "+strconv.Itoa(i*rowsPerTx)+"+seq, REPEAT('k', 200) FROM test.seq_1_to_"+strconv.Itoa(rowsPerTx)); err != nil {
			t.Fatal(err)
		}
	}
	saved := filepath.Join(t.TempDir(), "saved.binlog")
	f, err := os.Create(saved)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := binlog.SaveMasterTail(ctx, binlog.LocalFS{}, m.DataDir, "", startFile, uint64(startPos), f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	actx, acancel := context.WithCancel(ctx)
	type outcome struct {
		res binlog.ApplyResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := binlog.Apply(actx, target(s), []string{saved}, binlog.ApplyOptions{Method: binlog.MethodReplication})
		done <- outcome{res, err}
	}()
	// Cancel once the target holds some of the rows.
	deadline := time.Now().Add(time.Minute)
	for {
		n, err := s.QueryString(ctx, "SELECT COUNT(*) FROM test.k")
		if err != nil {
			t.Fatal(err)
		}
		if n != "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no row applied after a minute")
		}
	}
	acancel()
	out := <-done
	if !errors.Is(out.err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v (%+v)", out.err, out.res)
	}
	t.Logf("%v; reported %d transactions", out.err, out.res.Transactions)
	if out.res.Transactions >= txs {
		t.Fatalf("the apply finished (%d transactions) before the cancel reached it", out.res.Transactions)
	}
	n, err := s.QueryString(ctx, "SELECT COUNT(*) FROM test.k")
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(out.res.Transactions * rowsPerTx); n != want {
		t.Errorf("%s holds %s rows; Apply reported %d transactions (%s rows)", s.Name(), n, out.res.Transactions, want)
	}
	// Nothing keeps applying.
	if rows, err := s.QueryRows(ctx, "SHOW ALL SLAVES STATUS"); err != nil || len(rows) != 1 {
		t.Errorf("replication connections after the cancel: %d (%v)", len(rows), err)
	}
	if n2, _ := s.QueryString(ctx, "SELECT COUNT(*) FROM test.k"); n2 != n {
		t.Errorf("rows went from %s to %s after Apply returned", n, n2)
	}
}
