package manager_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/manager"
	"github.com/mharaft/mharaft/testbed"
)

// TestOnlineSwitch: an operator's switch through the API (any node; the
// action is forwarded to the leader) runs under the lock, records a
// history entry, moves the master in the replicated state, and the
// managers watch the new master; the old one becomes its replica.
func TestOnlineSwitch(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	e := startEnv(t, testbed.Options{N: 3}, func(c *testbed.Cluster) {
		if err := c.Master().Exec(ctx, "CREATE DATABASE test", "CREATE TABLE test.t1 (a INT PRIMARY KEY)", "INSERT INTO test.t1 VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}, nil)
	e.waitHealthy(e.db.Master())
	old, target, other := e.db.Servers[0], e.db.Servers[1], e.db.Servers[2]

	// Ask a follower: the API forwards to the leader.
	li, err := e.mc.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.mc.NodeClient((li+1)%3).Do(ctx, api.Action{Kind: api.ActionSwitch, App: "app1", NewMaster: target.Name(), OrigMasterIsNewSlave: true})
	if err != nil || !res.OK {
		t.Fatalf("switch: %+v %v", res, err)
	}
	if res.Epoch == 0 || len(res.Report) == 0 {
		t.Fatalf("switch result without epoch or report: %+v", res)
	}
	h := e.history(ctx)
	if len(h) != 1 || h[0].Kind != "switch" || h[0].Result != "success" || h[0].NewMaster != target.Addr() || h[0].OldMaster != old.Addr() {
		t.Fatalf("history %+v, want one successful switch %s -> %s", h, old.Addr(), target.Addr())
	}
	for i := range e.mc.Nodes {
		if _, err := e.mc.WaitApp(ctxT(t, 20*time.Second), i, "app1", func(a *api.AppStatus) bool {
			return a.Master == target.Addr() && a.Lock == nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	e.checkNewTopology(ctx, target, old, other)
	e.waitHealthy(target)
	if h := e.history(ctx); len(h) != 1 {
		t.Fatalf("history %+v after the switch: want only the switch", h)
	}
}

// TestRefusedSwitchReleasesLock: a switch refused by its read-only check
// (a replica is down and ignore_fail is not set) changes nothing, so it
// must not leave the lock held: the next switch, once the replica is back,
// runs.
func TestRefusedSwitchReleasesLock(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	e := startEnv(t, testbed.Options{N: 3}, nil, nil)
	e.waitHealthy(e.db.Master())
	target, down := e.db.Servers[1], e.db.Servers[2]
	if err := down.Kill9(); err != nil {
		t.Fatal(err)
	}
	res, err := e.mc.NodeClient(0).Do(ctx, api.Action{Kind: api.ActionSwitch, App: "app1", NewMaster: target.Name()})
	if err == nil && res.OK {
		t.Fatalf("switch with %s down and no ignore_fail: %+v, want a refusal", down.Name(), res)
	}
	h := e.history(ctx)
	if len(h) != 1 || h[0].Result != "failed" {
		t.Fatalf("history %+v, want one failed switch", h)
	}
	if _, err := e.mc.WaitApp(ctxT(t, 20*time.Second), 0, "app1", func(a *api.AppStatus) bool {
		return a.Lock == nil
	}); err != nil {
		t.Fatalf("the refused switch left the lock held: %v", err)
	}
	if err := down.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := down.Exec(ctx, "START SLAVE"); err != nil {
		t.Fatal(err)
	}
	res, err = e.mc.NodeClient(0).Do(ctx, api.Action{Kind: api.ActionSwitch, App: "app1", NewMaster: target.Name()})
	if err != nil || !res.OK {
		t.Fatalf("switch after the replica came back: %+v %v", res, err)
	}
}

// TestSwitchResumedAfterLeaderDeath (issue 12 finding 2): the leader dies
// right after the online switch fenced the old master; the next leader
// resumes the switch (old code: a nil dereference in every leader that
// resumed it, one after the other) and finishes it: the new master is
// writable, the old one replicates from it, no manager crashed.
func TestSwitchResumedAfterLeaderDeath(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	e := startEnv(t, testbed.Options{N: 3}, func(c *testbed.Cluster) {
		if err := c.Master().Exec(ctx, "CREATE DATABASE test", "CREATE TABLE test.t1 (a INT PRIMARY KEY)", "INSERT INTO test.t1 VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}, nil, manager.TestPauseAfterPhaseEnv+"="+failover.SwitchFence)
	e.waitHealthy(e.db.Master())
	old, target, other := e.db.Servers[0], e.db.Servers[1], e.db.Servers[2]
	li, err := e.mc.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go e.mc.NodeClient(li).Do(ctx, api.Action{Kind: api.ActionSwitch, App: "app1", NewMaster: target.Name(), OrigMasterIsNewSlave: true})
	firstEpoch := e.waitPhaseDone(li, failover.SwitchFence).Lock.Epoch
	t.Logf("killing leader %s paused after %q at epoch %d", e.mc.Nodes[li].ID, failover.SwitchFence, firstEpoch)
	if err := e.mc.Kill(li); err != nil {
		t.Fatal(err)
	}
	h := e.waitHistory(ctxT(t, 60*time.Second), 1)
	if h[0].Kind != "switch" || h[0].Result != "success" || h[0].Epoch <= firstEpoch || h[0].NewMaster != target.Addr() {
		t.Fatalf("history %+v: want the switch to %s finished at an epoch after %d", h[0], target.Addr(), firstEpoch)
	}
	for i := range e.mc.Nodes {
		if i != li && !e.mc.Running(i) {
			t.Fatalf("manager %s is not running after resuming the switch:\n%s", e.mc.Nodes[i].ID, tail(e.mc.Log(i), 4000))
		}
	}
	e.checkNewTopology(ctx, target, old, other)
}

// TestSwitchWrongReplPasswordFails (issue 12 finding 8): with a wrong
// repl_password in the managers' configuration, an online switch through
// the cluster does not report success (old code: exit 0 while the replicas
// sat in "Connecting, Access denied"): the action fails naming the
// replica and MariaDB's error, and the history says so.
func TestSwitchWrongReplPasswordFails(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	e := startEnv(t, testbed.Options{N: 3}, nil, func(i int, conf string) []string {
		b, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(filepath.Dir(conf), fmt.Sprintf("m%d", i+1), "app1.conf")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		text := strings.Replace(string(b), "repl_password="+testbed.ReplPassword+"\n", "repl_password=not-the-password\n", 1)
		if text == string(b) {
			t.Fatal("the test configuration has no repl_password line to change")
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{path}
	})
	e.waitHealthy(e.db.Master())
	target := e.db.Servers[1]
	res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionSwitch, App: "app1", NewMaster: target.Name(), OrigMasterIsNewSlave: true})
	if err == nil && res.OK {
		t.Fatalf("switch with a wrong repl_password reported success: %+v", res)
	}
	msg := fmt.Sprint(err)
	if res != nil {
		msg += " " + res.Message
	}
	if !strings.Contains(msg, "Access denied") {
		t.Fatalf("switch failure %q does not give MariaDB's error (Access denied)", msg)
	}
	if strings.Contains(msg, "not-the-password") {
		t.Fatalf("switch failure shows the password: %q", msg)
	}
	h := e.waitHistory(ctxT(t, 20*time.Second), 1)
	if h[0].Result == "success" {
		t.Fatalf("history %+v: a switch whose replicas cannot connect is not a success", h[0])
	}
}
