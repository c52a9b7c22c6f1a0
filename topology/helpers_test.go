package topology

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/testbed"
)

// loadApp writes the cluster's app1.conf and loads it the way mhactl does.
func loadApp(t *testing.T, c *testbed.Cluster, extra ...string) *config.App {
	t.Helper()
	path, err := c.WriteAppConfig(t.TempDir(), extra...)
	if err != nil {
		t.Fatal(err)
	}
	app, err := config.Load(path, "")
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return app
}

func discover(t *testing.T, app *config.App) *Topology {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return DiscoverWith(ctx, app, Options{ConnectTimeout: time.Second})
}

// findProblem returns the first problem with code about server, or nil.
func findProblem(ps []Problem, code, server string) *Problem {
	for i := range ps {
		if ps[i].Code == code && ps[i].Server == server {
			return &ps[i]
		}
	}
	return nil
}

// wantProblem fails unless a problem with code about server exists whose
// What and Fix together contain every fragment.
func wantProblem(t *testing.T, ps []Problem, code, server string, sev Severity, fragments ...string) {
	t.Helper()
	var seen []Problem
	for _, p := range ps {
		if p.Code != code || p.Server != server {
			continue
		}
		seen = append(seen, p)
		all := true
		for _, f := range fragments {
			all = all && strings.Contains(p.What+" "+p.Fix, f)
		}
		if all {
			if p.Severity != sev {
				t.Errorf("%s problem for %s has severity %s, want %s", code, server, p.Severity, sev)
			}
			return
		}
	}
	if len(seen) == 0 {
		t.Fatalf("no %s problem for %s; problems:\n%s", code, server, dump(ps))
	}
	t.Fatalf("no %s problem for %s contains all of %q; those found:\n%s", code, server, fragments, dump(seen))
}

func dump(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

// pollCheck rediscovers until cond holds for the problems, or fails after 20s.
func pollCheck(t *testing.T, app *config.App, cond func([]Problem) bool) []Problem {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ps := Check(discover(t, app))
		if cond(ps) {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after 20s; problems:\n%s", dump(ps))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run executes statements as root on one pooled connection. A statement
// list that sets sql_log_bin=0 must set it back: the connection returns to
// the pool with its session variables.
func run(t *testing.T, s *testbed.Server, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Exec(ctx, stmts...); err != nil {
		t.Fatal(err)
	}
}
