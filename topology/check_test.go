package topology

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/testbed"
)

// Every check-repl problem, created for real on one cluster, one after the
// other; each subtest undoes what it did. The order matters: the last ones
// leave the cluster broken.
func TestCheckReplProblems(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := testbed.Start(t, testbed.Options{N: 3})
	app := loadApp(t, c)
	m, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
	noErrors := func(ps []Problem) bool { return !HasErrors(ps) }

	t.Run("healthy", func(t *testing.T) {
		ps := pollCheck(t, app, noErrors)
		if len(ps) != 0 {
			t.Errorf("a healthy cluster has problems:\n%s", dump(ps))
		}
	})
	t.Run("read_only off on a replica", func(t *testing.T) {
		run(t, s2, "SET GLOBAL read_only=0")
		ps := Check(discover(t, app))
		wantProblem(t, ps, CodeReadOnlyOff, "server2", Error, "read_only is off on a replica", "SET GLOBAL read_only=1")
		run(t, s2, "SET GLOBAL read_only=1")
	})
	t.Run("relay_log_purge on", func(t *testing.T) {
		run(t, s3, "SET GLOBAL relay_log_purge=1")
		ps := Check(discover(t, app))
		wantProblem(t, ps, CodeRelayLogPurge, "server3", Error, "relay_log_purge is on", "relay_log_purge=0")
		run(t, s3, "SET GLOBAL relay_log_purge=0")
	})
	t.Run("binlog_format differs", func(t *testing.T) {
		run(t, s3, "SET GLOBAL binlog_format='MIXED'")
		ps := Check(discover(t, app))
		wantProblem(t, ps, CodeBinlogFormat, "server3", Warning, "binlog_format is MIXED here but ROW on server1")
		run(t, s3, "SET GLOBAL binlog_format='ROW'")
	})
	t.Run("repl user lacks REPLICATION SLAVE", func(t *testing.T) {
		run(t, s2, "SET sql_log_bin=0", "REVOKE REPLICATION SLAVE ON *.* FROM 'repl'@'%'", "SET sql_log_bin=1")
		ps := Check(discover(t, app))
		wantProblem(t, ps, CodeReplGrant, "server2", Error, `"repl"`, "lacks REPLICATION SLAVE", "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'")
		if p := findProblem(ps, CodeReplGrant, "server1"); p != nil {
			t.Errorf("server1 keeps the grant, yet: %s", p)
		}
		run(t, s2, "SET sql_log_bin=0", "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'", "SET sql_log_bin=1")
	})
	t.Run("repl user missing", func(t *testing.T) {
		run(t, s3, "SET sql_log_bin=0", "RENAME USER 'repl'@'%' TO 'repl_gone'@'%'", "SET sql_log_bin=1")
		ps := Check(discover(t, app))
		wantProblem(t, ps, CodeReplUserMissing, "server3", Error, `"repl"`, "does not exist")
		run(t, s3, "SET sql_log_bin=0", "RENAME USER 'repl_gone'@'%' TO 'repl'@'%'", "SET sql_log_bin=1")
	})
	t.Run("manager user lacks SUPER", func(t *testing.T) {
		for _, s := range c.Servers {
			run(t, s, "SET sql_log_bin=0", "CREATE USER 'weak'@'%' IDENTIFIED BY 'weak-pw'",
				"GRANT SELECT, REPLICATION CLIENT, SLAVE MONITOR ON *.* TO 'weak'@'%'", "SET sql_log_bin=1")
		}
		ps := Check(discover(t, withUser(app, "weak", "weak-pw")))
		for _, s := range []string{"server1", "server2", "server3"} {
			wantProblem(t, ps, CodeManagerGrant, s, Error, `"weak"`, "lacks SUPER", "GRANT SUPER ON *.*")
		}
		if p := findProblem(ps, CodeReadFailed, "server2"); p != nil {
			t.Errorf("weak can read everything, yet: %s", p)
		}
	})
	t.Run("manager user lacks REPLICATION CLIENT", func(t *testing.T) {
		// The application user has DML and DDL only.
		ps := Check(discover(t, withUser(app, testbed.AppUser, testbed.AppPassword)))
		wantProblem(t, ps, CodeManagerGrant, "server2", Error, `"app"`, "lacks REPLICATION CLIENT")
		wantProblem(t, ps, CodeManagerGrant, "server2", Error, `"app"`)
		// It cannot even read the replica status: that is reported with the statement.
		wantProblem(t, ps, CodeReadFailed, "server2", Error, "SHOW SLAVE STATUS")
	})
	t.Run("replication filters differ", func(t *testing.T) {
		run(t, s3, "STOP SLAVE", "SET GLOBAL replicate_do_db='test'", "START SLAVE")
		ps := Check(discover(t, app))
		wantProblem(t, ps, CodeFilters, "server3", Error, "replicate_do_db=test", "server2 has none")
		run(t, s3, "STOP SLAVE", "SET GLOBAL replicate_do_db=''", "START SLAVE")
		pollCheck(t, app, noErrors)
	})
	t.Run("replica of another replica", func(t *testing.T) {
		if err := c.Replicate(ctx, s3, s2); err != nil {
			t.Fatal(err)
		}
		topo := discover(t, app)
		if topo.Master == nil || topo.Master.Name() != "server1" {
			t.Fatalf("master = %v, want server1", topo.Master)
		}
		ps := Check(topo)
		wantProblem(t, ps, CodeWrongMaster, "server3", Error,
			fmt.Sprintf("replicates from 127.0.0.1(%s), not from the application's master 127.0.0.1(%s)", s2.Addr(), m.Addr()))
		if err := c.Replicate(ctx, s3, m); err != nil {
			t.Fatal(err)
		}
		pollCheck(t, app, noErrors)
	})
	t.Run("second writable master", func(t *testing.T) {
		run(t, s2, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only=0")
		ps := Check(discover(t, app))
		wantProblem(t, ps, CodeMultipleWritable, "server2", Error, "more than one writable master")
		wantProblem(t, ps, CodeNotReplicating, "server2", Error, "not a replica")
		if err := c.Replicate(ctx, s2, m); err != nil {
			t.Fatal(err)
		}
		pollCheck(t, app, noErrors)
	})
	t.Run("IO thread stopped", func(t *testing.T) {
		run(t, s2, "STOP SLAVE IO_THREAD")
		ps := Check(discover(t, app))
		wantProblem(t, ps, CodeThreadStopped, "server2", Warning, "IO thread is not running", "START SLAVE IO_THREAD")
		run(t, s2, "START SLAVE IO_THREAD")
		pollCheck(t, app, noErrors)
	})
	t.Run("SQL thread stopped by an error", func(t *testing.T) {
		// A row that exists on server3 only makes the master's insert fail there.
		run(t, m, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE test.t1 (a INT PRIMARY KEY)")
		if err := s3.WaitCaughtUp(ctx, m, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		run(t, s3, "SET sql_log_bin=0", "INSERT INTO test.t1 VALUES (7)", "SET sql_log_bin=1")
		run(t, m, "INSERT INTO test.t1 VALUES (7)")
		ps := pollCheck(t, app, func(ps []Problem) bool { return findProblem(ps, CodeThreadStopped, "server3") != nil })
		wantProblem(t, ps, CodeThreadStopped, "server3", Error, "SQL thread is not running", "last SQL error 1062", "Duplicate entry '7'")
	})
	t.Run("stopped server", func(t *testing.T) {
		if err := s3.Shutdown(); err != nil {
			t.Fatal(err)
		}
		ps := Check(discover(t, app))
		wantProblem(t, ps, CodeUnreachable, "server3", Error, "cannot connect", s3.Addr())
	})
}

// withUser is a copy of app whose manager user is user.
func withUser(app *config.App, user, password string) *config.App {
	cp := *app
	cp.Servers = nil
	for _, s := range app.Servers {
		sc := *s
		sc.User, sc.Password = user, password
		cp.Servers = append(cp.Servers, &sc)
	}
	return &cp
}

// log_bin and log_slave_updates need a restart to change: a cluster of its own.
func TestCheckReplBinlogSettings(t *testing.T) {
	c := testbed.Start(t, testbed.Options{N: 3, NoSSH: true, Servers: []testbed.ServerOptions{
		{}, {Extra: []string{"skip-log-bin"}}, {Extra: []string{"log_slave_updates=0"}},
	}})
	app := loadApp(t, c)
	topo := discover(t, app)
	if topo.Master == nil || topo.Master.Name() != "server1" {
		t.Fatalf("master = %v, want server1", topo.Master)
	}
	if topo.Servers[1].MasterStatus != nil {
		t.Errorf("server2 has no binlog, yet master status %v", topo.Servers[1].MasterStatus)
	}
	ps := Check(topo)
	wantProblem(t, ps, CodeLogBinOff, "server2", Error, "log_bin is off", "no_master=1")
	wantProblem(t, ps, CodeLogSlaveUpdates, "server3", Warning, "log_slave_updates is off")
	if p := findProblem(ps, CodeLogSlaveUpdates, "server2"); p != nil {
		t.Errorf("server2 has no binlog at all; log_slave_updates is moot: %s", p)
	}
	// A server that may not become master needs no binlog.
	app.Servers[1].NoMaster = true
	if p := findProblem(Check(discover(t, app)), CodeLogBinOff, "server2"); p != nil {
		t.Errorf("no_master=1 server2 still reported: %s", p)
	}
}

// check-ssh: a healthy sshd, then a wrong host key, a key it does not
// accept, a port nothing listens on and a missing binlog directory.
func TestCheckSSH(t *testing.T) {
	c := testbed.Start(t, testbed.Options{N: 2})
	app := loadApp(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if ps := CheckSSH(ctx, app); len(ps) != 0 {
		t.Fatalf("healthy sshd has problems:\n%s", dump(ps))
	}
	dir := t.TempDir()
	keygen := func(name string) string {
		path := filepath.Join(dir, name)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
		return path
	}
	sshAddr := fmt.Sprintf("127.0.0.1:%d", c.SSH.Port)

	t.Run("host key mismatch", func(t *testing.T) {
		other := keygen("other_host_key")
		pub, err := os.ReadFile(other + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(pub))
		kh := filepath.Join(dir, "known_hosts_wrong")
		if err := os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s %s\n", c.SSH.Port, f[0], f[1])), 0o644); err != nil {
			t.Fatal(err)
		}
		a := withSSH(app, func(s *config.Server) { s.SSHKnownHosts = kh })
		ps := CheckSSH(ctx, a)
		for _, s := range []string{"server1", "server2"} {
			wantProblem(t, ps, CodeSSHHostKey, s, Error, sshAddr, "does not match", "verify the host key of "+sshAddr, "update its entry in "+kh)
		}
	})
	t.Run("auth failure", func(t *testing.T) {
		key := keygen("unauthorized_key")
		ps := CheckSSH(ctx, withSSH(app, func(s *config.Server) { s.SSHKey = key }))
		wantProblem(t, ps, CodeSSHAuth, "server1", Error, "authentication", sshAddr, "authorized_keys")
	})
	t.Run("unreachable", func(t *testing.T) {
		port, err := testbed.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		ps := CheckSSH(ctx, withSSH(app, func(s *config.Server) { s.SSHPort = port }))
		wantProblem(t, ps, CodeSSHUnreachable, "server2", Error, fmt.Sprintf("cannot reach SSH at 127.0.0.1:%d", port))
	})
	t.Run("binlog dir missing", func(t *testing.T) {
		ps := CheckSSH(ctx, withSSH(app, func(s *config.Server) { s.MasterBinlogDir = "/nonexistent/binlogs" }))
		wantProblem(t, ps, CodeSSHCommand, "server1", Error, "master_binlog_dir /nonexistent/binlogs is not a directory")
	})
}

func withSSH(app *config.App, change func(*config.Server)) *config.App {
	cp := *app
	cp.Servers = nil
	for _, s := range app.Servers {
		sc := *s
		change(&sc)
		cp.Servers = append(cp.Servers, &sc)
	}
	return &cp
}

// An application whose only server is the master, and one whose other
// server does not replicate: check-repl refuses both (masterha_check_repl:
// "There is not any alive slave"), saying there is nothing to promote.
func TestCheckReplNoReplica(t *testing.T) {
	c := testbed.Start(t, testbed.Options{N: 1, NoSSH: true})
	app := loadApp(t, c)
	topo := discover(t, app)
	if topo.Master == nil || topo.Master.Name() != "server1" {
		t.Fatalf("master = %v, want server1", topo.Master)
	}
	ps := Check(topo)
	wantProblem(t, ps, CodeNoReplica, "server1", Error,
		"the application's only server is its master 127.0.0.1("+c.Servers[0].Addr()+")", "no replica to promote",
		"add a block per replica to "+app.File, "[server2]")
	if len(ps) != 1 {
		t.Errorf("want only the no-replica problem; problems:\n%s", dump(ps))
	}

	// A second configured server that is no replica (a stopped one would be
	// the same): the application still has nothing to promote.
	two := testbed.Start(t, testbed.Options{N: 2, NoSSH: true})
	run(t, two.Servers[1], "STOP SLAVE", "RESET SLAVE ALL")
	ps = Check(discover(t, loadApp(t, two)))
	wantProblem(t, ps, CodeNotReplicating, "server2", Error, "not a replica")
	wantProblem(t, ps, CodeNoReplica, "server1", Error, "no configured server is a reachable replica of the master", "START SLAVE")
}
