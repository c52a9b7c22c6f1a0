package manager_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/manager"
	"github.com/mharaft/mharaft/manager/managertest"
	"github.com/mharaft/mharaft/testbed"
)

// binDir holds the mhanode and mhactl binaries, built on first use by
// mhanodeBinary and mhactlBinary; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mhanode-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// mhanodeBinary returns the mhanode binary, built once per test process.
// Under -short (`make test-unit`) it skips the test: its caller starts
// mhanode processes.
func mhanodeBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: starts mhanode processes")
	}
	bin, err := managertest.Build(binDir)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// mhactlBinary returns the mhactl binary, built once per test process; it
// skips the test under -short as mhanodeBinary does.
func mhactlBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: starts mhanode processes")
	}
	if err := testbed.BuildBinaries(context.Background(), binDir, "./cmd/mhactl"); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(binDir, "mhactl")
}

// env is one test's database cluster and manager cluster.
type env struct {
	t    *testing.T
	db   *testbed.Cluster
	mc   *managertest.Cluster
	conf string
}

// startEnv starts a testbed cluster and three mhanode processes watching
// it (ping_interval=1). prepare runs between the two (walkthrough, ...);
// nodeEnv adds environment variables to every node.
func startEnv(t *testing.T, opts testbed.Options, prepare func(*testbed.Cluster), confs func(i int, conf string) []string, nodeEnv ...string) *env {
	t.Helper()
	return startEnvN(t, 3, opts, prepare, confs, nodeEnv...)
}

// startEnvN is startEnv with n managers.
func startEnvN(t *testing.T, n int, opts testbed.Options, prepare func(*testbed.Cluster), confs func(i int, conf string) []string, nodeEnv ...string) *env {
	t.Helper()
	db := testbed.Start(t, opts)
	if prepare != nil {
		prepare(db)
	}
	dir := t.TempDir()
	conf, err := db.WriteAppConfig(dir, "ping_interval=1")
	if err != nil {
		t.Fatal(err)
	}
	if confs == nil {
		confs = func(int, string) []string { return []string{conf} }
	}
	mc, err := managertest.New(mhanodeBinary(t), dir, n, func(i int) []string { return confs(i, conf) })
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range mc.Nodes {
		n.Env = append(n.Env, nodeEnv...)
	}
	e := &env{t: t, db: db, mc: mc, conf: conf}
	t.Cleanup(func() {
		mc.Close()
		if t.Failed() || os.Getenv("MHARAFT_TEST_SHOW_LOGS") != "" {
			for i, n := range mc.Nodes {
				t.Logf("==== log of %s ====\n%s", n.ID, tail(mc.Log(i), 60000))
			}
		}
	})
	if err := mc.StartAll(); err != nil {
		t.Fatal(err)
	}
	return e
}

func tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitHealthy waits until the leader registered app1 with master as the
// master (by server name: addresses may differ per manager) and evaluates
// it Healthy.
func (e *env) waitHealthy(master *testbed.Server) {
	e.t.Helper()
	ctx := ctxT(e.t, 30*time.Second)
	for {
		li, err := e.mc.Leader(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = e.mc.WaitApp(wctx, li, "app1", func(a *api.AppStatus) bool {
			return masterName(a) == master.Name() && a.Verdict == "Healthy"
		})
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			e.t.Fatal(err)
		}
	}
}

// masterName is the server name of the app's master.
func masterName(a *api.AppStatus) string {
	for _, s := range a.Servers {
		if s.Addr == a.Master {
			return s.Name
		}
	}
	return ""
}

func (e *env) history(ctx context.Context) []api.HistoryEntry {
	e.t.Helper()
	h, err := e.mc.Client().History(ctx, "app1")
	if err != nil {
		e.t.Fatalf("history: %v", err)
	}
	return h
}

// watchLeader reads app1 as the current leader sees it every 100 ms for d
// and hands each reading to each: the "nothing may happen for a while"
// checks. A failed read is retried on the next tick.
func (e *env) watchLeader(ctx context.Context, d time.Duration, each func(a api.AppStatus)) {
	e.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		li, err := e.mc.Leader(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if st, err := e.mc.NodeClient(li).Status(ctx); err == nil && len(st.Apps) > 0 {
			each(st.Apps[0])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitHistory waits until app1 has n history entries.
func (e *env) waitHistory(ctx context.Context, n int) []api.HistoryEntry {
	e.t.Helper()
	var last []api.HistoryEntry
	for ctx.Err() == nil {
		h, err := e.mc.Client().History(ctx, "app1")
		if err == nil {
			last = h
			if len(h) >= n {
				return h
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("app1 history has %d entries, want %d: %+v", len(last), n, last)
	return nil
}

func (e *env) server(addr string) *testbed.Server {
	for _, s := range e.db.Servers {
		if s.Addr() == addr {
			return s
		}
	}
	e.t.Fatalf("no server %s", addr)
	return nil
}

// checkNewTopology asserts that newMaster is writable (as the application
// user) and every other alive server replicates from it and receives a
// new row.
func (e *env) checkNewTopology(ctx context.Context, newMaster *testbed.Server, others ...*testbed.Server) {
	e.t.Helper()
	ro, err := newMaster.QueryString(ctx, "SELECT @@read_only")
	if err != nil || ro != "0" {
		e.t.Fatalf("new master %s read_only=%q (%v), want 0", newMaster.Name(), ro, err)
	}
	for _, s := range others {
		st, err := s.SlaveStatus(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if st["Master_Port"] != fmt.Sprint(newMaster.Port) || st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" {
			e.t.Fatalf("%s replicates from port %s (IO %s, SQL %s), want %d Yes Yes", s.Name(), st["Master_Port"],
				st["Slave_IO_Running"], st["Slave_SQL_Running"], newMaster.Port)
		}
	}
	app, err := openApp(newMaster)
	if err != nil {
		e.t.Fatal(err)
	}
	defer app.Close()
	if _, err := app.ExecContext(ctx, "INSERT INTO test.t1 VALUES (100)"); err != nil {
		e.t.Fatalf("write on the new master %s as the application user: %v", newMaster.Name(), err)
	}
	for _, s := range others {
		if err := s.WaitCaughtUp(ctx, newMaster, 20*time.Second); err != nil {
			e.t.Fatalf("%s after the failover: %v", s.Name(), err)
		}
	}
}

// TestKillMasterFailsOverOnce: kill -9 of the master's mariadbd in the
// walkthrough state gives exactly one automatic failover that keeps rows
// 1,2,3, a writable new master and the other replica replicating from it;
// the managers then watch the new master.
func TestKillMasterFailsOverOnce(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	e := startEnv(t, testbed.Options{N: 3}, func(c *testbed.Cluster) {
		if err := c.Walkthrough(ctx); err != nil {
			t.Fatal(err)
		}
	}, nil)
	e.waitHealthy(e.db.Master())

	if err := e.db.Master().Kill9(); err != nil {
		t.Fatal(err)
	}
	t.Logf("master killed at %s", time.Now().Format("15:04:05.000"))
	h := e.waitHistory(ctxT(t, 60*time.Second), 1)
	if h[0].Result != "success" || h[0].Kind != "failover (auto)" || h[0].DeadMaster != e.db.Master().Addr() {
		t.Fatalf("history entry %+v, want a successful automatic failover of %s", h[0], e.db.Master().Addr())
	}
	newMaster := e.server(h[0].NewMaster)
	var other *testbed.Server
	for _, s := range e.db.Servers[1:] {
		if s != newMaster {
			other = s
		}
		rows, err := s.Rows(ctx)
		if err != nil || !slices.Equal(rows, []int{1, 2, 3}) {
			t.Fatalf("%s rows %v (%v), want [1 2 3]", s.Name(), rows, err)
		}
	}
	e.checkNewTopology(ctx, newMaster, other)

	// Every node learns the new master and the leader finds it healthy.
	for i := range e.mc.Nodes {
		if _, err := e.mc.WaitApp(ctxT(t, 20*time.Second), i, "app1", func(a *api.AppStatus) bool {
			return a.Master == newMaster.Addr() && a.Lock == nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	e.waitHealthy(newMaster)

	// The repaired old master rejoins as a replica of the new one.
	old := e.db.Master()
	if err := old.Start(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionRejoin, App: "app1", Host: old.Name()})
	if err != nil || !res.OK {
		t.Fatalf("rejoin %s: %+v %v", old.Name(), res, err)
	}
	if err := old.WaitCaughtUp(ctx, newMaster, 20*time.Second); err != nil {
		t.Fatalf("rejoined %s: %v", old.Name(), err)
	}
	if rows, err := old.Rows(ctx); err != nil || !slices.Equal(rows, []int{1, 2, 3, 100}) {
		t.Fatalf("rejoined %s rows %v (%v), want [1 2 3 100]", old.Name(), rows, err)
	}
	h = e.history(ctx)
	if len(h) != 2 || h[0].Kind != "failover (auto)" || h[1].Kind != "rejoin" {
		t.Fatalf("history after one master death and a rejoin: %+v, want the failover then the rejoin", h)
	}
	st, err := e.mc.Client().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	phases := map[string]bool{}
	for _, j := range st.Apps[0].Journal {
		phases[j.Phase+"/"+j.Status] = true
	}
	for _, want := range []string{manager.PhaseVerdict + "/done", manager.PhaseLock + "/done", manager.PhaseActivate + "/done"} {
		if !phases[want] {
			t.Errorf("journal lacks %s: %v", want, phases)
		}
	}
	t.Logf("history: %+v", h[0])
	for i := range e.mc.Nodes {
		log := e.mc.Log(i)
		for _, pw := range []string{testbed.MHAPassword, testbed.ReplPassword} {
			if strings.Contains(log, pw) {
				t.Errorf("log of %s shows a password", e.mc.Nodes[i].ID)
			}
		}
		if !strings.Contains(log, "epoch=") {
			t.Errorf("log of %s has no epoch field", e.mc.Nodes[i].ID)
		}
	}
	for _, j := range st.Apps[0].Journal {
		t.Logf("journal: %s %-45s %-8s %s", j.At.Format("15:04:05.000"), j.Phase, j.Status, j.Detail)
	}
}

// waitPhaseDone waits until node i (-1: any) shows the journal entry of
// phase done and returns that status (its lock is the one that did it).
func (e *env) waitPhaseDone(i int, phase string) *api.AppStatus {
	e.t.Helper()
	a, err := e.mc.WaitApp(ctxT(e.t, 60*time.Second), i, "app1", func(a *api.AppStatus) bool {
		for _, j := range a.Journal {
			if j.Phase == phase && j.Status == "done" {
				return true
			}
		}
		return false
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}
