package failover

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
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
// The "judged" cases run as the managers' automatic failover does
// (DeadJudgedUnreachable: a quorum verdict said the master is unreachable):
// phase 1 does not wait for the dead master's connect timeout. In "frozen
// host judged and dialled ahead", the recovery says that the dead master's
// SSH has been dialled since 3.5 s before the run (as a manager's pre-warm
// that dialled at the first suspicion and again after that dial failed
// would; sshDialledSince wraps the real recovery and only claims that
// start): with ssh_connection_timeout=3 that bound has passed, and the
// tail does not wait for SSH at all (before issue 16 item 4's last step it
// waited for the run's own 3 s dial).
//
// Figures: go test -count=1 -run TestSignallessMasterTiming -v ./failover/ | grep took
func TestSignallessMasterTiming(t *testing.T) {
	cases := []struct {
		name       string
		frozenSSH  bool
		judged     bool
		sshTimeout time.Duration // 0: the default 5 s
		dialledAgo time.Duration // the recovery claims its dial of the dead master started this long before the run
		maxSeconds float64
	}{
		{"paused", false, false, 0, 0, 3.5},
		{"frozen host", true, false, 0, 0, 6.5},
		{"paused and judged", false, true, 0, 0, 3},
		{"frozen host judged and dialled ahead", true, true, 3 * time.Second, 3500 * time.Millisecond, 3},
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
			if tc.sshTimeout > 0 {
				app.Server("server1").SSHConnectTimeout = tc.sshTimeout
			}
			var rec LogRecovery
			if tc.dialledAgo > 0 {
				rec = &sshDialledSince{LogRecovery: DefaultRecovery(), dead: "server1", since: time.Now().Add(-tc.dialledAgo)}
			}
			if err := s1.Pause(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s1.Resume() })
			t0 := time.Now()
			rep, err := DeadMaster(ctx, FailoverOptions{
				Options:    Options{App: app, Yes: true, Out: tlog{t}, NewMaster: s2.Addr(), DeadJudgedUnreachable: tc.judged, Recovery: rec},
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
			took1 := map[string]time.Duration{}
			for _, p := range rep.Phases {
				took1[p.Phase] = p.Took
			}
			if c := took1["connect to all servers"]; tc.judged && c > 500*time.Millisecond {
				t.Errorf("connecting took %s: a judged-unreachable dead master's connect_timeout (1 s) was waited for", c)
			}
			// Phase 2 waits for the fence's connect to the paused master
			// (connect_timeout, 1 s: no shutdown_script here), not for SSH.
			if p2 := took1[PhaseShutdown]; tc.dialledAgo > 0 && p2 > 2*time.Second {
				t.Errorf("phase 2 took %s: the tail waited for SSH although ssh_connection_timeout (%s) had passed since the first dial", p2, tc.sshTimeout)
			}
			if took.Seconds() > tc.maxSeconds {
				t.Errorf("failover of a %s master took %.3f s, want at most %.1f s", tc.name, took.Seconds(), tc.maxSeconds)
			}
		})
	}
}

// sshDialledSince is the real recovery, claiming that its dial of dead
// started at since (SSHDialStarted), as a manager's pre-warm reports the
// first dial of a suspicion.
type sshDialledSince struct {
	LogRecovery
	dead  string
	since time.Time
}

func (r *sshDialledSince) SSHDialStarted(s *config.Server) (time.Time, bool) {
	return r.since, s.Name == r.dead
}
