package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// hookScript writes a shell script that appends its arguments (one line per
// call) to a log file and exits with code; it returns the script's path
// and the log's.
func hookScript(t *testing.T, name string, code int) (script, log string) {
	t.Helper()
	dir := t.TempDir()
	script, log = filepath.Join(dir, name), filepath.Join(dir, name+".args")
	body := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %s\nexit %d\n", log, code)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, log
}

func hookCalls(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func wantArgs(t *testing.T, call string, args ...string) {
	t.Helper()
	fields := strings.Fields(call)
	for _, a := range args {
		found := false
		for _, f := range fields {
			if f == a {
				found = true
			}
		}
		if !found {
			t.Errorf("hook call %q lacks %s", call, a)
		}
	}
}

// TestFailoverSSHUnreachable: the dead master's SSH port is closed. The
// failover completes from what the replicas hold (rows 1,2), the report
// names the lost range, the IP hook gets --command=stop, and the old master
// is refused when it tries to rejoin with the row the others lack.
func TestFailoverSSHUnreachable(t *testing.T) {
	ctx := context.Background()
	c, app := deadMasterWalkthrough(t, true)
	s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
	closed, err := testbed.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	app.Server("server1").SSHPort = closed
	ipScript, ipLog := hookScript(t, "master_ip_failover", 0)
	app.MasterIPFailoverScript = ipScript
	var out bytes.Buffer
	rep, err := DeadMaster(ctx, FailoverOptions{
		Options:    Options{App: app, Yes: true, Out: &out, NewMaster: s2.Addr()},
		DeadMaster: s1.Addr(),
	})
	t.Log(out.String())
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	wantRows(t, ctx, s2, 1, 2)
	wantRows(t, ctx, s3, 1, 2)
	wantReplicaOf(t, ctx, s3, s2, true)
	if rep.Lost == nil || rep.Lost.From != rep.Plan.LatestRead || rep.Lost.To != "unknown end of dead master's binlog" {
		t.Fatalf("report's lost range: %+v (latest read %s)", rep.Lost, rep.Plan.LatestRead)
	}
	if !strings.Contains(out.String(), "LOST: events of the dead master's binlog from "+rep.Plan.LatestRead.String()) {
		t.Errorf("printed report does not name the lost range")
	}
	calls := hookCalls(t, ipLog)
	if len(calls) != 2 {
		t.Fatalf("master_ip_failover_script called %d times: %v", len(calls), calls)
	}
	d, n := app.Server("server1"), app.Server("server2")
	wantArgs(t, calls[0], "--command=stop", "--orig_master_host="+d.Hostname, "--orig_master_ip="+d.IP,
		fmt.Sprintf("--orig_master_port=%d", d.Port), fmt.Sprintf("--orig_master_ssh_port=%d", closed))
	wantArgs(t, calls[1], "--command=start", "--ssh_user="+n.SSHUser, fmt.Sprintf("--new_master_port=%d", n.Port),
		"--new_master_user="+testbed.MHAUser, "--new_master_password="+testbed.MHAPassword)
	if strings.Contains(out.String(), testbed.MHAPassword) || !strings.Contains(out.String(), "--new_master_password=xxx") {
		t.Errorf("the hook's password must print as xxx and never in clear")
	}

	// The old master holds row 3, which nobody else has: rejoin refuses.
	if err := s1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := Rejoin(ctx, RejoinOptions{Options: Options{App: app}, Host: s1.Addr()})
	if !errors.Is(err, ErrRefused) || res == nil || len(res.Extra) == 0 {
		t.Fatalf("rejoin of a master holding lost events: err %v, result %+v", err, res)
	}
	t.Logf("rejoin refused as it should: %v", err)
	if st, _ := s1.SlaveStatus(ctx); st != nil {
		t.Errorf("refused rejoin still configured replication on server1")
	}
}

// TestFailoverHooks: the IP hook's stopssh exiting 1 aborts before any
// server is promoted; a second run with a working IP hook and a
// shutdown_script exiting 10 completes, and the hooks got MHA's arguments.
func TestFailoverHooks(t *testing.T) {
	ctx := context.Background()
	c, app := deadMasterWalkthrough(t, false)
	s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
	failing, failLog := hookScript(t, "master_ip_failover_bad", 1)
	app.MasterIPFailoverScript = failing

	// A journal that refuses phase 2 (lost leadership) stops the pipeline
	// before any hook runs or any server is touched.
	_, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: tlog{t}, NewMaster: s2.Addr(),
		Journal: refusingJournal{phase: PhaseShutdown}}, DeadMaster: s1.Addr()})
	if !errors.Is(err, ErrMayNotAct) {
		t.Fatalf("failover with a refusing journal: %v", err)
	}
	if calls := hookCalls(t, failLog); calls[0] != "" {
		t.Fatalf("a hook ran although the journal refused: %v", calls)
	}

	journal, err := OpenLocalJournal(filepath.Join(t.TempDir(), "journal.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: tlog{t}, NewMaster: s2.Addr(), Journal: journal}, DeadMaster: s1.Addr()})
	if !errors.Is(err, ErrHookFailed) {
		t.Fatalf("failover with a failing IP hook: %v", err)
	}
	wantArgs(t, hookCalls(t, failLog)[0], "--command=stopssh", "--ssh_user="+c.SSH.User)
	if ro, _ := s2.QueryString(ctx, "SELECT @@read_only"); ro != "1" {
		t.Errorf("server2 was made writable (read_only=%s) although the failover aborted", ro)
	}
	for _, s := range []*testbed.Server{s2, s3} {
		if st, _ := s.SlaveStatus(ctx); st == nil || st["Master_Port"] != fmt.Sprint(s1.Port) {
			t.Errorf("%s was repointed although the failover aborted: %v", s.Name(), st)
		}
	}

	ipScript, ipLog := hookScript(t, "master_ip_failover", 0)
	shutdown, shutLog := hookScript(t, "shutdown", 10)
	report, repLog := hookScript(t, "send_report", 0)
	app.MasterIPFailoverScript, app.ShutdownScript, app.ReportScript = ipScript, shutdown, report
	// Resume the aborted run from its journal: phase 1 is not repeated.
	prog, err := journal.Progress()
	if err != nil {
		t.Fatal(err)
	}
	if !prog.Completed[PhaseCheck] || prog.Interrupted != PhaseShutdown || prog.Plan == nil || prog.Plan.NewMaster != "server2" {
		t.Fatalf("progress of the aborted run: %+v", prog)
	}
	rep, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: tlog{t}, Journal: journal, Resume: &prog}, DeadMaster: s1.Addr()})
	if err != nil {
		t.Fatalf("resumed failover: %v", err)
	}
	if len(rep.Phases) != 5 { // connect + phases 2-5
		t.Errorf("resumed run ran phases %+v, want 2-5 only", rep.Phases)
	}
	wantRows(t, ctx, s2, 1, 2, 3)
	wantRows(t, ctx, s3, 1, 2, 3)
	d := app.Server("server1")
	wantArgs(t, hookCalls(t, shutLog)[0], "--command=stopssh", "--ssh_user="+c.SSH.User, "--host="+d.Hostname,
		"--ip="+d.IP, fmt.Sprintf("--port=%d", d.Port))
	if calls := hookCalls(t, ipLog); len(calls) != 2 {
		t.Errorf("IP hook calls: %v", calls)
	}
	rc := hookCalls(t, repLog)[0]
	wantArgs(t, rc, "--orig_master_host="+d.Hostname, "--new_master_host="+app.Server("server2").Hostname,
		"--new_slave_hosts="+app.Server("server3").Hostname)
	if !strings.Contains(rc, "--subject="+rep.Subject) {
		t.Errorf("report_script subject: %q", rc)
	}
}

// TestFailoverFourServersByRules: four servers, server3 dead with
// ignore_fail, the new master elected by the rules (the latest replica,
// server4), GTID mode.
func TestFailoverFourServersByRules(t *testing.T) {
	ctx := context.Background()
	c := testbed.Start(t, testbed.Options{N: 4, GTID: true})
	if err := c.Walkthrough(ctx); err != nil {
		t.Fatal(err)
	}
	s1, s2, s3, s4 := c.Servers[0], c.Servers[1], c.Servers[2], c.Servers[3]
	if err := s3.Kill9(); err != nil {
		t.Fatal(err)
	}
	if err := s1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	app := loadApp(t, c)
	// Without ignore_fail the dead replica stops the failover.
	_, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: tlog{t}}, DeadMaster: s1.Addr()})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("failover with a dead replica and no ignore_fail: %v", err)
	}
	app.Server("server3").IgnoreFail = true
	rep, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: tlog{t}}, DeadMaster: s1.Addr()})
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	if rep.NewMaster != "server4" {
		t.Fatalf("elected %s, want server4 (the latest replica with candidate_master)", rep.NewMaster)
	}
	wantRows(t, ctx, s4, 1, 2, 3)
	wantRows(t, ctx, s2, 1, 2, 3)
	wantReplicaOf(t, ctx, s2, s4, true)
	if err := s4.Exec(ctx, "INSERT INTO test.t1 VALUES (5)"); err != nil {
		t.Fatal(err)
	}
	if err := s2.WaitCaughtUp(ctx, s4, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	wantRows(t, ctx, s2, 1, 2, 3, 5)
}

// TestFailoverAliveMasterRefused: a master that answers is not failed over.
func TestFailoverAliveMasterRefused(t *testing.T) {
	ctx := context.Background()
	c := testbed.Start(t, testbed.Options{N: 2, NoSSH: true})
	app := loadApp(t, c)
	_, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true}, DeadMaster: c.Servers[0].Addr()})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("failover of an alive master: %v", err)
	}
	// Not confirmed: nothing happens either.
	_, err = Switch(ctx, Options{App: app, In: strings.NewReader("no\n")})
	if !errors.Is(err, ErrAborted) {
		t.Fatalf("switch answered no: %v", err)
	}
	if ro, _ := c.Servers[0].QueryString(ctx, "SELECT @@read_only"); ro != "0" {
		t.Errorf("master read_only=%s after an unconfirmed switch", ro)
	}
}

// refusingJournal refuses to begin one phase, as a manager that lost the
// failover lock would.
type refusingJournal struct{ phase string }

func (j refusingJournal) Begin(_ context.Context, phase string, _ *Plan) error {
	if phase == j.phase {
		return errors.New("lost the failover lock")
	}
	return nil
}

func (refusingJournal) Done(context.Context, string, *Plan) error { return nil }
