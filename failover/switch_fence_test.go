package failover

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// TestSwitchIgnoreFailAndShutdownFence, on one cluster: server3 is down.
// (1) Without ignore_fail the switch refuses and changes nothing; with it
// the switch server1 -> server2 completes and reports server3 ignored.
// (2) fence_mode=shutdown refuses --orig_master_is_new_slave, then
// switches server2 -> server1 by shutting server2 down before server1 is
// writable; no row is lost and server2 no longer answers.
func TestSwitchIgnoreFailAndShutdownFence(t *testing.T) {
	ctx := context.Background()
	c := testbed.Start(t, testbed.Options{N: 3, GTID: true})
	s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
	if err := s1.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE test.t1 (a INT PRIMARY KEY)", "INSERT INTO test.t1 VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := s2.WaitCaughtUp(ctx, s1, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s3.Kill9(); err != nil {
		t.Fatal(err)
	}
	app := loadApp(t, c)

	_, err := Switch(ctx, Options{App: app, Yes: true, Out: tlog{t}, NewMaster: s2.Addr(), OrigMasterIsNewSlave: true})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "server3") {
		t.Fatalf("switch with server3 down and no ignore_fail: %v", err)
	}
	if ro, _ := s1.QueryString(ctx, "SELECT @@read_only"); ro != "0" {
		t.Fatalf("refused switch left server1 read_only=%s", ro)
	}

	app.Server("server3").IgnoreFail = true
	var out bytes.Buffer
	rep, err := Switch(ctx, Options{App: app, Yes: true, Out: &out, NewMaster: s2.Addr(), OrigMasterIsNewSlave: true})
	t.Log(out.String())
	if err != nil {
		t.Fatalf("switch with server3 down and ignore_fail: %v", err)
	}
	ignored := false
	for _, o := range rep.Replicas {
		if o.Server == "server3" && !o.OK && strings.Contains(o.State, "ignore_fail") {
			ignored = true
		}
	}
	if !ignored {
		t.Errorf("report does not name server3 as ignored: %+v", rep.Replicas)
	}
	wantReplicaOf(t, ctx, s1, s2, true)
	if err := s2.Exec(ctx, "INSERT INTO test.t1 VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	if err := s1.WaitCaughtUp(ctx, s2, 20*time.Second); err != nil {
		t.Fatal(err)
	}

	// (2) fence_mode=shutdown, server2 -> server1.
	app.FenceMode = "shutdown"
	_, err = Switch(ctx, Options{App: app, Yes: true, Out: tlog{t}, NewMaster: s1.Addr(), OrigMasterIsNewSlave: true})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("fence_mode=shutdown with orig_master_is_new_slave: %v", err)
	}
	if ro, _ := s2.QueryString(ctx, "SELECT @@read_only"); ro != "0" {
		t.Fatalf("refused switch left server2 read_only=%s", ro)
	}
	out.Reset()
	rep, err = Switch(ctx, Options{App: app, Yes: true, Out: &out, NewMaster: s1.Addr()})
	t.Log(out.String())
	if err != nil {
		t.Fatalf("switch with fence_mode=shutdown: %v", err)
	}
	if _, err := s2.QueryString(ctx, "SELECT 1"); err == nil {
		t.Errorf("server2 still answers after a fence_mode=shutdown switch")
	}
	if !strings.Contains(strings.Join(rep.Lines, "\n"), "shut down (fence_mode=shutdown)") {
		t.Errorf("report does not say the old master was shut down: %v", rep.Lines)
	}
	if st, _ := s1.SlaveStatus(ctx); st != nil {
		t.Errorf("new master server1 still has replica status: %v", st)
	}
	if ro, _ := s1.QueryString(ctx, "SELECT @@read_only"); ro != "0" {
		t.Errorf("new master server1 read_only=%s", ro)
	}
	wantRows(t, ctx, s1, 1, 2)
}
