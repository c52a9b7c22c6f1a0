package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/testbed"
)

// startBinlogServer keeps a copy of master's binlog in a new directory
// on the test bed's sshd host, as a binlog server does: mariadb-binlog
// --read-from-remote-server --raw --stop-never, a background process
// (testbed.StartProc) stopped when the test ends. It returns the
// directory.
func startBinlogServer(t *testing.T, master *testbed.Server) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "binlog-server")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(filepath.Dir(dir), "mariadb-binlog.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("mariadb-binlog", "--read-from-remote-server", "--raw", "--stop-never",
		"--host="+master.Host, fmt.Sprintf("--port=%d", master.Port),
		"--user="+testbed.MHAUser, "--password="+testbed.MHAPassword,
		"--result-file="+dir+"/", "mysql-bin.000001")
	cmd.Stdout, cmd.Stderr = log, log
	p, err := testbed.StartProc(cmd, log)
	if err != nil {
		t.Fatalf("start mariadb-binlog: %v", err)
	}
	t.Cleanup(func() { p.Stop(syscall.SIGTERM, 5*time.Second) })
	return dir
}

// waitCopied polls until the binlog server's copy of the master's current
// binlog is as long as the master's.
func waitCopied(t *testing.T, master *testbed.Server, dir string) {
	t.Helper()
	ctx := context.Background()
	st, err := master.QueryRows(ctx, "SHOW MASTER STATUS")
	if err != nil || len(st) != 1 {
		t.Fatalf("SHOW MASTER STATUS on the master: %v %v", st, err)
	}
	file, pos := st[0]["File"], st[0]["Position"]
	deadline := time.Now().Add(20 * time.Second)
	for {
		fi, err := os.Stat(filepath.Join(dir, file))
		if err == nil && fmt.Sprint(fi.Size()) == pos {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(filepath.Dir(dir), "mariadb-binlog.log"))
			t.Fatalf("the binlog server's copy of %s did not reach %s (stat: %v, %v); mariadb-binlog said: %s", file, pos, fi, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBinlogServerTail: the dead master is killed and its host's SSH
// cannot be reached (its ssh_port points at a closed port), so its binlog
// cannot be read. A binlog server ([binlog1]: a directory on the sshd
// host kept by `mariadb-binlog --read-from-remote-server --raw
// --stop-never`) holds the copy: the failover reads the tail there from
// the latest replica's read position and applies it (file/position and
// GTID): no row is lost, and the plan and the report say where the tail
// came from. Without the binlog server (the behaviour before), the same
// failover reports the tail lost and the new master lacks row 3.
func TestBinlogServerTail(t *testing.T) {
	for _, tc := range []struct {
		name         string
		gtid         bool
		binlogServer bool
	}{{"filepos", false, true}, {"gtid", true, true}, {"filepos/no binlog server", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := testbed.Start(t, testbed.Options{N: 3, GTID: tc.gtid})
			s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
			dir := startBinlogServer(t, s1)
			if err := c.Walkthrough(ctx); err != nil {
				t.Fatal(err)
			}
			waitCopied(t, s1, dir)
			if err := s1.Kill9(); err != nil {
				t.Fatal(err)
			}
			work := t.TempDir()
			path, err := c.WriteAppConfig(work)
			if err != nil {
				t.Fatal(err)
			}
			want := "binlog1"
			if tc.binlogServer {
				blocks := fmt.Sprintf("\n[binlog1]\nhostname=%s\nmaster_binlog_dir=%s\n", c.SSH.Host, dir)
				if !tc.gtid {
					// Servers tried in turn, the one that has the most
					// kept: [binlog1] lags (its copy ends inside the last
					// transaction), [binlog2]'s directory is wrong,
					// [binlog3] is the running copy.
					stale := filepath.Join(t.TempDir(), "stale")
					if err := os.MkdirAll(stale, 0o755); err != nil {
						t.Fatal(err)
					}
					b, err := os.ReadFile(filepath.Join(dir, "mysql-bin.000001"))
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(stale, "mysql-bin.000001"), b[:len(b)-10], 0o644); err != nil {
						t.Fatal(err)
					}
					blocks = fmt.Sprintf("\n[binlog1]\nhostname=%[1]s\nmaster_binlog_dir=%[2]s\n"+
						"\n[binlog2]\nhostname=%[1]s\nmaster_binlog_dir=/nonexistent/binlog\n"+
						"\n[binlog3]\nhostname=%[1]s\nmaster_binlog_dir=%[3]s\n", c.SSH.Host, stale, dir)
					want = "binlog3"
				}
				f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprint(f, blocks)
				f.Close()
			}
			app := loadWithDeadMasterSSH(t, path)
			rep, err := DeadMaster(ctx, FailoverOptions{
				Options:    Options{App: app, Yes: true, Out: tlog{t}, NewMaster: s2.Addr()},
				DeadMaster: s1.Addr(),
			})
			if err != nil {
				t.Fatalf("failover: %v", err)
			}
			if !tc.binlogServer {
				if rep.Lost == nil {
					t.Errorf("no binlog server and no SSH to the dead master, yet nothing reported lost")
				}
				wantRows(t, ctx, s2, 1, 2)
				return
			}
			if rep.Lost != nil {
				t.Errorf("report says events were lost: %+v", rep.Lost)
			}
			wantRows(t, ctx, s2, 1, 2, 3)
			wantRows(t, ctx, s3, 1, 2, 3)
			wantReplicaOf(t, ctx, s3, s2, tc.gtid)
			if rep.Plan == nil || rep.Plan.TailSource != want || rep.Plan.DeadSSH {
				t.Errorf("plan: tail source %q, dead SSH %v; want %s, false", rep.Plan.TailSource, rep.Plan.DeadSSH, want)
			}
			found := false
			for _, l := range rep.Lines {
				found = found || strings.Contains(l, "from binlog server ["+want+"]")
			}
			if !found {
				t.Errorf("the report does not say the tail came from binlog server [%s]:\n%s", want, strings.Join(rep.Lines, "\n"))
			}
			saved, _ := filepath.Glob(filepath.Join(app.ManagerWorkdir, "saved_binlog_*"))
			if len(saved) != 1 || !strings.Contains(saved[0], "_"+want+"_") {
				t.Errorf("saved binlog server tails in the workdir: %v, want only %s's", saved, want)
			}
			if err := s2.Exec(ctx, "INSERT INTO test.t1 VALUES (4)"); err != nil {
				t.Fatal(err)
			}
			if err := s3.WaitCaughtUp(ctx, s2, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			wantRows(t, ctx, s3, 1, 2, 3, 4)
		})
	}
}

// binlogServerApp loads the test bed's configuration with the binlog
// server [binlog1] (directory dir on the sshd host) in a new workdir, and
// the dead master's ssh_port pointing at a closed port.
func binlogServerApp(t *testing.T, c *testbed.Cluster, dir string) *config.App {
	t.Helper()
	path, err := c.WriteAppConfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\n[binlog1]\nhostname=%s\nmaster_binlog_dir=%s\n", c.SSH.Host, dir)
	f.Close()
	return loadWithDeadMasterSSH(t, path)
}

// loadWithDeadMasterSSH loads the configuration at path with server1's
// ssh_port pointed at a port nothing listens on: the dead master's host
// cannot be reached over SSH.
func loadWithDeadMasterSSH(t *testing.T, path string) *config.App {
	t.Helper()
	app, err := config.Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	closed, err := testbed.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	app.Server("server1").SSHPort = closed
	return app
}

// TestBinlogServerTailResume: a failover whose tail came from a binlog
// server is stopped after phase 2 and resumed by a manager on another
// host (its own, empty workdir; the saved files gone), the dead master's
// SSH still unreachable: the tail is read again from the binlog server
// the plan names, checked against the plan and applied, and no row is
// lost.
func TestBinlogServerTailResume(t *testing.T) {
	ctx := context.Background()
	c := testbed.Start(t, testbed.Options{N: 3, GTID: true})
	s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
	dir := startBinlogServer(t, s1)
	if err := c.Walkthrough(ctx); err != nil {
		t.Fatal(err)
	}
	waitCopied(t, s1, dir)
	if err := s1.Kill9(); err != nil {
		t.Fatal(err)
	}
	app := binlogServerApp(t, c, dir)
	local := interruptedFailover(t, c, app, PhaseRecover)
	prog, err := local.Progress()
	if err != nil {
		t.Fatal(err)
	}
	if prog.Plan == nil || prog.Plan.TailSource != "binlog1" || prog.Plan.TailGTID == "" {
		t.Fatalf("plan after phase 2: %+v; want a tail from binlog1 with its GTID", prog.Plan)
	}
	saved, _ := filepath.Glob(filepath.Join(app.ManagerWorkdir, "*.binlog*"))
	if len(saved) == 0 {
		t.Fatalf("no saved files in %s", app.ManagerWorkdir)
	}
	for _, f := range saved {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	app2 := binlogServerApp(t, c, dir)
	var out bytes.Buffer
	rep, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app2, Yes: true, Out: &out, Journal: local, Resume: &prog},
		DeadMaster: s1.Addr()})
	t.Log(out.String())
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if !strings.Contains(out.String(), "again from binlog server [binlog1]") {
		t.Errorf("the resume does not say the tail was read again from binlog server [binlog1]")
	}
	if rep.Lost != nil {
		t.Errorf("report says events were lost: %+v", rep.Lost)
	}
	wantRows(t, ctx, s2, 1, 2, 3)
	wantRows(t, ctx, s3, 1, 2, 3)
	wantReplicaOf(t, ctx, s3, s2, true)
}

// TestBinlogServersAllFail: the dead master's host cannot be reached over
// SSH and the only binlog server's directory is wrong. As MHA's
// save_binlog_gtid, the failover refuses (ErrRefused naming the block)
// before any replica is changed: server2 still replicates from the dead
// master and is read-only. With IgnoreBinlogServerError (MHA's
// --ignore_binlog_server_error) the same failover succeeds and reports
// the tail lost. On the code before, the first failover succeeded.
func TestBinlogServersAllFail(t *testing.T) {
	ctx := context.Background()
	c := testbed.Start(t, testbed.Options{N: 3})
	s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
	if err := c.Walkthrough(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s1.Kill9(); err != nil {
		t.Fatal(err)
	}
	app := binlogServerApp(t, c, "/nonexistent/binlog")
	_, err := DeadMaster(ctx, FailoverOptions{
		Options:    Options{App: app, Yes: true, Out: tlog{t}, NewMaster: s2.Addr()},
		DeadMaster: s1.Addr(),
	})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "binlog1") || !strings.Contains(err.Error(), "--ignore-binlog-server-error") {
		t.Fatalf("failover with every binlog server failing: %v, want ErrRefused naming [binlog1] and --ignore-binlog-server-error", err)
	}
	// The dead master's replicas keep pointing at it (their IO threads
	// were stopped in phase 1, as MHA does, which changes no data).
	if st, err := s2.SlaveStatus(ctx); err != nil || st["Master_Port"] != fmt.Sprint(s1.Port) {
		t.Errorf("server2 replicates from port %q (%v) after the refusal, want the dead master's %d", st["Master_Port"], err, s1.Port)
	}
	if ro, err := s2.QueryString(ctx, "SELECT @@global.read_only"); err != nil || ro != "1" {
		t.Errorf("server2 read_only=%q (%v) after the refusal, want 1: nothing may change", ro, err)
	}
	rep, err := DeadMaster(ctx, FailoverOptions{
		Options:    Options{App: app, Yes: true, Out: tlog{t}, NewMaster: s2.Addr(), IgnoreBinlogServerError: true},
		DeadMaster: s1.Addr(),
	})
	if err != nil {
		t.Fatalf("failover with --ignore-binlog-server-error: %v", err)
	}
	if rep.Lost == nil {
		t.Errorf("the tail could not be read from anywhere, yet the report says nothing was lost")
	}
	wantReplicaOf(t, ctx, s3, s2, false)
}
