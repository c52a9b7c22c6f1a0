package manager

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/fsm"
)

// TestPauseAfterPhaseEnv names the test-only hook: see the package doc.
const TestPauseAfterPhaseEnv = "MHARAFT_TEST_PAUSE_AFTER_PHASE"

// Extra journal phases the manager records around the pipeline's own, so
// that the timeline of an automatic failover can be read from the FSM.
const (
	// PhaseVerdict: At is when the leader's evaluation said DeadMaster.
	PhaseVerdict = "verdict"
	// PhaseLock: At is when the failover lock (and its epoch) was committed.
	PhaseLock = "lock"
)

// raftJournal is the failover.Journal of the Raft leader: every Begin and
// Done is a committed JournalPhase command carrying the lock's epoch (the
// fencing token). It refuses as soon as this node is not the leader, so a
// deposed leader stops before its next phase.
type raftJournal struct {
	m      *Manager
	app    string
	server string // the old (dead) master, for the logs
	epoch  uint64
}

var _ failover.Journal = (*raftJournal)(nil)

func (j *raftJournal) Begin(ctx context.Context, phase string, detail map[string]string) error {
	if err := j.record(ctx, phase, fsm.PhaseStarted, detail, j.m.now()); err != nil {
		return err
	}
	return j.testPause(ctx, "begin:"+phase)
}

func (j *raftJournal) Done(ctx context.Context, phase string, detail map[string]string) error {
	done := j.m.now()
	if err := j.record(ctx, phase, fsm.PhaseDone, detail, done); err != nil {
		return err
	}
	j.m.observePhaseDone(j.app, j.epoch, phase, done)
	return j.testPause(ctx, phase)
}

// testPause is the test-only hook (see the package doc): it blocks until
// ctx ends when TestPauseAfterPhaseEnv equals key ("<phase>" after a
// phase's Done, "begin:<phase>" after its Begin).
func (j *raftJournal) testPause(ctx context.Context, key string) error {
	if p := os.Getenv(TestPauseAfterPhaseEnv); p == "" || p != key {
		return nil
	}
	j.m.log.Warn("TEST HOOK: blocking until killed", "app", j.app, "server", j.server, "after", key, "epoch", j.epoch)
	<-ctx.Done()
	return ctx.Err()
}

// record commits one journal entry as the leader.
func (j *raftJournal) record(ctx context.Context, phase, status string, detail map[string]string, at time.Time) error {
	_, err := j.m.applyAsLeader(ctx, fsm.EncodeJournalPhase(fsm.JournalPhaseCmd{App: j.app, Entry: fsm.JournalEntry{
		Epoch: j.epoch, Phase: phase, Status: status, Detail: detail, At: at,
	}}))
	if err != nil {
		return fmt.Errorf("journal %s %s of app %s at epoch %d: %w", phase, status, j.app, j.epoch, err)
	}
	j.m.log.Info("journal", "app", j.app, "server", j.server, "phase", phase, "status", status, "epoch", j.epoch)
	return nil
}

// progressOf converts the replicated journal into the failover package's
// view of what completed.
func progressOf(entries []fsm.JournalEntry) (failover.Progress, error) {
	var fe []failover.JournalEntry
	for _, e := range entries {
		ev := ""
		switch e.Status {
		case fsm.PhaseStarted:
			ev = "begin"
		case fsm.PhaseDone:
			ev = "done"
		default:
			continue
		}
		fe = append(fe, failover.JournalEntry{Time: e.At, Phase: e.Phase, Event: ev, Detail: e.Detail})
	}
	return failover.ProgressOf(fe)
}
