package topology

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
	"github.com/mharaft/mharaft/testbed"
)

// semiSyncCnf enables lossless semi-sync on every server (MariaDB 10.11 has it built in).
var semiSyncCnf = []string{
	"rpl_semi_sync_master_enabled=ON",
	"rpl_semi_sync_slave_enabled=ON",
	"rpl_semi_sync_master_wait_point=AFTER_SYNC",
	"rpl_semi_sync_master_timeout=30000",
	"rpl_semi_sync_slave_kill_conn_timeout=1",
}

// check-repl on real servers with semi-sync: the state is reported, and a
// short timeout and the lack of any semi-sync replica are warned about.
func TestCheckReplSemiSync(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := testbed.Options{N: 3}
	for range 3 {
		opts.Servers = append(opts.Servers, testbed.ServerOptions{Extra: semiSyncCnf})
	}
	c := testbed.Start(t, opts)
	app := loadApp(t, c)
	m, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
	if err := m.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE test.t (a INT PRIMARY KEY)", "INSERT INTO test.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}

	t.Run("lossless", func(t *testing.T) {
		pollCheck(t, app, func(ps []Problem) bool { return len(ps) == 0 })
		top := discover(t, app)
		if ss := top.Master.SemiSync; !ss.Lossless() || ss.Clients != 2 || ss.Timeout != 30*time.Second {
			t.Errorf("master semi-sync = %+v, want lossless with 2 clients and a 30s timeout", ss)
		}
		var out bytes.Buffer
		Tree(top, &out)
		for _, want := range []string{"semi-sync master ON (active, AFTER_SYNC, timeout 30s, 2 clients)", "replica ON (acknowledging)"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("check-repl output lacks %q:\n%s", want, out.String())
			}
		}
		r := NewReport(top, nil)
		if r.Servers[0].SemiSync == nil || !r.Servers[0].SemiSync.MasterActive || r.Servers[1].SemiSync == nil || !r.Servers[1].SemiSync.ReplicaActive {
			t.Errorf("report semi-sync: %+v, %+v", r.Servers[0].SemiSync, r.Servers[1].SemiSync)
		}
	})
	t.Run("short timeout", func(t *testing.T) {
		run(t, m, "SET GLOBAL rpl_semi_sync_master_timeout=1000")
		ps := Check(discover(t, app))
		wantProblem(t, ps, CodeSemiSyncTimeout, "server1", Warning, "timeout is 1s", "silently falls back to asynchronous")
		if HasErrors(ps) {
			t.Errorf("semi-sync warnings are errors:\n%s", dump(ps))
		}
		run(t, m, "SET GLOBAL rpl_semi_sync_master_timeout=30000")
	})
	t.Run("slow kill of the dump thread", func(t *testing.T) {
		run(t, s2, "SET GLOBAL rpl_semi_sync_slave_kill_conn_timeout=5")
		ps := Check(discover(t, app))
		wantProblem(t, ps, CodeSemiSyncKillTimeout, "server2", Warning, "rpl_semi_sync_slave_kill_conn_timeout is 5s", "STOP SLAVE")
		if p := findProblem(ps, CodeSemiSyncKillTimeout, "server3"); p != nil {
			t.Errorf("server3 (kill_conn_timeout 1) warned: %+v", p)
		}
		run(t, s2, "SET GLOBAL rpl_semi_sync_slave_kill_conn_timeout=1")
	})
	t.Run("no semi-sync replica in another datacenter", func(t *testing.T) {
		dcApp := loadApp(t, c)
		dcApp.Server("server1").Datacenter, dcApp.Server("server2").Datacenter, dcApp.Server("server3").Datacenter = "dc1", "dc1", "dc2"
		run(t, s3, "SET GLOBAL rpl_semi_sync_slave_enabled=OFF", "STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD")
		ps := pollCheck(t, dcApp, func(ps []Problem) bool { return findProblem(ps, CodeSemiSyncNoOtherDC, "server1") != nil })
		wantProblem(t, ps, CodeSemiSyncNoOtherDC, "server1", Warning, "no semi-sync replica is in another datacenter than the master's (dc1)")
		run(t, s3, "SET GLOBAL rpl_semi_sync_slave_enabled=ON", "STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD")
		pollCheck(t, dcApp, func(ps []Problem) bool { return len(ps) == 0 })
	})
	t.Run("no semi-sync replica", func(t *testing.T) {
		for _, s := range []*testbed.Server{s2, s3} {
			run(t, s, "SET GLOBAL rpl_semi_sync_slave_enabled=OFF", "STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD")
		}
		ps := pollCheck(t, app, func(ps []Problem) bool { return findProblem(ps, CodeSemiSyncNoReplica, "server1") != nil })
		wantProblem(t, ps, CodeSemiSyncNoReplica, "server1", Warning, "no replica acknowledges", "rpl_semi_sync_slave_enabled=ON")
		for _, s := range []*testbed.Server{s2, s3} {
			run(t, s, "SET GLOBAL rpl_semi_sync_slave_enabled=ON", "STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD")
		}
	})
}

// checkSemiSync's warnings, on hand-built topologies.
func TestCheckSemiSyncRules(t *testing.T) {
	lossless := dialect.SemiSync{Known: true, MasterEnabled: true, MasterActive: true, WaitPoint: "AFTER_SYNC", Timeout: time.Minute, Clients: 1}
	acking := dialect.SemiSync{Known: true, ReplicaEnabled: true, ReplicaActive: true}
	tests := []struct {
		name      string
		master    dialect.SemiSync
		replicas  []dialect.SemiSync
		dcs       []string // master's, then each replica's
		wantCodes []string
	}{
		{"asynchronous everywhere", dialect.SemiSync{}, []dialect.SemiSync{{}, {}}, nil, nil},
		{"lossless", lossless, []dialect.SemiSync{acking, {}}, nil, nil},
		{"master disabled", dialect.SemiSync{Known: true}, []dialect.SemiSync{acking}, nil, []string{CodeSemiSyncInactive}},
		{"fell back", func() dialect.SemiSync { s := lossless; s.MasterActive = false; return s }(), []dialect.SemiSync{acking}, nil, []string{CodeSemiSyncInactive}},
		{"after commit", func() dialect.SemiSync { s := lossless; s.WaitPoint = "AFTER_COMMIT"; return s }(), []dialect.SemiSync{acking}, nil, []string{CodeSemiSyncWaitPoint}},
		{"short timeout", func() dialect.SemiSync { s := lossless; s.Timeout = time.Second; return s }(), []dialect.SemiSync{acking}, nil, []string{CodeSemiSyncTimeout}},
		{"no acking replica", lossless, []dialect.SemiSync{{Known: true}}, nil, []string{CodeSemiSyncNoReplica}},
		{"acking replica only in the master's dc", lossless, []dialect.SemiSync{acking, {}}, []string{"dc1", "dc1", "dc2"}, []string{CodeSemiSyncNoOtherDC}},
		{"acking replica in another dc", lossless, []dialect.SemiSync{{}, acking}, []string{"dc1", "dc1", "dc2"}, nil},
		{"semi-sync replica with a slow dump-thread kill", lossless, []dialect.SemiSync{func() dialect.SemiSync { s := acking; s.KillConnTimeout = 5 * time.Second; return s }()}, nil, []string{CodeSemiSyncKillTimeout}},
		{"semi-sync replica with a one-second dump-thread kill", lossless, []dialect.SemiSync{func() dialect.SemiSync { s := acking; s.KillConnTimeout = time.Second; return s }()}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := &Topology{App: &config.App{}}
			mk := func(i int, ss dialect.SemiSync) *ServerState {
				srv := &config.Server{Name: "server" + string(rune('1'+i))}
				if tt.dcs != nil {
					srv.Datacenter = tt.dcs[i]
				}
				return &ServerState{Server: srv, Reachable: true, SemiSync: ss}
			}
			top.Master = mk(0, tt.master)
			top.Servers = []*ServerState{top.Master}
			for i, ss := range tt.replicas {
				s := mk(i+1, ss)
				s.Upstream = top.Master
				s.Replica = &dialect.ReplicaStatus{IORunning: "Yes", SQLRunning: true}
				top.Servers = append(top.Servers, s)
				top.Replicas = append(top.Replicas, s)
			}
			var got []string
			for _, p := range checkSemiSync(top) {
				if p.Severity != Warning {
					t.Errorf("%s is not a warning", p)
				}
				got = append(got, p.Code)
			}
			if strings.Join(got, ",") != strings.Join(tt.wantCodes, ",") {
				t.Errorf("codes = %v, want %v", got, tt.wantCodes)
			}
		})
	}
}
