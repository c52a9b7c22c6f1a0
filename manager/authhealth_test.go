package manager_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/testbed"
)

// The log lines of a refused login (manager/authhealth.go).
const (
	logLoginRefused  = `msg="server refuses the manager's login"`
	logLoginAccepted = `msg="server accepts the manager's login again"`
	rotatedPassword  = "rotated-pw-4e1b"
)

// setMHAPassword changes the manager user's password on s only
// (sql_log_bin=0: it does not replicate to the other servers).
func setMHAPassword(ctx context.Context, s *testbed.Server, pw string) error {
	return s.Exec(ctx, "SET sql_log_bin=0",
		fmt.Sprintf("ALTER USER '%s'@'%%' IDENTIFIED BY '%s'", testbed.MHAUser, pw),
		"SET sql_log_bin=1")
}

// killMHAConnections kills the manager user's open connections on s, so
// that the managers' probes of it reconnect (and meet the new password).
func killMHAConnections(ctx context.Context, t *testing.T, s *testbed.Server) {
	t.Helper()
	rows, err := s.QueryRows(ctx, "SELECT id FROM information_schema.processlist WHERE user='"+testbed.MHAUser+"'")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		s.Exec(ctx, "KILL "+r["id"]) // a connection that ended by itself is fine
	}
}

// waitServerHealth polls the status of every manager until server name
// has health want on all of them (and, for auth-error, a detail with the
// MySQL error), and returns the leader's view of it.
func (e *env) waitServerHealth(ctx context.Context, name, want string, d time.Duration) api.ServerStatus {
	e.t.Helper()
	deadline := time.Now().Add(d)
	var last []string
	for {
		last = last[:0]
		done := true
		var seen api.ServerStatus
		for i := range e.mc.Nodes {
			st, err := e.mc.NodeClient(i).Status(ctx)
			if err != nil || len(st.Apps) == 0 {
				done = false
				last = append(last, fmt.Sprintf("node %d: %v", i, err))
				continue
			}
			s := st.Apps[0].Server(name)
			if s == nil {
				e.t.Fatalf("node %d: no server %s in %+v", i, name, st.Apps[0])
			}
			last = append(last, fmt.Sprintf("node %d: health %q detail %q", i, s.Health, s.HealthDetail))
			ok := s.Health == want
			if want == api.HealthAuthError {
				ok = ok && strings.Contains(s.HealthDetail, "Access denied")
			}
			if !ok {
				done = false
			}
			seen = *s
		}
		if done {
			return seen
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			e.t.Fatalf("%s never had health %q on every manager within %s: %s", name, want, d, strings.Join(last, "; "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// logLine returns the first line of any manager's log that contains every
// part, "" when there is none.
func (e *env) logLine(parts ...string) string {
	for i := range e.mc.Nodes {
		for _, line := range strings.Split(e.mc.Log(i), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return line
			}
		}
	}
	return ""
}

// waitLogLine polls the managers' logs for a line with every part.
func (e *env) waitLogLine(d time.Duration, parts ...string) string {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for {
		if l := e.logLine(parts...); l != "" {
			return l
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no manager logged a line with %q within %s", parts, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLoginRefusedShowsAuthError: the manager user's password is changed
// on one server only (a rotated password the managers do not know). The
// status of every manager shows that server with health auth-error and
// MySQL's "Access denied" error, the managers log when it starts and when
// it ends, and when it is the master nothing fails over: a server that
// refuses our login is alive.
func TestLoginRefusedShowsAuthError(t *testing.T) {
	ctx := ctxT(t, 4*time.Minute)
	e := startEnv(t, testbed.Options{N: 3, NoSSH: true}, nil, nil)
	master := e.db.Master()
	e.waitHealthy(master)

	cases := []struct {
		name   string
		server *testbed.Server
	}{
		{"replica", e.db.Servers[1]},
		{"master", master},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.server
			if err := setMHAPassword(ctx, s, rotatedPassword); err != nil {
				t.Fatal(err)
			}
			restored := false
			t.Cleanup(func() {
				if !restored {
					setMHAPassword(context.Background(), s, testbed.MHAPassword)
				}
			})
			if s == master {
				// The probes hold a connection open: make them log in again.
				killMHAConnections(ctx, t, s)
			}
			t0 := time.Now()
			got := e.waitServerHealth(ctx, s.Name(), api.HealthAuthError, 30*time.Second)
			t.Logf("%s: health %s after %s: %s", s.Name(), got.Health, time.Since(t0).Round(time.Millisecond), got.HealthDetail)
			if !strings.Contains(got.HealthDetail, "'"+testbed.MHAUser+"'@") || strings.Contains(got.HealthDetail, rotatedPassword) ||
				strings.Contains(got.HealthDetail, testbed.MHAPassword) {
				t.Fatalf("detail %q: want the user named and no password", got.HealthDetail)
			}
			line := e.waitLogLine(10*time.Second, logLoginRefused, "server="+s.Name(), "user="+testbed.MHAUser, "Access denied")
			t.Logf("start line: %s", line)
			if s == master {
				// Every manager's probe meets the refusal too.
				e.waitLogLine(20*time.Second, logLoginRefused, "server="+s.Name(), "source=probe")
				// Alive: no lock, no failover, for a while.
				e.watchLeader(ctx, 8*time.Second, func(a api.AppStatus) {
					if a.Lock != nil || len(a.Journal) > 0 || strings.HasPrefix(a.Verdict, "DeadMaster") {
						t.Fatalf("master refusing the login treated as dead: verdict %s lock %+v journal %+v", a.Verdict, a.Lock, a.Journal)
					}
					if masterName(&a) != master.Name() {
						t.Fatalf("master changed to %q", masterName(&a))
					}
				})
				if h := e.history(ctx); len(h) != 0 {
					t.Fatalf("history %+v, want none: a master that refuses the login is alive", h)
				}
			}

			if err := setMHAPassword(ctx, s, testbed.MHAPassword); err != nil {
				t.Fatal(err)
			}
			restored = true
			e.waitServerHealth(ctx, s.Name(), api.HealthOK, 30*time.Second)
			end := e.waitLogLine(10*time.Second, logLoginAccepted, "server="+s.Name(), "source=discovery")
			t.Logf("end line: %s", end)
			for i := range e.mc.Nodes {
				if strings.Contains(e.mc.Log(i), rotatedPassword) || strings.Contains(e.mc.Log(i), testbed.MHAPassword) {
					t.Fatalf("the log of node %d holds a password", i)
				}
			}
		})
	}
}
