package failover

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// TestSwitchWrongReplPassword: with a wrong repl_password the replicas
// cannot connect to their new master. An online switch (the master is
// alive) is refused in its check phase, naming the new master and the
// server's "Access denied", with nothing changed. A dead-master failover
// cannot refuse (there is no master to keep): the repointed replica's
// start is verified, so it fails naming server3 and "Access denied" (it
// once exited 0 with the replicas stuck in Connecting). Never with the
// password in the error.
func TestSwitchWrongReplPassword(t *testing.T) {
	const wrong = "not-the-repl-password"
	for _, dead := range []bool{false, true} {
		t.Run(map[bool]string{false: "switch", true: "dead master"}[dead], func(t *testing.T) {
			ctx := context.Background()
			c := testbed.Start(t, testbed.Options{N: 3, GTID: true, NoSSH: true})
			if err := c.Servers[0].Exec(ctx, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE test.t1 (a INT PRIMARY KEY)",
				"INSERT INTO test.t1 VALUES (1)"); err != nil {
				t.Fatal(err)
			}
			if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			app := loadApp(t, c)
			for _, s := range app.Servers {
				s.ReplPassword = wrong
			}
			t0 := time.Now()
			var err error
			want := []string{"server3", "Access denied"}
			if dead {
				if err := c.Servers[0].Kill9(); err != nil {
					t.Fatal(err)
				}
				_, err = DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: tlog{t}, NewMaster: c.Servers[1].Addr()},
					DeadMaster: c.Servers[0].Addr()})
			} else {
				_, err = Switch(ctx, Options{App: app, Yes: true, Out: tlog{t}, NewMaster: c.Servers[1].Addr()})
				want = []string{"server2", "Access denied", "repl_user"}
				if !errors.Is(err, ErrRefused) {
					t.Errorf("the switch was not refused before it changed anything: %v", err)
				}
				if ro, qerr := c.Servers[0].QueryString(ctx, "SELECT @@read_only"); qerr != nil || ro != "0" {
					t.Errorf("the old master's read_only is %q (%v) after a refused switch", ro, qerr)
				}
				wantReplicaOf(t, ctx, c.Servers[2], c.Servers[0], true)
			}
			if err == nil {
				t.Fatal("it succeeded although server3 cannot replicate from the new master")
			}
			t.Log(err)
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not name %q: %v", w, err)
				}
			}
			if strings.Contains(err.Error(), wrong) {
				t.Errorf("the password appears in the error")
			}
			if took := time.Since(t0); took > 10*time.Second {
				t.Errorf("a refused login took %s to report; it cannot cure itself", took)
			}
		})
	}
}

// TestRepointKeepsHeartbeatPeriod: the replicas replicate with a 0.25 s
// MASTER_HEARTBEAT_PERIOD (the detector's replica-silence threshold counts
// on it). After a dead-master failover (file/position and GTID) the
// repointed replica still has 0.25 s, not MariaDB's default
// (slave_net_timeout/2) that RESET SLAVE ALL leaves behind: on the code
// before, it had 30 s after the failover, so the next failover of a
// silent master would have waited half a minute for the replicas' word.
func TestRepointKeepsHeartbeatPeriod(t *testing.T) {
	for _, gtid := range []bool{false, true} {
		t.Run(map[bool]string{false: "filepos", true: "gtid"}[gtid], func(t *testing.T) {
			ctx := context.Background()
			c := startWithT1(t, testbed.Options{N: 3, GTID: gtid, NoSSH: true, HeartbeatPeriod: 250 * time.Millisecond})
			s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
			period := func(s *testbed.Server) string {
				v, err := s.QueryString(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'SLAVE_HEARTBEAT_PERIOD'")
				if err != nil {
					t.Fatalf("heartbeat period of %s: %v", s.Name(), err)
				}
				return v
			}
			if p := period(s3); p != "0.250" {
				t.Fatalf("server3's heartbeat period before the failover is %q, want 0.250 (the test bed's)", p)
			}
			if err := s1.Kill9(); err != nil {
				t.Fatal(err)
			}
			if _, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: loadApp(t, c), Yes: true, Out: tlog{t}, NewMaster: s2.Addr()},
				DeadMaster: s1.Addr()}); err != nil {
				t.Fatalf("failover: %v", err)
			}
			wantReplicaOf(t, ctx, s3, s2, gtid)
			if p := period(s3); p != "0.250" {
				t.Errorf("server3's heartbeat period after the failover is %q, want the 0.250 it had", p)
			}
		})
	}
}
