package fsm

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// maxHistory bounds the history kept per application (oldest dropped).
const maxHistory = 500

// app is the internal record of one application.
type app struct {
	state   AppState
	history []HistoryEntry
	changed uint64 // FSM.seq at this application's last change (AppChanged)
}

// FSM is the replicated state machine. It implements raft.FSM. All
// methods are safe for concurrent use.
type FSM struct {
	mu   sync.RWMutex
	apps map[string]*app
	seq  uint64 // counts changes of applications (see AppChanged)
}

var _ raft.FSM = (*FSM)(nil)

// New returns an empty FSM.
func New() *FSM {
	return &FSM{apps: map[string]*app{}}
}

// logMeta is what a handler may know of the log entry it applies: when
// the leader appended it (the leader's clock, raft.Log.AppendedAt, the same
// on every replica) and the leader's term. Both are zero for ApplyBytes and
// for entries written by a raft library without AppendedAt.
type logMeta struct {
	At   time.Time
	Term uint64
}

// metaOf extracts the logMeta of an entry. The time loses its monotonic
// reading and location so that every replica stores the same value.
func metaOf(l *raft.Log) logMeta {
	m := logMeta{Term: l.Term}
	if !l.AppendedAt.IsZero() {
		m.At = l.AppendedAt.UTC().Round(0)
	}
	return m
}

// handler applies one decoded command to the state (the FSM lock is held)
// and returns the Apply response: nil, a value, or a refusal error.
type handler func(f *FSM, m logMeta, payload []byte) any

var handlers = map[CommandType]handler{}

// register installs the handler of command type t; the payload is
// decoded into a fresh T, and an undecodable payload panics.
func register[T any](t CommandType, h func(f *FSM, cmd *T) any) {
	registerLogged(t, func(f *FSM, _ logMeta, cmd *T) any { return h(f, cmd) })
}

// registerLogged is register for a handler that also reads the entry's
// logMeta (the leader's append time and term).
func registerLogged[T any](t CommandType, h func(f *FSM, m logMeta, cmd *T) any) {
	if _, dup := handlers[t]; dup {
		panic(fmt.Sprintf("fsm: command type %d registered twice", t))
	}
	handlers[t] = func(f *FSM, m logMeta, payload []byte) any {
		cmd := new(T)
		if err := json.Unmarshal(payload, cmd); err != nil {
			panic(fmt.Sprintf("fsm: decode command type %d: %v", t, err))
		}
		return h(f, m, cmd)
	}
}

// Apply applies one committed log entry. Its AppendedAt and Term reach the
// handlers (observations record them, see Observation.LoggedAt).
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	return f.apply(metaOf(l), l.Data)
}

// ApplyBytes applies one encoded command (the Data of a log entry). It is
// Apply without the raft.Log wrapper, for tests and tools: the entry has
// no append time and no term.
func (f *FSM) ApplyBytes(data []byte) any {
	return f.apply(logMeta{}, data)
}

func (f *FSM) apply(m logMeta, data []byte) any {
	if len(data) == 0 {
		panic("fsm: empty log entry")
	}
	t := CommandType(data[0])
	h, ok := handlers[t]
	if !ok {
		if t&IgnoreUnknown != 0 {
			return nil
		}
		panic(fmt.Sprintf("fsm: unknown command type %d", t))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return h(f, m, data[1:])
}

// App returns a deep copy of one application's state.
func (f *FSM) App(name string) (AppState, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	a, ok := f.apps[name]
	if !ok {
		return AppState{}, false
	}
	return a.state.Clone(), true
}

// Apps returns deep copies of all applications, sorted by name.
func (f *FSM) Apps() []AppState {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]AppState, 0, len(f.apps))
	for _, a := range f.apps {
		out = append(out, a.state.Clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// AppNames returns the registered application names, sorted.
func (f *FSM) AppNames() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	names := make([]string, 0, len(f.apps))
	for n := range f.apps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// History returns a copy of an application's finished failovers and
// switches, oldest first (nil for an unknown application).
func (f *FSM) History(name string) []HistoryEntry {
	f.mu.RLock()
	defer f.mu.RUnlock()
	a, ok := f.apps[name]
	if !ok {
		return nil
	}
	return slices.Clone(a.history)
}

// lookup returns the application or a wrapped ErrUnknownApp, for a
// handler that may change it: the application counts as changed
// (AppChanged), also when the handler then refuses the command.
func (f *FSM) lookup(name string) (*app, error) {
	a, ok := f.apps[name]
	if !ok {
		return nil, fmt.Errorf("app %q: %w", name, ErrUnknownApp)
	}
	f.touch(a)
	return a, nil
}

// touch records a change of a (the caller holds f.mu for writing).
func (f *FSM) touch(a *app) {
	f.seq++
	a.changed = f.seq
}

// AppChanged returns a number that changes whenever the application's
// state may have changed: compare it with the one read at the last look
// to skip an application nothing happened to (the leader's evaluator,
// issue 17). 0 for an unknown application. A refresh that only re-stamps a
// reachable observation of the current term does not count: it keeps the
// state as it was.
func (f *FSM) AppChanged(name string) uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if a, ok := f.apps[name]; ok {
		return a.changed
	}
	return 0
}
