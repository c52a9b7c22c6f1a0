package failover

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// failingJournal is a LocalJournal whose Begin or Done of one phase fails,
// as when the manager loses the lock right before or right after it.
type failingJournal struct {
	*LocalJournal
	failBegin, failDone string
}

func (j failingJournal) Begin(ctx context.Context, phase string, plan *Plan) error {
	if phase == j.failBegin {
		return errors.New("lost the lock (test)")
	}
	return j.LocalJournal.Begin(ctx, phase, plan)
}

func (j failingJournal) Done(ctx context.Context, phase string, plan *Plan) error {
	if phase == j.failDone {
		return errors.New("lost the lock (test)")
	}
	return j.LocalJournal.Done(ctx, phase, plan)
}

// TestSwitchResumeEveryPhase interrupts an online switch (server1 ->
// server2, server1 becoming a replica) right before and right after each
// phase, then resumes it from its journal (as a new leader does): the
// resume never panics, and ends with server2 the writable master, server1
// and server3 replicating from it, no row lost or doubled.
func TestSwitchResumeEveryPhase(t *testing.T) {
	phases := []string{SwitchCheck, SwitchFence, SwitchWait, SwitchPromote, SwitchReplicas, SwitchOldSlave}
	type tc struct{ name, failBegin, failDone string }
	var cases []tc
	for i, p := range phases {
		if i > 0 {
			cases = append(cases, tc{"before " + p, p, ""})
		}
		cases = append(cases, tc{"after " + p, "", p})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			cl := testbed.Start(t, testbed.Options{N: 3, GTID: true, NoSSH: true})
			s1, s2, s3 := cl.Servers[0], cl.Servers[1], cl.Servers[2]
			if err := s1.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE test.t1 (a INT PRIMARY KEY)",
				"INSERT INTO test.t1 VALUES (1)"); err != nil {
				t.Fatal(err)
			}
			if err := cl.WaitCaughtUp(ctx, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			app := loadApp(t, cl)
			local, err := OpenLocalJournal(filepath.Join(t.TempDir(), "journal.json"))
			if err != nil {
				t.Fatal(err)
			}
			opts := Options{App: app, Yes: true, Out: tlog{t}, NewMaster: s2.Addr(), OrigMasterIsNewSlave: true}
			first := opts
			first.Journal = failingJournal{local, c.failBegin, c.failDone}
			if _, err := Switch(ctx, first); !errors.Is(err, ErrMayNotAct) {
				t.Fatalf("interrupted switch: %v, want ErrMayNotAct", err)
			}
			prog, err := local.Progress()
			if err != nil {
				t.Fatal(err)
			}
			resumed := opts
			resumed.Resume = &prog
			resumed.Journal = local
			var panicked any
			func() {
				defer func() { panicked = recover() }()
				_, err = Switch(ctx, resumed)
			}()
			if panicked != nil {
				t.Fatalf("the resumed switch panicked: %v", panicked)
			}
			if err != nil {
				t.Fatalf("resumed switch (completed %v, interrupted %q): %v", prog.Completed, prog.Interrupted, err)
			}
			if ro, _ := s2.QueryString(ctx, "SELECT @@read_only"); ro != "0" {
				t.Errorf("new master read_only=%s", ro)
			}
			if st, _ := s2.SlaveStatus(ctx); st != nil {
				t.Errorf("new master still has replica status: %v", st)
			}
			wantReplicaOf(t, ctx, s1, s2, true)
			wantReplicaOf(t, ctx, s3, s2, true)
			if err := s2.Exec(ctx, "INSERT INTO test.t1 VALUES (2)"); err != nil {
				t.Fatal(err)
			}
			for _, s := range []*testbed.Server{s1, s3} {
				if err := s.WaitCaughtUp(ctx, s2, 20*time.Second); err != nil {
					t.Fatal(err)
				}
				wantRows(t, ctx, s, 1, 2)
			}
			if ro, _ := s1.QueryString(ctx, "SELECT @@read_only"); ro != "1" {
				t.Errorf("old master read_only=%s, want 1", ro)
			}
		})
	}
}

// TestSwitchResumeUnreachableNewMaster: a resume whose new master does not
// answer halts with ErrUnsafeResume naming it, without panicking.
func TestSwitchResumeUnreachableNewMaster(t *testing.T) {
	ctx := context.Background()
	cl := testbed.Start(t, testbed.Options{N: 3, GTID: true, NoSSH: true})
	app := loadApp(t, cl)
	if err := cl.Servers[1].Kill9(); err != nil {
		t.Fatal(err)
	}
	prog := &Progress{Completed: map[string]bool{SwitchCheck: true, SwitchFence: true}, Interrupted: SwitchWait,
		Plan: &Plan{Kind: "switch", App: app.Name, OldMaster: "server1", NewMaster: "server2", Replicas: []string{"server3"}, GTID: true}}
	_, err := Switch(ctx, Options{App: app, Yes: true, Out: tlog{t}, Resume: prog})
	if !errors.Is(err, ErrUnsafeResume) || !containsAll(err.Error(), "server2", SwitchWait) {
		t.Fatalf("resume with the new master down: %v, want ErrUnsafeResume naming server2 and the phase", err)
	}
	if ro, _ := cl.Servers[0].QueryString(ctx, "SELECT @@read_only"); ro != "0" {
		t.Errorf("the halted resume changed server1: read_only=%s", ro)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
