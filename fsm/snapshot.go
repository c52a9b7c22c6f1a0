package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/hashicorp/raft"
)

// snapshotVersion is written in the header record.
const snapshotVersion = 1

// record is one element of the snapshot stream: a header first, then one
// record per application.
type record struct {
	Type    string         `json:"type"` // "header", "app"
	Version int            `json:"version,omitempty"`
	App     *AppState      `json:"app,omitempty"`
	History []HistoryEntry `json:"history,omitempty"`
}

// snapshot is a point-in-time copy of the state.
type snapshot struct {
	apps []app
}

// Snapshot copies the state. Raft calls it from the goroutine that calls
// Apply, so it only copies; Persist does the encoding.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s := &snapshot{apps: make([]app, 0, len(f.apps))}
	for _, a := range f.apps {
		s.apps = append(s.apps, app{state: a.state.Clone(), history: slices.Clone(a.history)})
	}
	sort.Slice(s.apps, func(i, j int) bool { return s.apps[i].state.Name < s.apps[j].state.Name })
	return s, nil
}

// Persist streams the records to the sink; on error it cancels the sink.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.write(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist fsm snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) write(w io.Writer) error {
	enc := json.NewEncoder(w)
	if err := enc.Encode(record{Type: "header", Version: snapshotVersion}); err != nil {
		return err
	}
	for i := range s.apps {
		a := &s.apps[i]
		if err := enc.Encode(record{Type: "app", App: &a.state, History: a.history}); err != nil {
			return fmt.Errorf("app %q: %w", a.state.Name, err)
		}
	}
	return nil
}

// Release does nothing: the copy is garbage collected.
func (s *snapshot) Release() {}

// Restore replaces the whole state with the snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	apps, err := readSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore fsm snapshot: %w", err)
	}
	f.mu.Lock()
	f.apps = apps
	for _, a := range apps {
		f.touch(a)
	}
	f.mu.Unlock()
	return nil
}

func readSnapshot(r io.Reader) (map[string]*app, error) {
	dec := json.NewDecoder(r)
	var hdr record
	if err := dec.Decode(&hdr); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if hdr.Type != "header" || hdr.Version != snapshotVersion {
		return nil, fmt.Errorf("header %q version %d: want header version %d", hdr.Type, hdr.Version, snapshotVersion)
	}
	apps := map[string]*app{}
	for {
		var rec record
		err := dec.Decode(&rec)
		if errors.Is(err, io.EOF) {
			return apps, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read record %d: %w", len(apps)+1, err)
		}
		switch rec.Type {
		case "app":
			if rec.App == nil || rec.App.Name == "" {
				return nil, fmt.Errorf("record %d: app record without app", len(apps)+1)
			}
			// A snapshot written before EpochPlan has the plan in the
			// journal entries' details: it is moved to the epochs' plans.
			rec.App.moveLegacyPlans()
			apps[rec.App.Name] = &app{state: *rec.App, history: rec.History}
		default:
			// A record type from a newer version: skip it.
		}
	}
}
