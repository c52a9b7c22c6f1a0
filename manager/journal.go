package manager

import (
	"context"
	"fmt"
	"os"
	"sync"
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
// fencing token), and the pipeline's plan when it changed since the last
// committed one (the FSM keeps one plan per epoch). It refuses as soon as
// this node is not the leader, so a deposed leader stops before its next
// phase. Begin and Done may be called from several goroutines.
type raftJournal struct {
	m      *Manager
	app    string
	server string // the old (dead) master, for the logs
	epoch  uint64

	mu   sync.Mutex
	plan string // the plan last committed at this epoch
}

var _ failover.Journal = (*raftJournal)(nil)

func (j *raftJournal) Begin(ctx context.Context, phase string, plan *failover.Plan) error {
	if err := j.recordPlan(ctx, phase, fsm.PhaseStarted, plan, j.m.now()); err != nil {
		return err
	}
	return j.testPause(ctx, "begin:"+phase)
}

func (j *raftJournal) Done(ctx context.Context, phase string, plan *failover.Plan) error {
	done := j.m.now()
	if err := j.recordPlan(ctx, phase, fsm.PhaseDone, plan, done); err != nil {
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

// recordPlan commits a pipeline's journal entry, with its plan when the
// plan differs from the one last committed at this epoch.
func (j *raftJournal) recordPlan(ctx context.Context, phase, status string, plan *failover.Plan, at time.Time) error {
	enc := ""
	if plan != nil {
		enc = plan.Encode()
	}
	j.mu.Lock()
	send := enc
	if enc == j.plan {
		send = ""
	}
	j.mu.Unlock()
	if err := j.commit(ctx, phase, status, nil, send, at); err != nil {
		return err
	}
	if send != "" {
		j.mu.Lock()
		j.plan = send
		j.mu.Unlock()
	}
	return nil
}

// record commits one of the manager's own journal entries (no plan).
func (j *raftJournal) record(ctx context.Context, phase, status string, detail map[string]string, at time.Time) error {
	return j.commit(ctx, phase, status, detail, "", at)
}

// commit commits one journal entry as the leader; plan "" leaves the
// epoch's plan as it is.
func (j *raftJournal) commit(ctx context.Context, phase, status string, detail map[string]string, plan string, at time.Time) error {
	_, err := j.m.applyAsLeader(ctx, fsm.EncodeJournalPhase(fsm.JournalPhaseCmd{App: j.app, Plan: plan, Entry: fsm.JournalEntry{
		Epoch: j.epoch, Phase: phase, Status: status, Detail: detail, At: at,
	}}))
	if err != nil {
		return fmt.Errorf("journal %s %s of app %s at epoch %d: %w", phase, status, j.app, j.epoch, err)
	}
	j.m.log.Info("journal", "app", j.app, "server", j.server, "phase", phase, "status", status, "epoch", j.epoch)
	return nil
}
