// Package apitest holds FakeBackend, a test double of api.Backend for unit
// tests of the API, its client and mhactl. It keeps canned state in
// memory and records the actions it is asked to run; it never touches a
// MySQL server or a Raft group. Product code must not import it; the real
// Backend is the daemon's.
package apitest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/mharaft/mharaft/api"
)

// FakeBackend is a test double of api.Backend. Set its fields before
// serving it, or under Lock/Unlock afterwards.
type FakeBackend struct {
	mu sync.Mutex

	State   api.Status
	Hist    []api.HistoryEntry
	Leader  bool
	LeaderA string // LeaderAPIAddr's answer

	// Phases, when set, are appended one by one to the app's journal by
	// Do, each after the previous one was seen by a Status call (or after
	// PhaseWait), so a client polling the journal can be shown to see every
	// phase while the action runs.
	Phases    []api.JournalEntry
	PhaseWait time.Duration // 5 s when 0

	// Result is what Do answers (OK true by default); Err, when set, is
	// returned instead.
	Result *api.ActionResult
	Err    error

	// NotMemberErr, when set, is NotMember's answer: the node says it was
	// removed from the Raft group.
	NotMemberErr error

	calls       []api.Action
	unobserved  int
	statusCalls int
	observed    chan struct{}
}

// NewFakeBackend returns a leader with one application, app1, in the
// walkthrough's shape: server1 master, server2 and server3 replicating,
// three managers, two finished failovers in the history.
func NewFakeBackend() *FakeBackend {
	lag0, lag3 := int64(0), int64(3)
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	last := t0.Add(2 * time.Minute)
	return &FakeBackend{
		Leader: true,
		State: api.Status{
			Node:   "node1",
			Leader: "node1",
			Term:   7,
			Managers: []api.Manager{
				{ID: "node1", RaftAddr: "127.0.0.1:7001", APIAddr: "127.0.0.1:8001", Datacenter: "dc1", Role: "leader", Voter: true, Alive: true},
				{ID: "node2", RaftAddr: "127.0.0.1:7002", APIAddr: "127.0.0.1:8002", Datacenter: "dc1", Role: "follower", Voter: true, Alive: true, LastContact: "12ms"},
				{ID: "node3", RaftAddr: "127.0.0.1:7003", APIAddr: "127.0.0.1:8003", Datacenter: "dc2", Role: "follower", Voter: true, Alive: true, LastContact: "15ms"},
			},
			Apps: []api.AppStatus{{
				Name:    "app1",
				Master:  "server1",
				Verdict: "Healthy",
				Servers: []api.ServerStatus{
					{Name: "server1", Addr: "127.0.0.1:3306", Role: "master", Reachable: true, BinlogPos: "mysql-bin.000001:1234", GTID: "0-1-10"},
					{Name: "server2", Addr: "127.0.0.1:3307", Role: "replica", Reachable: true, ReadOnly: true, ReplicatingFrom: "server1",
						IOThread: "Yes", SQLThread: "Yes", LagSeconds: &lag0, ReadPos: "mysql-bin.000001:1234", ExecPos: "mysql-bin.000001:1234", GTID: "0-1-10"},
					{Name: "server3", Addr: "127.0.0.1:3308", Role: "replica", Reachable: true, ReadOnly: true, ReplicatingFrom: "server1",
						IOThread: "Yes", SQLThread: "Yes", LagSeconds: &lag3, ReadPos: "mysql-bin.000001:1234", ExecPos: "mysql-bin.000001:1000", GTID: "0-1-9"},
				},
				LastFailover: &last,
				Acked:        true,
			}},
		},
		Hist: []api.HistoryEntry{
			{App: "app1", Kind: "failover (manual)", Epoch: 1, DeadMaster: "server2", NewMaster: "server1",
				Started: t0, Finished: t0.Add(1500 * time.Millisecond), Result: "success", Summary: "server1 promoted, rows kept"},
			{App: "app1", Kind: "switch", Epoch: 2, OldMaster: "server3", NewMaster: "server1",
				Started: last, Finished: last.Add(800 * time.Millisecond), Result: "success"},
		},
	}
}

// Lock and Unlock guard the exported fields once the fake is served.
func (f *FakeBackend) Lock()   { f.mu.Lock() }
func (f *FakeBackend) Unlock() { f.mu.Unlock() }

// Calls returns the actions Do was asked to run, in order.
func (f *FakeBackend) Calls() []api.Action {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.Action(nil), f.calls...)
}

// Unobserved counts the Phases that no Status call saw within PhaseWait
// while Do was running.
func (f *FakeBackend) Unobserved() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unobserved
}

// StatusCalls counts Status calls.
func (f *FakeBackend) StatusCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statusCalls
}

// Status returns a deep copy of State.
func (f *FakeBackend) Status(ctx context.Context) (*api.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statusCalls++
	if f.observed != nil {
		close(f.observed)
		f.observed = nil
	}
	var st api.Status
	if err := deepCopy(&st, &f.State); err != nil {
		return nil, err
	}
	return &st, nil
}

// History returns the entries of app ("" for all).
func (f *FakeBackend) History(ctx context.Context, app string) ([]api.HistoryEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.HistoryEntry
	for _, h := range f.Hist {
		if app == "" || h.App == app {
			out = append(out, h)
		}
	}
	return out, nil
}

// Do records a, plays Phases into a's journal, and answers Result or Err.
func (f *FakeBackend) Do(ctx context.Context, a api.Action) (*api.ActionResult, error) {
	f.mu.Lock()
	f.calls = append(f.calls, a)
	phases := append([]api.JournalEntry(nil), f.Phases...)
	wait := f.PhaseWait
	f.mu.Unlock()
	if wait <= 0 {
		wait = 5 * time.Second
	}
	for _, p := range phases {
		f.mu.Lock()
		if app := f.State.App(a.App); app != nil {
			app.Journal = append(app.Journal, p)
		}
		seen := make(chan struct{})
		f.observed = seen
		f.mu.Unlock()
		select {
		case <-seen:
		case <-time.After(wait):
			f.mu.Lock()
			f.unobserved++
			f.mu.Unlock()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return nil, f.Err
	}
	if f.Result != nil {
		r := *f.Result
		return &r, nil
	}
	return &api.ActionResult{OK: true, Message: fmt.Sprintf("%s %s done", a.Kind, a.App)}, nil
}

// NotMember answers NotMemberErr (api.MembershipReporter).
func (f *FakeBackend) NotMember() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.NotMemberErr
}

// IsLeader answers Leader.
func (f *FakeBackend) IsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Leader
}

// LeaderAPIAddr answers LeaderA.
func (f *FakeBackend) LeaderAPIAddr() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.LeaderA
}

func deepCopy(dst, src any) error {
	b, err := json.Marshal(src)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}
