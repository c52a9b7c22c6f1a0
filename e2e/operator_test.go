package e2e

// The tests run in this order (go test runs a file's tests in declaration
// order): read-only checks first, then the switch, then the failover, then
// the checks that need a finished failover. Each reads the current master
// from the cluster, so each also runs alone.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/testbed"
)

// currentMaster waits until the leader sees app1 healthy with two
// replicas (as discovered) and returns it.
func currentMaster(t *testing.T) *api.AppStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := waitApp(ctx, func(a *api.AppStatus) bool {
		return a.Verdict == "Healthy" && a.Lock == nil && replicasOf(a, a.Master) >= 1
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// dbServer is the testbed server with addr.
func dbServer(t *testing.T, addr string) *testbed.Server {
	t.Helper()
	for _, s := range db.Servers {
		if s.Addr() == addr {
			return s
		}
	}
	t.Fatalf("no database server %s", addr)
	return nil
}

// TestStatusJSON: `mhactl status -o json` gives the three managers with
// exactly one leader (the one the status names) and app1 with its master
// and the replicas replicating from it.
func TestStatusJSON(t *testing.T) {
	a := currentMaster(t)
	r := mhactl(t, allAddrs(), "status", "-o", "json")
	if r.code != 0 {
		t.Fatalf("mhactl status -o json: %s", r)
	}
	var st api.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status -o json is not JSON: %v\n%s", err, r.stdout)
	}
	if len(st.Managers) != 3 {
		t.Fatalf("%d managers, want 3: %+v", len(st.Managers), st.Managers)
	}
	var leaders []string
	for _, m := range st.Managers {
		if m.Role == "leader" {
			leaders = append(leaders, m.ID)
		}
		if !m.Voter || !m.Alive || m.APIAddr == "" {
			t.Errorf("manager %+v: want a live voter with an API address", m)
		}
	}
	if len(leaders) != 1 || leaders[0] != st.Leader || st.Term == 0 {
		t.Fatalf("leaders %v, status leader %q term %d: want exactly one, the named one", leaders, st.Leader, st.Term)
	}
	app := st.App("app1")
	if app == nil {
		t.Fatalf("no app1 in %s", r.stdout)
	}
	if app.Master != a.Master || len(app.Servers) != 3 {
		t.Fatalf("app1 master %q with %d servers, want %s and 3", app.Master, len(app.Servers), a.Master)
	}
	roles := map[string]int{}
	for _, s := range app.Servers {
		roles[s.Role]++
		if s.Role == "replica" && (s.ReplicatingFrom != app.Master || s.IOThread != "Yes" || s.SQLThread != "Yes") {
			t.Errorf("replica %+v does not replicate from %s", s, app.Master)
		}
		if s.Addr == app.Master && s.Role != "master" {
			t.Errorf("master %s has role %q", s.Addr, s.Role)
		}
	}
	if roles["master"] != 1 || roles["replica"] < 1 || roles["master"]+roles["replica"]+roles["dead"]+roles["unknown"] != 3 {
		t.Fatalf("roles %v", roles)
	}
}

// TestStatusTable: `mhactl status -o table` draws the managers and the
// replication tree: the master first, its replicas below with their role.
func TestStatusTable(t *testing.T) {
	a := currentMaster(t)
	r := mhactl(t, allAddrs(), "status")
	if r.code != 0 {
		t.Fatalf("mhactl status: %s", r)
	}
	lines := strings.Split(r.stdout, "\n")
	has := func(prefix, contains string) bool {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) && strings.Contains(l, contains) {
				return true
			}
		}
		return false
	}
	if !has("MANAGER", "ROLE") || !has("m1 ", "") || !has("m2 ", "") || !has("m3 ", "") {
		t.Errorf("no managers table:\n%s", r.stdout)
	}
	if !has("Cluster: answered by", "leader m") {
		t.Errorf("no cluster line naming the leader:\n%s", r.stdout)
	}
	for _, s := range a.Servers {
		node := fmt.Sprintf("%s(%s)", s.Name, s.Addr)
		switch {
		case s.Addr == a.Master:
			if !has(node, "(current master)") {
				t.Errorf("no tree line %q (current master):\n%s", node, r.stdout)
			}
		case s.Role == "replica" && s.ReplicatingFrom == a.Master:
			if !has(" +--"+node, "replica, io Yes, sql Yes") {
				t.Errorf("no tree line \" +--%s replica, io Yes, sql Yes\":\n%s", node, r.stdout)
			}
		}
	}
}

// TestCheckStatusHealthy: `mhactl check-status --app app1` answers MHA's
// PING_OK line and exits 0 while the master is healthy.
func TestCheckStatusHealthy(t *testing.T) {
	a := currentMaster(t)
	r := mhactl(t, allAddrs(), "check-status", "--app", "app1")
	want := "app1 is running(0:PING_OK), master:"
	if r.code != 0 || !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, a.Master) {
		t.Fatalf("check-status: %s\nwant exit 0 and %q...%s", r, want, a.Master)
	}
	// A follower shows the verdict the leader stored with its topology
	// summary, so check-status asked of a follower alone answers too.
	_, fi := leader(t)
	deadline := time.Now().Add(25 * time.Second)
	for {
		r = mhactl(t, mc.Nodes[fi].HTTPAddr, "check-status", "--app", "app1")
		if r.code == 0 && strings.HasPrefix(r.stdout, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("check-status through follower %s: %s\nwant exit 0 and %q", mc.Nodes[fi].ID, r, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestTokenRefused: without the right token mhactl exits 3 saying so, and
// the API answers a raw request without Authorization with 401.
func TestTokenRefused(t *testing.T) {
	wrong := filepath.Join(t.TempDir(), "wrong-token")
	if err := os.WriteFile(wrong, []byte("not-the-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := mhactlAs(t, allAddrs(), wrong, "status")
	if r.code != 3 || !strings.Contains(r.stderr, "invalid bearer token") || !strings.Contains(r.stderr, "--token-file") {
		t.Errorf("status with a wrong token: %s\nwant exit 3, \"invalid bearer token\" and a hint at --token-file", r)
	}
	r = mhactlAs(t, allAddrs(), "", "history")
	if r.code != 3 || !strings.Contains(r.stderr, "missing bearer token") {
		t.Errorf("history without a token: %s\nwant exit 3 and \"missing bearer token\"", r)
	}

	for _, path := range []string{"/v1/status", "/v1/history", "/metrics"} {
		code, body := request(t, 0, "GET", path, "", "")
		if code != http.StatusUnauthorized {
			t.Errorf("GET %s without Authorization: %d %s, want 401", path, code, body)
			continue
		}
		if e := apiError(t, body); !strings.Contains(e.Msg, "missing bearer token") {
			t.Errorf("GET %s without Authorization: error %q", path, e.Msg)
		}
	}
	code, body := request(t, 0, "POST", "/v1/actions", "", `{"kind":"pause","app":"app1"}`)
	if code != http.StatusUnauthorized {
		t.Errorf("POST /v1/actions without Authorization: %d %s, want 401", code, body)
	}
	code, body = request(t, 0, "GET", "/v1/status", "not-the-token", "")
	if e := apiError(t, body); code != http.StatusUnauthorized || e.Msg != "invalid bearer token" {
		t.Errorf("GET /v1/status with a wrong token: %d %q", code, e.Msg)
	}
	// /healthz needs no token.
	if code, body := request(t, 0, "GET", "/healthz", "", ""); code != http.StatusOK {
		t.Errorf("GET /healthz: %d %s", code, body)
	}
}

// TestMalformedAction: broken JSON and an unknown kind get a 400 with a
// JSON error saying what is wrong, on the leader and on a follower, and
// change nothing.
func TestMalformedAction(t *testing.T) {
	li, fi := leader(t)
	before := mhactl(t, allAddrs(), "history", "-o", "json")
	cases := []struct {
		name, body, field string
		want              []string
	}{
		{"broken JSON", `{"kind":"switch","app":"app1"`, "", []string{"malformed JSON", "byte offset"}},
		{"not JSON", `kind=switch`, "", []string{"malformed JSON at byte offset 1"}},
		{"unknown kind", `{"kind":"explode","app":"app1"}`, "kind", []string{`unknown action kind "explode"`, "switch", "failover"}},
		{"unknown field", `{"kind":"pause","app":"app1","forse":true}`, "forse", []string{`unknown field "forse"`}},
		{"unknown app", `{"kind":"pause","app":"app9"}`, "app", []string{`unknown application "app9"`}},
	}
	for _, tc := range cases {
		for _, i := range []int{li, fi} {
			t.Run(tc.name+" on "+mc.Nodes[i].ID, func(t *testing.T) {
				code, body := request(t, i, "POST", "/v1/actions", mc.Token, tc.body)
				e := apiError(t, body)
				if code/100 != 4 {
					t.Fatalf("status %d (%s), want 4xx", code, body)
				}
				if tc.name == "unknown app" {
					if code != http.StatusNotFound {
						t.Errorf("status %d, want 404", code)
					}
				} else if code != http.StatusBadRequest {
					t.Errorf("status %d, want 400", code)
				}
				for _, w := range tc.want {
					if !strings.Contains(e.Msg, w) {
						t.Errorf("error %q lacks %q", e.Msg, w)
					}
				}
				if e.Field != tc.field {
					t.Errorf("field %q, want %q", e.Field, tc.field)
				}
			})
		}
	}
	if after := mhactl(t, allAddrs(), "history", "-o", "json"); after.stdout != before.stdout {
		t.Errorf("history changed after refused requests:\nbefore %s\nafter %s", before.stdout, after.stdout)
	}
	// mhactl maps a 4xx refusal to exit 2 (usage).
	r := mhactl(t, mc.Nodes[fi].HTTPAddr, "pause", "--app", "app9")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown application "app9"`) {
		t.Errorf("mhactl pause --app app9: %s\nwant exit 2 naming the application", r)
	}
}

// TestMetrics: a scrape (with the token) of the leader and of a follower
// parses, and shows the raft role and term, and the probe latency of the
// current master; without the token only the --metrics-open node serves
// /metrics.
func TestMetrics(t *testing.T) {
	a := currentMaster(t)
	li, _ := leader(t)
	st, err := nodeStatus(context.Background(), li)
	if err != nil {
		t.Fatal(err)
	}
	masterName := a.Server(a.Master).Name
	for i := range mc.Nodes {
		fams := scrape(t, i)
		role := "follower"
		if i == li {
			role = "leader"
		}
		if s := series(fams, "mharaft_raft_role", map[string]string{"role": role}); len(s) != 1 || value(s[0]) != 1 {
			t.Errorf("%s: mharaft_raft_role{role=%q} = %v, want 1", mc.Nodes[i].ID, role, s)
		}
		other := "leader"
		if i == li {
			other = "follower"
		}
		if s := series(fams, "mharaft_raft_role", map[string]string{"role": other}); len(s) != 1 || value(s[0]) != 0 {
			t.Errorf("%s: mharaft_raft_role{role=%q} = %v, want 0", mc.Nodes[i].ID, other, s)
		}
		if s := series(fams, "mharaft_raft_term", nil); len(s) != 1 || value(s[0]) < float64(st.Term) || value(s[0]) < 1 {
			t.Errorf("%s: mharaft_raft_term = %v, want >= %d", mc.Nodes[i].ID, s, st.Term)
		}
		// Every node probes the master; its latency histogram has samples.
		s := series(fams, "mharaft_probe_duration_seconds", map[string]string{"app": "app1", "server": masterName})
		if len(s) != 1 || s[0].Histogram == nil || s[0].Histogram.GetSampleCount() == 0 {
			t.Errorf("%s: mharaft_probe_duration_seconds{app=app1,server=%s} = %v, want samples", mc.Nodes[i].ID, masterName, s)
		}
		if fams["go_goroutines"] == nil {
			t.Errorf("%s: no Go runtime metrics", mc.Nodes[i].ID)
		}
	}
	// The leader's discovery records the replicas' lag.
	fams := scrape(t, li)
	for _, s := range a.Servers {
		if s.Role == "replica" && s.ReplicatingFrom == a.Master {
			if m := series(fams, "mharaft_replica_lag_seconds", map[string]string{"app": "app1", "server": s.Name}); len(m) != 1 {
				t.Errorf("leader: no mharaft_replica_lag_seconds for %s", s.Name)
			}
		}
	}
	if s := series(fams, "mharaft_verdicts_total", map[string]string{"app": "app1", "verdict": "Healthy"}); len(s) != 1 || value(s[0]) < 1 {
		t.Errorf("leader: mharaft_verdicts_total{verdict=Healthy} = %v, want >= 1", s)
	}
	// Token: required by default, not with --metrics-open.
	for i := range mc.Nodes {
		code, body := request(t, i, "GET", "/metrics", "", "")
		want := http.StatusUnauthorized
		if i == openNode {
			want = http.StatusOK
		}
		if code != want {
			t.Errorf("%s: GET /metrics without a token: %d, want %d (%.200s)", mc.Nodes[i].ID, code, want, body)
		}
	}
}

// TestSwitchThroughFollower: `mhactl switch` sent to a follower's address
// only is forwarded to the leader, prints the switch's phases as they are
// journaled and succeeds; `mhactl history -o json` through the follower
// shows it, and every manager then watches the new master.
func TestSwitchThroughFollower(t *testing.T) {
	a := currentMaster(t)
	_, fi := leader(t)
	var target string
	for _, s := range a.Servers {
		if s.Role == "replica" && s.ReplicatingFrom == a.Master && s.IOThread == "Yes" {
			target = s.Addr
			break
		}
	}
	if target == "" {
		t.Fatalf("no replica of %s to switch to", a.Master)
	}
	follower := mc.Nodes[fi].HTTPAddr
	start := time.Now()
	r := mhactl(t, follower, "switch", "--app", "app1", "--new-master", target, "--orig-master-is-new-slave", "--yes")
	t.Logf("switch %s -> %s through %s took %s", a.Master, target, mc.Nodes[fi].ID, time.Since(start).Round(time.Millisecond))
	if r.code != 0 {
		t.Fatalf("mhactl switch through follower %s: %s", mc.Nodes[fi].ID, r)
	}
	for _, phase := range []string{failover.SwitchCheck, failover.SwitchPromote} {
		if !strings.Contains(r.stdout, phase) {
			t.Errorf("switch output lacks phase %q:\n%s", phase, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "switch app1: OK (epoch ") {
		t.Errorf("switch output lacks \"switch app1: OK (epoch N)\":\n%s", r.stdout)
	}

	h := historyJSON(t, follower)
	last := h[len(h)-1]
	if last.App != "app1" || last.Kind != "switch" || last.Result != "success" || last.OldMaster != a.Master ||
		last.NewMaster != target || last.Epoch == 0 || last.Finished.Before(last.Started) {
		t.Fatalf("last history entry %+v, want a successful switch %s -> %s", last, a.Master, target)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := waitApp(ctx, func(s *api.AppStatus) bool {
		return s.Master == target && s.Verdict == "Healthy" && replicasOf(s, target) == 2
	}); err != nil {
		t.Fatal(err)
	}
	for i := range mc.Nodes {
		st, err := nodeStatus(ctx, i)
		if err != nil || st.App("app1").Master != target {
			t.Errorf("%s: master after the switch %v (%v), want %s", mc.Nodes[i].ID, st.App("app1").Master, err, target)
		}
	}
}

// historyJSON runs `mhactl history -o json --app app1` against addrs.
func historyJSON(t *testing.T, addrs string) []api.HistoryEntry {
	t.Helper()
	r := mhactl(t, addrs, "history", "--app", "app1", "-o", "json")
	if r.code != 0 {
		t.Fatalf("mhactl history: %s", r)
	}
	var h []api.HistoryEntry
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
		t.Fatalf("history -o json is not JSON: %v\n%s", err, r.stdout)
	}
	if len(h) == 0 {
		t.Fatalf("empty history:\n%s", r.stdout)
	}
	// The JSON field names are part of the interface scripts rely on.
	var raw []map[string]any
	json.Unmarshal([]byte(r.stdout), &raw)
	for _, k := range []string{"app", "kind", "epoch", "new_master", "started", "finished", "result"} {
		if _, ok := raw[len(raw)-1][k]; !ok {
			t.Errorf("history entry lacks %q: %v", k, raw[len(raw)-1])
		}
	}
	return h
}

// TestFailoverThroughFollower: with automatic failover paused (so the
// operator decides), the master is shut down; `mhactl failover` through a
// follower promotes a replica; history through a follower shows it; the
// leader's metrics count the failover and its phases.
func TestFailoverThroughFollower(t *testing.T) {
	a := currentMaster(t)
	li, fi := leader(t)
	follower := mc.Nodes[fi].HTTPAddr
	if r := mhactl(t, follower, "pause", "--app", "app1", "--reason", "e2e: operator-driven failover"); r.code != 0 {
		t.Fatalf("mhactl pause: %s", r)
	}
	defer func() {
		if r := mhactl(t, allAddrs(), "resume", "--app", "app1"); r.code != 0 {
			t.Errorf("mhactl resume: %s", r)
		}
	}()
	dead := dbServer(t, a.Master)
	if err := dead.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// The managers see the master dead (automatic failover is paused).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := waitApp(ctx, func(s *api.AppStatus) bool { return strings.HasPrefix(s.Verdict, "DeadMaster") }); err != nil {
		t.Fatal(err)
	}
	r := mhactl(t, allAddrs(), "check-status", "--app", "app1")
	if r.code != 3 || !strings.Contains(r.stdout, "PARTIALLY_RUNNING") {
		t.Errorf("check-status with the master dead and failover paused: %s\nwant exit 3 PARTIALLY_RUNNING", r)
	}

	start := time.Now()
	r = mhactl(t, follower, "failover", "--app", "app1", "--dead-master", a.Master, "--yes")
	t.Logf("failover of %s through %s took %s", a.Master, mc.Nodes[fi].ID, time.Since(start).Round(time.Millisecond))
	if r.code != 0 {
		t.Fatalf("mhactl failover through follower %s: %s", mc.Nodes[fi].ID, r)
	}
	for _, phase := range []string{failover.PhaseCheck, failover.PhaseRecover} {
		if !strings.Contains(r.stdout, phase) {
			t.Errorf("failover output lacks phase %q:\n%s", phase, r.stdout)
		}
	}
	h := historyJSON(t, follower)
	last := h[len(h)-1]
	if last.App != "app1" || last.Kind != "failover (manual)" || last.Result != "success" || last.DeadMaster != a.Master ||
		last.NewMaster == "" || last.NewMaster == a.Master || last.Epoch == 0 || last.Started.IsZero() || last.Finished.Before(last.Started) {
		t.Fatalf("last history entry %+v, want a successful manual failover of %s", last, a.Master)
	}
	t.Logf("history: %+v", last)
	newMaster := dbServer(t, last.NewMaster)
	if ro, err := newMaster.QueryString(ctx, "SELECT @@read_only"); err != nil || ro != "0" {
		t.Errorf("new master %s read_only=%q (%v), want 0", newMaster.Name(), ro, err)
	}
	if _, err := waitApp(ctx, func(s *api.AppStatus) bool {
		return s.Master == last.NewMaster && s.Verdict == "Healthy" && s.Lock == nil
	}); err != nil {
		t.Fatal(err)
	}

	// The leader ran the switch and the failover: its counters say so.
	if nli, _ := leader(t); nli != li {
		t.Skipf("leadership moved from %s to %s during the test: the counters are on the old leader", mc.Nodes[li].ID, mc.Nodes[nli].ID)
	}
	fams := scrape(t, li)
	if s := series(fams, "mharaft_failovers_total", map[string]string{"app": "app1", "kind": "failover", "result": "success"}); len(s) != 1 || value(s[0]) < 1 {
		t.Errorf("mharaft_failovers_total{kind=failover,result=success} = %v, want >= 1", s)
	}
	if s := series(fams, "mharaft_failover_phase_duration_seconds", map[string]string{"phase": failover.PhaseRecover}); len(s) != 1 || s[0].Histogram.GetSampleCount() == 0 {
		t.Errorf("mharaft_failover_phase_duration_seconds{phase=%q} = %v, want samples", failover.PhaseRecover, s)
	}
	if s := series(fams, "mharaft_verdicts_total", map[string]string{"app": "app1"}); len(s) < 2 {
		t.Errorf("mharaft_verdicts_total = %v, want Healthy and DeadMaster*", s)
	}
	deadName := a.Server(a.Master).Name
	if s := series(fams, "mharaft_probe_failures_total", map[string]string{"app": "app1", "server": deadName}); len(s) == 0 {
		t.Errorf("no mharaft_probe_failures_total for the dead master %s", deadName)
	}
}

// TestAutomaticFailoverAfterKill: the operator restarts the dead old
// master and rejoins it (`mhactl rejoin`), acknowledges the last failover
// (`mhactl ack`), then the master's mariadbd is killed with SIGKILL: the
// managers fail over on their own, and `mhactl history -o json` through a
// follower shows the automatic failover.
func TestAutomaticFailoverAfterKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a := currentMaster(t)
	_, fi := leader(t)
	follower := mc.Nodes[fi].HTTPAddr
	for _, s := range db.Servers {
		if s.Running() {
			continue
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if r := mhactl(t, follower, "rejoin", "--app", "app1", "--host", s.Addr()); r.code != 0 {
			t.Fatalf("mhactl rejoin %s: %s", s.Name(), r)
		}
	}
	if _, err := waitApp(ctx, func(s *api.AppStatus) bool {
		return s.Master == a.Master && s.Verdict == "Healthy" && replicasOf(s, a.Master) == 2
	}); err != nil {
		t.Fatal(err)
	}
	if r := mhactl(t, follower, "ack", "--app", "app1"); r.code != 0 {
		t.Fatalf("mhactl ack: %s", r)
	}
	before := len(historyOrNone(t, follower))

	master := dbServer(t, a.Master)
	killed := time.Now()
	if err := master.Kill9(); err != nil {
		t.Fatal(err)
	}
	var last api.HistoryEntry
	for {
		if h := historyOrNone(t, follower); len(h) > before {
			last = h[len(h)-1]
			break
		}
		if !pause(ctx, 200*time.Millisecond) {
			t.Fatalf("no automatic failover within %s of kill -9 of %s", time.Since(killed).Round(time.Second), a.Master)
		}
	}
	t.Logf("kill -9 of %s: history entry after %s, failover itself took %s", a.Master,
		time.Since(killed).Round(time.Millisecond), last.Finished.Sub(last.Started).Round(time.Millisecond))
	if last.App != "app1" || last.Kind != "failover (auto)" || last.Result != "success" || last.DeadMaster != a.Master ||
		last.NewMaster == "" || last.NewMaster == a.Master || last.Epoch == 0 || last.Started.Before(killed) || last.Finished.Before(last.Started) {
		t.Fatalf("last history entry %+v, want a successful automatic failover of %s", last, a.Master)
	}
	if _, err := waitApp(ctx, func(s *api.AppStatus) bool {
		return s.Master == last.NewMaster && s.Verdict == "Healthy" && s.Lock == nil
	}); err != nil {
		t.Fatal(err)
	}
	li, _ := leader(t)
	fams := scrape(t, li)
	if s := series(fams, "mharaft_failovers_total", map[string]string{"app": "app1", "kind": "failover", "result": "success"}); len(s) != 1 || value(s[0]) < 1 {
		t.Errorf("leader: mharaft_failovers_total{kind=failover,result=success} = %v, want >= 1", s)
	}
}

// historyOrNone is history -o json through addrs; nil when there is none.
func historyOrNone(t *testing.T, addrs string) []api.HistoryEntry {
	t.Helper()
	r := mhactl(t, addrs, "history", "--app", "app1", "-o", "json")
	if r.code != 0 {
		t.Fatalf("mhactl history: %s", r)
	}
	var h []api.HistoryEntry
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
		t.Fatalf("history -o json is not JSON: %v\n%s", err, r.stdout)
	}
	return h
}

// TestLogsRedactSecrets: no manager log line, after a switch and a
// failover (CHANGE MASTER statements, DSNs, hooks), shows a password or
// the API token, and the structured fields are there.
func TestLogsRedactSecrets(t *testing.T) {
	// The hooks were called with the password as an argument, and the
	// managers log the hook command lines.
	switch b, err := os.ReadFile(hookLog); {
	case err != nil:
		t.Logf("no IP hook was called yet (%v): the check covers the other log lines only", err)
	case !strings.Contains(string(b), "password="+testbed.MHAPassword):
		t.Errorf("the IP hooks were called without the password (MHA passes --new_master_password):\n%s", b)
	}
	hookLines := 0
	for i, n := range mc.Nodes {
		log := mc.Log(i)
		for _, secret := range []string{testbed.MHAPassword, testbed.ReplPassword, testbed.AppPassword, mc.Token} {
			if strings.Contains(log, secret) {
				for _, l := range strings.Split(log, "\n") {
					if strings.Contains(l, secret) {
						t.Errorf("log of %s shows a secret: %.300s", n.ID, l)
						break
					}
				}
			}
		}
		hookLines += strings.Count(log, "password=xxx")
		for _, field := range []string{"app=app1", "server=", "epoch="} {
			if !strings.Contains(log, field) {
				t.Errorf("log of %s has no %s field", n.ID, field)
			}
		}
	}
	t.Logf("%d logged hook command lines with a redacted password", hookLines)
}
