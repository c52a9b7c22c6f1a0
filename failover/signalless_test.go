package failover

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// TestSignallessMasterTiming measures the failover of a master that gives
// no signal: its mariadbd is paused (SIGSTOP: the kernel still accepts
// TCP connections, nothing answers), the replicas' IO threads are still
// connected to it. "paused" keeps the host's sshd answering; "frozen
// host" also points the dead master's SSH at a listener that never
// answers (a host whose packets vanish, as far as SSH can tell). The
// clock starts when DeadMaster is called. connect_timeout=1 and
// ssh_connection_timeout=5 are the configuration's defaults.
//
// Figures: go test -count=1 -run TestSignallessMasterTiming -v ./failover/ | grep took
func TestSignallessMasterTiming(t *testing.T) {
	cases := []struct {
		name       string
		frozenSSH  bool
		maxSeconds float64
	}{
		{"paused", false, 3.5},
		{"frozen host", true, 6.5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := testbed.Start(t, testbed.Options{N: 3})
			s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
			if err := s1.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE test.t1 (a INT PRIMARY KEY)",
				"INSERT INTO test.t1 VALUES (1),(2),(3)"); err != nil {
				t.Fatal(err)
			}
			if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			app := loadApp(t, c)
			if tc.frozenSSH {
				app.Server("server1").SSHPort = testbed.SilentListener(t)
			}
			if err := s1.Pause(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s1.Resume() })
			t0 := time.Now()
			rep, err := DeadMaster(ctx, FailoverOptions{
				Options:    Options{App: app, Yes: true, Out: tlog{t}, NewMaster: s2.Addr()},
				DeadMaster: s1.Addr(),
			})
			took := time.Since(t0)
			if err != nil {
				t.Fatalf("failover: %v", err)
			}
			var phases []string
			for _, p := range rep.Phases {
				phases = append(phases, p.Phase+" "+p.Took.Round(time.Millisecond).String())
			}
			t.Logf("%s: failover took %.3f s (%s)", tc.name, took.Seconds(), strings.Join(phases, "; "))
			wantRows(t, ctx, s2, 1, 2, 3)
			wantRows(t, ctx, s3, 1, 2, 3)
			wantReplicaOf(t, ctx, s3, s2, false)
			if tc.frozenSSH && rep.Lost == nil {
				t.Errorf("SSH never answered, yet the report names no lost range")
			}
			if took.Seconds() > tc.maxSeconds {
				t.Errorf("failover of a %s master took %.3f s, want at most %.1f s", tc.name, took.Seconds(), tc.maxSeconds)
			}
		})
	}
}
