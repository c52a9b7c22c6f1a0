package manager_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/manager"
	"github.com/mharaft/mharaft/testbed"
)

// TestSwitchFlagsThroughManagers: a switch with check_only through the
// managers checks and changes nothing (no lock, no history entry); a
// switch with skip_change_master and skip_disable_read_only whose leader
// dies right after it fenced the old master is resumed by the next
// leader with the same flags (journaled with the lock): the new master
// is promoted but read_only=1, the other replica still replicates from
// the old master.
func TestSwitchFlagsThroughManagers(t *testing.T) {
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

	res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionSwitch, App: "app1", NewMaster: target.Name(), CheckOnly: true})
	if err != nil || !res.OK || res.Epoch != 0 || len(res.Report) == 0 {
		t.Fatalf("check_only switch: %+v %v, want OK with a report and no epoch", res, err)
	}
	if h := e.history(ctx); len(h) != 0 {
		t.Fatalf("check_only left history %+v", h)
	}
	if ro, _ := old.QueryString(ctx, "SELECT @@read_only"); ro != "0" {
		t.Fatalf("check_only left read_only=%s on the master", ro)
	}

	li, err := e.mc.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go e.mc.NodeClient(li).Do(ctx, api.Action{Kind: api.ActionSwitch, App: "app1", NewMaster: target.Name(),
		SkipChangeMaster: true, SkipDisableReadOnly: true})
	firstEpoch := e.waitPhaseDone(li, failover.SwitchFence).Lock.Epoch
	t.Logf("killing leader %s paused after %q at epoch %d", e.mc.Nodes[li].ID, failover.SwitchFence, firstEpoch)
	if err := e.mc.Kill(li); err != nil {
		t.Fatal(err)
	}
	h := e.waitHistory(ctxT(t, 60*time.Second), 1)
	if h[0].Kind != "switch" || h[0].Result != "success" || h[0].Epoch <= firstEpoch || h[0].NewMaster != target.Addr() {
		t.Fatalf("history %+v: want the switch to %s finished at an epoch after %d", h[0], target.Addr(), firstEpoch)
	}
	if ro, _ := target.QueryString(ctx, "SELECT @@read_only"); ro != "1" {
		t.Errorf("new master read_only=%s, want 1 (skip_disable_read_only, resumed)", ro)
	}
	if st, _ := target.SlaveStatus(ctx); len(st) != 0 {
		t.Errorf("new master still a replica: %v", st)
	}
	if ro, _ := old.QueryString(ctx, "SELECT @@read_only"); ro != "1" {
		t.Errorf("old master read_only=%s, want 1", ro)
	}
	st, err := other.SlaveStatus(ctx)
	if err != nil || st["Master_Port"] != fmt.Sprint(old.Port) {
		t.Errorf("%s replicates from port %s (%v), want the old master's %d (skip_change_master, resumed)", other.Name(), st["Master_Port"], err, old.Port)
	}
}
