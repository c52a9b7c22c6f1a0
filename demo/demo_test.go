package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/testbed"
)

// binDir holds mhactl and mhanode, built by the first test that runs the
// demo, exactly as `make demo` builds them (go build -o DIR/ ./cmd/...),
// restricted to the two binaries the demo runs. TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mhademo-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// demoBinaries returns binDir with mhactl and mhanode in it (built once per
// process). Under -short (`make test-unit`) it skips the test: the demo
// starts real MariaDB servers and managers.
func demoBinaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the demo starts real MariaDB servers and managers")
	}
	if err := testbed.BuildBinaries(context.Background(), binDir, "./cmd/mhactl", "./cmd/mhanode"); err != nil {
		t.Fatal(err)
	}
	return binDir
}

// watchWriter collects the demo's output and calls fn once when it first
// contains trigger.
type watchWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	trigger string
	fn      func()
	fired   bool
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	n, _ := w.buf.Write(p)
	fire := !w.fired && w.trigger != "" && strings.Contains(w.buf.String(), w.trigger)
	if fire {
		w.fired = true
	}
	w.mu.Unlock()
	if fire {
		w.fn()
	}
	return n, nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// checkCleanedUp asserts that no process of the demo is left and that the
// temporary directory is gone.
func checkCleanedUp(t *testing.T, res *Result, wantDirGone bool) {
	t.Helper()
	if res == nil || res.Dir == "" {
		t.Fatal("no result or no directory in the result")
	}
	left, err := Leftovers(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 || len(res.Leftovers) > 0 {
		t.Fatalf("processes of the demo left running: %v (reported by Run: %v)", left, res.Leftovers)
	}
	_, err = os.Stat(res.Dir)
	if wantDirGone && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("directory %s not removed (stat: %v)", res.Dir, err)
	}
}

// TestDemo runs the full demo as `make demo --keep` does: sandbox, three
// mhanode processes, status, check-repl, rows, kill -9 of the master, the
// automatic failover, report, verification; while it is kept running the
// test uses the printed mhactl flags against it, then interrupts it.
func TestDemo(t *testing.T) {
	bins := demoBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var keptStatus string
	var keptErr error
	out := &watchWriter{}
	res, err := Run(ctx, Options{
		BinDir: bins, Out: out, Keep: true,
		Kept: func(k KeepInfo) {
			b, err := exec.Command(k.Mhactl, "status", "--addr", k.Addr, "--token-file", k.TokenFile).CombinedOutput()
			keptStatus, keptErr = string(b), err
			cancel()
		},
	})
	if err != nil || t.Failed() {
		t.Logf("demo output:\n%s", out)
	}
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	text := out.String()
	for _, want := range []string{"$ mhanode --id m1 ", "$ mhactl status", "$ mhactl check-repl --conf ", "MySQL Replication Health is OK.",
		"$ kill -9 ", "failover.5 new master cleanup", "$ mhactl history --app app1", "Failover Report", "OK: no row was lost.",
		"$ haproxy -db -f ", "first write acknowledged through HAProxy", "writes acknowledged through HAProxy are on", "client-visible outage"} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(text, "mha-secret-pw") || strings.Contains(text, "repl-secret-pw") {
		t.Error("demo output shows a password")
	}
	if res.OldMaster != "server1" || res.NewMaster == "" || res.NewMaster == "server1" {
		t.Errorf("old master %q, new master %q: want server1 replaced by another server", res.OldMaster, res.NewMaster)
	}
	if want := []int{1, 2, 3}; len(res.Written) != 30 || !slices.Equal(res.Written[:3], want) {
		t.Errorf("written rows %v, want 1..30", res.Written)
	}
	if len(res.Missing) > 0 {
		t.Errorf("rows missing on the new master: %v", res.Missing)
	}
	if len(res.History) != 1 || res.History[0].Result != "success" || res.History[0].Kind != "failover (auto)" {
		t.Errorf("history %+v, want one successful automatic failover", res.History)
	}
	if res.FailoverTook <= 0 || res.FailoverTook > 90*time.Second {
		t.Errorf("failover took %s", res.FailoverTook)
	}
	t.Logf("failover of %s to %s finished %.2f s after the kill", res.OldMaster, res.NewMaster, res.FailoverTook.Seconds())
	if res.ClientOutage <= 0 || res.ClientOutage > 90*time.Second || res.ClientServer != res.NewMaster || res.ClientWrites == 0 {
		t.Errorf("through HAProxy: outage %s, first write after the kill by %q, %d writes; want writes resumed on %s",
			res.ClientOutage, res.ClientServer, res.ClientWrites, res.NewMaster)
	}
	t.Logf("client-visible outage through HAProxy: %.2f s (new master writable after %.2f s)", res.ClientOutage.Seconds(), res.Writable.Seconds())
	if keptErr != nil || !strings.Contains(keptStatus, res.NewMaster+"(") || !strings.Contains(keptStatus, "(current master)") {
		t.Errorf("mhactl status with the printed flags while kept: %v\n%s", keptErr, keptStatus)
	}
	checkCleanedUp(t, res, true)
}

// TestDemoNoManagers runs the first version of the demo (--no-managers
// --keep) and stops it from the Kept callback.
func TestDemoNoManagers(t *testing.T) {
	bins := demoBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := &watchWriter{}
	var kept KeepInfo
	res, err := Run(ctx, Options{BinDir: bins, Out: out, NoManagers: true, Keep: true,
		Kept: func(k KeepInfo) { kept = k; cancel() }})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	text := out.String()
	for _, want := range []string{"$ mhactl check-repl --conf ", " (current master)", "MySQL Replication Health is OK.", "password=<redacted>"} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "$ mhanode") || kept.Addr != "" {
		t.Errorf("managers started in --no-managers mode (addr %q)", kept.Addr)
	}
	if kept.Conf == "" || !strings.HasPrefix(kept.Conf, res.Dir) {
		t.Errorf("kept info %+v does not name the sandbox's app1.conf", kept)
	}
	checkCleanedUp(t, res, true)
}

// TestDemoInterrupted: Ctrl-C while the managers start still stops every
// process of the demo; the files are kept for the post-mortem.
func TestDemoInterrupted(t *testing.T) {
	bins := demoBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := &watchWriter{trigger: "$ mhanode --id m3 ", fn: cancel}
	res, err := Run(ctx, Options{BinDir: bins, Out: out})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted demo returned %v, want context.Canceled\n%s", err, out)
	}
	checkCleanedUp(t, res, false)
	if !strings.Contains(out.String(), "files kept in "+res.Dir) {
		t.Errorf("output does not say where the files are kept:\n%s", out)
	}
	os.RemoveAll(res.Dir)
}

// TestTemplateLoads renders the embedded app1.conf and loads it with the
// product's own configuration loader.
func TestTemplateLoads(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	known := filepath.Join(dir, "known_hosts")
	for _, f := range []string{key, known} {
		if err := os.WriteFile(f, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		servers int
	}{{"one server", 1}, {"three servers", 3}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := confData{User: "mha", Password: "pw#1", ReplUser: "repl", ReplPassword: "rpw",
				ManagerWorkdir: filepath.Join(dir, "work"), RemoteWorkdir: filepath.Join(dir, "remote"),
				SSHUser: "root", SSHPort: 2222, SSHKey: key, SSHKnownHosts: known, PingInterval: 1}
			for i := 1; i <= tc.servers; i++ {
				d.Servers = append(d.Servers, confServer{Name: fmt.Sprintf("server%d", i), Host: "127.0.0.1", Port: 3305 + i, BinlogDir: "/var/lib/mysql"})
			}
			sub := t.TempDir()
			path, err := writeConf(sub, d)
			if err != nil {
				t.Fatal(err)
			}
			app, err := config.Load(path, "")
			if err != nil {
				t.Fatalf("config.Load of the rendered template: %v", err)
			}
			if app.Name != AppName || len(app.Servers) != tc.servers {
				t.Fatalf("loaded app %q with %d servers, want %s with %d", app.Name, len(app.Servers), AppName, tc.servers)
			}
			s := app.Servers[tc.servers-1]
			if s.Port != 3305+tc.servers || s.Password != "pw#1" || s.SSHPort != 2222 || s.SSHKey != key || !s.CandidateMaster {
				t.Errorf("server %s: port %d ssh_port %d ssh_key %q candidate %v", s.Name, s.Port, s.SSHPort, s.SSHKey, s.CandidateMaster)
			}
			if app.PingInterval != time.Second {
				t.Errorf("ping_interval %v, want 1s", app.PingInterval)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"password=abc\n", "password=<redacted>\n"},
		{"repl_password = s3cr#t\nuser=mha\n", "repl_password = <redacted>\nuser=mha\n"},
		{"  password=x", "  password=<redacted>"},
		{"user=password\n", "user=password\n"},
		{"# password is below\n", "# password is below\n"},
	}
	for _, tc := range tests {
		if got := redact(tc.in); got != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDescribeRowsAndMissing(t *testing.T) {
	tests := []struct {
		rows, have []int
		describe   string
		missing    []int
	}{
		{nil, nil, "no rows", nil},
		{[]int{1}, []int{1}, "1 row: 1", nil},
		{[]int{3, 1, 2, 5, 7, 8}, []int{1, 2, 3, 5}, "6 rows: 1..3, 5, 7..8", []int{7, 8}},
		{[]int{1, 2}, []int{2, 1, 9}, "2 rows: 1..2", nil},
	}
	for _, tc := range tests {
		if got := describeRows(tc.rows); got != tc.describe {
			t.Errorf("describeRows(%v) = %q, want %q", tc.rows, got, tc.describe)
		}
		if got := missing(tc.rows, tc.have); !slices.Equal(got, tc.missing) {
			t.Errorf("missing(%v, %v) = %v, want %v", tc.rows, tc.have, got, tc.missing)
		}
	}
}

// TestLeftovers finds a process by a directory named on its command line,
// and no longer once it is gone.
func TestLeftovers(t *testing.T) {
	dir := t.TempDir()
	// One process that never forks: the shell's builtin read waits on a
	// pipe we keep open (a "sleep" would be a forked child that carries
	// the shell's command line until it execs).
	cmd := exec.Command("sh", "-c", "read x", filepath.Join(dir, "marker"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	left, err := Leftovers(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].PID != cmd.Process.Pid {
		t.Fatalf("Leftovers(%s) = %v, want pid %d", dir, left, cmd.Process.Pid)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if left, err := Leftovers(dir); err != nil || len(left) != 0 {
		t.Fatalf("after the kill: %v %v", left, err)
	}
	if _, err := Leftovers(""); err == nil {
		t.Error("Leftovers(\"\") accepted an empty directory")
	}
}
