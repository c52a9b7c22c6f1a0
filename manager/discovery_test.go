package manager_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/internal/simmysql"
	"github.com/mharaft/mharaft/manager"
	"github.com/mharaft/mharaft/manager/managertest"
	"github.com/mharaft/mharaft/testbed"
)

// TestSlowAppsDelayNoOtherDiscovery: twelve applications whose replicas
// stop answering (SIMULATED endpoints, internal/simmysql, stalled: each
// discovery of them takes its whole 5 s bound) do not delay the discovery
// of another application: its status rows stay fresh (discovered within
// three intervals) and are never stale. One after the other, the twelve
// would take a minute per round and the healthy application's rows would
// go stale after 20 s (run with MHARAFT_TEST_MHANODE naming an mhanode
// built before the parallel discovery to see it fail).
func TestSlowAppsDelayNoOtherDiscovery(t *testing.T) {
	bin := os.Getenv("MHARAFT_TEST_MHANODE")
	if bin == "" {
		bin = mhanodeBinary(t)
	}
	sim := simmysql.New(testbed.MHAUser, testbed.MHAPassword)
	defer sim.Close()
	dir := t.TempDir()
	var confs []string
	var slow []*simmysql.App
	for i := range 13 {
		a, err := sim.AddApp("127.0.0.1", 2, testbed.ReplUser)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("a-slow-%02d", i+1)
		if i == 12 {
			name = "z-healthy"
		} else {
			slow = append(slow, a)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "[server default]\nuser=%s\npassword=%s\nrepl_user=%s\nrepl_password=%s\nping_interval=1\nmanager_workdir=%s\n",
			testbed.MHAUser, testbed.MHAPassword, testbed.ReplUser, testbed.ReplPassword, filepath.Join(dir, name))
		for j, e := range a.Servers() {
			fmt.Fprintf(&b, "\n[server%d]\nhostname=%s\nport=%d\ncandidate_master=1\n", j+1, e.Host, e.Port)
		}
		path := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		confs = append(confs, path)
	}
	mc, err := managertest.New(bin, filepath.Join(dir, "managers"), 3, func(int) []string { return confs })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mc.Close()
		if t.Failed() {
			for i, n := range mc.Nodes {
				t.Logf("==== log of %s ====\n%s", n.ID, tail(mc.Log(i), 20000))
			}
		}
	})
	if err := mc.StartAll(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 3*time.Minute)

	// healthyRows returns the leader's rows of z-healthy once every
	// application was discovered (every row has an age).
	healthyRows := func() ([]api.ServerStatus, bool) {
		li, err := mc.Leader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := mc.NodeClient(li).Status(sctx)
		cancel()
		if err != nil || len(st.Apps) != 13 {
			return nil, false
		}
		var rows []api.ServerStatus
		for _, a := range st.Apps {
			for _, s := range a.Servers {
				if s.AgeSeconds == nil {
					return nil, false
				}
			}
			if a.Name == "z-healthy" {
				rows = a.Servers
			}
		}
		return rows, true
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if _, ok := healthyRows(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not every application discovered within a minute")
		}
	}
	for _, a := range slow {
		for _, r := range a.Replicas {
			r.Stall(true)
		}
	}
	// 30 s: six discovery intervals, enough for one-by-one rounds (12 x 5 s)
	// to leave z-healthy undiscovered past the 20 s stale limit.
	maxAge := 0.0
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		rows, ok := healthyRows()
		if !ok {
			continue
		}
		for _, s := range rows {
			maxAge = max(maxAge, *s.AgeSeconds)
			if s.Stale {
				t.Fatalf("z-healthy's %s is stale (%s) while twelve other applications are slow", s.Name, s.HealthDetail)
			}
		}
	}
	t.Logf("z-healthy's oldest discovery while twelve applications were slow: %.1f s", maxAge)
	if maxAge > 3*manager.DefaultDiscoveryInterval.Seconds() {
		t.Errorf("z-healthy's discovery got %.1f s old while twelve applications were slow, want at most three intervals (unchanged summaries are stored every other interval)", maxAge)
	}
}
