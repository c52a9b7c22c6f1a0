package failover

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// comebackHook writes a master_ip_failover_script that, called with
// --command=stop or stopssh, resumes the paused dead master (SIGCONT to
// the pid in its pid file) and writes rows 4 and 5 to it as the
// application user, the master still writable: a master that comes back
// in the middle of the failover and takes writes after its tail was
// saved. --command=start exits 0.
func comebackHook(t *testing.T, s *testbed.Server) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "master_ip_failover")
	body := fmt.Sprintf(`#!/bin/sh
case "$*" in
*--command=stop*)
  kill -CONT "$(cat %s)" || exit 1
  for v in 4 5; do
    MYSQL_PWD=%s mariadb --protocol=tcp -h %s -P %d -u %s --connect-timeout=10 -e "INSERT INTO test.t1 VALUES ($v)" || exit 1
  done
  ;;
esac
exit 0
`, filepath.Join(s.Dir, "mysqld.pid"), testbed.AppPassword, s.Host, s.Port, testbed.AppUser)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// TestDeadMasterComesBack: walkthrough state, the master is paused, the
// failover starts, and the IP hook resumes it and writes rows 4 and 5
// (see comebackHook). The failover must fence the old master over MySQL
// (read_only=1, application writes refused), read its binlog again after
// the fence and bring rows 4 and 5 to the new master and server3; the
// report says the old master answered and was fenced. Both replication
// modes; "filepos/resumed" is interrupted before the new master is
// activated and resumed from the journal: the resume fences again, reads
// the top-up again and applies nothing twice.
func TestDeadMasterComesBack(t *testing.T) {
	cases := []struct {
		name      string
		gtid      bool
		interrupt bool
		shutdown  bool // fence_mode=shutdown
	}{
		{"filepos", false, false, false},
		{"gtid", true, false, false},
		{"filepos/resumed", false, true, false},
		{"gtid/fence_mode=shutdown", true, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := testbed.Start(t, testbed.Options{N: 3, GTID: tc.gtid})
			if err := c.Walkthrough(ctx); err != nil {
				t.Fatal(err)
			}
			s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
			if err := s1.Exec(ctx, fmt.Sprintf("GRANT INSERT, SELECT ON test.* TO '%s'@'%%'", testbed.AppUser)); err != nil {
				t.Fatal(err)
			}
			app := loadApp(t, c)
			app.MasterIPFailoverScript = comebackHook(t, s1)
			if tc.shutdown {
				app.FenceMode = "shutdown"
			}
			if err := s1.Pause(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s1.Resume() })
			local, err := OpenLocalJournal(filepath.Join(t.TempDir(), "journal.json"))
			if err != nil {
				t.Fatal(err)
			}
			var journal Journal = local
			if tc.interrupt {
				journal = interruptingJournal{local, PhaseRecover + ": activate"}
			}
			var out bytes.Buffer
			rep, err := DeadMaster(ctx, FailoverOptions{
				Options:    Options{App: app, Yes: true, Out: &out, NewMaster: s2.Addr(), Journal: journal},
				DeadMaster: s1.Addr(),
			})
			t.Log(out.String())
			if tc.interrupt {
				if !errors.Is(err, ErrMayNotAct) {
					t.Fatalf("interrupted failover: %v", err)
				}
				wantRows(t, ctx, s2, 1, 2, 3, 4, 5)
				prog, err := local.Progress()
				if err != nil {
					t.Fatal(err)
				}
				if prog.Plan == nil || !prog.Plan.TopUpChecked {
					t.Fatalf("the journal's plan does not record the read after fencing: %+v", prog.Plan)
				}
				before := gtidBinlogPos(t, ctx, s2)
				out.Reset()
				rep, err = DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: &out, Journal: local, Resume: &prog},
					DeadMaster: s1.Addr()})
				t.Log(out.String())
				if err != nil {
					t.Fatalf("resumed failover: %v", err)
				}
				if got := gtidBinlogPos(t, ctx, s2); got != before {
					t.Errorf("the resume changed the new master's gtid_binlog_pos: %s, before %s", got, before)
				}
				for _, a := range rep.Applied {
					if a.Server == s2.Name() && a.Transactions > 0 {
						t.Errorf("the resume applied %d transaction(s) again to the new master", a.Transactions)
					}
				}
			} else if err != nil {
				t.Fatalf("failover: %v", err)
			}
			if strings.Contains(out.String(), "Duplicate entry") {
				t.Errorf("events applied twice")
			}
			wantRows(t, ctx, s2, 1, 2, 3, 4, 5)
			if err := s3.WaitCaughtUp(ctx, s2, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			wantRows(t, ctx, s3, 1, 2, 3, 4, 5)
			wantReplicaOf(t, ctx, s3, s2, tc.gtid)

			body := strings.Join(rep.Lines, "\n")
			if tc.shutdown {
				deadline := time.Now().Add(20 * time.Second)
				for s1.Running() && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond) // polling the process with a deadline
				}
				if s1.Running() || !strings.Contains(rep.Plan.DeadFence, "shut down") {
					t.Errorf("fence_mode=shutdown: old master running=%v, dead_fence %q", s1.Running(), rep.Plan.DeadFence)
				}
			} else {
				wantFenced(t, ctx, s1, rep)
			}
			for _, want := range []string{"answered over MySQL", "the dead master was fenced"} {
				if !strings.Contains(body, want) {
					t.Errorf("report lacks %q:\n%s", want, body)
				}
			}
			// The binlog was read again after the fence. Rows 4 and 5 come
			// through that top-up, unless the tail save (started in phase 1,
			// beside the hook) read past them already on a busy machine:
			// then the top-up holds nothing and the rows came with the tail.
			if !rep.Plan.TopUpChecked {
				t.Errorf("the dead master's binlog was not read again after the fence (plan %+v)", rep.Plan)
			}
			if rep.Plan.TopUpFile == "" {
				t.Logf("the tail save already held rows 4 and 5; the top-up after the fence was empty")
			} else if !strings.Contains(body, "read after fencing") {
				t.Errorf("the report does not say what was read after fencing:\n%s", body)
			}
			if rep.PossiblyLost != nil || rep.Lost != nil {
				t.Errorf("report names a loss: lost %+v, possibly lost %+v", rep.Lost, rep.PossiblyLost)
			}
		})
	}
}

// wantFenced checks that the old master is fenced: read_only=1, the
// application user's writes are refused, the plan says so.
func wantFenced(t *testing.T, ctx context.Context, s1 *testbed.Server, rep *Report) {
	t.Helper()
	if ro, err := s1.QueryString(ctx, "SELECT @@read_only"); err != nil || ro != "1" {
		t.Errorf("old master read_only=%q (%v), want 1", ro, err)
	}
	db, err := sql.Open("mysql", s1.DSN(testbed.AppUser, testbed.AppPassword, "test"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "INSERT INTO test.t1 VALUES (6)"); err == nil {
		t.Errorf("the application could still write to the fenced old master")
	}
	if !strings.HasPrefix(rep.Plan.DeadFence, "fenced") {
		t.Errorf("plan's dead_fence = %q, want fenced", rep.Plan.DeadFence)
	}
}
