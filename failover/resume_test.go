package failover

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/fsm"
	"github.com/mharaft/mharaft/testbed"
)

// interruptingJournal is a LocalJournal whose Begin of one phase (or
// step) fails, as when the manager loses the failover lock right there.
type interruptingJournal struct {
	*LocalJournal
	failBegin string
}

func (j interruptingJournal) Begin(ctx context.Context, phase string, plan *Plan) error {
	if phase == j.failBegin {
		return errors.New("lost the failover lock (test)")
	}
	return j.LocalJournal.Begin(ctx, phase, plan)
}

func gtidBinlogPos(t *testing.T, ctx context.Context, s *testbed.Server) string {
	t.Helper()
	p, err := s.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestResumeMidPipeline interrupts the walkthrough failover in the middle
// of phase 3 (logs applied to the new master, not yet activated) and of
// phase 4 (logs applied to server3, not yet repointed), in both modes,
// then resumes from the journal: nothing is applied twice (rows exactly
// 1,2,3, no duplicate-key error, gtid_binlog_pos unchanged by the resume)
// and the cluster ends as after an uninterrupted failover.
func TestResumeMidPipeline(t *testing.T) {
	cases := []struct {
		name      string
		gtid      bool
		failBegin string
		phase     string
		touched   int // index of the server the interrupted step had applied logs to
	}{
		{"filepos/phase 3", false, PhaseRecover + ": activate", PhaseRecover, 1},
		{"gtid/phase 3", true, PhaseRecover + ": activate", PhaseRecover, 1},
		{"filepos/phase 4", false, PhaseReplicas + ": repoint server3", PhaseReplicas, 2},
		{"gtid/phase 4", true, PhaseReplicas + ": repoint server3", PhaseReplicas, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c, app := deadMasterWalkthrough(t, tc.gtid)
			s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
			local := interruptedFailover(t, c, app, tc.failBegin)
			touched := c.Servers[tc.touched]
			if tc.gtid && tc.touched == 2 {
				wantRows(t, ctx, touched, 1, 2) // GTID mode: replicas get the rest by replication
			} else {
				wantRows(t, ctx, touched, 1, 2, 3)
			}
			if ro, _ := s2.QueryString(ctx, "SELECT @@read_only"); tc.phase == PhaseRecover && ro != "1" {
				t.Fatalf("the interrupted run made server2 writable (read_only=%s)", ro)
			}
			before := []string{gtidBinlogPos(t, ctx, s2), gtidBinlogPos(t, ctx, s3)}

			prog, err := local.Progress()
			if err != nil {
				t.Fatal(err)
			}
			if prog.Interrupted != tc.phase || prog.Plan == nil {
				t.Fatalf("progress: interrupted %q, want %q (plan %v)", prog.Interrupted, tc.phase, prog.Plan)
			}
			var out bytes.Buffer
			rep, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: &out, Journal: local, Resume: &prog},
				DeadMaster: s1.Addr()})
			t.Log(out.String())
			if err != nil {
				t.Fatalf("resumed failover: %v", err)
			}
			if strings.Contains(out.String(), "Duplicate entry") {
				t.Errorf("the resume re-applied events")
			}
			for _, a := range rep.Applied {
				if a.Server == touched.Name() && a.Transactions > 0 {
					t.Errorf("the resume applied %d transaction(s) again to %s: %+v", a.Transactions, a.Server, a)
				}
			}
			wantRows(t, ctx, s2, 1, 2, 3)
			if err := s3.WaitCaughtUp(ctx, s2, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			wantRows(t, ctx, s3, 1, 2, 3)
			wantReplicaOf(t, ctx, s3, s2, tc.gtid)
			// Servers that already held every event keep their GTID
			// position: nothing was applied to them again. (server3 holds
			// every event only when interrupted in phase 4 in file/position
			// mode; otherwise it still lacks row 3 and gets it now.)
			for i, s := range []*testbed.Server{s2, s3} {
				if i == 1 && (tc.gtid || tc.touched != 2) {
					continue
				}
				if got := gtidBinlogPos(t, ctx, s); got != before[i] {
					t.Errorf("%s gtid_binlog_pos %s after the resume, %s before it", s.Name(), got, before[i])
				}
			}
			if got, want := gtidBinlogPos(t, ctx, s3), gtidBinlogPos(t, ctx, s2); got != want {
				t.Errorf("server3 gtid_binlog_pos %s, new master %s", got, want)
			}
			// The new master's position was right: a new write reaches server3.
			if err := s2.Exec(ctx, "INSERT INTO test.t1 VALUES (4)"); err != nil {
				t.Fatal(err)
			}
			if err := s3.WaitCaughtUp(ctx, s2, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			wantRows(t, ctx, s3, 1, 2, 3, 4)
		})
	}
}

// TestResumeUnsafeFilePos: in file/position mode with disable_log_bin the
// new master keeps no GTID of what was applied, so a run interrupted while
// applying cannot be resumed safely: the resume halts with ErrUnsafeResume
// and a report that says why, and changes nothing.
func TestResumeUnsafeFilePos(t *testing.T) {
	ctx := context.Background()
	c, app := deadMasterWalkthrough(t, false)
	s1, s2 := c.Servers[0], c.Servers[1]
	for _, s := range app.Servers {
		s.DisableLogBin = true
	}
	local := interruptedFailover(t, c, app, PhaseRecover+": activate")
	wantRows(t, ctx, s2, 1, 2, 3)
	prog, err := local.Progress()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: &out, Journal: local, Resume: &prog},
		DeadMaster: s1.Addr()})
	t.Log(out.String())
	if !errors.Is(err, ErrUnsafeResume) {
		t.Fatalf("resume without proof of what was applied: %v, want ErrUnsafeResume", err)
	}
	if rep == nil || rep.OK || !strings.Contains(rep.Error, "disable_log_bin") || !strings.Contains(out.String(), "unsafe to resume") {
		t.Errorf("the report must say why the resume is unsafe: %+v", rep)
	}
	wantRows(t, ctx, s2, 1, 2, 3)
	if ro, _ := s2.QueryString(ctx, "SELECT @@read_only"); ro != "1" {
		t.Errorf("server2 was made writable (read_only=%s) by an unsafe resume", ro)
	}
}

func TestAppliedPrefix(t *testing.T) {
	tx := []string{"0-1-4", "0-1-5", "0-1-6"}
	cases := []struct {
		name    string
		pos     string
		want    int
		wantErr bool
	}{
		{"nothing applied", "0-1-3", 0, false},
		{"empty position", "", 0, false},
		{"first applied", "0-1-4", 1, false},
		{"all applied", "0-1-6", 3, false},
		{"other domain too", "1-2-9,0-1-5", 2, false},
		{"covered but not named", "0-1-7", 0, true},
		{"named by another server", "0-2-5", 0, true},
		{"garbage", "x", 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := appliedPrefix(tx, c.pos)
			if (err != nil) != c.wantErr || got != c.want {
				t.Errorf("appliedPrefix(%v, %q) = %d, %v; want %d (error %v)", tx, c.pos, got, err, c.want, c.wantErr)
			}
		})
	}
}

func TestProgressOfEarliestOpenPhase(t *testing.T) {
	entries := []fsm.JournalEntry{
		{Phase: PhaseCheck, Status: fsm.PhaseStarted}, {Phase: PhaseCheck, Status: fsm.PhaseDone},
		{Phase: PhaseRecover, Status: fsm.PhaseStarted}, {Phase: PhaseRecover + ": activate", Status: fsm.PhaseStarted},
	}
	for i := 0; i < 20; i++ { // map order must not matter
		p, err := ProgressOf(entries, "")
		if err != nil || p.Interrupted != PhaseRecover || !p.Completed[PhaseCheck] {
			t.Fatalf("progress %+v %v, want %q interrupted", p, err, PhaseRecover)
		}
	}
}
