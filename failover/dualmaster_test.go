package failover

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
	"github.com/mharaft/mharaft/topology"
)

// replicateFromCurrent points s at m from m's current binlog position
// (file/position) and starts it; s keeps its read_only.
func replicateFromCurrent(t *testing.T, ctx context.Context, s, m *testbed.Server) {
	t.Helper()
	rows, err := m.QueryRows(ctx, "SHOW MASTER STATUS")
	if err != nil || len(rows) != 1 {
		t.Fatalf("SHOW MASTER STATUS on %s: %v (%d rows)", m.Name(), err, len(rows))
	}
	if err := s.Exec(ctx, "STOP SLAVE", fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', "+
		"MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=no, MASTER_LOG_FILE='%s', MASTER_LOG_POS=%s",
		m.Host, m.Port, testbed.ReplUser, testbed.ReplPassword, rows[0]["File"], rows[0]["Position"]), "START SLAVE"); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReplicating(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}

// checkErrors returns the Error problems of check-repl's topology checks.
func checkErrors(ps []topology.Problem) []topology.Problem {
	var out []topology.Problem
	for _, p := range ps {
		if p.Severity == topology.Error {
			out = append(out, p)
		}
	}
	return out
}

// TestDualMaster is issue 14 item 2: an active/passive master-master pair
// (server1 the active master, server2 the passive one replicating from it
// while server1 replicates from server2) and server3 a replica of server1.
// check-repl takes the writable one of the pair as the master and refuses
// a pair with both writable; after server1 dies, server2 takes over and
// server3 follows it; with skip_reset_slave=1 server2 keeps its
// replication from server1, stopped, at the end of what the failover
// recovered from server1 (the tail read over SSH, a row no replica had),
// so that once server1 is back START SLAVE resumes the pair without
// applying anything twice: every server ends with the same rows and no
// replication error. Both replication modes: by file and position the
// kept position is the tail's end; by GTID (MariaDB slave_pos) the kept
// gtid_slave_pos is what the new master held when activated (the tail was
// applied by the client, which slave_pos does not record).
func TestDualMaster(t *testing.T) {
	for _, gtid := range []bool{false, true} {
		t.Run(fmt.Sprintf("gtid=%v", gtid), func(t *testing.T) { dualMaster(t, gtid) })
	}
}

func dualMaster(t *testing.T, gtid bool) {
	ctx := context.Background()
	c := testbed.Start(t, testbed.Options{N: 3, GTID: gtid})
	s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
	replicateFromCurrent(t, ctx, s1, s2) // the pair
	app := loadApp(t, c, "skip_reset_slave=1")

	topo := topology.Discover(ctx, app)
	if topo.Master == nil || topo.Master.Name() != "server1" {
		t.Fatalf("check-repl's master of the pair = %v, want server1 (the writable one)", topo.Master)
	}
	if errs := checkErrors(topology.Check(topo)); len(errs) > 0 {
		t.Fatalf("check-repl refuses the active/passive pair: %v", errs)
	}
	if err := s2.Exec(ctx, "SET GLOBAL read_only=0"); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range topology.Check(topology.Discover(ctx, app)) {
		found = found || p.Code == topology.CodeMultiMaster && p.Severity == topology.Error
	}
	if !found {
		t.Fatal("check-repl accepts a pair with both servers writable")
	}
	if err := s2.Exec(ctx, "SET GLOBAL read_only=1"); err != nil {
		t.Fatal(err)
	}
	// The active master's own replication from the passive one stopped: a warning.
	if err := s1.Exec(ctx, "STOP SLAVE"); err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, p := range topology.Check(topology.Discover(ctx, app)) {
		warned = warned || p.Code == topology.CodeThreadStopped && p.Server == "server1" && p.Severity == topology.Warning
	}
	if !warned {
		t.Fatal("check-repl does not warn that the active master no longer replicates from the passive one")
	}
	if err := s1.Exec(ctx, "START SLAVE"); err != nil {
		t.Fatal(err)
	}

	// server2 holds row 1, server3 rows 1-2, server1 rows 1-3.
	if err := c.Walkthrough(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s1.Kill9(); err != nil {
		t.Fatal(err)
	}
	rep, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: tlog{t}, NewMaster: s2.Addr()}, DeadMaster: s1.Addr()})
	if err != nil {
		t.Fatalf("failover of the pair's active master: %v", err)
	}
	wantRows(t, ctx, s2, 1, 2, 3)
	wantReplicaOf(t, ctx, s3, s2, gtid)
	wantRows(t, ctx, s3, 1, 2, 3)

	// skip_reset_slave: server2 still replicates from server1, stopped, at
	// the end of what was recovered from it.
	st, err := s2.SlaveStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st == nil || st["Master_Port"] != fmt.Sprint(s1.Port) {
		t.Fatalf("server2's replication settings after the failover: %v, want server1's (skip_reset_slave)", st)
	}
	if st["Slave_IO_Running"] != "No" || st["Slave_SQL_Running"] != "No" {
		t.Fatalf("server2's replication of server1 runs (io=%s sql=%s), want it stopped", st["Slave_IO_Running"], st["Slave_SQL_Running"])
	}
	end := rep.Plan.TailEnd
	if end.IsZero() || rep.Plan.TailFile == "" {
		t.Fatalf("no tail was saved from server1 (plan %+v): the test needs one", rep.Plan)
	}
	if gtid {
		pos, err := s2.QueryString(ctx, "SELECT @@gtid_slave_pos")
		if err != nil {
			t.Fatal(err)
		}
		if st["Using_Gtid"] != "Slave_Pos" || pos != rep.Plan.NewMasterGTID {
			t.Fatalf("server2 would resume server1's binlog by %s from %s, want Slave_Pos from %s (all it recovered)", st["Using_Gtid"], pos, rep.Plan.NewMasterGTID)
		}
	} else if got := fmt.Sprintf("%s:%s", st["Relay_Master_Log_File"], st["Exec_Master_Log_Pos"]); got != end.String() {
		t.Fatalf("server2 would resume server1's binlog at %s, want the end of the recovered tail %s", got, end)
	}

	// Discovery (check-repl, the managers) sees server2 as the master,
	// not the dead server1 its kept replication still names.
	if m := topology.Discover(ctx, app).Master; m == nil || m.Name() != "server2" {
		t.Fatalf("after the failover discovery's master is %v, want server2", m)
	}

	// server1 comes back and replicates from server2 again; the pair resumes.
	if err := s1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s1.Exec(ctx, "START SLAVE"); err != nil {
		t.Fatal(err)
	}
	if err := s2.Exec(ctx, "INSERT INTO test.t1 VALUES (4)"); err != nil {
		t.Fatal(err)
	}
	if err := s2.Exec(ctx, "START SLAVE"); err != nil {
		t.Fatal(err)
	}
	if err := s2.WaitReplicating(ctx, 20*time.Second); err != nil {
		t.Fatalf("the pair does not resume: %v", err)
	}
	if err := s1.Exec(ctx, "SET GLOBAL read_only=0", "INSERT INTO test.t1 VALUES (5)"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*testbed.Server{s1, s2, s3} {
		waitFor(t, 30*time.Second, func() bool {
			got, err := s.Rows(ctx)
			return err == nil && fmt.Sprint(got) == "[1 2 3 4 5]"
		})
		st, err := s.SlaveStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st["Last_SQL_Errno"] != "0" || st["Slave_SQL_Running"] != "Yes" {
			t.Fatalf("%s: SQL thread %s, error %s: %s", s.Name(), st["Slave_SQL_Running"], st["Last_SQL_Errno"], st["Last_SQL_Error"])
		}
	}
}
