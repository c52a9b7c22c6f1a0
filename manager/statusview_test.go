package manager

import (
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/dialect"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/fsm"
)

// journalWithPlan is the journal of a finished pipeline of epoch whose
// plan is p (the lock phase carries --orig-master-is-new-slave when
// origIsNewSlave): the Journal and Plans of an AppState.
func journalWithPlan(epoch uint64, p *failover.Plan, origIsNewSlave bool, at time.Time) fsm.AppState {
	lock := map[string]string{"by": "operator"}
	if origIsNewSlave {
		lock[origIsNewSlaveKey] = "1"
	}
	phase := failover.PhaseCheck
	if p.Kind == "switch" {
		phase = failover.SwitchCheck
	}
	return fsm.AppState{
		Journal: []fsm.JournalEntry{
			{Epoch: epoch, Phase: PhaseLock, Status: fsm.PhaseDone, Detail: lock, At: at},
			{Epoch: epoch, Phase: phase, Status: fsm.PhaseStarted, At: at},
			{Epoch: epoch, Phase: phase, Status: fsm.PhaseDone, At: at},
		},
		Plans: []fsm.EpochPlan{{Epoch: epoch, Plan: p.Encode()}},
	}
}

// TestServerStatuses (issue 15 item 1): every row carries its age; rows
// older than the stale limit are stale; a discovery that started before
// the master last changed shows the tree the managers believe (new master,
// its plan's replicas, the failed master dead) as stale rows; a failed
// master that discovery cannot reach is dead.
func TestServerStatuses(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	const s1, s2, s3 = "10.0.0.1:3306", "10.0.0.2:3306", "10.0.0.3:3306"
	servers := []fsm.Server{
		{Name: "server1", IP: "10.0.0.1", Port: 3306},
		{Name: "server2", IP: "10.0.0.2", Port: 3306},
		{Name: "server3", IP: "10.0.0.3", Port: 3306},
	}
	master := func(addr string) fsm.ServerStatus {
		return fsm.ServerStatus{Addr: addr, Role: "master", Reachable: true, MasterFile: "mysql-bin.000002", MasterPos: 400}
	}
	replica := func(addr, from string) fsm.ServerStatus {
		return fsm.ServerStatus{Addr: addr, Role: "replica", Reachable: true, ReadOnly: true, ReplicatingFrom: from,
			IORunning: "Yes", SQLRunning: "Yes", ReadFile: "mysql-bin.000002", ReadPos: 400, ExecFile: "mysql-bin.000002", ExecPos: 400}
	}
	down := func(addr string) fsm.ServerStatus {
		return fsm.ServerStatus{Addr: addr, Role: "unknown", Error: "connect: connection refused", ErrorKind: dialect.KindRefused}
	}
	topo := func(age time.Duration, master string, ss ...fsm.ServerStatus) *fsm.Topology {
		at := now.Add(-age)
		for i := range ss {
			ss[i].ObservedAt = at
		}
		return &fsm.Topology{Master: master, ObservedAt: at, Servers: ss}
	}
	changed := func(kind string, epoch uint64, ago time.Duration) []fsm.HistoryEntry {
		return []fsm.HistoryEntry{{App: "app1", Kind: kind, Epoch: epoch, OldMaster: s1, NewMaster: s2, Result: fsm.ResultSuccess,
			Started: now.Add(-ago - 2*time.Second), Finished: now.Add(-ago)}}
	}
	failoverPlan := &failover.Plan{Kind: "failover", App: "app1", OldMaster: "server1", NewMaster: "server2", Replicas: []string{"server3"}}
	switchPlan := &failover.Plan{Kind: "switch", App: "app1", OldMaster: "server1", NewMaster: "server2", Replicas: []string{"server3"}}
	type row struct {
		role, from, health string
		stale              bool
		age                float64 // -1: none
		detail             string  // part of HealthDetail ("" : any)
		io                 string
	}
	tests := []struct {
		name    string
		master  string
		topo    *fsm.Topology
		hist    []fsm.HistoryEntry
		journal fsm.AppState // its Journal and Plans
		obs     map[string]map[string]fsm.Observation
		want    map[string]row // by server name
	}{
		{
			name: "not discovered yet", master: s1,
			want: map[string]row{
				"server1": {role: "master", health: "unknown", age: -1},
				"server2": {role: "unknown", health: "unknown", age: -1},
				"server3": {role: "unknown", health: "unknown", age: -1},
			},
		},
		{
			name: "healthy, discovered 1.2 s ago", master: s1,
			topo: topo(1200*time.Millisecond, s1, master(s1), replica(s2, s1), replica(s3, s1)),
			want: map[string]row{
				"server1": {role: "master", health: "ok", age: 1.2},
				"server2": {role: "replica", from: s1, health: "ok", age: 1.2, io: "Yes"},
				"server3": {role: "replica", from: s1, health: "ok", age: 1.2, io: "Yes"},
			},
		},
		{
			name: "discovered 30 s ago: stale", master: s1,
			topo: topo(30*time.Second, s1, master(s1), replica(s2, s1), down(s3)),
			want: map[string]row{
				"server1": {role: "master", health: "stale", stale: true, age: 30, detail: "last discovered 30s ago (ok then); the leader rediscovers every 5s"},
				"server2": {role: "replica", from: s1, health: "stale", stale: true, age: 30, io: "Yes"},
				"server3": {role: "unknown", health: "stale", stale: true, age: 30, detail: "(unreachable: connect: connection refused then)"},
			},
		},
		{
			name: "19 s old is not stale yet", master: s1,
			topo: topo(19*time.Second, s1, master(s1), replica(s2, s1), replica(s3, s1)),
			want: map[string]row{
				"server1": {role: "master", health: "ok", age: 19},
				"server2": {role: "replica", from: s1, health: "ok", age: 19, io: "Yes"},
				"server3": {role: "replica", from: s1, health: "ok", age: 19, io: "Yes"},
			},
		},
		{
			name: "0.3 s after a failover, discovered before it", master: s2,
			topo:    topo(2*time.Second, s1, down(s1), replica(s2, s1), replica(s3, s1)),
			hist:    changed(fsm.KindAuto, 3, 300*time.Millisecond),
			journal: journalWithPlan(3, failoverPlan, false, now.Add(-time.Second)),
			want: map[string]row{
				"server1": {role: "dead", health: "stale", stale: true, age: 2, detail: "discovered 2.0s ago, before the failover of epoch 3 made server2 the master"},
				"server2": {role: "master", health: "stale", stale: true, age: 2},
				"server3": {role: "replica", from: s2, health: "stale", stale: true, age: 2},
			},
		},
		{
			name: "after a failover, rediscovered", master: s2,
			topo:    topo(100*time.Millisecond, s2, down(s1), master(s2), replica(s3, s2)),
			hist:    changed(fsm.KindManual, 3, 300*time.Millisecond),
			journal: journalWithPlan(3, failoverPlan, false, now.Add(-time.Second)),
			want: map[string]row{
				"server1": {role: "dead", health: "unreachable", age: 0.1, detail: "connection refused"},
				"server2": {role: "master", health: "ok", age: 0.1},
				"server3": {role: "replica", from: s2, health: "ok", age: 0.1, io: "Yes"},
			},
		},
		{
			name: "the failed master restarted, not rejoined", master: s2,
			topo: topo(time.Second, s2, fsm.ServerStatus{Addr: s1, Role: "unknown", Reachable: true}, master(s2), replica(s3, s2)),
			hist: changed(fsm.KindAuto, 3, time.Minute),
			want: map[string]row{
				"server1": {role: "unknown", health: "ok", age: 1},
				"server2": {role: "master", health: "ok", age: 1},
				"server3": {role: "replica", from: s2, health: "ok", age: 1, io: "Yes"},
			},
		},
		{
			name: "after a failover, no plan in the journal", master: s2,
			topo: topo(2*time.Second, s1, down(s1), replica(s2, s1), replica(s3, s1)),
			hist: changed(fsm.KindAuto, 3, 300*time.Millisecond),
			want: map[string]row{
				"server1": {role: "dead", health: "stale", stale: true, age: 2},
				"server2": {role: "master", health: "stale", stale: true, age: 2},
				"server3": {role: "unknown", health: "stale", stale: true, age: 2},
			},
		},
		{
			name: "after a failover and a rejoin, discovered before both", master: s2,
			topo:    topo(2*time.Second, s1, down(s1), replica(s2, s1), replica(s3, s1)),
			hist:    append(changed(fsm.KindAuto, 3, time.Second), fsm.HistoryEntry{Kind: fsm.KindRejoin, Epoch: 4, OldMaster: s1, Result: fsm.ResultSuccess, Finished: now}),
			journal: journalWithPlan(3, failoverPlan, false, now.Add(-time.Second)),
			want: map[string]row{
				"server1": {role: "replica", from: s2, health: "stale", stale: true, age: 2},
				"server2": {role: "master", health: "stale", stale: true, age: 2},
				"server3": {role: "replica", from: s2, health: "stale", stale: true, age: 2},
			},
		},
		{
			name: "switch with --orig-master-is-new-slave, discovered before it", master: s2,
			topo:    topo(time.Second, s1, master(s1), replica(s2, s1), replica(s3, s1)),
			hist:    changed(fsm.KindSwitch, 5, 100*time.Millisecond),
			journal: journalWithPlan(5, switchPlan, true, now.Add(-time.Second)),
			want: map[string]row{
				"server1": {role: "replica", from: s2, health: "stale", stale: true, age: 1, detail: "before the switch of epoch 5 made server2 the master"},
				"server2": {role: "master", health: "stale", stale: true, age: 1},
				"server3": {role: "replica", from: s2, health: "stale", stale: true, age: 1},
			},
		},
		{
			name: "switch, discovered before it", master: s2,
			topo:    topo(time.Second, s1, master(s1), replica(s2, s1), replica(s3, s1)),
			hist:    changed(fsm.KindSwitch, 5, 100*time.Millisecond),
			journal: journalWithPlan(5, switchPlan, false, now.Add(-time.Second)),
			want: map[string]row{
				"server1": {role: "unknown", health: "stale", stale: true, age: 1},
				"server2": {role: "master", health: "stale", stale: true, age: 1},
				"server3": {role: "replica", from: s2, health: "stale", stale: true, age: 1},
			},
		},
		{
			name: "a fresh refused login outranks a stale row", master: s1,
			topo: topo(time.Minute, s1, master(s1), replica(s2, s1), replica(s3, s1)),
			obs:  map[string]map[string]fsm.Observation{"m2": {s1: {Kind: dialect.KindAuthError, Detail: "Access denied for user 'mha'", LoggedAt: now}}},
			want: map[string]row{
				"server1": {role: "master", health: "auth-error", stale: true, age: 60, detail: "manager m2: Access denied"},
				"server2": {role: "replica", from: s1, health: "stale", stale: true, age: 60, io: "Yes"},
				"server3": {role: "replica", from: s1, health: "stale", stale: true, age: 60, io: "Yes"},
			},
		},
	}
	m := &Manager{cfg: Config{DiscoveryInterval: DefaultDiscoveryInterval}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &fsm.AppState{Name: "app1", Master: tc.master, Servers: servers, Topology: tc.topo, Journal: tc.journal.Journal, Plans: tc.journal.Plans, Observations: tc.obs}
			got := m.serverStatuses(st, nil, tc.hist, now)
			if len(got) != len(servers) {
				t.Fatalf("%d rows, want %d", len(got), len(servers))
			}
			for _, ss := range got {
				w := tc.want[ss.Name]
				age := -1.0
				if ss.AgeSeconds != nil {
					age = *ss.AgeSeconds
				}
				if ss.Role != w.role || ss.ReplicatingFrom != w.from || ss.Health != w.health || ss.Stale != w.stale ||
					age != w.age || !strings.Contains(ss.HealthDetail, w.detail) || ss.IOThread != w.io {
					t.Errorf("%s: role %q from %q health %q stale %v age %v io %q detail %q;\nwant role %q from %q health %q stale %v age %v io %q detail with %q",
						ss.Name, ss.Role, ss.ReplicatingFrom, ss.Health, ss.Stale, age, ss.IOThread, ss.HealthDetail,
						w.role, w.from, w.health, w.stale, w.age, w.io, w.detail)
				}
				if (ss.ObservedAt == nil) != (w.age < 0) {
					t.Errorf("%s: observed_at %v with age %v", ss.Name, ss.ObservedAt, w.age)
				}
			}
		})
	}
}
