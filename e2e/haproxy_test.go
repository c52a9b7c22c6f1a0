package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/testbed"
)

// TestRoutingEndpoints: every manager answers the load balancers' routing
// endpoints without a token, over its TLS port, with the role only: 200
// for the master on /primary and for a replica on /replica, 503 for the
// others, 404 for an unknown server.
func TestRoutingEndpoints(t *testing.T) {
	a := currentMaster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range mc.Nodes {
		for _, s := range a.Servers {
			wantPrimary, wantReplica := http.StatusServiceUnavailable, http.StatusServiceUnavailable
			switch {
			case s.Addr == a.Master:
				wantPrimary = http.StatusOK
			case s.Role == "replica" && s.ReplicatingFrom == a.Master && s.IOThread == "Yes" && s.SQLThread == "Yes":
				wantReplica = http.StatusOK
			}
			for _, c := range []struct {
				path string
				want int
			}{
				{"/v1/apps/app1/servers/" + s.Name + "/primary", wantPrimary},
				{"/v1/apps/app1/servers/" + s.Addr + "/replica?lag=30s", wantReplica},
			} {
				// A replica is one once this manager's detector sampled it.
				code, body := pollRouting(ctx, t, i, c.path, c.want)
				if code != c.want {
					t.Errorf("%s: GET %s without a token: %d %s, want %d", mc.Nodes[i].ID, c.path, code, body, c.want)
				}
				var v map[string]string
				if err := json.Unmarshal(body, &v); err != nil || len(v) != 1 || v["role"] == "" {
					t.Errorf("%s: GET %s: body %q, want {\"role\": ...} only", mc.Nodes[i].ID, c.path, body)
				}
			}
		}
		if code, body := request(t, i, "GET", "/v1/apps/app1/servers/nope/primary", "", ""); code != http.StatusNotFound {
			t.Errorf("%s: unknown server: %d %s, want 404", mc.Nodes[i].ID, code, body)
		}
	}
}

// pollRouting asks node i for path until it answers want (or ctx ends)
// and returns the last answer.
func pollRouting(ctx context.Context, t *testing.T, i int, path string, want int) (int, []byte) {
	t.Helper()
	for {
		code, body := request(t, i, "GET", path, "", "")
		if code == want || !pause(ctx, 100*time.Millisecond) {
			return code, body
		}
	}
}

// TestHAProxyFailover: a real HAProxy (docs/HAPROXY.md's configuration,
// its checks asking every manager over TLS) in front of app1; an
// application writes through it; the master's mariadbd is killed with
// SIGKILL; the writes resume on the new master through the same address,
// every acknowledged write is on the new master, and HAProxy never routes
// to two database servers at once. The client-visible outage (kill to the
// first acknowledged write) is logged. The test then brings the old
// master back as a replica (rejoin, ack) for the tests that follow.
func TestHAProxyFailover(t *testing.T) {
	if _, err := testbed.HAProxyBinary(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a := currentMaster(t)
	hp := startHAProxy(ctx, t, a)
	waitUp(ctx, t, hp, "primary", a.Server(a.Master).Name)

	w, err := testbed.StartWriter(ctx, hp.Opts.WriteAddr, "test", "haproxy_writes")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	master := dbServer(t, a.Master)
	if _, err := w.WaitAck(ctx, time.Now(), master.Port); err != nil {
		t.Fatal(err)
	}

	// Sample what HAProxy routes to during the failover.
	var mu sync.Mutex
	var both []string
	sctx, stopSampling := context.WithCancel(ctx)
	var sampled sync.WaitGroup
	sampled.Add(1)
	go func() {
		defer sampled.Done()
		for pause(sctx, 20*time.Millisecond) {
			if up, err := hp.UpServers("primary"); err == nil && len(up) > 1 {
				mu.Lock()
				both = append(both, fmt.Sprintf("%s %v", time.Now().Format("15:04:05.000"), up))
				mu.Unlock()
			}
		}
	}()

	before := len(historyOrNone(t, allAddrs()))
	killed := time.Now()
	if err := master.Kill9(); err != nil {
		t.Fatal(err)
	}
	dead := time.Now() // Kill9 waited for the process to exit
	first, err := w.WaitAck(ctx, dead, 0)
	if err != nil {
		t.Fatalf("%v\nhaproxy log:\n%s", err, tail(hp.Log(), 4000))
	}
	outage := first.At.Sub(killed)
	var last api.HistoryEntry
	for {
		if h := historyOrNone(t, allAddrs()); len(h) > before {
			last = h[len(h)-1]
			break
		}
		if !pause(ctx, 100*time.Millisecond) {
			t.Fatalf("no history entry after the kill of %s", a.Master)
		}
	}
	stopSampling()
	sampled.Wait()
	if last.Result != "success" || last.DeadMaster != a.Master {
		t.Fatalf("failover after the kill: %+v, want a success for %s", last, a.Master)
	}
	newMaster := dbServer(t, last.NewMaster)
	if first.Port != newMaster.Port {
		t.Errorf("first write sent after the kill acknowledged by port %d, want the new master %s (%d)", first.Port, newMaster.Name(), newMaster.Port)
	}
	t.Logf("client-visible outage through HAProxy: %s (kill -9 of %s to the first acknowledged write, on %s); failover %s -> %s took %s",
		outage.Round(time.Millisecond), master.Name(), newMaster.Name(), last.Started.Format("15:04:05.000"),
		last.Finished.Format("15:04:05.000"), last.Finished.Sub(last.Started).Round(time.Millisecond))
	// The managers never vouch for two masters, but HAProxy's view lags
	// theirs by up to a check interval; what a client must never see is a
	// write acknowledged by another server than the new master once the
	// old one is dead.
	if len(both) > 0 {
		t.Logf("HAProxy had two database servers UP for writes (its checks lag the managers): %v", both)
	}
	// (An insert sent before the old master's process ended may still be
	// acknowledged by it; one sent after cannot.)
	for _, k := range w.Acks() {
		if k.Sent.After(dead) && k.Port != newMaster.Port {
			t.Errorf("write %d sent at %s, after the old master's process ended, acknowledged at %s by port %d, not by the new master %s",
				k.N, k.Sent.Format("15:04:05.000"), k.At.Format("15:04:05.000"), k.Port, newMaster.Name())
		}
	}
	waitUp(ctx, t, hp, "primary", newMaster.Name())

	// Every write acknowledged, before the kill or after, is on the new master.
	w.Stop()
	acks := w.Acks()
	rows := tableRows(ctx, t, newMaster, "test.haproxy_writes")
	var lost []int
	for _, k := range acks {
		if !slices.Contains(rows, k.N) {
			lost = append(lost, k.N)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged writes are not on the new master %s: %v", len(lost), len(acks), newMaster.Name(), lost)
	}
	n, lastErr := w.Errors()
	t.Logf("%d writes acknowledged, %d failed attempts (last: %v)", len(acks), n, lastErr)

	restoreOldMaster(ctx, t, master, newMaster)
	waitUp(ctx, t, hp, "replica", replicaNames(t, newMaster)...)
}

// startHAProxy runs haproxy for app1 as docs/HAPROXY.md configures it,
// checking the three managers over TLS; it stops with the test.
func startHAProxy(ctx context.Context, t *testing.T, a *api.AppStatus) *testbed.HAProxy {
	t.Helper()
	o := testbed.HAProxyOptions{App: "app1", CAFile: caFile, MaxLag: 30 * time.Second}
	for _, s := range a.Servers {
		o.Servers = append(o.Servers, testbed.HAProxyServer{Name: s.Name, Addr: s.Addr})
	}
	for _, n := range mc.Nodes {
		o.Managers = append(o.Managers, n.HTTPAddr)
	}
	for _, addr := range []*string{&o.WriteAddr, &o.ReadAddr} {
		p, err := testbed.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		*addr = fmt.Sprintf("127.0.0.1:%d", p)
	}
	hp, err := testbed.StartHAProxy(ctx, filepath.Join(t.TempDir(), "haproxy"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := hp.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("haproxy log:\n%s", tail(hp.Log(), 8000))
		}
	})
	return hp
}

// waitUp waits until HAProxy's backend of kind has exactly want UP.
func waitUp(ctx context.Context, t *testing.T, hp *testbed.HAProxy, kind string, want ...string) {
	t.Helper()
	slices.Sort(want)
	var up []string
	var err error
	for {
		up, err = hp.UpServers(kind)
		if err == nil && slices.Equal(up, want) {
			return
		}
		if !pause(ctx, 50*time.Millisecond) {
			t.Fatalf("haproxy %s backend: UP %v (%v), want %v", kind, up, err, want)
		}
	}
}

// tableRows reads the values of table (a INT) on s as root.
func tableRows(ctx context.Context, t *testing.T, s *testbed.Server, table string) []int {
	t.Helper()
	db, err := sql.Open("mysql", s.DSN(testbed.MHAUser, testbed.MHAPassword, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.QueryContext(ctx, "SELECT a FROM "+table)
	if err != nil {
		t.Fatalf("read %s on %s: %v", table, s.Name(), err)
	}
	defer rs.Close()
	var out []int
	for rs.Next() {
		var v int
		if err := rs.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// restoreOldMaster restarts the killed master, rejoins it as a replica of
// the new master and acknowledges the failover (so the next one is not
// refused as too recent), then waits for a healthy app1 with two replicas.
func restoreOldMaster(ctx context.Context, t *testing.T, old, newMaster *testbed.Server) {
	t.Helper()
	_, fi := leader(t)
	follower := mc.Nodes[fi].HTTPAddr
	if err := old.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if r := mhactl(t, follower, "rejoin", "--app", "app1", "--host", old.Addr()); r.code != 0 {
		t.Fatalf("mhactl rejoin %s: %s", old.Name(), r)
	}
	if r := mhactl(t, follower, "ack", "--app", "app1"); r.code != 0 {
		t.Fatalf("mhactl ack: %s", r)
	}
	if _, err := waitApp(ctx, func(s *api.AppStatus) bool {
		return s.Master == newMaster.Addr() && s.Verdict == "Healthy" && s.Lock == nil && replicasOf(s, newMaster.Addr()) == 2
	}); err != nil {
		t.Fatal(err)
	}
}

// replicaNames are the database servers other than master.
func replicaNames(t *testing.T, master *testbed.Server) []string {
	t.Helper()
	var out []string
	for _, s := range db.Servers {
		if s != master {
			out = append(out, s.Name())
		}
	}
	if len(out) == 0 {
		t.Fatal("no replica")
	}
	return out
}
