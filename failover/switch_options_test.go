package failover

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/testbed"
)

// phaseJournal records the phases a run journals.
type phaseJournal struct {
	mu     sync.Mutex
	phases []string
}

func (j *phaseJournal) Begin(ctx context.Context, phase string, plan *Plan) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.phases = append(j.phases, phase)
	return nil
}

func (j *phaseJournal) Done(ctx context.Context, phase string, plan *Plan) error { return nil }

// switchedState is what a switch may change on a server: read_only, its
// master (port, or "" when no replica) and its binlog position.
type switchedState struct {
	readOnly, masterPort, binlog string
}

func switchStateOf(t *testing.T, ctx context.Context, s *testbed.Server) switchedState {
	t.Helper()
	var st switchedState
	var err error
	if st.readOnly, err = s.QueryString(ctx, "SELECT @@read_only"); err != nil {
		t.Fatal(err)
	}
	rows, err := s.QueryRows(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) > 0 {
		st.masterPort = rows[0]["Master_Port"]
	}
	rows, err = s.QueryRows(ctx, "SHOW MASTER STATUS")
	if err != nil || len(rows) == 0 {
		t.Fatalf("SHOW MASTER STATUS on %s: %v", s.Name(), err)
	}
	st.binlog = rows[0]["File"] + ":" + rows[0]["Position"]
	return st
}

func switchStatesOf(t *testing.T, ctx context.Context, c *testbed.Cluster) []switchedState {
	t.Helper()
	var out []switchedState
	for _, s := range c.Servers {
		out = append(out, switchStateOf(t, ctx, s))
	}
	return out
}

// wantUnchanged fails when a server's state differs from before.
func wantUnchanged(t *testing.T, ctx context.Context, c *testbed.Cluster, before []switchedState, what string) {
	t.Helper()
	for i, s := range c.Servers {
		if got := switchStateOf(t, ctx, s); got != before[i] {
			t.Errorf("%s changed %s: %+v, was %+v", what, s.Name(), got, before[i])
		}
	}
}

// TestSwitchRefusesBinlogFilters: the new master logs other databases than
// the old one (binlog-do-db), so the switch is refused naming both
// filters, as MHA's check_filter does; nothing changes. A server with the
// old master's filters passes the same check.
func TestSwitchRefusesBinlogFilters(t *testing.T) {
	ctx := context.Background()
	c := testbed.Start(t, testbed.Options{N: 3, Servers: []testbed.ServerOptions{{}, {Extra: []string{"binlog-do-db=test"}}}})
	s2, s3 := c.Servers[1], c.Servers[2]
	app := loadApp(t, c)
	before := switchStatesOf(t, ctx, c)

	_, err := Switch(ctx, Options{App: app, Yes: true, Out: tlog{t}, NewMaster: s2.Addr()})
	if !errors.Is(err, ErrRefused) || !containsAll(err.Error(), "binlog filters differ", s2.Addr()+") has binlog-do-db=test", "has none") {
		t.Fatalf("switch to a server with binlog-do-db=test: %v, want refused naming the filters", err)
	}
	wantUnchanged(t, ctx, c, before, "a refused switch")

	_, err = Switch(ctx, Options{App: app, Yes: true, Out: tlog{t}, NewMaster: s3.Addr(), Switch: SwitchOptions{CheckOnly: true}})
	if err != nil {
		t.Fatalf("check of a switch to server3, whose binlog filters are the master's: %v", err)
	}
}

// TestSwitchRefusesLongQueryOnNewMaster: an UPDATE on the new master
// waits on a row lock another session holds; it runs longer than
// running_seconds_limit, so the switch is refused naming the statement
// (MHA refuses long queries on the new master); nothing changes.
func TestSwitchRefusesLongQueryOnNewMaster(t *testing.T) {
	ctx := context.Background()
	c := testbed.Start(t, testbed.Options{N: 3})
	s1, s2 := c.Servers[0], c.Servers[1]
	if err := s1.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE test.t (id INT PRIMARY KEY, v INT)",
		"INSERT INTO test.t VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	app := loadApp(t, c)

	holder, err := s2.Root().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, "SELECT * FROM test.t WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	waiter, err := s2.Root().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close()
	var waiterID string
	if err := waiter.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&waiterID); err != nil {
		t.Fatal(err)
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := waiter.ExecContext(ctx, "UPDATE test.t SET v = v + 1 WHERE id = 1")
		blocked <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := s2.QueryString(ctx, "SELECT COUNT(*) FROM information_schema.processlist WHERE id = "+waiterID+" AND info LIKE 'UPDATE test.t%' AND time >= 1")
		if n == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the blocked UPDATE never ran for a second on server2")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := switchStatesOf(t, ctx, c)
	for _, checkOnly := range []bool{true, false} {
		_, err = Switch(ctx, Options{App: app, Yes: true, Out: tlog{t}, NewMaster: s2.Addr(),
			Switch: SwitchOptions{CheckOnly: checkOnly, RunningSecondsLimit: time.Second}})
		if !errors.Is(err, ErrRefused) || !containsAll(err.Error(), "on the new master", s2.Addr(), "id "+waiterID, "UPDATE test.t SET v = v + 1 WHERE id = 1") {
			t.Fatalf("switch (check only %v) with an UPDATE waiting on a lock on the new master: %v, want refused naming it", checkOnly, err)
		}
	}
	wantUnchanged(t, ctx, c, before, "a refused switch")

	// The UPDATE must not commit on the replica: kill it, then let go of the lock.
	if err := s2.Exec(ctx, "KILL QUERY "+waiterID); err != nil {
		t.Fatal(err)
	}
	if err := <-blocked; err == nil {
		t.Fatal("the blocked UPDATE on server2 was not interrupted")
	}
	if _, err := holder.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
}

// TestSwitchCheckOnly: --check_only runs every check, elects and prints
// the plan, journals nothing and changes nothing on any server, also
// while the application writes; it returns nil when the switch would go
// ahead.
func TestSwitchCheckOnly(t *testing.T) {
	ctx := context.Background()
	c := testbed.Start(t, testbed.Options{N: 3})
	s1, s2 := c.Servers[0], c.Servers[1]
	if err := s1.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE test.w (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	app := loadApp(t, c)
	// An idle application connection: a switch's fence would kill it.
	idle := appDB(t, s1)
	idle.SetMaxOpenConns(1)
	conn, err := idle.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	before := switchStatesOf(t, ctx, c)
	j := &phaseJournal{}
	var out strings.Builder
	rep, err := Switch(ctx, Options{App: app, Journal: j, Out: &out, NewMaster: s2.Addr(), OrigMasterIsNewSlave: true,
		Switch: SwitchOptions{CheckOnly: true}})
	t.Log(out.String())
	if err != nil {
		t.Fatalf("--check_only: %v", err)
	}
	if !rep.OK || rep.NewMaster != "server2" || rep.OldMaster != "server1" {
		t.Errorf("report: ok=%v old=%q new=%q, want ok, server1 -> server2", rep.OK, rep.OldMaster, rep.NewMaster)
	}
	if !containsAll(out.String(), "--check_only", "Nothing was changed") || strings.Contains(out.String(), "(yes/NO)") {
		t.Errorf("output does not say the check passed without asking:\n%s", out.String())
	}
	if len(j.phases) != 0 {
		t.Errorf("--check_only journaled %v", j.phases)
	}
	wantUnchanged(t, ctx, c, before, "--check_only")
	if _, err := conn.ExecContext(ctx, "INSERT INTO test.w VALUES (1)"); err != nil {
		t.Errorf("--check_only killed an application connection or fenced the master: %v", err)
	}
}

// TestSwitchSkipFlags: --skip_change_master leaves the other replicas
// replicating from the old master; --skip_disable_read_only promotes the
// new master but leaves it read_only=1.
func TestSwitchSkipFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts SwitchOptions
	}{
		{"skip_change_master", SwitchOptions{SkipChangeMaster: true}},
		{"skip_disable_read_only", SwitchOptions{SkipDisableReadOnly: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := testbed.Start(t, testbed.Options{N: 3})
			s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
			if err := s1.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE test.w (id INT PRIMARY KEY)",
				"INSERT INTO test.w VALUES (1)"); err != nil {
				t.Fatal(err)
			}
			if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			app := loadApp(t, c)
			var out strings.Builder
			rep, err := Switch(ctx, Options{App: app, Yes: true, Out: &out, NewMaster: s2.Addr(), Switch: tc.opts})
			t.Log(out.String())
			if err != nil {
				t.Fatalf("switch: %v", err)
			}
			st1, st2, st3 := switchStateOf(t, ctx, s1), switchStateOf(t, ctx, s2), switchStateOf(t, ctx, s3)
			if st1.readOnly != "1" || st1.masterPort != "" {
				t.Errorf("old master: %+v, want read_only=1 and no replica", st1)
			}
			if st2.masterPort != "" {
				t.Errorf("new master still replicates from port %s", st2.masterPort)
			}
			line := strings.Join(rep.Lines, "\n")
			switch {
			case tc.opts.SkipChangeMaster:
				if st3.masterPort != fmt.Sprint(s1.Port) {
					t.Errorf("server3 replicates from port %q, want the old master's %d (--skip_change_master)", st3.masterPort, s1.Port)
				}
				wantReplicaOf(t, ctx, s3, s1, false)
				if st2.readOnly != "0" {
					t.Errorf("new master read_only=%s", st2.readOnly)
				}
				if !containsAll(line, s3.Addr(), "left replicating from", "--skip_change_master") {
					t.Errorf("report does not say server3 was left on the old master:\n%s", line)
				}
			case tc.opts.SkipDisableReadOnly:
				if st2.readOnly != "1" {
					t.Errorf("new master read_only=%s, want 1 (--skip_disable_read_only)", st2.readOnly)
				}
				wantReplicaOf(t, ctx, s3, s2, false)
				if !containsAll(line, "left read_only=1", "--skip_disable_read_only") {
					t.Errorf("report does not say the new master was left read-only:\n%s", line)
				}
				if _, err := appDB(t, s2).ExecContext(ctx, "INSERT INTO test.w VALUES (2)"); err == nil {
					t.Error("the application could write on the read-only new master")
				}
			}
		})
	}
}

// TestSwitchOnlineChangeArgsSSH: --ssh_reachable=0 keeps the old master's
// SSH user and address from master_ip_online_change_script; otherwise its
// arguments are MHA's.
func TestSwitchOnlineChangeArgsSSH(t *testing.T) {
	orig := &config.Server{Name: "server1", Hostname: "db1", IP: "10.0.0.1", Port: 3306, User: "mha", SSHUser: "root",
		SSHHost: "db1-admin", SSHIP: "10.1.0.1", SSHPort: 2222}
	newM := &config.Server{Name: "server2", Hostname: "db2", IP: "10.0.0.2", Port: 3306, User: "mha", SSHUser: "root"}
	for _, tc := range []struct {
		reach   SSHReachability
		wantSSH bool
	}{{SSHUnknown, true}, {SSHReachable, true}, {SSHUnreachable, false}} {
		r := &run{opts: Options{Switch: SwitchOptions{OrigMasterSSH: tc.reach}}, out: &strings.Builder{}}
		args := r.onlineChangeArgs("stop", orig, newM)
		got := map[string]bool{}
		for _, a := range args {
			got[a.Name] = true
		}
		for _, name := range []string{"orig_master_ssh_user", "orig_master_ssh_host", "orig_master_ssh_ip", "orig_master_ssh_port"} {
			if got[name] != tc.wantSSH {
				t.Errorf("ssh_reachable=%d: --%s given %v, want %v", tc.reach.MHA(), name, got[name], tc.wantSSH)
			}
		}
		for _, name := range []string{"command", "orig_master_host", "new_master_ssh_user", "orig_master_password"} {
			if !got[name] {
				t.Errorf("ssh_reachable=%d: --%s missing", tc.reach.MHA(), name)
			}
		}
	}
	for v, want := range map[int]SSHReachability{0: SSHUnreachable, 1: SSHReachable, 2: SSHUnknown} {
		if got, err := ParseSSHReachable(v); err != nil || got != want || got.MHA() != v {
			t.Errorf("ParseSSHReachable(%d) = %v, %v", v, got, err)
		}
	}
	if _, err := ParseSSHReachable(3); err == nil {
		t.Error("ParseSSHReachable(3) accepted")
	}
}
