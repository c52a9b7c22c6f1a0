package failover

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// TestResumeOnAnotherManagerHost runs the walkthrough failover with a
// journal that stops it after phase 2 (the dead master's tail saved,
// phase 3 refused), deletes every file the run saved in its
// manager_workdir and resumes from the journal with another, empty
// manager_workdir: a new Raft leader on another host. With the dead
// master's SSH still reachable the tail is saved again, checked against
// the plan and applied (rows 1,2,3 on servers 2 and 3, nothing applied
// twice). With its SSH unreachable the resume halts with ErrUnsafeResume
// naming the missing file, the recording host and the operator's options,
// and makes server2 neither writable nor holding row 3; once the operator
// accepts the loss (touch <file>.accept-loss) the resume completes without
// the tail's transaction and reports it as lost.
func TestResumeOnAnotherManagerHost(t *testing.T) {
	cases := []struct {
		name    string
		gtid    bool
		sshDown bool
	}{
		{"gtid/ssh reachable", true, false},
		{"filepos/ssh reachable", false, false},
		{"gtid/ssh unreachable", true, true},
		{"filepos/ssh unreachable", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c, app := deadMasterWalkthrough(t, tc.gtid)
			s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
			local := interruptedFailover(t, c, app, PhaseRecover)
			prog, err := local.Progress()
			if err != nil {
				t.Fatal(err)
			}
			plan := prog.Plan
			if plan == nil || !prog.Completed[PhaseShutdown] || prog.Completed[PhaseRecover] {
				t.Fatalf("progress %+v: want phases 1 and 2 completed, 3 not", prog)
			}
			host, _ := os.Hostname()
			if plan.TailFile == "" || plan.TailGTID == "" || plan.ManagerHost != host {
				t.Fatalf("plan records tail %q GTID %q host %q; want a saved tail with its GTID, saved on %q",
					plan.TailFile, plan.TailGTID, plan.ManagerHost, host)
			}
			// Another host: the old workdir's saved files are gone and
			// the resuming manager has its own, empty workdir.
			saved, _ := filepath.Glob(filepath.Join(app.ManagerWorkdir, "*.binlog*"))
			if len(saved) == 0 {
				t.Fatalf("no saved files in %s", app.ManagerWorkdir)
			}
			for _, f := range saved {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
			app2 := loadApp(t, c)
			if app2.ManagerWorkdir == app.ManagerWorkdir {
				t.Fatal("the resuming manager must have another workdir")
			}
			if tc.sshDown {
				// Only the dead master's host is gone: the relay diff
				// (file/position) still comes from server3 over SSH.
				closed, err := testbed.FreePort("127.0.0.1") // nothing listens there
				if err != nil {
					t.Fatal(err)
				}
				app2.Server(s1.Addr()).SSHPort = closed
			}
			before := []string{gtidBinlogPos(t, ctx, s2), gtidBinlogPos(t, ctx, s3)}

			var out bytes.Buffer
			rep, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app2, Yes: true, Out: &out, Journal: local, Resume: &prog},
				DeadMaster: s1.Addr()})
			t.Log(out.String())
			if tc.sshDown {
				if !errors.Is(err, ErrUnsafeResume) {
					t.Fatalf("resume without the tail and without SSH: %v, want ErrUnsafeResume", err)
				}
				for _, want := range []string{plan.TailFile, plan.TailGTID, host, "accept-loss", app2.ManagerWorkdir} {
					if rep == nil || !strings.Contains(rep.Error, want) {
						t.Errorf("the report's error must name %q: %+v", want, rep)
					}
				}
				if ro, _ := s2.QueryString(ctx, "SELECT @@read_only"); ro != "1" {
					t.Errorf("server2 was made writable (read_only=%s) by a halted resume", ro)
				}
				if got := gtidBinlogPos(t, ctx, s2); !tc.gtid && got != before[0] {
					// file/position: nothing applied before the tail either
					// (the relay diff comes from server3 over SSH, also down).
					t.Errorf("server2 gtid_binlog_pos %s after the halted resume, %s before", got, before[0])
				}
				wantNoRow(t, ctx, s2, 3)

				// The operator accepts the loss (the command the report
				// names) and resumes: the failover completes without row 3.
				marker := filepath.Join(app2.ManagerWorkdir, filepath.Base(plan.TailFile)) + acceptLossSuffix
				if err := os.WriteFile(marker, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				prog2, err := local.Progress()
				if err != nil {
					t.Fatal(err)
				}
				out.Reset()
				rep, err = DeadMaster(ctx, FailoverOptions{Options: Options{App: app2, Yes: true, Out: &out, Journal: local, Resume: &prog2},
					DeadMaster: s1.Addr()})
				t.Log(out.String())
				if err != nil {
					t.Fatalf("resume after accepting the loss: %v", err)
				}
				if rep.Lost == nil || !strings.Contains(out.String(), "accepted its loss") {
					t.Errorf("the accepted loss must be reported: lost %+v", rep.Lost)
				}
				wantRows(t, ctx, s2, 1, 2)
				if err := s3.WaitCaughtUp(ctx, s2, 20*time.Second); err != nil {
					t.Fatal(err)
				}
				wantRows(t, ctx, s3, 1, 2)
				wantReplicaOf(t, ctx, s3, s2, tc.gtid)
				return
			}
			if err != nil {
				t.Fatalf("resumed failover: %v", err)
			}
			if !strings.Contains(out.String(), "missing on this host: saving it again") {
				t.Errorf("the resume did not save the missing tail again")
			}
			if strings.Contains(out.String(), "Duplicate entry") {
				t.Errorf("the resume re-applied events")
			}
			wantRows(t, ctx, s2, 1, 2, 3)
			if err := s3.WaitCaughtUp(ctx, s2, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			wantRows(t, ctx, s3, 1, 2, 3)
			wantReplicaOf(t, ctx, s3, s2, tc.gtid)
			if got, want := gtidBinlogPos(t, ctx, s3), gtidBinlogPos(t, ctx, s2); got != want {
				t.Errorf("server3 gtid_binlog_pos %s, new master %s", got, want)
			}
			// Each transaction once: the tail's GTID is the last one
			// server2 has, and its sequence did not move past it.
			if got := gtidBinlogPos(t, ctx, s2); got != plan.TailGTID {
				t.Errorf("server2 gtid_binlog_pos %s, want the tail's last GTID %s (applied exactly once)", got, plan.TailGTID)
			}
			restored := filepath.Join(app2.ManagerWorkdir, filepath.Base(plan.TailFile))
			if _, err := os.Stat(restored); err != nil {
				t.Errorf("the tail was not saved again into the resuming manager's workdir: %v", err)
			}
		})
	}
}

func wantNoRow(t *testing.T, ctx context.Context, s *testbed.Server, v int) {
	t.Helper()
	rows, err := s.Rows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r == v {
			t.Fatalf("%s holds row %d: %v", s.Name(), v, rows)
		}
	}
}
