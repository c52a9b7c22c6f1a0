package failover

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
)

func testServers() (*config.Server, *config.Server) {
	d := &config.Server{Name: "server1", Hostname: "db1", IP: "10.0.0.1", Port: 3306, User: "mha", Password: "s3cret",
		SSHUser: "root", SSHHost: "db1", SSHIP: "10.0.0.1", SSHPort: 22}
	n := &config.Server{Name: "server2", Hostname: "db2", IP: "10.0.0.2", Port: 3307, User: "mha", Password: "s3cret",
		SSHUser: "root", SSHHost: "db2", SSHIP: "10.0.0.2", SSHPort: 2222}
	return d, n
}

func TestHookArgs(t *testing.T) {
	d, n := testServers()
	tests := []struct {
		name string
		args []Arg
		want string
	}{
		{"failover stopssh", FailoverStopArgs(d, true),
			"S --orig_master_host=db1 --orig_master_ip=10.0.0.1 --orig_master_port=3306 --command=stopssh --ssh_user=root"},
		{"failover stop", FailoverStopArgs(d, false),
			"S --orig_master_host=db1 --orig_master_ip=10.0.0.1 --orig_master_port=3306 --command=stop"},
		{"failover start", FailoverStartArgs(d, n, true),
			"S --command=start --ssh_user=root --orig_master_host=db1 --orig_master_ip=10.0.0.1 --orig_master_port=3306 --new_master_host=db2 --new_master_ip=10.0.0.2 --new_master_port=3307 --new_master_user=mha --new_master_ssh_port=2222 --new_master_password=xxx"},
		{"shutdown stopssh", ShutdownArgs(d, true),
			"S --command=stopssh --ssh_user=root --host=db1 --ip=10.0.0.1 --port=3306"},
		{"shutdown stop, ssh port", ShutdownArgs(n, false),
			"S --command=stop --host=db2 --ip=10.0.0.2 --port=3307 --ssh_port=2222"},
		{"online change stop", OnlineChangeArgs("stop", d, n, true),
			"S --command=stop --orig_master_host=db1 --orig_master_ip=10.0.0.1 --orig_master_port=3306 --orig_master_user=mha --new_master_host=db2 --new_master_ip=10.0.0.2 --new_master_port=3307 --new_master_user=mha --orig_master_ssh_user=root --new_master_ssh_user=root --new_master_ssh_port=2222 --orig_master_is_new_slave --orig_master_password=xxx --new_master_password=xxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Printable("S", tt.args); got != tt.want {
				t.Errorf("\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestHookOutcomes(t *testing.T) {
	for _, tt := range []struct {
		code      int
		ip, shut  HookOutcome
		reachable bool
	}{
		{0, HookOK, HookOK, false},
		{10, HookProceed, HookProceed, true},
		{1, HookAbort, HookAbort, false},
		{255, HookAbort, HookAbort, false},
	} {
		if got := IPHookOutcome(tt.code); got != tt.ip {
			t.Errorf("IPHookOutcome(%d) = %v, want %v", tt.code, got, tt.ip)
		}
		if got, r := ShutdownOutcome(tt.code); got != tt.shut || r != tt.reachable {
			t.Errorf("ShutdownOutcome(%d) = %v,%v want %v,%v", tt.code, got, r, tt.shut, tt.reachable)
		}
	}
}

func TestHookRun(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "hook")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\"\nexit 10\n"), 0o755)
	slow := filepath.Join(dir, "slow")
	os.WriteFile(slow, []byte("#!/bin/sh\nsleep 30\n"), 0o755)
	var logged strings.Builder
	h := &Hooks{App: &config.App{HookTimeout: 300 * time.Millisecond}, Log: func(f string, a ...any) { logged.WriteString(f) }}
	res, err := h.Run(context.Background(), script, []Arg{{Name: "command", Value: "stop"}, {Name: "new_master_password", Value: "pw with 'quote", Secret: true}})
	if err != nil || res.ExitCode != 10 {
		t.Fatalf("run: %v, exit %d", err, res.ExitCode)
	}
	if strings.TrimSpace(res.Output) != "--command=stop --new_master_password=pw with 'quote" {
		t.Errorf("the script got %q", res.Output)
	}
	if strings.Contains(res.Command, "pw with") || !strings.Contains(res.Command, "--new_master_password=xxx") {
		t.Errorf("printable command shows the password: %q", res.Command)
	}
	start := time.Now()
	_, err = h.Run(context.Background(), slow, nil)
	if !errors.Is(err, ErrHookTimeout) || time.Since(start) > 5*time.Second {
		t.Fatalf("slow hook: %v after %s", err, time.Since(start))
	}
}

func TestLocalJournalProgress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.json")
	j, err := OpenLocalJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	plan := &Plan{Kind: "failover", OldMaster: "server1", NewMaster: "server2", NewMasterPos: Coord{"mysql-bin.000006", 1138}}
	j.Begin(ctx, PhaseCheck, plan)
	j.Done(ctx, PhaseCheck, plan)
	j.Begin(ctx, PhaseShutdown, plan)
	again, err := OpenLocalJournal(path) // a new manager reads the file
	if err != nil {
		t.Fatal(err)
	}
	p, err := again.Progress()
	if err != nil {
		t.Fatal(err)
	}
	if !p.Completed[PhaseCheck] || p.Completed[PhaseShutdown] || p.Interrupted != PhaseShutdown {
		t.Errorf("progress %+v", p)
	}
	if p.Plan == nil || p.Plan.NewMasterPos != plan.NewMasterPos || p.Plan.NewMaster != "server2" {
		t.Errorf("plan %+v", p.Plan)
	}
}

func TestCheckLastFailover(t *testing.T) {
	dir := t.TempDir()
	app := &config.App{Name: "app1", ManagerWorkdir: dir, LastFailoverMinute: 480}
	if err := CheckLastFailover(app, time.Now()); err != nil {
		t.Fatalf("empty workdir: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "app1.failover.complete"), nil, 0o644)
	if err := CheckLastFailover(app, time.Now()); !errors.Is(err, ErrRecentFailover) {
		t.Fatalf("recent failover: %v", err)
	}
	if err := CheckLastFailover(app, time.Now().Add(9*time.Hour)); err != nil {
		t.Fatalf("old failover: %v", err)
	}
}
