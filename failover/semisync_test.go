package failover

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// The election prefers replicas with semi-sync enabled over the
// configuration order and over latest_priority, but not over an operator's
// choice or candidate_master, and never elects a bad one.
func TestElectSemiSync(t *testing.T) {
	semi := func(c *Candidate) { c.SemiSync = true }
	tests := []struct {
		name      string
		cands     []*Candidate
		preferred string
		want      string
	}{
		{"semi-sync over configuration order", []*Candidate{cand("s2", 100, 100, noLatestPrio), cand("s3", 100, 100, semi, noLatestPrio)}, "", "s3"},
		{"semi-sync over latest_priority's latest", []*Candidate{cand("s2", 200, 200), cand("s3", 100, 100, semi)}, "", "s3"},
		{"latest semi-sync first", []*Candidate{cand("s2", 100, 100, semi), cand("s3", 200, 200, semi), cand("s4", 200, 200)}, "", "s3"},
		{"semi-sync replica behind with latest_priority off", []*Candidate{cand("s2", 200, 200, noLatestPrio), cand("s3", 100, 100, semi, noLatestPrio)}, "", "s3"},
		{"candidate_master first", []*Candidate{cand("s2", 100, 100, candidateMaster), cand("s3", 100, 100, semi)}, "", "s2"},
		{"operator's choice first", []*Candidate{cand("s2", 100, 100), cand("s3", 100, 100, semi)}, "s2", "s2"},
		{"bad semi-sync replica skipped", []*Candidate{cand("s2", 100, 100), cand("s3", 100, 100, semi, noMaster)}, "", "s2"},
		{"no semi-sync: rules as before", []*Candidate{cand("s2", 100, 100, noLatestPrio), cand("s3", 200, 200, noLatestPrio)}, "", "s2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			el, err := Elect(ElectionInput{Candidates: tt.cands, Preferred: tt.preferred})
			if err != nil {
				t.Fatal(err)
			}
			if got := el.NewMaster.Server.Name; got != tt.want {
				t.Errorf("elected %s, want %s; log:\n%s", got, tt.want, strings.Join(el.Log, "\n"))
			}
		})
	}
}

// semiSyncVar reads a global variable or status of s ("ON"/"OFF", numbers).
func semiSyncVar(t *testing.T, ctx context.Context, s *testbed.Server, q string) string {
	t.Helper()
	rows, err := s.QueryRows(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("%s on %s: %d rows", q, s.Name(), len(rows))
	}
	return rows[0]["Value"]
}

// waitSemiSync polls until q on s has the value want (20 s).
func waitSemiSync(t *testing.T, ctx context.Context, s *testbed.Server, q, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := semiSyncVar(t, ctx, s, q)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s = %s after 20s, want %s", q, s.Name(), got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const (
	qMasterEnabled = "SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync_master_enabled'"
	qSlaveEnabled  = "SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync_slave_enabled'"
	qMasterStatus  = "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'"
	qMasterClients = "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'"
	qSlaveStatus   = "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_slave_status'"
)

// semiSyncServer is the my.cnf of a MariaDB 10.11 server in lossless mode:
// semi-sync master (AFTER_SYNC, a timeout long enough never to fall back
// during the test) and replica as given.
func semiSyncServer(master, replica bool) testbed.ServerOptions {
	onOff := map[bool]string{true: "ON", false: "OFF"}
	return testbed.ServerOptions{Extra: []string{
		"rpl_semi_sync_master_enabled=" + onOff[master],
		"rpl_semi_sync_slave_enabled=" + onOff[replica],
		"rpl_semi_sync_master_wait_point=AFTER_SYNC",
		"rpl_semi_sync_master_timeout=60000",
	}}
}

// A dead master whose host is unreachable (ssh_port closed) loses no
// acknowledged write: server2 (asynchronous, first in the configuration,
// latest_priority=0 and no candidate_master, so the configuration order
// would elect it) and server4
// (semi-sync, IO thread stopped) miss rows only server3, the one
// semi-sync replica that acknowledged them, holds. The election picks
// server3, every server ends with every acknowledged row, server3 is a
// semi-sync master (it was not) and server4 acknowledges it.
func TestFailoverSemiSyncLossless(t *testing.T) {
	for _, gtid := range []bool{true, false} {
		t.Run(map[bool]string{true: "gtid", false: "filepos"}[gtid], func(t *testing.T) { failoverSemiSyncLossless(t, gtid) })
	}
}

func failoverSemiSyncLossless(t *testing.T, gtid bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := testbed.Start(t, testbed.Options{N: 4, GTID: gtid, Servers: []testbed.ServerOptions{
		semiSyncServer(true, true), semiSyncServer(false, false), semiSyncServer(false, true), semiSyncServer(false, true)}})
	s1, s2, s3, s4 := c.Servers[0], c.Servers[1], c.Servers[2], c.Servers[3]
	waitSemiSync(t, ctx, s1, qMasterClients, "2")
	if err := s1.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE test.t1 (a INT PRIMARY KEY)", "INSERT INTO test.t1 VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*testbed.Server{s2, s4} {
		if err := s.StopIOThread(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitSemiSync(t, ctx, s1, qMasterClients, "1")
	// Acknowledged writes: each INSERT returned after server3 acknowledged it.
	acked := []int{1}
	for i := 2; i <= 20; i++ {
		if err := s1.Exec(ctx, fmt.Sprintf("INSERT INTO test.t1 VALUES (%d)", i)); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, i)
	}
	if got := semiSyncVar(t, ctx, s1, qMasterStatus); got != "ON" {
		t.Fatalf("the master fell back to asynchronous (Rpl_semi_sync_master_status=%s): the writes are not acknowledged by semi-sync", got)
	}
	if err := s1.Kill9(); err != nil {
		t.Fatal(err)
	}
	app := loadApp(t, c)
	closed, err := testbed.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	app.Server("server1").SSHPort = closed
	for _, s := range app.Servers {
		s.LatestPriority, s.CandidateMaster = false, false // the test bed makes server2 candidate_master
	}
	var out strings.Builder
	rep, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: &out}, DeadMaster: s1.Addr()})
	t.Log(out.String())
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	if rep.Plan.NewMaster != "server3" || !strings.Contains(out.String(), "new master is "+app.Server("server3").String()+": latest replica that acknowledged semi-sync") {
		t.Fatalf("elected %s, want server3, the semi-sync replica", rep.Plan.NewMaster)
	}
	for _, s := range []*testbed.Server{s3, s2, s4} {
		wantRows(t, ctx, s, acked...) // lost acknowledged writes: none
	}
	wantReplicaOf(t, ctx, s2, s3, gtid)
	wantReplicaOf(t, ctx, s4, s3, gtid)
	if got := semiSyncVar(t, ctx, s3, qMasterEnabled); got != "ON" {
		t.Errorf("new master server3 rpl_semi_sync_master_enabled=%s, want ON", got)
	}
	if !strings.Contains(out.String(), "semi-sync enabled on the new master") {
		t.Errorf("the report does not say semi-sync was enabled on the new master")
	}
	// As configured: server4 acknowledges the new master, server2 stays asynchronous.
	if got := semiSyncVar(t, ctx, s4, qSlaveEnabled); got != "ON" {
		t.Errorf("server4 rpl_semi_sync_slave_enabled=%s, want ON", got)
	}
	if got := semiSyncVar(t, ctx, s2, qSlaveEnabled); got != "OFF" {
		t.Errorf("server2 rpl_semi_sync_slave_enabled=%s, want OFF as configured", got)
	}
	waitSemiSync(t, ctx, s3, qMasterClients, "1")
	waitSemiSync(t, ctx, s4, qSlaveStatus, "ON")
	if err := s3.Exec(ctx, "INSERT INTO test.t1 VALUES (21)"); err != nil {
		t.Fatal(err)
	}
	if got := semiSyncVar(t, ctx, s3, qMasterStatus); got != "ON" {
		t.Errorf("new master fell back to asynchronous: Rpl_semi_sync_master_status=%s", got)
	}
}

// An online switch leaves the new master a semi-sync master (it was only
// a semi-sync replica) and every replica, the old master included,
// acknowledging it.
func TestSwitchSemiSync(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := testbed.Start(t, testbed.Options{N: 3, GTID: true, Servers: []testbed.ServerOptions{
		semiSyncServer(true, true), semiSyncServer(false, true), semiSyncServer(false, true)}})
	s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
	waitSemiSync(t, ctx, s1, qMasterClients, "2")
	if err := s1.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE test.t1 (a INT PRIMARY KEY)", "INSERT INTO test.t1 VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	app := loadApp(t, c)
	var out strings.Builder
	_, err := Switch(ctx, Options{App: app, Yes: true, Out: &out, NewMaster: s2.Addr(), OrigMasterIsNewSlave: true})
	t.Log(out.String())
	if err != nil {
		t.Fatalf("switch: %v", err)
	}
	if got := semiSyncVar(t, ctx, s2, qMasterEnabled); got != "ON" {
		t.Errorf("new master server2 rpl_semi_sync_master_enabled=%s, want ON", got)
	}
	for _, s := range []*testbed.Server{s1, s3} {
		wantReplicaOf(t, ctx, s, s2, true)
		if got := semiSyncVar(t, ctx, s, qSlaveEnabled); got != "ON" {
			t.Errorf("%s rpl_semi_sync_slave_enabled=%s, want ON", s.Name(), got)
		}
		waitSemiSync(t, ctx, s, qSlaveStatus, "ON")
	}
	waitSemiSync(t, ctx, s2, qMasterClients, "2")
	if err := s2.Exec(ctx, "INSERT INTO test.t1 VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	if got := semiSyncVar(t, ctx, s2, qMasterStatus); got != "ON" {
		t.Errorf("new master fell back to asynchronous: Rpl_semi_sync_master_status=%s", got)
	}
}
