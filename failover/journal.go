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

	"github.com/mharaft/mharaft/internal/secret"
)

// Journal records the phases of a pipeline. Begin is called before a phase
// touches any server, Done after it completed. An error from Begin means
// "this manager may no longer act" (lost leadership or the failover lock):
// the pipeline stops at once. The Raft leader's implementation commits the
// entries to the replicated state; LocalJournal keeps them in a file.
type Journal interface {
	Begin(ctx context.Context, phase string, detail map[string]string) error
	Done(ctx context.Context, phase string, detail map[string]string) error
}

// JournalEntry is one Begin or Done.
type JournalEntry struct {
	Time   time.Time         `json:"time"`
	Phase  string            `json:"phase"`
	Event  string            `json:"event"` // "begin" or "done"
	Detail map[string]string `json:"detail,omitempty"`
}

// LocalJournal is the Journal of `mhactl --local`: entries in memory and in
// a JSON file (rewritten on every entry, so an interrupted run leaves a
// complete file behind).
type LocalJournal struct {
	Path string

	mu      sync.Mutex
	entries []JournalEntry
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
	if err := json.Unmarshal(b, &j.entries); err != nil {
		return nil, fmt.Errorf("parse journal %s: %w", path, err)
	}
	return j, nil
}

// Begin records the start of a phase.
func (j *LocalJournal) Begin(ctx context.Context, phase string, detail map[string]string) error {
	return j.add(phase, "begin", detail)
}

// Done records the end of a phase.
func (j *LocalJournal) Done(ctx context.Context, phase string, detail map[string]string) error {
	return j.add(phase, "done", detail)
}

func (j *LocalJournal) add(phase, event string, detail map[string]string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	cp := make(map[string]string, len(detail))
	for k, v := range detail {
		cp[k] = v
	}
	j.entries = append(j.entries, JournalEntry{Time: time.Now(), Phase: phase, Event: event, Detail: cp})
	if j.Path == "" {
		return nil
	}
	b, err := json.MarshalIndent(j.entries, "", "  ")
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
func (j *LocalJournal) Entries() []JournalEntry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]JournalEntry(nil), j.entries...)
}

// Progress summarises a journal for Resume: the phases that completed,
// the earliest phase that began but did not complete (if any), and the
// last plan recorded.
type Progress struct {
	Completed   map[string]bool
	Interrupted string
	Plan        *Plan
}

// ProgressOf reads entries (from any Journal implementation's history).
func ProgressOf(entries []JournalEntry) (Progress, error) {
	p := Progress{Completed: map[string]bool{}}
	open := map[string]int{} // phase -> order of its first open begin
	for i, e := range entries {
		switch e.Event {
		case "begin":
			if _, ok := open[e.Phase]; !ok {
				open[e.Phase] = i
			}
		case "done":
			delete(open, e.Phase)
			p.Completed[e.Phase] = true
		}
		if s, ok := e.Detail[planKey]; ok {
			plan, err := DecodePlan(s)
			if err != nil {
				return p, err
			}
			p.Plan = plan
		}
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

func (nopJournal) Begin(context.Context, string, map[string]string) error { return nil }
func (nopJournal) Done(context.Context, string, map[string]string) error  { return nil }
