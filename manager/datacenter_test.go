package manager_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/testbed"
)

// TestDatacenters: managers m1, m2 in dc1 and m3 in dc2. With m3 paused
// (SIGSTOP: no fresh observation), the master's death is seen only from
// dc1, so there is no failover (UnreachableMaster); once m3 runs again and
// confirms from dc2, the failover happens.
func TestDatacenters(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	e := startEnv(t, testbed.Options{N: 3}, func(c *testbed.Cluster) {
		if err := c.Master().Exec(ctx, "CREATE DATABASE test", "CREATE TABLE test.t1 (a INT PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
	}, nil)
	// Restart the managers with datacenters (the data dirs are kept).
	for i := range e.mc.Nodes {
		e.mc.Stop(i)
		dc := "dc1"
		if i == 2 {
			dc = "dc2"
		}
		e.mc.Nodes[i].ExtraArgs = []string{"--datacenter", dc}
		if err := e.mc.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	e.waitHealthy(e.db.Master())
	// Every manager's datacenter is known to the leader; m3 must be a
	// follower so that pausing it leaves a working majority.
	var li int
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		li, err = e.mc.Leader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, err := e.mc.NodeClient(li).Status(ctx)
		dcs := map[string]string{}
		if err == nil {
			for _, m := range st.Managers {
				dcs[m.ID] = m.Datacenter
			}
		}
		if dcs["m1"] == "dc1" && dcs["m2"] == "dc1" && dcs["m3"] == "dc2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("datacenters never known to the leader: %v (%v)", dcs, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if li == 2 {
		// Move the leadership away from m3: while it is stopped, m1 or m2
		// is elected, and m3 rejoins as a follower.
		e.mc.Stop(2)
		if _, err := e.mc.Leader(ctx); err != nil {
			t.Fatal(err)
		}
		if err := e.mc.Start(2); err != nil {
			t.Fatal(err)
		}
		e.waitHealthy(e.db.Master())
		var err error
		if li, err = e.mc.Leader(ctx); err != nil || li == 2 {
			t.Fatalf("m3 leads again after rejoining (leader %d, %v): cannot pause it and keep a leader", li, err)
		}
	}
	if err := e.mc.Pause(2); err != nil {
		t.Fatal(err)
	}
	paused := true
	defer func() {
		if paused {
			e.mc.Resume(2)
		}
	}()
	if _, err := e.mc.WaitApp(ctxT(t, 20*time.Second), li, "app1", func(a *api.AppStatus) bool { return a.Verdict == "Healthy" }); err != nil {
		t.Fatal(err)
	}
	// Let m3's last observation age past the detection window (3 s), so
	// that it is "unknown" rather than a veto when the master dies. This
	// waits for time to pass, not for a condition.
	time.Sleep(4 * time.Second)
	if err := e.db.Master().Kill9(); err != nil {
		t.Fatal(err)
	}
	sawUnreachable := false
	e.watchLeader(ctx, 6*time.Second, func(a api.AppStatus) {
		if a.Lock != nil || len(a.Journal) > 0 {
			t.Fatalf("failover started with only dc1 confirming: lock %+v", a.Lock)
		}
		if a.Verdict == "UnreachableMaster" {
			sawUnreachable = true
		}
	})
	if !sawUnreachable {
		t.Fatal("the leader never evaluated UnreachableMaster")
	}
	if !strings.Contains(e.mc.Log(li), "datacenters") {
		t.Error("the leader's log does not give the datacenter reason")
	}
	if err := e.mc.Resume(2); err != nil {
		t.Fatal(err)
	}
	paused = false
	h := e.waitHistory(ctxT(t, 60*time.Second), 1)
	if h[0].Result != "success" {
		t.Fatalf("history %+v", h[0])
	}
}
