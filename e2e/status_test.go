package e2e

// Issue 15: a status that never lies (item 1) and small truths (item 6).
// Every test writes the exact output the operator sees into the test log.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
)

// restoreAll brings the database cluster back to a monitored, healthy state
// after earlier tests: every stopped server started and rejoined, the last
// failover acknowledged (so that an automatic failover is allowed), app1
// healthy with two replicas. It returns the app as the leader sees it.
func restoreAll(t *testing.T) *api.AppStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, s := range db.Servers {
		if s.Running() {
			continue
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if r := mhactl(t, allAddrs(), "rejoin", "--app", "app1", "--host", s.Addr()); r.code != 0 {
			t.Fatalf("mhactl rejoin %s: %s", s.Name(), r)
		}
	}
	a, err := waitApp(ctx, func(s *api.AppStatus) bool {
		return s.Verdict == "Healthy" && s.Lock == nil && replicasOf(s, s.Master) == 2
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := mhactl(t, allAddrs(), "ack", "--app", "app1"); r.code != 0 {
		t.Fatalf("mhactl ack: %s", r)
	}
	return a
}

// apiClient reaches every node with the token (faster than mhactl for
// polling).
func apiClient() *api.Client {
	var addrs []string
	for i := range mc.Nodes {
		addrs = append(addrs, url(i))
	}
	return &api.Client{Addrs: addrs, Token: mc.Token, HTTP: httpc, ProbeTimeout: time.Second}
}

// serverRow is one row of the servers table of `mhactl status`.
type serverRow struct{ name, addr, role, health, age string }

// serverRows parses the servers table (SERVER ADDR ROLE HEALTH AGE ...)
// of a `mhactl status` output.
func serverRows(t *testing.T, out string) map[string]serverRow {
	t.Helper()
	rows := map[string]serverRow{}
	in := false
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 4 && f[0] == "SERVER" && f[3] == "HEALTH" && f[4] == "AGE":
			in = true
		case in && len(f) >= 5:
			rows[f[0]] = serverRow{name: f[0], addr: f[1], role: f[2], health: f[3], age: f[4]}
		case in:
			in = false
		}
	}
	if len(rows) == 0 {
		t.Fatalf("no servers table (SERVER ADDR ROLE HEALTH AGE ...) in:\n%s", out)
	}
	return rows
}

// managerRows parses the managers table of `mhactl status`: ID -> fields.
func managerRows(out string) map[string][]string {
	rows := map[string][]string{}
	in := false
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && f[0] == "MANAGER":
			in = true
		case in && len(f) >= 8:
			rows[f[0]] = f
		case in:
			in = false
		}
	}
	return rows
}

// statusJSON runs `mhactl status -o json` against addrs.
func statusJSON(t *testing.T, addrs string) (*api.AppStatus, result) {
	t.Helper()
	r := mhactl(t, addrs, "status", "-o", "json")
	if r.code != 0 {
		t.Fatalf("mhactl status -o json: %s", r)
	}
	var st api.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status -o json is not JSON: %v\n%s", err, r.stdout)
	}
	a := st.App("app1")
	if a == nil {
		t.Fatalf("no app1 in %s", r.stdout)
	}
	return a, r
}

// TestStatusRightAfterFailover (issue 15 item 1): the master's mariadbd
// is killed; as soon as the automatic failover is in the history,
// `mhactl status` shows the new master as master and the dead one as dead
// (stale or unreachable), never "master ok", and the JSON agrees; once the
// leader has rediscovered, no row is stale and the dead master is dead and
// unreachable. The leader's own LAST CONTACT is empty ("-"), a follower's
// is its time since it heard from the leader.
func TestStatusRightAfterFailover(t *testing.T) {
	a := restoreAll(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := apiClient()
	hist, err := c.History(ctx, "app1")
	if err != nil {
		t.Fatal(err)
	}
	before := len(hist)
	r := mhactl(t, allAddrs(), "status")
	t.Logf("mhactl status before the kill:\n%s", r.stdout)

	dead := dbServer(t, a.Master)
	killed := time.Now()
	if err := dead.Kill9(); err != nil {
		t.Fatal(err)
	}
	var last api.HistoryEntry
	for {
		if h, err := c.History(ctx, "app1"); err == nil && len(h) > before {
			last = h[len(h)-1]
			break
		}
		if !pause(ctx, 20*time.Millisecond) {
			t.Fatalf("no failover in the history within %s of kill -9 of %s", time.Since(killed).Round(time.Second), a.Master)
		}
	}
	seen := time.Now()
	r = mhactl(t, allAddrs(), "status")
	t.Logf("mhactl status, run as soon as the failover (epoch %d, %s -> %s) was in the history, %s after it finished (the command took %s):\n%s",
		last.Epoch, last.DeadMaster, last.NewMaster, seen.Sub(last.Finished).Round(time.Millisecond),
		time.Since(seen).Round(time.Millisecond), r.stdout)
	if r.code != 0 {
		t.Fatalf("mhactl status: %s", r)
	}
	if last.Kind != "failover (auto)" || last.Result != "success" || last.DeadMaster != a.Master || last.NewMaster == "" {
		t.Fatalf("last history entry %+v, want a successful automatic failover of %s", last, a.Master)
	}
	deadName, newName := a.Server(a.Master).Name, a.Server(last.NewMaster).Name
	checkAfterFailover := func(out string, settled bool) {
		t.Helper()
		rows := serverRows(t, out)
		if d := rows[deadName]; d.role != "dead" || (d.health != "stale" && d.health != "unreachable") || (settled && d.health != "unreachable") {
			t.Errorf("dead master %s: role %q health %q, want dead and stale or unreachable (settled: unreachable):\n%s", deadName, d.role, d.health, out)
		}
		if n := rows[newName]; n.role != "master" || (settled && n.health != "ok") {
			t.Errorf("new master %s: role %q health %q, want master (settled: ok):\n%s", newName, n.role, n.health, out)
		}
		for name, row := range rows {
			if name != newName && row.role == "master" {
				t.Errorf("%s shown as master, the master is %s:\n%s", name, newName, out)
			}
			if row.age == "-" || (settled && row.health == "stale") {
				t.Errorf("%s: age %q health %q, want an age (settled: not stale):\n%s", name, row.age, row.health, out)
			}
			if name != newName && name != deadName && row.role != "replica" {
				t.Errorf("%s: role %q, want replica (of %s):\n%s", name, row.role, newName, out)
			}
		}
		tree := fmt.Sprintf("%s(%s) (current master)", newName, last.NewMaster)
		if !strings.Contains(out, "\n"+tree) {
			t.Errorf("the tree does not start at %q:\n%s", tree, out)
		}
	}
	checkAfterFailover(r.stdout, false)

	app, rj := statusJSON(t, allAddrs())
	t.Logf("mhactl status -o json %s after the failover appeared in the history (app1):\n%s", time.Since(seen).Round(time.Millisecond), appJSON(app))
	if app.Master != last.NewMaster {
		t.Errorf("JSON master %q, want %s", app.Master, last.NewMaster)
	}
	for _, s := range app.Servers {
		if s.ObservedAt == nil || s.AgeSeconds == nil {
			t.Errorf("%s: no observed_at/age_seconds: %+v", s.Name, s)
		}
		if s.Stale != (s.Health == api.HealthStale) {
			t.Errorf("%s: stale %v with health %q", s.Name, s.Stale, s.Health)
		}
		switch s.Addr {
		case last.NewMaster:
			if s.Role != api.RoleMaster || !s.Reachable {
				t.Errorf("new master in JSON: role %q reachable %v, want master and reachable", s.Role, s.Reachable)
			}
		case a.Master:
			if s.Role != api.RoleDead || s.Health == api.HealthOK {
				t.Errorf("dead master in JSON: role %q health %q, want dead, not ok", s.Role, s.Health)
			}
		}
	}
	if strings.Contains(rj.stdout, `"verdict": "DeadMaster`) {
		t.Errorf("the JSON shows a DeadMaster verdict for the new master %s:\n%s", last.NewMaster, rj.stdout)
	}

	// The leader rediscovers as soon as the pipeline ends: no stale row.
	if _, err := waitApp(ctx, func(s *api.AppStatus) bool {
		for _, ss := range s.Servers {
			if ss.Stale {
				return false
			}
		}
		return s.Master == last.NewMaster
	}); err != nil {
		t.Fatal(err)
	}
	settled := time.Now()
	li, fi := leader(t)
	r = mhactl(t, mc.Nodes[li].HTTPAddr, "status")
	t.Logf("mhactl status of the leader %s, %s after the failover finished (rediscovered %s after):\n%s", mc.Nodes[li].ID,
		time.Since(last.Finished).Round(time.Millisecond), settled.Sub(last.Finished).Round(time.Millisecond), r.stdout)
	checkAfterFailover(r.stdout, true)
	if row := managerRows(r.stdout)[mc.Nodes[li].ID]; len(row) < 8 || row[1] != "leader" || row[len(row)-1] != "-" {
		t.Errorf("leader's own row %v: want role leader and LAST CONTACT \"-\":\n%s", row, r.stdout)
	}
	r = mhactl(t, mc.Nodes[fi].HTTPAddr, "status")
	t.Logf("mhactl status of the follower %s:\n%s", mc.Nodes[fi].ID, r.stdout)
	row := managerRows(r.stdout)[mc.Nodes[fi].ID]
	if len(row) < 8 || row[1] != "follower" {
		t.Fatalf("follower's own row %v:\n%s", row, r.stdout)
	}
	if d, err := time.ParseDuration(row[len(row)-1]); err != nil || d > 5*time.Second {
		t.Errorf("follower's LAST CONTACT %q (%v): want the time since it heard from the leader, under 5s", row[len(row)-1], err)
	}
}

// appJSON prints an app's status as the JSON of `mhactl status -o json`.
func appJSON(a *api.AppStatus) string {
	b, _ := json.MarshalIndent(a, "", "  ")
	return string(b)
}

// TestStatusStaleWithoutLeader (issue 15 item 1): with two managers
// stopped (SIGSTOP) there is no leader and nothing rediscovers; the third
// manager's status marks every server row stale once it is older than the
// stale limit (3 discovery intervals plus one discovery's bound, 20 s), in
// the table and in the JSON. Its own LAST CONTACT grows (it is the time
// since it heard from a leader).
func TestStatusStaleWithoutLeader(t *testing.T) {
	restoreAll(t)
	li, _ := leader(t)
	keep := (li + 1) % len(mc.Nodes)
	var paused []int
	defer func() {
		for _, i := range paused {
			if err := mc.Resume(i); err != nil {
				t.Errorf("resume %s: %v", mc.Nodes[i].ID, err)
			}
		}
		leader(t)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := waitApp(ctx, func(s *api.AppStatus) bool {
			for _, ss := range s.Servers {
				if ss.Stale {
					return false
				}
			}
			return s.Verdict == "Healthy"
		}); err != nil {
			t.Error(err)
		}
	}()
	for i := range mc.Nodes {
		if i == keep {
			continue
		}
		if err := mc.Pause(i); err != nil {
			t.Fatal(err)
		}
		paused = append(paused, i)
	}
	stopped := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var app *api.AppStatus
	for {
		st, err := nodeStatus(ctx, keep)
		if err == nil && st.App("app1") != nil {
			app = st.App("app1")
			stale := 0
			for _, s := range app.Servers {
				if s.Stale {
					stale++
				}
			}
			if stale == len(app.Servers) {
				break
			}
		}
		if !pause(ctx, 500*time.Millisecond) {
			t.Fatalf("the rows of %s never became stale without a leader: %v %s", mc.Nodes[keep].ID, err, appJSON(app))
		}
	}
	r := mhactl(t, mc.Nodes[keep].HTTPAddr, "status")
	t.Logf("mhactl status of %s %s after the two other managers were stopped:\n%s", mc.Nodes[keep].ID,
		time.Since(stopped).Round(time.Second), r.stdout)
	if r.code != 0 {
		t.Fatalf("mhactl status: %s", r)
	}
	for name, row := range serverRows(t, r.stdout) {
		if row.health != "stale" {
			t.Errorf("%s: health %q, want stale:\n%s", name, row.health, r.stdout)
		}
		if d, err := time.ParseDuration(row.age); err != nil || d < 20*time.Second {
			t.Errorf("%s: age %q, want at least 20s", name, row.age)
		}
		if !strings.Contains(r.stdout, "\n"+name+": stale: last discovered ") {
			t.Errorf("no line %q saying why %s is stale:\n%s", name+": stale: last discovered ...", name, r.stdout)
		}
	}
	a, _ := statusJSON(t, mc.Nodes[keep].HTTPAddr)
	t.Logf("mhactl status -o json of %s (app1):\n%s", mc.Nodes[keep].ID, appJSON(a))
	for _, s := range a.Servers {
		if !s.Stale || s.Health != api.HealthStale || s.AgeSeconds == nil || *s.AgeSeconds < 20 {
			t.Errorf("%s in JSON: stale %v health %q age %v, want stale, at least 20 s old", s.Name, s.Stale, s.Health, s.AgeSeconds)
		}
	}
	row := managerRows(r.stdout)[mc.Nodes[keep].ID]
	if d, err := time.ParseDuration(row[len(row)-1]); err != nil || d < 20*time.Second {
		t.Errorf("%s's own LAST CONTACT %v: want the time since it last heard from a leader (20s or more)", mc.Nodes[keep].ID, row)
	}
}

// TestHistoryUnknownApp (issue 15 item 6): `mhactl history --app nope` is
// a usage error (exit 2, HTTP 404) naming the known applications.
func TestHistoryUnknownApp(t *testing.T) {
	r := mhactl(t, allAddrs(), "history", "--app", "nope")
	t.Logf("mhactl history --app nope:\n%s", r)
	if r.code != 2 || !strings.Contains(r.stderr, `unknown application "nope" (known: app1)`) || !strings.Contains(r.stderr, "HTTP 404") {
		t.Fatalf("mhactl history --app nope: %s\nwant exit 2 and HTTP 404 naming the known applications", r)
	}
}

// TestSwitchElects (issue 15 item 6): `mhactl switch` without
// --new-master elects the new master by MHA's rules, as its help says.
func TestSwitchElects(t *testing.T) {
	a := restoreAll(t)
	r := mhactl(t, allAddrs(), "switch", "--help")
	if !strings.Contains(r.stdout, "[--new-master HOST:PORT]") || !strings.Contains(r.stdout, "default: elected by MHA's rules") {
		t.Errorf("switch --help does not say that --new-master is optional:\n%s", r.stdout)
	}
	r = mhactl(t, allAddrs(), "switch", "--app", "app1", "--orig-master-is-new-slave", "--yes")
	t.Logf("mhactl switch --app app1 --orig-master-is-new-slave --yes:\n%s", r)
	if r.code != 0 || !strings.Contains(r.stdout, "switch app1: OK (epoch ") {
		t.Fatalf("mhactl switch without --new-master: %s", r)
	}
	h := historyJSON(t, allAddrs())
	last := h[len(h)-1]
	if last.Kind != "switch" || last.Result != "success" || last.OldMaster != a.Master || last.NewMaster == "" || last.NewMaster == a.Master {
		t.Fatalf("last history entry %+v, want a successful switch away from %s", last, a.Master)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := waitApp(ctx, func(s *api.AppStatus) bool {
		return s.Master == last.NewMaster && s.Verdict == "Healthy" && replicasOf(s, last.NewMaster) == 2
	}); err != nil {
		t.Fatal(err)
	}
}

// TestRefusedManualFailover (issue 15 item 6): a refused manual failover
// never asks for `mhactl ack`, which it does not need. Of a master that is
// alive, it is refused before anything changed: the history entry says
// why and no lock is left. Right after an automatic failover (not
// acknowledged), it is refused by last_failover_minute: the answer points
// to --ignore-last-failover (MHA's way) and adds no history entry.
func TestRefusedManualFailover(t *testing.T) {
	a := restoreAll(t)
	r := mhactl(t, allAddrs(), "failover", "--app", "app1", "--dead-master", a.Master, "--yes")
	t.Logf("mhactl failover --app app1 --dead-master %s --yes (the master is alive):\n%s", a.Master, r)
	if r.code != 1 || !strings.Contains(r.stdout, "is alive") || strings.Contains(r.stdout+r.stderr, "mhactl ack") {
		t.Fatalf("failover of a live master: %s\nwant exit 1 saying it is alive, not asking for mhactl ack", r)
	}
	rh := mhactl(t, allAddrs(), "history", "--app", "app1")
	t.Logf("mhactl history --app app1:\n%s", rh.stdout)
	h := historyJSON(t, allAddrs())
	last := h[len(h)-1]
	if last.Kind != "failover (manual)" || last.Result != "failed" || !strings.Contains(last.Summary, "is alive") || strings.Contains(last.Summary, "mhactl ack") {
		t.Fatalf("last history entry %+v: want a failed manual failover saying the master is alive, not asking for mhactl ack", last)
	}
	st := currentMaster(t)
	if st.Master != a.Master || st.Lock != nil {
		t.Fatalf("after the refused failover: master %s lock %+v, want %s and no lock", st.Master, st.Lock, a.Master)
	}

	// An automatic failover, not acknowledged; then the operator's.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	before := len(h)
	if err := dbServer(t, a.Master).Kill9(); err != nil {
		t.Fatal(err)
	}
	for len(h) == before || h[len(h)-1].Kind != "failover (auto)" {
		if !pause(ctx, 100*time.Millisecond) {
			t.Fatalf("no automatic failover of %s", a.Master)
		}
		h = historyOrNone(t, allAddrs())
	}
	if _, err := waitApp(ctx, func(s *api.AppStatus) bool { return s.Lock == nil }); err != nil {
		t.Fatal(err)
	}
	before = len(h)
	r = mhactl(t, allAddrs(), "failover", "--app", "app1", "--yes")
	t.Logf("mhactl failover --app app1 --yes, right after the automatic failover (epoch %d):\n%s", h[len(h)-1].Epoch, r)
	if r.code != 1 || !strings.Contains(r.stderr, "--ignore-last-failover") || !strings.Contains(r.stderr, "HTTP 412") || strings.Contains(r.stderr, "mhactl ack") {
		t.Fatalf("manual failover within last_failover_minute: %s\nwant exit 1, HTTP 412 pointing to --ignore-last-failover, not to mhactl ack", r)
	}
	if h = historyOrNone(t, allAddrs()); len(h) != before {
		t.Fatalf("the refused failover added a history entry: %+v", h[len(h)-1])
	}
}

// TestReportNamedByEpoch (issue 15 item 6): the leader writes each
// pipeline's report under its epoch, so two runs in one second do not
// overwrite each other, and no copy named by the second is left.
func TestReportNamedByEpoch(t *testing.T) {
	h := historyJSON(t, allAddrs())
	work := filepath.Join(filepath.Dir(mc.Nodes[0].Confs[0]), "work")
	files, _ := filepath.Glob(filepath.Join(work, "*_report_app1_*.json"))
	t.Logf("reports in %s: %s", work, strings.Join(files, "\n"))
	for _, e := range h {
		if e.Result != "success" || e.Kind == "rejoin" {
			continue
		}
		kind := "failover"
		if e.Kind == "switch" {
			kind = "switch"
		}
		want := filepath.Join(work, fmt.Sprintf("%s_report_app1_epoch%010d.json", kind, e.Epoch))
		b, err := os.ReadFile(want)
		if err != nil {
			t.Errorf("history epoch %d (%s): no report %s: %v", e.Epoch, e.Kind, want, err)
			continue
		}
		var rep struct {
			Epoch uint64 `json:"epoch"`
			OK    bool   `json:"ok"`
		}
		if err := json.Unmarshal(b, &rep); err != nil || rep.Epoch != e.Epoch || !rep.OK {
			t.Errorf("%s: epoch %d ok %v (%v), want epoch %d ok", want, rep.Epoch, rep.OK, err, e.Epoch)
		}
	}
	for _, f := range files {
		if !strings.Contains(filepath.Base(f), "_epoch") {
			t.Errorf("report named by time left beside the epoch ones: %s", f)
		}
	}
}
