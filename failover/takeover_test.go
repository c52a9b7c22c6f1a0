package failover

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/config"
)

// pausingRecovery pauses before applying logs, as a manager SIGSTOPped in
// the middle of phase 3, until woken up.
type pausingRecovery struct {
	LogRecovery
	paused chan struct{}
	wake   chan struct{}
	once   atomic.Bool
}

func (p *pausingRecovery) Apply(ctx context.Context, target *config.Server, files []string, onConnect func(context.Context, binlog.Session) error) (binlog.ApplyResult, error) {
	if p.once.CompareAndSwap(false, true) {
		close(p.paused)
		<-p.wake
	}
	return p.LogRecovery.Apply(ctx, target, files, onConnect)
}

// TestDeposedLeaderCannotApplyAfterTakeover is finding 1 of issue 12: a
// manager paused in phase 3, right before applying the dead master's tail
// to the new master, is deposed; another manager resumes the failover and
// finishes it; then the paused one wakes up and goes on applying the same
// transactions. Its connections are fenced: the resume killed its pool
// connections, and the apply's new connection is refused by its guard, so
// nothing is applied twice (the new master's GTID position and rows are
// what the resume left).
func TestDeposedLeaderCannotApplyAfterTakeover(t *testing.T) {
	ctx := context.Background()
	c, app := deadMasterWalkthrough(t, true)
	s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]

	var deposed atomic.Bool
	staleGuard := guardFunc(func(context.Context) error {
		if deposed.Load() {
			return errDeposed
		}
		return nil
	})
	journalA, err := OpenLocalJournal(filepath.Join(t.TempDir(), "a.json"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &pausingRecovery{LogRecovery: DefaultRecovery(), paused: make(chan struct{}), wake: make(chan struct{})}
	var outA bytes.Buffer
	doneA := make(chan error, 1)
	go func() {
		_, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: &outA, NewMaster: s2.Addr(),
			Journal: journalA, Recovery: rec, Guard: staleGuard}, DeadMaster: s1.Addr()})
		doneA <- err
	}()
	select {
	case <-rec.paused:
	case err := <-doneA:
		t.Fatalf("the first run ended before applying logs: %v\n%s", err, outA.String())
	case <-time.After(60 * time.Second):
		t.Fatal("the first run never reached the apply")
	}

	// A is deposed; B resumes from A's journal and finishes.
	deposed.Store(true)
	prog, err := journalA.Progress()
	if err != nil {
		t.Fatal(err)
	}
	if prog.Interrupted != PhaseRecover {
		t.Fatalf("A's journal: interrupted %q, want %q", prog.Interrupted, PhaseRecover)
	}
	journalB, err := OpenLocalJournal(filepath.Join(t.TempDir(), "b.json"))
	if err != nil {
		t.Fatal(err)
	}
	var outB bytes.Buffer
	_, err = DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: &outB, Journal: journalB, Resume: &prog,
		Guard: guardFunc(func(context.Context) error { return nil })}, DeadMaster: s1.Addr()})
	t.Log("B:\n" + outB.String())
	if err != nil {
		t.Fatalf("the resuming run: %v", err)
	}
	wantRows(t, ctx, s2, 1, 2, 3)
	after := gtidBinlogPos(t, ctx, s2)

	// A wakes up and goes on.
	close(rec.wake)
	select {
	case err = <-doneA:
	case <-time.After(60 * time.Second):
		t.Fatal("the woken run did not end")
	}
	t.Log("A:\n" + outA.String())
	if !errors.Is(err, ErrMayNotAct) {
		t.Errorf("the woken deposed run ended with %v, want ErrMayNotAct", err)
	}
	wantRows(t, ctx, s2, 1, 2, 3)
	if got := gtidBinlogPos(t, ctx, s2); got != after {
		t.Errorf("the deposed run changed the new master after the takeover: gtid_binlog_pos %s, was %s", got, after)
	}
	if ro, _ := s2.QueryString(ctx, "SELECT @@read_only"); ro != "0" {
		t.Errorf("new master read_only=%s after the deposed run woke up", ro)
	}
	wantReplicaOf(t, ctx, s3, s2, true)
}
