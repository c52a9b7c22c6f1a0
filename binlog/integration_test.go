package binlog_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/remote"
	"github.com/mharaft/mharaft/testbed"
)

// scenario builds the walkthrough's state on a real cluster: rich adds a
// multi-row and a multi-statement transaction, DDL and binlog rotations
// (FLUSH BINARY LOGS on the master) both in the part server2 lacks and in
// the part only the master has.
func scenario(ctx context.Context, t *testing.T, c *testbed.Cluster, rich bool) {
	t.Helper()
	if !rich {
		if err := c.Walkthrough(ctx); err != nil {
			t.Fatal(err)
		}
		return
	}
	m, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE test.t1 (a INT PRIMARY KEY)", "INSERT INTO test.t1 VALUES (1)"))
	must(c.WaitCaughtUp(ctx, 20*time.Second))
	must(s2.StopIOThread(ctx))
	must(m.Exec(ctx, "INSERT INTO test.t1 VALUES (2)", "INSERT INTO test.t1 VALUES (10),(11),(12)",
		"CREATE TABLE test.t2 (id INT AUTO_INCREMENT PRIMARY KEY, s VARCHAR(20))", "FLUSH BINARY LOGS"))
	// A multi-statement transaction on one connection.
	db := m.Root()
	tx, err := db.BeginTx(ctx, nil)
	must(err)
	for _, q := range []string{"INSERT INTO test.t1 VALUES (13)", "INSERT INTO test.t2 (s) VALUES ('x'),('y')", "UPDATE test.t1 SET a=14 WHERE a=13"} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	must(tx.Commit())
	must(s3.WaitCaughtUp(ctx, m, 20*time.Second))
	must(s3.StopIOThread(ctx))
	must(m.Exec(ctx, "INSERT INTO test.t1 VALUES (3)", "FLUSH BINARY LOGS", "ALTER TABLE test.t2 ADD COLUMN b INT DEFAULT 7",
		"INSERT INTO test.t2 (s, b) VALUES ('z', 8)", "DELETE FROM test.t1 WHERE a=10"))
}

type posOf struct {
	file string
	pos  uint64
}

func readPos(ctx context.Context, t *testing.T, s *testbed.Server) posOf {
	t.Helper()
	st, err := s.SlaveStatus(ctx)
	if err != nil || st == nil {
		t.Fatalf("slave status of %s: %v", s.Name(), err)
	}
	p, _ := strconv.ParseUint(st["Read_Master_Log_Pos"], 10, 64)
	return posOf{st["Master_Log_File"], p}
}

// waitApplied polls until the SQL thread executed everything read, then
// stops the slave threads.
func waitApplied(ctx context.Context, t *testing.T, s *testbed.Server) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := s.SlaveStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st["Relay_Master_Log_File"] == st["Master_Log_File"] && st["Exec_Master_Log_Pos"] == st["Read_Master_Log_Pos"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: SQL thread did not catch up: %v", s.Name(), st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.Exec(ctx, "STOP SLAVE"); err != nil {
		t.Fatal(err)
	}
}

func checksum(ctx context.Context, t *testing.T, s *testbed.Server, table string) string {
	t.Helper()
	rows, err := s.QueryRows(ctx, "CHECKSUM TABLE "+table)
	if err != nil || len(rows) != 1 {
		t.Fatalf("checksum %s on %s: %v", table, s.Name(), err)
	}
	return rows[0]["Checksum"]
}

func target(s *testbed.Server) binlog.Target {
	return binlog.Target{Name: s.Name(), Addr: s.Addr(), User: testbed.MHAUser, Password: testbed.MHAPassword}
}

// TestRecoverWalkthrough runs MHA's recovery phases on real servers: the
// walkthrough (a few small events: Apply's default picks statements) and
// a richer scenario applied with each method.
func TestRecoverWalkthrough(t *testing.T) {
	for _, gtid := range []bool{false, true} {
		for _, tc := range []struct {
			rich   bool
			method binlog.ApplyMethod
		}{
			{false, binlog.MethodAuto},
			{true, binlog.MethodStatements},
			{true, binlog.MethodReplication},
		} {
			name := "filepos"
			if gtid {
				name = "gtid"
			}
			if tc.rich {
				name += "/rotate-multirow-ddl/" + string(tc.method)
			} else {
				name += "/walkthrough"
			}
			t.Run(name, func(t *testing.T) { testRecover(t, gtid, tc.rich, tc.method) })
		}
	}
}

func testRecover(t *testing.T, gtid, rich bool, method binlog.ApplyMethod) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := testbed.Start(t, testbed.Options{N: 3, GTID: gtid})
	m, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
	scenario(ctx, t, c, rich)
	wantRows, err := m.Rows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	masterGTID, err := m.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	p2, p3 := readPos(ctx, t, s2), readPos(ctx, t, s3)
	waitApplied(ctx, t, s2)
	waitApplied(ctx, t, s3)
	if err := m.Shutdown(); err != nil {
		t.Fatal(err)
	}

	ssh, err := remote.Dial(ctx, remote.Config{User: c.SSH.User, Host: c.SSH.Host, Port: c.SSH.Port,
		KeyFile: c.SSH.ClientKey, KnownHostsFile: c.SSH.KnownHosts, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ssh.Close()

	// Phase 3.3/3.4: find server2's position in server3's relay logs, over SSH.
	relayFiles, err := binlog.ReadIndex(ctx, ssh, filepath.Join(s3.DataDir, "relay-bin.index"))
	if err != nil {
		t.Fatal(err)
	}
	rl := binlog.RelayLogs{FS: ssh, Dir: s3.DataDir, Files: relayFiles, ServerID: uint32(s3.ServerID),
		ReadMasterFile: p3.file, ReadMasterPos: p3.pos}
	start, err := binlog.FindRelayPosition(ctx, rl, p2.file, p2.pos)
	if err != nil {
		t.Fatal(err)
	}
	slow := rl
	slow.ReadMasterFile = ""
	startSlow, err := binlog.FindRelayPosition(ctx, slow, p2.file, p2.pos)
	if err != nil {
		t.Fatal(err)
	}
	if start.File != startSlow.File || start.Pos != startSlow.Pos {
		t.Fatalf("fast path found %v, walk found %v", start, startSlow)
	}
	if !rich && !start.Fast {
		t.Errorf("same master file: the fast path should have found %v", start)
	}
	t.Logf("server2 %s:%d is at %v in server3's relay logs (fast=%v)", p2.file, p2.pos, start, start.Fast)

	work := t.TempDir()
	ts := binlog.Timestamp(time.Now())
	diffPath := filepath.Join(work, binlog.RelayDiffName(s2.Host, s2.Port, ts))
	df, err := os.Create(diffPath)
	if err != nil {
		t.Fatal(err)
	}
	dres, err := binlog.WriteDiff(ctx, rl, start, df)
	df.Close()
	if err != nil {
		t.Fatal(err)
	}
	if dres.Incomplete != nil || dres.Transactions == 0 {
		t.Fatalf("diff: %+v", dres)
	}

	// Phase 3.2: the dead master's tail from server3's position, over SSH.
	savedPath := filepath.Join(work, binlog.SavedMasterBinlogName(m.Host, m.Port, ts))
	sf, err := os.Create(savedPath)
	if err != nil {
		t.Fatal(err)
	}
	sres, err := binlog.SaveMasterTail(ctx, ssh, m.DataDir, "", p3.file, p3.pos, sf)
	sf.Close()
	if err != nil {
		t.Fatal(err)
	}
	if sres.Incomplete != nil || sres.Transactions == 0 {
		t.Fatalf("save: %+v", sres)
	}
	if rich && len(sres.Files) < 2 {
		t.Errorf("rich scenario: the tail should span rotated files, got %v", sres.Files)
	}
	t.Logf("saved %d transactions from %v (head 0..%d), diff %d transactions", sres.Transactions, sres.Files, sres.HeadEnd, dres.Transactions)

	// Phase 3.5 and 4: apply.
	opts := binlog.ApplyOptions{Method: method}
	res2, err := binlog.Apply(ctx, target(s2), []string{diffPath, savedPath}, opts)
	if err != nil {
		t.Fatal(err)
	}
	wantMethod := method
	if method == binlog.MethodAuto { // these events: statements
		wantMethod = binlog.MethodStatements
	}
	if res2.Method != wantMethod {
		t.Errorf("applied with %q (fallback: %s), want %q", res2.Method, res2.Fallback, wantMethod)
	}
	if res2.Transactions != dres.Transactions+sres.Transactions {
		t.Errorf("server2 applied %d transactions, want %d", res2.Transactions, dres.Transactions+sres.Transactions)
	}
	res3, err := binlog.Apply(ctx, target(s3), []string{savedPath}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res3.LastFile != savedPath || res3.LastGTID == "" {
		t.Errorf("server3 result %+v", res3)
	}
	total := filepath.Join(work, binlog.TotalBinlogName(s2.Host, s2.Port, ts))
	if _, err := binlog.ConcatFiles([]string{diffPath, savedPath}, total); err != nil {
		t.Fatal(err)
	}

	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"test.t1", "test.t2"} {
		if !rich && table == "test.t2" {
			continue
		}
		want := checksum(ctx, t, m, table)
		for _, s := range []*testbed.Server{s2, s3} {
			if got := checksum(ctx, t, s, table); got != want {
				t.Errorf("%s: CHECKSUM TABLE %s = %s, master has %s", s.Name(), table, got, want)
			}
		}
	}
	for _, s := range []*testbed.Server{s2, s3} {
		rows, err := s.Rows(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rows, wantRows) {
			t.Errorf("%s rows %v, want %v", s.Name(), rows, wantRows)
		}
		if !rich && !slices.Equal(rows, []int{1, 2, 3}) {
			t.Errorf("%s rows %v, want 1,2,3", s.Name(), rows)
		}
		// The original GTIDs were kept: the master's binlog position is
		// now the replicas' too, so repointed replicas replay nothing.
		got, err := s.QueryString(ctx, "SELECT @@gtid_binlog_pos")
		if err != nil {
			t.Fatal(err)
		}
		if got != masterGTID {
			t.Errorf("%s gtid_binlog_pos %q, want the master's %q", s.Name(), got, masterGTID)
		}
	}
	// Applying the same events again fails on the first transaction (its
	// rows exist): a clear error and nothing reported as applied.
	again, err := binlog.Apply(ctx, target(s3), []string{savedPath}, opts)
	var ae *binlog.ApplyError
	if !errors.As(err, &ae) || ae.File != savedPath || ae.Offset <= 4 || ae.Server != s3.Name() || ae.Statement == "" {
		t.Errorf("re-apply: want an *ApplyError naming server, file, offset and statement, got %v", err)
	} else {
		t.Logf("re-apply error: %v", err)
	}
	if again.Transactions != 0 && !rich {
		t.Errorf("re-apply reports %d transactions applied", again.Transactions)
	}
	if rich {
		testTruncatedRelay(ctx, t, rl, start, diffPath)
	}
}

// testTruncatedRelay cuts a copy of the relay log in the middle of a
// transaction and checks the diff stops at the last complete one.
func testTruncatedRelay(ctx context.Context, t *testing.T, rl binlog.RelayLogs, start binlog.RelayPos, fullDiff string) {
	dir := t.TempDir()
	// Copy the relay files from start's on.
	var files []string
	for i, f := range rl.Files {
		if f != start.File && len(files) == 0 {
			continue
		}
		b, err := rl.FS.ReadFile(ctx, filepath.Join(rl.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, rl.Files[i])
	}
	// Find the middle of a transaction: the last table map event after
	// start; the copied relay logs end with the file that holds it.
	var last string
	var cut int64
	for i, f := range files {
		r, err := binlog.Open(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for {
			ev, err := r.Next()
			if err != nil {
				break
			}
			if (i > 0 || ev.Offset >= start.Pos) && ev.Type.String() == "TableMapEvent" {
				cut = ev.Offset + 30 // inside the transaction, inside the next event
				last = filepath.Join(dir, f)
				files = files[:i+1]
			}
		}
		r.Close()
	}
	if cut == 0 {
		t.Fatalf("no table map event in %v", files)
	}
	if err := os.Truncate(last, cut); err != nil {
		t.Fatal(err)
	}
	local := rl
	local.FS, local.Dir, local.Files, local.ReadMasterFile = binlog.LocalFS{}, dir, files, ""
	out := filepath.Join(dir, "cut.binlog")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	res, err := binlog.WriteDiff(ctx, local, start, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.Incomplete == nil || !errors.Is(res.Incomplete.Err, binlog.ErrTruncated) {
		t.Fatalf("want an incomplete tail ending in a truncated event, got %+v", res)
	}
	if !strings.Contains(res.Incomplete.String(), filepath.Base(last)) {
		t.Errorf("report %q does not name the file", res.Incomplete)
	}
	if res.EndPos >= cut || res.Incomplete.Offset >= cut || res.Incomplete.Offset != res.EndPos {
		t.Errorf("diff ends at %d, dropped from %d, cut at %d", res.EndPos, res.Incomplete.Offset, cut)
	}
	t.Logf("truncated diff: %s", res.Incomplete)
	// Everything written is a prefix of the full diff, ending at a
	// transaction boundary.
	got, _ := os.ReadFile(out)
	full, _ := os.ReadFile(fullDiff)
	if len(got) >= len(full) || string(full[:len(got)]) != string(got) {
		t.Errorf("truncated diff (%d bytes) is not a strict prefix of the full diff (%d bytes)", len(got), len(full))
	}
	rr, err := binlog.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	for {
		if _, err := rr.Next(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("truncated diff is not readable to its end: %v", err)
			}
			break
		}
	}
}
