package manager

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/fsm"
)

func TestAutoLockPrediction(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		st   fsm.AppState
		want bool // refused
	}{
		{"fresh app", fsm.AppState{LastFailoverMinute: 480}, false},
		{"paused", fsm.AppState{Paused: true, PausedBy: "op"}, true},
		{"recent failover", fsm.AppState{LastFailoverMinute: 480, LastFailover: &fsm.LastFailover{Finished: now.Add(-time.Hour)}}, true},
		{"recent but acknowledged", fsm.AppState{LastFailoverMinute: 480, LastFailover: &fsm.LastFailover{Finished: now.Add(-time.Hour), Acknowledged: true}}, false},
		{"old failover", fsm.AppState{LastFailoverMinute: 30, LastFailover: &fsm.LastFailover{Finished: now.Add(-time.Hour)}}, false},
		{"window zero", fsm.AppState{LastFailoverMinute: 0, LastFailover: &fsm.LastFailover{Finished: now.Add(-time.Second)}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.st.AutoLockRefusal(now) != ""; got != tc.want {
				t.Fatalf("refused=%v, want %v (%q)", got, tc.want, tc.st.AutoLockRefusal(now))
			}
		})
	}
}

func TestWithFormerMastersIgnoreFail(t *testing.T) {
	app := &config.App{Name: "app1", Servers: []*config.Server{
		{Name: "server1", Hostname: "h", IP: "10.0.0.1", Port: 3306},
		{Name: "server2", Hostname: "h", IP: "10.0.0.2", Port: 3306},
		{Name: "server3", Hostname: "h", IP: "10.0.0.3", Port: 3306},
	}}
	st := &fsm.AppState{Name: "app1"}
	for _, s := range app.Servers {
		st.Servers = append(st.Servers, fsmServer(s))
	}
	ok := func(old string, kind, result string) fsm.HistoryEntry {
		return fsm.HistoryEntry{OldMaster: old, Kind: kind, Result: result}
	}
	tests := []struct {
		name    string
		history []fsm.HistoryEntry
		topo    *fsm.Topology
		current string
		ignored []string
	}{
		{"no history", nil, nil, "10.0.0.1:3306", nil},
		{"former dead master ignored", []fsm.HistoryEntry{ok("10.0.0.1:3306", fsm.KindAuto, fsm.ResultSuccess)}, nil, "10.0.0.2:3306", []string{"server1"}},
		{"failed failover does not count", []fsm.HistoryEntry{ok("10.0.0.1:3306", fsm.KindAuto, fsm.ResultHalted)}, nil, "10.0.0.2:3306", nil},
		{"switch does not count", []fsm.HistoryEntry{ok("10.0.0.1:3306", fsm.KindSwitch, fsm.ResultSuccess)}, nil, "10.0.0.2:3306", nil},
		{"rejoined replica counts again", []fsm.HistoryEntry{ok("10.0.0.1:3306", fsm.KindAuto, fsm.ResultSuccess)},
			&fsm.Topology{Servers: []fsm.ServerStatus{{Addr: "10.0.0.1:3306", Role: "replica", Reachable: true}}}, "10.0.0.2:3306", nil},
		{"current dead master not ignored", []fsm.HistoryEntry{ok("10.0.0.1:3306", fsm.KindAuto, fsm.ResultSuccess)}, nil, "10.0.0.1:3306", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := *st
			s.Topology = tc.topo
			got := withFormerMastersIgnoreFail(app, &s, tc.history, tc.current)
			var ignored []string
			for _, srv := range got.Servers {
				if srv.IgnoreFail {
					ignored = append(ignored, srv.Name)
				}
			}
			if len(ignored) != len(tc.ignored) || (len(ignored) > 0 && ignored[0] != tc.ignored[0]) {
				t.Fatalf("ignored %v, want %v", ignored, tc.ignored)
			}
			for _, srv := range app.Servers {
				if srv.IgnoreFail {
					t.Fatal("the configured app was modified")
				}
			}
		})
	}
}

func TestProgressOf(t *testing.T) {
	at := time.Now()
	entries := []fsm.JournalEntry{
		{Phase: PhaseVerdict, Status: fsm.PhaseDone, At: at},
		{Phase: PhaseLock, Status: fsm.PhaseDone, At: at},
		{Phase: "failover.1 configuration check", Status: fsm.PhaseStarted, At: at},
		{Phase: "failover.1 configuration check", Status: fsm.PhaseDone, At: at},
		{Phase: "failover.2 dead master shutdown", Status: fsm.PhaseStarted, At: at},
		{Phase: "failover.2 dead master shutdown", Status: fsm.PhaseFailed, At: at},
	}
	p, err := failover.ProgressOf(entries, `{"kind":"failover","app":"app1","new_master":"server3"}`)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Completed["failover.1 configuration check"] || p.Completed["failover.2 dead master shutdown"] {
		t.Fatalf("completed %v", p.Completed)
	}
	if p.Interrupted != "failover.2 dead master shutdown" {
		t.Fatalf("interrupted %q", p.Interrupted)
	}
	if p.Plan == nil || p.Plan.NewMaster != "server3" {
		t.Fatalf("plan %+v", p.Plan)
	}
}

// TestMergeServers: a re-registration after the configuration file
// changed keeps run-time additions and removals unless the file itself
// added or dropped the server.
func TestMergeServers(t *testing.T) {
	srv := func(name string, port int) fsm.Server { return fsm.Server{Name: name, Hostname: "h", Port: port} }
	names := func(ss []fsm.Server) string {
		var out []string
		for _, s := range ss {
			out = append(out, fmt.Sprintf("%s:%d", s.Name, s.Port))
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name    string
		have    []fsm.Server // the cluster's servers
		oldFile []string     // names of the file that registered them
		newFile []fsm.Server // the file now
		want    string
	}{
		{"run-time addition kept", []fsm.Server{srv("s1", 1), srv("s2", 2), srv("s9", 9)}, []string{"s1", "s2"},
			[]fsm.Server{srv("s1", 1), srv("s2", 2), srv("s3", 3)}, "s1:1,s2:2,s9:9,s3:3"},
		{"run-time removal kept", []fsm.Server{srv("s1", 1)}, []string{"s1", "s2"},
			[]fsm.Server{srv("s1", 1), srv("s2", 2), srv("s3", 3)}, "s1:1,s3:3"},
		{"file drop wins", []fsm.Server{srv("s1", 1), srv("s2", 2)}, []string{"s1", "s2"},
			[]fsm.Server{srv("s1", 1)}, "s1:1"},
		{"file values refresh", []fsm.Server{srv("s1", 1)}, []string{"s1"},
			[]fsm.Server{srv("s1", 7), srv("s2", 2)}, "s1:7,s2:2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &fsm.AppState{Servers: tc.have, ConfigNames: tc.oldFile}
			if got := names(mergeServers(st, fsm.RegisterAppCmd{Servers: tc.newFile})); got != tc.want {
				t.Fatalf("merged %s, want %s", got, tc.want)
			}
		})
	}
}

// countHandler counts the records logged through it.
type countHandler struct{ n *atomic.Int64 }

func (h countHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h countHandler) Handle(context.Context, slog.Record) error { h.n.Add(1); return nil }
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h countHandler) WithGroup(string) slog.Handler             { return h }

// TestLogWriterConcurrent: the pipeline writes progress lines from several
// goroutines at once; every line becomes one record and nothing panics (a
// chaos campaign found "slice bounds out of range" in an unserialised
// Write, which halted two failovers).
func TestLogWriterConcurrent(t *testing.T) {
	var n atomic.Int64
	w := &logWriter{log: slog.New(countHandler{&n})}
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < lines; i++ {
				fmt.Fprintf(w, "writer %d line %d\n", g, i)
			}
		}()
	}
	wg.Wait()
	if got := n.Load(); got != writers*lines {
		t.Fatalf("%d records for %d lines", got, writers*lines)
	}
}

// TestSameTopology: summaries that differ only in their times are the
// same (a periodic discovery need not store it again); any other field
// makes them differ.
func TestSameTopology(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	base := func() *fsm.Topology {
		return &fsm.Topology{Master: "h:1", ObservedAt: t0, Verdict: "Healthy", Servers: []fsm.ServerStatus{
			{Addr: "h:1", Role: "master", MasterFile: "b.1", MasterPos: 4, Reachable: true, ObservedAt: t0},
			{Addr: "h:2", Role: "replica", ReplicatingFrom: "h:1", ReadPos: 4, Reachable: true, ObservedAt: t0},
		}}
	}
	for _, tc := range []struct {
		name   string
		change func(*fsm.Topology)
		same   bool
	}{
		{"identical", func(*fsm.Topology) {}, true},
		{"later times only", func(x *fsm.Topology) {
			x.ObservedAt = t0.Add(5 * time.Second)
			x.Servers[0].ObservedAt, x.Servers[1].ObservedAt = x.ObservedAt, x.ObservedAt
		}, true},
		{"master position moved", func(x *fsm.Topology) { x.Servers[0].MasterPos = 400 }, false},
		{"replica read position moved", func(x *fsm.Topology) { x.Servers[1].ReadPos = 400 }, false},
		{"verdict", func(x *fsm.Topology) { x.Verdict = "NoQuorum" }, false},
		{"master", func(x *fsm.Topology) { x.Master = "h:2" }, false},
		{"server unreachable", func(x *fsm.Topology) { x.Servers[1].Reachable = false }, false},
		{"server gone", func(x *fsm.Topology) { x.Servers = x.Servers[:1] }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := base()
			tc.change(b)
			if got := sameTopology(base(), b); got != tc.same {
				t.Errorf("sameTopology = %v, want %v", got, tc.same)
			}
		})
	}
}
