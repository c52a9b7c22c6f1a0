package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/testbed"
)

// tlog writes pipeline output to t.Log line by line.
type tlog struct{ t testing.TB }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// loadApp writes the test bed's app1.conf (plus extra lines) and loads it.
func loadApp(t testing.TB, c *testbed.Cluster, extra ...string) *config.App {
	t.Helper()
	dir := t.TempDir()
	path, err := c.WriteAppConfig(dir, extra...)
	if err != nil {
		t.Fatal(err)
	}
	app, err := config.Load(path, "")
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return app
}

// startWithT1 starts a test bed whose servers all hold test.t1 with row 1.
func startWithT1(t *testing.T, opts testbed.Options) *testbed.Cluster {
	t.Helper()
	ctx := context.Background()
	c := testbed.Start(t, opts)
	if err := c.Servers[0].Exec(ctx, "CREATE DATABASE IF NOT EXISTS test",
		"CREATE TABLE test.t1 (a INT PRIMARY KEY)", "INSERT INTO test.t1 VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// deadMasterWalkthrough starts three servers in the walkthrough's state
// (replication by GTID or file/position), shuts the master down and
// loads the application's configuration: where every dead-master test
// starts.
func deadMasterWalkthrough(t *testing.T, gtid bool) (*testbed.Cluster, *config.App) {
	t.Helper()
	c := testbed.Start(t, testbed.Options{N: 3, GTID: gtid})
	if err := c.Walkthrough(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Servers[0].Shutdown(); err != nil {
		t.Fatal(err)
	}
	return c, loadApp(t, c)
}

// interruptedFailover runs a dead-master failover (server1 dead, server2
// the new master) whose journal reports lost leadership when the step
// failBegin begins, as a deposed leader sees it, and returns the journal
// it wrote.
func interruptedFailover(t *testing.T, c *testbed.Cluster, app *config.App, failBegin string) *LocalJournal {
	t.Helper()
	local, err := OpenLocalJournal(filepath.Join(t.TempDir(), "journal.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = DeadMaster(context.Background(), FailoverOptions{Options: Options{App: app, Yes: true, Out: tlog{t},
		NewMaster: c.Servers[1].Addr(), Journal: interruptingJournal{local, failBegin}}, DeadMaster: c.Servers[0].Addr()})
	if !errors.Is(err, ErrMayNotAct) {
		t.Fatalf("interrupted failover: %v", err)
	}
	return local
}

func wantRows(t testing.TB, ctx context.Context, s *testbed.Server, want ...int) {
	t.Helper()
	got, err := s.Rows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s holds rows %v, want %v", s.Name(), got, want)
	}
}

// wantReplicaOf checks that s replicates from m, by GTID or not.
func wantReplicaOf(t testing.TB, ctx context.Context, s, m *testbed.Server, gtid bool) {
	t.Helper()
	if err := s.WaitReplicating(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := s.SlaveStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st["Master_Port"] != fmt.Sprint(m.Port) {
		t.Fatalf("%s replicates from port %s, want %s (%s)", s.Name(), st["Master_Port"], fmt.Sprint(m.Port), m.Name())
	}
	wantUsing := "No"
	if gtid {
		wantUsing = "Slave_Pos"
	}
	if st["Using_Gtid"] != wantUsing {
		t.Fatalf("%s Using_Gtid=%s, want %s", s.Name(), st["Using_Gtid"], wantUsing)
	}
}

// TestWalkthrough reproduces the reference walkthrough end to end, in both
// replication modes: server1 shut down, server2 named new master, rows
// 1,2,3 on servers 2 and 3, server3 replicating from server2, a new write
// reaches server3, server1 rejoins and catches up.
func TestWalkthrough(t *testing.T) {
	for _, tc := range []struct {
		gtid   bool
		method string // apply_method; "" keeps the default (auto: statements for these few events)
	}{{false, ""}, {true, ""}, {false, "replication"}, {true, "replication"}} {
		name := map[bool]string{false: "filepos", true: "gtid"}[tc.gtid]
		if tc.method != "" {
			name += "/apply_method=" + tc.method
		}
		gtid := tc.gtid
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			c, app := deadMasterWalkthrough(t, gtid)
			s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
			wantMethod := "statements"
			if tc.method != "" {
				wantMethod = tc.method
				for _, s := range app.Servers {
					s.ApplyMethod = tc.method
				}
			}
			journal, err := OpenLocalJournal(filepath.Join(app.ManagerWorkdir, "journal.json"))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			rep, err := DeadMaster(ctx, FailoverOptions{
				Options:    Options{App: app, Yes: true, Out: &out, NewMaster: s2.Addr(), Journal: journal},
				DeadMaster: s1.Addr(),
			})
			t.Log(out.String())
			if err != nil {
				t.Fatalf("failover: %v", err)
			}
			if !strings.Contains(out.String(), "From:") || !strings.Contains(out.String(), "(new master)") {
				t.Errorf("no From:/To: plan printed")
			}
			if strings.Contains(out.String(), testbed.MHAPassword) || strings.Contains(out.String(), testbed.ReplPassword) {
				t.Errorf("a password appears in the output")
			}
			wantRows(t, ctx, s2, 1, 2, 3)
			wantRows(t, ctx, s3, 1, 2, 3)
			if len(rep.Applied) == 0 {
				t.Errorf("the report lists no applied logs")
			}
			for _, a := range rep.Applied {
				if a.Method != wantMethod {
					t.Errorf("%s: events applied with %q (fallback %q), want %q", a.Server, a.Method, a.Fallback, wantMethod)
				}
			}
			wantReplicaOf(t, ctx, s3, s2, gtid)
			if st, _ := s2.SlaveStatus(ctx); st != nil {
				t.Errorf("new master still has replica status: %v", st)
			}
			if ro, _ := s2.QueryString(ctx, "SELECT @@read_only"); ro != "0" {
				t.Errorf("new master read_only=%s", ro)
			}
			if err := s2.Exec(ctx, "INSERT INTO test.t1 VALUES (4)"); err != nil {
				t.Fatal(err)
			}
			if err := s3.WaitCaughtUp(ctx, s2, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			wantRows(t, ctx, s3, 1, 2, 3, 4)
			if rep.Lost != nil {
				t.Errorf("report says events were lost: %+v", rep.Lost)
			}
			if _, err := os.Stat(rep.Path); err != nil {
				t.Errorf("report JSON not written: %v", err)
			}
			prog, err := journal.Progress()
			if err != nil {
				t.Fatal(err)
			}
			for _, ph := range []string{PhaseCheck, PhaseShutdown, PhaseRecover, PhaseReplicas, PhaseCleanup} {
				if !prog.Completed[ph] {
					t.Errorf("journal lacks completed phase %s", ph)
				}
			}
			if prog.Plan == nil || prog.Plan.NewMaster != "server2" || prog.Plan.NewMasterPos.IsZero() {
				t.Errorf("journal plan incomplete: %+v", prog.Plan)
			}
			if err := CheckLastFailover(app, time.Now()); !errors.Is(err, ErrRecentFailover) {
				t.Errorf("CheckLastFailover after a failover: %v", err)
			}

			// server1 is repaired and rejoins.
			if err := s1.Start(ctx); err != nil {
				t.Fatal(err)
			}
			res, err := Rejoin(ctx, RejoinOptions{Options: Options{App: app}, Host: s1.Addr()})
			if err != nil {
				t.Fatalf("rejoin: %v (%+v)", err, res)
			}
			wantReplicaOf(t, ctx, s1, s2, gtid)
			if err := s1.WaitCaughtUp(ctx, s2, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			wantRows(t, ctx, s1, 1, 2, 3, 4)
		})
	}
}
