package manager_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/testbed"
)

// TestRefusedFailoverRetriedBounded (issue 12 finding 3): the master dies
// while the only other replica (no ignore_fail) is down, so phase 1 refuses
// the failover. The refusal must not loop: the history holds one entry per
// distinct attempt (old code: about 500 entries in 30 s), no anti-flapping
// block is armed, and once the replica is back the retry policy lets the
// failover happen without an ack.
func TestRefusedFailoverRetriedBounded(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	e := startEnv(t, testbed.Options{N: 3}, nil, nil)
	e.waitHealthy(e.db.Master())
	down := e.db.Servers[2]
	if err := down.Kill9(); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Master().Kill9(); err != nil {
		t.Fatal(err)
	}
	h := e.waitHistory(ctxT(t, 60*time.Second), 1)
	if h[0].Result != "refused" {
		t.Fatalf("first history entry %+v: want a refused failover", h[0])
	}
	// Several retry periods: the history stays one entry per distinct
	// refusal (attempts counted in it), nothing is promoted.
	end := time.Now().Add(6 * time.Second)
	for time.Now().Before(end) {
		h = e.history(ctx)
		if len(h) > 3 {
			t.Fatalf("a refused failover flooded the history: %d entries: %+v", len(h), h)
		}
		for _, x := range h {
			if x.Result == "success" {
				t.Fatalf("failover succeeded while a replica without ignore_fail was down: %+v", x)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	attempts := 0
	for _, x := range h {
		attempts += max(x.Attempts, 1)
	}
	if attempts < 2 {
		t.Fatalf("history %+v: want the refusal retried (attempts >= 2) within 6 s", h)
	}
	if ro, err := e.db.Servers[1].QueryString(ctx, "SELECT @@read_only"); err != nil || ro != "1" {
		t.Fatalf("%s read_only=%q (%v) after refused failovers: something was promoted", e.db.Servers[1].Name(), ro, err)
	}
	st, err := e.mc.Client().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Apps[0].AutoRetry; r == nil || r.Refusals < 1 || r.NextAttempt.IsZero() {
		t.Fatalf("status shows no retry state after refused failovers: %+v", r)
	}
	// The replica comes back: a retry succeeds without any ack (a refusal
	// in phase 1 arms no anti-flapping block).
	if err := down.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for ctx.Err() == nil {
		h = e.history(ctx)
		if len(h) > 0 && h[len(h)-1].Result == "success" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if last := h[len(h)-1]; last.Result != "success" {
		t.Fatalf("no failover after the replica came back: %+v", h)
	}
}

// TestServerAddRemovePersist (issue 12 finding 10): `server remove` and
// `server add` stay done (old code: the leader re-registered the servers of
// its configuration file within a second), across a restart of every
// manager, and a server added at run time takes its credentials from
// [server default] (discovery logs into it).
func TestServerAddRemovePersist(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	e := startEnv(t, testbed.Options{N: 3}, nil, nil)
	e.waitHealthy(e.db.Master())
	third := e.db.Servers[2]
	c := e.mc.Client()
	res, err := c.Do(ctx, api.Action{Kind: api.ActionServerRemove, App: "app1", Host: third.Name()})
	if err != nil || !res.OK {
		t.Fatalf("server remove: %+v %v", res, err)
	}
	names := func(a *api.AppStatus) []string {
		var out []string
		for _, s := range a.Servers {
			out = append(out, s.Name)
		}
		slices.Sort(out)
		return out
	}
	stays := func(what string, want []string) {
		t.Helper()
		end := time.Now().Add(3 * time.Second)
		for time.Now().Before(end) {
			st, err := c.Status(ctx)
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for _, a := range st.Apps {
				if a.Name == "app1" && !slices.Equal(names(&a), want) {
					t.Fatalf("%s: servers %v, want %v", what, names(&a), want)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	stays("after server remove", []string{e.db.Servers[0].Name(), e.db.Servers[1].Name()})

	// The same MariaDB server comes back under a new name, with only its
	// address: user and password come from [server default].
	host, port := third.Host, third.Port
	res, err = c.Do(ctx, api.Action{Kind: api.ActionServerAdd, App: "app1", Server: &api.ServerSpec{Name: "server9", Hostname: host, Port: port}})
	if err != nil || !res.OK {
		t.Fatalf("server add: %+v %v", res, err)
	}
	want := []string{e.db.Servers[0].Name(), e.db.Servers[1].Name(), "server9"}
	stays("after server add", want)

	for i := range e.mc.Nodes {
		if err := e.mc.Stop(i); err != nil {
			t.Fatal(err)
		}
		if err := e.mc.Wait(i, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.mc.StartAll(); err != nil {
		t.Fatal(err)
	}
	li, err := e.mc.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Discovery reaches server9 as a replica with the default credentials.
	a, err := e.mc.WaitApp(ctxT(t, 40*time.Second), li, "app1", func(a *api.AppStatus) bool {
		for _, s := range a.Servers {
			if s.Name == "server9" && s.Reachable && s.Role == "replica" {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("server9 (added at run time) never seen as a reachable replica: %v", err)
	}
	if got := names(a); !slices.Equal(got, want) {
		t.Fatalf("after a restart of every manager: servers %v, want %v", got, want)
	}
	if strings.Contains(e.mc.Log(li), "cannot be used") {
		t.Fatalf("the leader could not build server9 from [server default]:\n%s", tail(e.mc.Log(li), 3000))
	}
}

// TestStaleVerdictLockRefused (issue 12 finding 6): the automatic lock is a
// compare-and-set on the master and epoch its verdict saw. Every manager
// runs with --test-verdict-delay, a test-only wait between an actionable
// verdict and the lock. The master is killed; while the leader's DeadMaster
// verdict waits, an operator fails the master over by hand. When the wait
// ends the verdict is about a master that is no longer the master: its lock
// must be refused as stale (old code: it took a second lock and ran a
// second failover of the same dead master against the new topology).
func TestStaleVerdictLockRefused(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	e := startEnv(t, testbed.Options{N: 3}, nil, nil)
	for i, n := range e.mc.Nodes {
		if err := e.mc.Stop(i); err != nil {
			t.Fatal(err)
		}
		n.ExtraArgs = append(n.ExtraArgs, "--test-verdict-delay", "6s")
		if err := e.mc.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	dead := e.db.Master()
	e.waitHealthy(dead)
	if err := dead.Kill9(); err != nil {
		t.Fatal(err)
	}
	e.waitLogLine(30*time.Second, "msg=verdict", "verdict=DeadMaster")
	t0 := time.Now()
	res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionFailover, App: "app1", DeadMaster: dead.Addr()})
	if err != nil {
		t.Fatalf("manual failover while the verdict waits: %v", err)
	}
	if took := time.Since(t0); took > 5*time.Second {
		t.Fatalf("the manual failover took %s, longer than the verdict's delay: the test proves nothing", took)
	}
	t.Logf("manual failover done in %s: %s", time.Since(t0).Round(time.Millisecond), res.Message)
	line := e.waitLogLine(30*time.Second, "automatic failover refused", "stale")
	t.Log(line)
	h := e.history(ctx)
	if len(h) != 1 {
		t.Fatalf("history %+v: want only the manual failover", h)
	}
	st, err := e.mc.Client().App(ctx, "app1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Lock != nil || st.Master == dead.Addr() {
		t.Fatalf("app after the stale verdict: master %s, lock %+v; want the manual failover's new master and no lock", st.Master, st.Lock)
	}
	if res.Epoch != 1 || h[0].Epoch != 1 {
		t.Fatalf("manual failover epoch %d, history %+v: want epoch 1 and no later one", res.Epoch, h)
	}
}
