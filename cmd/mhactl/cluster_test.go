package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/api/apitest"
	"github.com/mharaft/mharaft/testbed"
)

// clusterBin is the mhactl binary TestMain builds once for every test of
// this package; it also exports it as MHACTL_BIN for mhactlBinary.
var clusterBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	if testbed.ListingOnly() {
		return m.Run() // go test -list: nothing to build
	}
	if bin := os.Getenv("MHACTL_BIN"); bin != "" {
		clusterBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "mhactl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 3
	}
	defer os.RemoveAll(dir)
	clusterBin = filepath.Join(dir, "mhactl")
	if err := testbed.BuildBinaries(context.Background(), dir, "./cmd/mhactl"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	os.Setenv("MHACTL_BIN", clusterBin)
	return m.Run()
}

const clusterTestToken = "tok-3b1f"

// fakeCluster serves fake through the real API handler.
type fakeCluster struct {
	fake      *apitest.FakeBackend
	url       string
	tokenFile string
}

func startFakeCluster(t *testing.T, fake *apitest.FakeBackend) *fakeCluster {
	t.Helper()
	ts := httptest.NewServer(api.NewHandler(fake, api.ServerConfig{Token: clusterTestToken}, nil))
	t.Cleanup(ts.Close)
	tf := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tf, []byte(clusterTestToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &fakeCluster{fake: fake, url: ts.URL, tokenFile: tf}
}

type cliResult struct {
	stdout, stderr string
	code           int
}

// mhactl runs the binary against fc with the address and token flags
// (unless noAuth), and a clean environment for the MHACTL_ variables.
func (fc *fakeCluster) mhactl(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runClusterCLI(t, append([]string{"--addr", fc.url, "--token-file", fc.tokenFile}, args...)...)
}

func runClusterCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(clusterBin, args...)
	cmd.Env = append(os.Environ(), "MHACTL_ADDR=", "MHACTL_TOKEN_FILE=", "MHACTL_CACERT=")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run mhactl %v: %v", args, err)
	}
	return r
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

func TestClusterStatusJSON(t *testing.T) {
	fc := startFakeCluster(t, apitest.NewFakeBackend())
	// The address and the token file may come from the environment.
	cmd := exec.Command(clusterBin, "status", "-o", "json")
	cmd.Env = append(os.Environ(), "MHACTL_ADDR="+fc.url, "MHACTL_TOKEN_FILE="+fc.tokenFile)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mhactl status -o json: %v", err)
	}
	var st api.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status -o json is not a Status: %v\n%s", err, out)
	}
	if st.Leader != "node1" || st.Term != 7 || len(st.Managers) != 3 || len(st.Apps) != 1 {
		t.Fatalf("status: %+v", st)
	}
	app := st.Apps[0]
	if app.Name != "app1" || app.Master != "server1" || len(app.Servers) != 3 || *app.Servers[2].LagSeconds != 3 {
		t.Fatalf("app1: %+v", app)
	}
}

func TestClusterStatusTable(t *testing.T) {
	started := time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		change func(st *api.Status)
		want   []string // lines (trailing spaces trimmed) that must appear, in this order
	}{
		{
			name: "healthy",
			want: []string{
				"Cluster: answered by node1, leader node1, term 7",
				"Application app1: master server1, verdict Healthy, automatic failover on, last failover ",
				"server1(127.0.0.1:3306) (current master)",
				" +--server2(127.0.0.1:3307) replica, io Yes, sql Yes, lag 0s",
				" +--server3(127.0.0.1:3308) replica, io Yes, sql Yes, lag 3s",
			},
		},
		{
			name: "chained replica, dead server, lock and unfinished journal",
			change: func(st *api.Status) {
				a := &st.Apps[0]
				a.Servers[2].ReplicatingFrom = "127.0.0.1:3307"
				a.Servers[2].IOThread = "No"
				a.Servers[0].Reachable = false
				a.Servers[0].Role = "dead"
				a.Paused = true
				a.Lock = &api.Lock{Epoch: 3, Holder: "node1", Kind: "failover", Started: started}
				a.Unfinished = true
				a.Journal = []api.JournalEntry{
					{Epoch: 3, Phase: "save_binlog", Status: "done", Detail: "1234 bytes from server1", At: started},
					{Epoch: 3, Phase: "apply_diff", Status: "started", Detail: "server3", At: started.Add(time.Second)},
				}
			},
			want: []string{
				"Application app1: master server1, verdict Healthy, automatic failover PAUSED",
				"server1(127.0.0.1:3306) (current master), UNREACHABLE",
				" +--server2(127.0.0.1:3307) replica, io Yes, sql Yes, lag 0s",
				"     +--server3(127.0.0.1:3308) replica, io No, sql Yes, lag 3s, DEGRADED",
				"Failover lock: failover epoch 3 held by node1 since ",
				"Unfinished journal (epoch 3):",
				"save_binlog              done     1234 bytes from server1",
				"apply_diff               started  server3",
			},
		},
		{
			name: "a replica refuses the manager's login",
			change: func(st *api.Status) {
				r := &st.Apps[0].Servers[1]
				r.Reachable, r.Health = false, api.HealthAuthError
				r.HealthDetail = strings.ReplaceAll(authDenied, "server1(127.0.0.1:3306)", "server2(127.0.0.1:3307)")
			},
			want: []string{
				"server1(127.0.0.1:3306) (current master)",
				" +--server2(127.0.0.1:3307) replica, io Yes, sql Yes, lag 0s, AUTH-ERROR",
				"server2  127.0.0.1:3307  replica  auth-error",
				"server2: auth-error (cannot log in): connect to server2(127.0.0.1:3307) as mha: Error 1045 (28000): Access denied for user 'mha'@'localhost' (using password: YES)",
			},
		},
		{
			name: "no leader, orphan replica",
			change: func(st *api.Status) {
				st.Leader = ""
				st.Apps[0].Servers[1].ReplicatingFrom = "10.9.9.9:3306"
			},
			want: []string{
				"leader NONE (no raft leader: actions are refused)",
				"server1(127.0.0.1:3306) (current master)",
				" +--server3(127.0.0.1:3308) replica, io Yes, sql Yes, lag 3s",
				"server2(127.0.0.1:3307) replica of 10.9.9.9:3306 (not in this application), io Yes, sql Yes, lag 0s",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := apitest.NewFakeBackend()
			if tc.change != nil {
				tc.change(&fake.State)
			}
			fc := startFakeCluster(t, fake)
			r := fc.mhactl(t, "status", "-o", "table")
			if r.code != 0 {
				t.Fatal(r)
			}
			assertLinesInOrder(t, r.stdout, tc.want)
			for _, col := range []string{"MANAGER", "ROLE", "LAST CONTACT", "node2", "follower", "12ms", "dc2"} {
				if !strings.Contains(r.stdout, col) {
					t.Errorf("managers table lacks %q", col)
				}
			}
			for _, col := range []string{"SERVER", "BINLOG", "GTID", "mysql-bin.000001:1000", "0-1-9"} {
				if !strings.Contains(r.stdout, col) {
					t.Errorf("servers table lacks %q", col)
				}
			}
		})
	}
}

// wantCall checks that the backend ran exactly the action want, or none
// when want is nil.
func wantCall(t *testing.T, calls []api.Action, want *api.Action) {
	t.Helper()
	if want == nil {
		if len(calls) != 0 {
			t.Fatalf("backend ran %+v", calls)
		}
		return
	}
	if len(calls) != 1 {
		t.Fatalf("backend ran %d actions, want 1", len(calls))
	}
	got, _ := json.Marshal(calls[0])
	w, _ := json.Marshal(want)
	if string(got) != string(w) {
		t.Fatalf("backend ran %s, want %s", got, w)
	}
}

// assertLinesInOrder checks that each wanted text starts (after trimming
// trailing blanks) a line of out or is contained in one, in order.
func assertLinesInOrder(t *testing.T, out string, want []string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	i := 0
	for _, w := range want {
		found := false
		for ; i < len(lines); i++ {
			if strings.Contains(strings.TrimRight(lines[i], " "), w) {
				found = true
				i++
				break
			}
		}
		if !found {
			t.Fatalf("output lacks %q (in order):\n%s", w, out)
		}
	}
}

func TestClusterHistoryJSON(t *testing.T) {
	fc := startFakeCluster(t, apitest.NewFakeBackend())
	r := fc.mhactl(t, "history", "-o", "json", "--app", "app1")
	if r.code != 0 {
		t.Fatal(r)
	}
	var entries []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("history -o json is not an array of objects: %v\n%s", err, r.stdout)
	}
	if len(entries) != 2 {
		t.Fatalf("%d entries, want 2", len(entries))
	}
	for i, e := range entries {
		for _, k := range []string{"app", "kind", "epoch", "new_master", "started", "finished", "result"} {
			if _, ok := e[k]; !ok {
				t.Errorf("entry %d lacks %q: %v", i, k, e)
			}
		}
		if e["dead_master"] == nil && e["old_master"] == nil {
			t.Errorf("entry %d has neither dead_master nor old_master: %v", i, e)
		}
	}
	if entries[0]["dead_master"] != "server2" || entries[1]["old_master"] != "server3" || entries[1]["kind"] != "switch" || entries[1]["epoch"] != 2.0 {
		t.Errorf("entries: %v", entries)
	}

	r = fc.mhactl(t, "history")
	if r.code != 0 {
		t.Fatal(r)
	}
	assertLinesInOrder(t, r.stdout, []string{"APP", "app1  1      failover (manual)  server2", "app1  2      switch             server3"})

	// A history of an unknown application is a usage error.
	if r := fc.mhactl(t, "history", "--app", "nope"); r.code != exitUsage || !strings.Contains(r.stderr, `unknown application "nope"`) {
		t.Fatal(r)
	}
}

func TestClusterActions(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		setup func(f *apitest.FakeBackend)
		code  int
		out   string // in stdout
		err   string // in stderr
		want  *api.Action
	}{
		{name: "ack", args: []string{"ack", "--app", "app1", "--reason", "checked by ops"}, code: 0, out: "ack app1: OK: ack app1 done",
			want: &api.Action{Kind: api.ActionAck, App: "app1", Reason: "checked by ops"}},
		{name: "pause", args: []string{"pause", "--app", "app1"}, code: 0, out: "pause app1: OK",
			want: &api.Action{Kind: api.ActionPause, App: "app1"}},
		{name: "resume", args: []string{"resume", "--app", "app1"}, code: 0, out: "resume app1: OK",
			want: &api.Action{Kind: api.ActionResume, App: "app1"}},
		{name: "ack refused by the leader", args: []string{"ack", "--app", "app1"}, code: exitProblem, err: "nothing to acknowledge",
			setup: func(f *apitest.FakeBackend) {
				f.Result = &api.ActionResult{OK: false, Message: "nothing to acknowledge"}
			},
			want: &api.Action{Kind: api.ActionAck, App: "app1"}},
		{name: "ack of an unknown app", args: []string{"ack", "--app", "app7"}, code: exitUsage, err: `unknown application "app7"`},
		{name: "ack without --app", args: []string{"ack"}, code: exitUsage, err: `required flag(s) "app" not set`},
		{name: "lock held", args: []string{"pause", "--app", "app1"}, code: exitProblem, err: "lock held",
			setup: func(f *apitest.FakeBackend) { f.Err = api.Errorf(409, "", "failover lock held by node2") },
			want:  &api.Action{Kind: api.ActionPause, App: "app1"}},
		{name: "members add", args: []string{"members", "add", "node4", "127.0.0.1:7004"}, code: 0, out: "member-add: OK",
			want: &api.Action{Kind: api.ActionMemberAdd, MemberID: "node4", MemberAddr: "127.0.0.1:7004"}},
		{name: "members remove unknown", args: []string{"members", "remove", "node9"}, code: exitUsage, err: `no manager "node9"`},
		{name: "members remove", args: []string{"members", "remove", "node3"}, code: 0,
			want: &api.Action{Kind: api.ActionMemberRemove, MemberID: "node3"}},
		{name: "members remove --force", args: []string{"members", "remove", "node3", "--force", "--reason", "host retired"}, code: 0,
			want: &api.Action{Kind: api.ActionMemberRemove, MemberID: "node3", Force: true, Reason: "host retired"}},
		{name: "members add --force", args: []string{"members", "add", "node4", "127.0.0.1:7004", "--force"}, code: 0,
			want: &api.Action{Kind: api.ActionMemberAdd, MemberID: "node4", MemberAddr: "127.0.0.1:7004", Force: true}},
		{name: "members remove refused below 3 voters", args: []string{"members", "remove", "node3"}, code: exitProblem, err: "pass --force",
			setup: func(f *apitest.FakeBackend) {
				f.Err = api.Errorf(412, "", "remove member node3 refused: it would leave 2 voters (node1, node2) ...; add a voter first, or pass --force")
			},
			want: &api.Action{Kind: api.ActionMemberRemove, MemberID: "node3"}},
		{name: "server add", args: []string{"server", "add", "--app", "app1", "--name", "server4", "--hostname", "127.0.0.1", "--port", "3309", "--candidate-master"}, code: 0,
			want: &api.Action{Kind: api.ActionServerAdd, App: "app1", Server: &api.ServerSpec{Name: "server4", Hostname: "127.0.0.1", Port: 3309, CandidateMaster: true}}},
		{name: "server remove the master", args: []string{"server", "remove", "--app", "app1", "--host", "127.0.0.1:3306"}, code: exitUsage, err: "is the master of app1"},
		{name: "server remove", args: []string{"server", "remove", "--app", "app1", "--host", "server3"}, code: 0,
			want: &api.Action{Kind: api.ActionServerRemove, App: "app1", Host: "server3"}},
		{name: "switch by server name", args: []string{"switch", "--app", "app1", "--new-master", "server2", "--yes"}, code: 0,
			want: &api.Action{Kind: api.ActionSwitch, App: "app1", NewMaster: "server2"}},
		{name: "switch with MHA's host and port flags", args: []string{"switch", "--app", "app1", "--new_master_host", "127.0.0.1", "--new_master_port", "3307", "--yes"}, code: 0,
			want: &api.Action{Kind: api.ActionSwitch, App: "app1", NewMaster: "127.0.0.1:3307"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := apitest.NewFakeBackend()
			if tc.setup != nil {
				tc.setup(fake)
			}
			fc := startFakeCluster(t, fake)
			r := fc.mhactl(t, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.out) || !strings.Contains(r.stderr, tc.err) {
				t.Fatalf("want exit %d, stdout with %q, stderr with %q; got %v", tc.code, tc.out, tc.err, r)
			}
			wantCall(t, fake.Calls(), tc.want)
		})
	}
}

// The journal lines appear while the action runs: the fake adds each
// phase only after a poll saw the previous one.
func TestClusterActionShowsProgress(t *testing.T) {
	fake := apitest.NewFakeBackend()
	t0 := time.Now()
	fake.State.Apps[0].Journal = []api.JournalEntry{{Epoch: 2, Phase: "old_phase", Status: "done", At: t0.Add(-time.Hour)}}
	fake.Phases = []api.JournalEntry{
		{Epoch: 3, Phase: "check_repl", Status: "done", At: t0},
		{Epoch: 3, Phase: "save_binlog", Status: "started", Detail: "0 of 8192 bytes from server1", At: t0.Add(time.Millisecond)},
		{Epoch: 3, Phase: "save_binlog", Status: "started", Detail: "8192 of 8192 bytes from server1", At: t0.Add(2 * time.Millisecond)},
		{Epoch: 3, Phase: "recover_replica", Status: "done", Detail: "server3", At: t0.Add(3 * time.Millisecond)},
	}
	fake.PhaseWait = 20 * time.Second // far longer than the test may take
	fake.Result = &api.ActionResult{OK: true, Message: "done", Epoch: 3, Report: json.RawMessage(`"From:\nserver1(127.0.0.1:3306) (current master)\nTo:\nserver2(127.0.0.1:3307) (new master)"`)}
	fc := startFakeCluster(t, fake)

	start := time.Now()
	r := fc.mhactl(t, "pause", "--app", "app1")
	if r.code != 0 {
		t.Fatal(r)
	}
	if n := fake.Unobserved(); n != 0 {
		t.Fatalf("%d phases were not seen while the action ran", n)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("took %v", d)
	}
	if strings.Contains(r.stdout, "old_phase") {
		t.Errorf("printed a journal line from before the action:\n%s", r.stdout)
	}
	assertLinesInOrder(t, r.stdout, []string{
		"check_repl               done",
		"save_binlog              started  0 of 8192 bytes from server1",
		"save_binlog              started  8192 of 8192 bytes from server1",
		"recover_replica          done     server3",
		"pause app1: OK (epoch 3): done",
		"From:",
		"server2(127.0.0.1:3307) (new master)",
	})
}

func TestClusterAuthAndReachability(t *testing.T) {
	fake := apitest.NewFakeBackend()
	fc := startFakeCluster(t, fake)

	// No token: the server refuses, nothing runs, exit 3 with the reason.
	r := runClusterCLI(t, "--addr", fc.url, "ack", "--app", "app1")
	if r.code != exitInternal || !strings.Contains(r.stderr, "missing bearer token") || !strings.Contains(r.stderr, "--token-file") {
		t.Fatalf("no token: %v", r)
	}
	// A wrong token likewise.
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("wrong"), 0o600)
	r = runClusterCLI(t, "--addr", fc.url, "--token-file", bad, "status")
	if r.code != exitInternal || !strings.Contains(r.stderr, "invalid bearer token") {
		t.Fatalf("wrong token: %v", r)
	}
	if n := len(fake.Calls()); n != 0 {
		t.Fatalf("backend ran %d actions without a valid token", n)
	}

	// An address where nothing listens: exit 3 naming it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	for _, args := range [][]string{{"status"}, {"ack", "--app", "app1"}, {"history", "-o", "json"}} {
		r = runClusterCLI(t, append([]string{"--addr", dead, "--token-file", fc.tokenFile}, args...)...)
		if r.code != exitInternal || !strings.Contains(r.stderr, dead) || !strings.Contains(r.stderr, "connection refused") {
			t.Fatalf("%v against %s: %v", args, dead, r)
		}
	}
	// A dead address first and a live one second: the live one answers.
	r = runClusterCLI(t, "--addr", dead+","+fc.url, "--token-file", fc.tokenFile, "status", "-o", "json")
	if r.code != 0 {
		t.Fatalf("dead then live: %v", r)
	}

	// Usage errors.
	for _, args := range [][]string{{"status"}, {"--addr", fc.url, "status", "-o", "yaml"}} {
		if r := runClusterCLI(t, args...); r.code != exitUsage {
			t.Fatalf("%v: %v", args, r)
		}
	}
	if r := runClusterCLI(t, "--addr", fc.url, "--token-file", "/nonexistent/token", "status"); r.code != exitInternal || !strings.Contains(r.stderr, "read token file") {
		t.Fatalf("missing token file: %v", r)
	}
}

// authDenied is discovery's error for a server that refuses the login.
const authDenied = "connect to server1(127.0.0.1:3306) as mha: Error 1045 (28000): Access denied for user 'mha'@'localhost' (using password: YES)"

func TestClusterCheckStatus(t *testing.T) {
	tests := []struct {
		name   string
		change func(st *api.Status)
		app    string
		code   int
		out    string
	}{
		{"healthy", nil, "app1", 0, "app1 is running(0:PING_OK), master:server1(127.0.0.1:3306)"},
		{"unknown app", nil, "app2", 31, "app2 is not configured(31:CONFIG_ERROR)"},
		{"no leader", func(st *api.Status) { st.Leader = "" }, "app1", 3, "app1 is running(3:PARTIALLY_RUNNING)"},
		{"paused", func(st *api.Status) { st.Apps[0].Paused = true }, "app1", 3, "(3:PARTIALLY_RUNNING), master:server1(127.0.0.1:3306): automatic failover is paused"},
		{"no verdict yet", func(st *api.Status) { st.Apps[0].Verdict = "NoQuorum" }, "app1", 10, "(10:INITIALIZING_MONITOR)"},
		{"master unreachable from some", func(st *api.Status) { st.Apps[0].Verdict = "UnreachableMaster" }, "app1", 20, "(20:PING_FAILING)"},
		{"master dead", func(st *api.Status) { st.Apps[0].Verdict = "DeadMaster" }, "app1", 21, "(21:PING_FAILED)"},
		{"failover running", func(st *api.Status) {
			st.Apps[0].Lock = &api.Lock{Epoch: 4, Holder: "node1", Kind: "failover", Started: time.Now()}
		}, "app1", 50, "(50:FAILOVER_RUNNING), master:server1(127.0.0.1:3306): failover epoch 4 held by node1"},
		{"failover halted", func(st *api.Status) { st.Apps[0].Unfinished = true }, "app1", 51, "(51:FAILOVER_ERROR)"},
		{"master refuses the login", func(st *api.Status) {
			m := &st.Apps[0].Servers[0]
			m.Health, m.HealthDetail = api.HealthAuthError, authDenied
		}, "app1", 31, "app1 is running but cannot log in to its master(31:CONFIG_ERROR), master:server1(127.0.0.1:3306): " +
			"the master server1 refuses the manager's login: " + authDenied + " (fix the password or grants"},
		{"a replica refusing the login is not the master's health", func(st *api.Status) {
			r := &st.Apps[0].Servers[1]
			r.Health, r.HealthDetail = api.HealthAuthError, authDenied
		}, "app1", 0, "(0:PING_OK)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := apitest.NewFakeBackend()
			if tc.change != nil {
				tc.change(&fake.State)
			}
			fc := startFakeCluster(t, fake)
			r := fc.mhactl(t, "check-status", "--app", tc.app)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.out) {
				t.Fatalf("want exit %d and %q; got %v", tc.code, tc.out, r)
			}
		})
	}
	t.Run("no manager answers", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		ln.Close()
		r := runClusterCLI(t, "--addr", dead, "check-status", "--app", "app1", "-o", "json")
		var h appHealth
		if r.code != 2 || json.Unmarshal([]byte(r.stdout), &h) != nil || h.Status != "NOT_RUNNING" || !strings.Contains(h.Detail, dead) {
			t.Fatalf("want exit 2 and NOT_RUNNING naming %s; got %v", dead, r)
		}
	})
}

func TestClusterMembersAndVersion(t *testing.T) {
	fc := startFakeCluster(t, apitest.NewFakeBackend())
	r := fc.mhactl(t, "members", "list", "-o", "json")
	var ms []api.Manager
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ms) != nil || len(ms) != 3 || ms[0].Role != "leader" {
		t.Fatalf("members list -o json: %v", r)
	}
	r = fc.mhactl(t, "members", "list")
	assertLinesInOrder(t, r.stdout, []string{"MANAGER", "node1    leader", "node2    follower", "node3    follower"})

	r = fc.mhactl(t, "version", "-o", "json")
	var v versionInfo
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v.Client == "" || len(v.Nodes) != 1 || !v.Nodes[0].Leader || v.Nodes[0].Version == "" {
		t.Fatalf("version -o json: %v", r)
	}
	r = runClusterCLI(t, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "mhactl ") {
		t.Fatalf("version without a cluster: %v", r)
	}
}

// TestClusterRemovedNode: a manager removed from the Raft group is passed
// over; when it is the only address given, mhactl says it was removed and
// how to bring it back (exit 3: nothing could be asked).
func TestClusterRemovedNode(t *testing.T) {
	removed := apitest.NewFakeBackend()
	removed.NotMemberErr = errors.New("node1 was removed from the raft group; to bring it back, run `mhactl members add node1 127.0.0.1:7001`")
	fr := startFakeCluster(t, removed)
	r := fr.mhactl(t, "members", "list")
	if r.code != exitInternal || !strings.Contains(r.stderr, "removed from the raft group") || !strings.Contains(r.stderr, "mhactl members add node1") {
		t.Fatalf("members list via a removed node only: %v", r)
	}
	fl := startFakeCluster(t, apitest.NewFakeBackend())
	r = runClusterCLI(t, "--addr", fr.url+","+fl.url, "--token-file", fl.tokenFile, "members", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "node1    leader") {
		t.Fatalf("members list via a removed node and a member: %v", r)
	}
	if removed.StatusCalls() != 0 {
		t.Fatalf("the removed node served %d status reads", removed.StatusCalls())
	}
}

// With --cacert a bare host:port is reached over HTTPS and the server's
// certificate is verified against that CA.
func TestClusterTLS(t *testing.T) {
	fake := apitest.NewFakeBackend()
	ts := httptest.NewTLSServer(api.NewHandler(fake, api.ServerConfig{Token: clusterTestToken}, nil))
	defer ts.Close()
	dir := t.TempDir()
	ca, tok := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "token")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tok, []byte(clusterTestToken), 0o600); err != nil {
		t.Fatal(err)
	}
	hostPort := strings.TrimPrefix(ts.URL, "https://")
	r := runClusterCLI(t, "--addr", hostPort, "--token-file", tok, "--cacert", ca, "check-status", "--app", "app1")
	if r.code != 0 {
		t.Fatalf("over TLS with the CA: %v", r)
	}
	// Without the CA the certificate is not trusted: nothing reachable.
	r = runClusterCLI(t, "--addr", ts.URL, "--token-file", tok, "status")
	if r.code != exitInternal || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("over TLS without the CA: %v", r)
	}
}
