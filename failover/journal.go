package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mharaft/mharaft/fsm"
	"github.com/mharaft/mharaft/internal/secret"
)

// Journal records the phases of a pipeline. Begin is called before a phase
// touches any server, Done after it completed. An error from Begin means
// "this manager may no longer act" (lost leadership or the failover lock):
// the pipeline stops at once. plan is the run's plan as it is at that
// moment: the journal stores its encoding (Plan.Encode) at once, once per
// epoch (fsm.AppState.Plans; an implementation may send it only when it
// changed). The Raft leader's implementation commits the entries to the
// replicated state; LocalJournal keeps them in a file.
type Journal interface {
	Begin(ctx context.Context, phase string, plan *Plan) error
	Done(ctx context.Context, phase string, plan *Plan) error
}

// LocalJournal is the Journal of `mhactl --local`: fsm.JournalEntry
// entries (epoch 0) and the plan, in memory and in a JSON file (rewritten
// on every entry, so an interrupted run leaves a complete file behind).
type LocalJournal struct {
	Path string

	mu      sync.Mutex
	entries []fsm.JournalEntry
	plan    string
}

// localJournalFile is the file of a LocalJournal.
type localJournalFile struct {
	Entries []fsm.JournalEntry `json:"entries"`
	Plan    json.RawMessage    `json:"plan,omitempty"` // the last plan recorded
}

// OpenLocalJournal loads path if it exists (to resume) or starts empty.
func OpenLocalJournal(path string) (*LocalJournal, error) {
	j := &LocalJournal{Path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal %s: %w", path, err)
	}
	var f localJournalFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse journal %s: %w", path, err)
	}
	j.entries, j.plan = f.Entries, string(f.Plan)
	return j, nil
}

// Begin records the start of a phase.
func (j *LocalJournal) Begin(ctx context.Context, phase string, plan *Plan) error {
	return j.add(phase, fsm.PhaseStarted, plan)
}

// Done records the end of a phase.
func (j *LocalJournal) Done(ctx context.Context, phase string, plan *Plan) error {
	return j.add(phase, fsm.PhaseDone, plan)
}

func (j *LocalJournal) add(phase, status string, plan *Plan) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, fsm.JournalEntry{Phase: phase, Status: status, At: time.Now()})
	if plan != nil {
		j.plan = plan.Encode()
	}
	if j.Path == "" {
		return nil
	}
	f := localJournalFile{Entries: j.entries}
	if j.plan != "" {
		f.Plan = json.RawMessage(j.plan)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := secret.MkdirAll(filepath.Dir(j.Path)); err != nil {
		return fmt.Errorf("journal %s: %w", j.Path, err)
	}
	tmp := j.Path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("journal %s: %w", j.Path, err)
	}
	return os.Rename(tmp, j.Path)
}

// Entries returns a copy of the entries so far.
func (j *LocalJournal) Entries() []fsm.JournalEntry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]fsm.JournalEntry(nil), j.entries...)
}

// Progress reads the journal for Resume.
func (j *LocalJournal) Progress() (Progress, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return ProgressOf(j.entries, j.plan)
}

// Progress summarises a journal for Resume: the phases that completed,
// the earliest phase that began but did not complete (if any), and the
// last plan recorded.
type Progress struct {
	Completed   map[string]bool
	Interrupted string
	Plan        *Plan
}

// ProgressOf reads a journal's entries and its last plan ("" when none
// was recorded): the replicated one (fsm.AppState.Journal and LastPlan)
// or a LocalJournal's. Entries that neither started nor completed a phase
// (fsm.PhaseFailed) are left out.
func ProgressOf(entries []fsm.JournalEntry, plan string) (Progress, error) {
	p := Progress{Completed: map[string]bool{}}
	open := map[string]int{} // phase -> order of its first open begin
	for i, e := range entries {
		switch e.Status {
		case fsm.PhaseStarted:
			if _, ok := open[e.Phase]; !ok {
				open[e.Phase] = i
			}
		case fsm.PhaseDone:
			delete(open, e.Phase)
			p.Completed[e.Phase] = true
		}
	}
	if plan != "" {
		pl, err := DecodePlan(plan)
		if err != nil {
			return p, err
		}
		p.Plan = pl
	}
	// The earliest open phase is the interrupted one; steps inside it
	// (e.g. "failover.3 master recovery: activate") begin later.
	first := -1
	for ph, i := range open {
		if !p.Completed[ph] && (first < 0 || i < first) {
			p.Interrupted, first = ph, i
		}
	}
	return p, nil
}

// nopJournal accepts everything (used when the caller passes nil).
type nopJournal struct{}

func (nopJournal) Begin(context.Context, string, *Plan) error { return nil }
func (nopJournal) Done(context.Context, string, *Plan) error  { return nil }
