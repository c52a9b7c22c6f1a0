package topology

import (
	"context"
	"errors"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
	"github.com/mharaft/mharaft/testbed"
)

// TestCarryOver: the settings of a server's previous state are carried
// only when it was reachable, read without error, its settings are younger
// than FullReadPeriod and its uptime was known and long enough.
func TestCarryOver(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	good := func() *ServerState {
		return &ServerState{Reachable: true, FullAt: now.Add(-25 * time.Second), Uptime: time.Hour, started: 1000}
	}
	tests := []struct {
		name   string
		change func(*ServerState) *ServerState
		want   bool
	}{
		{"usable", func(s *ServerState) *ServerState { return s }, true},
		{"no previous discovery", func(*ServerState) *ServerState { return nil }, false},
		{"unreachable last time", func(s *ServerState) *ServerState { s.Reachable = false; return s }, false},
		{"read errors last time", func(s *ServerState) *ServerState { s.ReadErrors = []error{errors.New("denied")}; return s }, false},
		{"settings exactly FullReadPeriod old", func(s *ServerState) *ServerState { s.FullAt = now.Add(-FullReadPeriod); return s }, false},
		{"settings older", func(s *ServerState) *ServerState { s.FullAt = now.Add(-time.Minute); return s }, false},
		{"never read in full", func(s *ServerState) *ServerState { s.FullAt = time.Time{}; return s }, false},
		{"uptime unknown", func(s *ServerState) *ServerState { s.Uptime, s.started = 0, 0; return s }, false},
		{"start time unknown", func(s *ServerState) *ServerState { s.started = 0; return s }, false},
		{"young server", func(s *ServerState) *ServerState { s.Uptime = 9 * time.Second; return s }, false},
		{"just old enough", func(s *ServerState) *ServerState { s.Uptime = minCarryUptime; return s }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, why := carryOver(tc.change(good()), now)
			if got != tc.want {
				t.Errorf("carryOver = %v (%s), want %v", got, why, tc.want)
			}
			if !got && why == "" {
				t.Error("refused without a reason")
			}
		})
	}
}

// TestRestarted: a light read is given up for a full one when server_id
// or the start time moved (more than the second of rounding).
func TestRestarted(t *testing.T) {
	prev := &ServerState{ServerID: 1, started: 1000}
	tests := []struct {
		name    string
		id      uint32
		started int64
		want    bool
	}{
		{"same", 1, 1000, false},
		{"rounding, one second later", 1, 1001, false},
		{"rounding, one second earlier", 1, 999, false},
		{"restarted", 1, 1012, true},
		{"clock stepped back", 1, 990, true},
		{"another server_id", 2, 1000, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := restarted(prev, &ServerState{ServerID: tc.id, started: tc.started}); got != tc.want {
				t.Errorf("restarted = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPreviousStates: nothing is carried when the server set changed.
func TestPreviousStates(t *testing.T) {
	srv := func(name, ip string, port int, user, pw, repl string) *config.Server {
		return &config.Server{Name: name, Hostname: ip, IP: ip, Port: port, User: user, Password: pw, ReplUser: repl}
	}
	base := func() []*config.Server {
		return []*config.Server{srv("server1", "10.0.0.1", 3306, "mha", "pw", "repl"), srv("server2", "10.0.0.2", 3306, "mha", "pw", "repl")}
	}
	prev := &Topology{}
	for _, s := range base() {
		prev.Servers = append(prev.Servers, &ServerState{Server: s, Reachable: true})
	}
	tests := []struct {
		name   string
		change func([]*config.Server) []*config.Server
		want   bool
	}{
		{"same servers", func(s []*config.Server) []*config.Server { return s }, true},
		{"server added", func(s []*config.Server) []*config.Server {
			return append(s, srv("server3", "10.0.0.3", 3306, "mha", "pw", "repl"))
		}, false},
		{"server removed", func(s []*config.Server) []*config.Server { return s[:1] }, false},
		{"order changed", func(s []*config.Server) []*config.Server { return []*config.Server{s[1], s[0]} }, false},
		{"address changed", func(s []*config.Server) []*config.Server { s[1].IP = "10.0.0.9"; return s }, false},
		{"port changed", func(s []*config.Server) []*config.Server { s[0].Port = 3307; return s }, false},
		{"manager user changed", func(s []*config.Server) []*config.Server { s[0].User = "other"; return s }, false},
		{"password changed", func(s []*config.Server) []*config.Server { s[0].Password = "rotated"; return s }, false},
		{"repl user changed", func(s []*config.Server) []*config.Server { s[1].ReplUser = "repl2"; return s }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app := &config.App{Servers: tc.change(base())}
			got := previousStates(prev, app)
			if len(got) != len(app.Servers) {
				t.Fatalf("%d states for %d servers", len(got), len(app.Servers))
			}
			for i, g := range got {
				if (g != nil) != tc.want {
					t.Errorf("server %d: previous state %v, want one: %v", i, g, tc.want)
				}
			}
		})
	}
	if got := previousStates(nil, &config.App{Servers: base()}); got[0] != nil || got[1] != nil {
		t.Errorf("no previous discovery, yet states %v", got)
	}
}

// TestStateQuery: the status table is information_schema's on MariaDB and
// MySQL before 5.7, performance_schema's from 5.7.
func TestStateQuery(t *testing.T) {
	for _, tc := range []struct{ version, table string }{
		{"10.11.6-MariaDB", "information_schema.GLOBAL_STATUS"},
		{"5.6.51", "information_schema.GLOBAL_STATUS"},
		{"5.7.44", "performance_schema.global_status"},
		{"8.0.36", "performance_schema.global_status"},
	} {
		q := stateQuery(dialect.For(dialect.MustParseVersion(tc.version)), []string{"read_only", "gtid_binlog_pos"})
		want := "SELECT UNIX_TIMESTAMP(), (SELECT VARIABLE_VALUE FROM " + tc.table +
			" WHERE VARIABLE_NAME = 'Uptime'), @@global.server_id, @@global.read_only, @@global.gtid_binlog_pos"
		if q != want {
			t.Errorf("%s: %s\nwant %s", tc.version, q, want)
		}
	}
}

// statusCounter reads one global status counter of s.
func statusCounter(t *testing.T, ctx context.Context, s *testbed.Server, name string) int {
	t.Helper()
	rows, err := s.QueryRows(ctx, "SHOW GLOBAL STATUS LIKE '"+name+"'")
	if err != nil || len(rows) != 1 {
		t.Fatalf("%s on %s: %v %v", name, s.Name(), rows, err)
	}
	n, err := strconv.Atoi(rows[0]["Value"])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLightDiscovery on real servers: a light discovery (Options.Light)
// issues none of the reads it carries (counted on the servers: no SHOW
// GRANTS, no SHOW VARIABLES) and still reports the carried grants and
// settings with the fresh state; a REVOKE of the repl user's grant shows
// at the next full read, not in a light one; a restart (another start
// time) and a change of master are read in full.
func TestLightDiscovery(t *testing.T) {
	c := testbed.Start(t, testbed.Options{N: 3, NoSSH: true})
	app := loadApp(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool := NewPool()
	defer pool.Close()
	discoverLight := func(light *Topology) *Topology {
		t.Helper()
		topo := DiscoverWith(ctx, app, Options{ConnectTimeout: time.Second, Pool: pool, Light: light})
		if topo.Master == nil || topo.Master.Name() != "server1" || len(topo.AliveReplicas()) != 2 {
			t.Fatalf("discovery sees master %v, %d alive replicas; problems %v", topo.Master, len(topo.AliveReplicas()), topo.Problems)
		}
		return topo
	}
	counts := func() map[string]int {
		out := map[string]int{}
		for _, s := range c.Servers {
			for _, n := range []string{"Com_show_grants", "Com_show_variables"} {
				out[s.Name()+" "+n] = statusCounter(t, ctx, s, n)
			}
		}
		return out
	}
	// A server up less than minCarryUptime is read in full: wait (polling
	// the servers' Uptime) until every one is older.
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range c.Servers {
		for statusCounter(t, ctx, s, "Uptime") < int(minCarryUptime/time.Second)+1 {
			if time.Now().After(deadline) {
				t.Fatalf("%s not up for %s after 30 s", s.Name(), minCarryUptime)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	full := discoverLight(nil)
	for _, s := range full.Servers {
		if s.Carried || s.Uptime < minCarryUptime || len(s.ReadErrors) > 0 || len(s.Grants) == 0 || !s.ReplUserFound {
			t.Fatalf("full read of %s: carried %v, uptime %s, read errors %v, grants %v, repl user found %v",
				s.Name(), s.Carried, s.Uptime, s.ReadErrors, s.Grants, s.ReplUserFound)
		}
	}

	// A light discovery: no SHOW GRANTS, no SHOW VARIABLES; the grants and
	// settings carried, the state fresh.
	run(t, c.Servers[0], "CREATE DATABASE IF NOT EXISTS light_test") // moves the master's GTID position
	before := counts()
	light := discoverLight(full)
	after := counts()
	for k, n := range after {
		if n != before[k] {
			t.Errorf("light discovery: %s went from %d to %d, want no such read", k, before[k], n)
		}
	}
	for i, s := range light.Servers {
		f := full.Servers[i]
		if !s.Carried || !s.FullAt.Equal(f.FullAt) {
			t.Errorf("%s: carried %v, settings of %s, want carried from the full read at %s", s.Name(), s.Carried, s.FullAt, f.FullAt)
		}
		if len(s.Grants) != len(f.Grants) || len(s.ReplGrants) != len(f.ReplGrants) || !s.ReplUserFound ||
			s.BinlogFormat != f.BinlogFormat || !s.LogBin || s.Version != f.Version || s.ServerID != f.ServerID {
			t.Errorf("%s: light read reports grants %v repl grants %v, binlog_format %q, log_bin %v, version %v, server_id %d; the full read %v %v %q %v %v %d",
				s.Name(), s.Grants, s.ReplGrants, s.BinlogFormat, s.LogBin, s.Version, s.ServerID,
				f.Grants, f.ReplGrants, f.BinlogFormat, f.LogBin, f.Version, f.ServerID)
		}
		if s.Uptime < f.Uptime || s.ReadOnly != f.ReadOnly {
			t.Errorf("%s: light read's state: uptime %s (full %s), read_only %v", s.Name(), s.Uptime, f.Uptime, s.ReadOnly)
		}
	}
	if light.Master.MasterStatus == nil || full.Master.MasterStatus == nil {
		t.Fatalf("master status: light read %v, full read %v", light.Master.MasterStatus, full.Master.MasterStatus)
	}
	if m, fm := light.Master, full.Master; m.GTIDBinlogPos == "" || m.GTIDBinlogPos == fm.GTIDBinlogPos || m.MasterStatus.Pos <= fm.MasterStatus.Pos {
		t.Errorf("the master's GTID and binlog positions are not read again: light %q %v, full %q %v", m.GTIDBinlogPos, m.MasterStatus, fm.GTIDBinlogPos, fm.MasterStatus)
	}
	if ps := Check(light); HasErrors(ps) {
		t.Errorf("light discovery of a healthy cluster has problems:\n%s", dump(ps))
	}

	// A state change shows at once; a grant change only at the next full read.
	s2 := c.Servers[1]
	run(t, s2, "SET GLOBAL read_only=0", "SET sql_log_bin=0", "REVOKE REPLICATION SLAVE ON *.* FROM 'repl'@'%'", "SET sql_log_bin=1")
	defer run(t, s2, "SET GLOBAL read_only=1", "SET sql_log_bin=0", "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'", "SET sql_log_bin=1")
	light2 := DiscoverWith(ctx, app, Options{ConnectTimeout: time.Second, Pool: pool, Light: light})
	ls2 := light2.ByAddr("server2")
	if !ls2.Carried || ls2.ReadOnly {
		t.Errorf("light read of server2 after SET GLOBAL read_only=0: carried %v, read_only %v (want fresh: off)", ls2.Carried, ls2.ReadOnly)
	}
	if p := findProblem(Check(light2), CodeReplGrant, "server2"); p != nil {
		t.Errorf("a light read reports a grant it does not read: %s", p)
	}
	full2 := DiscoverWith(ctx, app, Options{ConnectTimeout: time.Second, Pool: pool})
	wantProblem(t, Check(full2), CodeReplGrant, "server2", Error, "lacks REPLICATION SLAVE")
	if full2.ByAddr("server2").Carried {
		t.Error("a discovery without Light carried settings")
	}

	// A restart (the start time moved) is read in full, at once.
	fake := *full2.ByAddr("server3")
	fake.started -= 60
	restartedPrev := *full2
	restartedPrev.Servers = []*ServerState{full2.Servers[0], full2.Servers[1], &fake}
	topo := DiscoverWith(ctx, app, Options{ConnectTimeout: time.Second, Pool: pool, Light: &restartedPrev})
	if s3 := topo.ByAddr("server3"); s3.Carried || s3.FullAt.Equal(full2.ByAddr("server3").FullAt) {
		t.Errorf("server3, whose start time moved, read light: carried %v, settings of %s", s3.Carried, s3.FullAt)
	}
	if !topo.ByAddr("server1").Carried {
		t.Error("server1 did not restart, yet was read in full")
	}

	// A change of master: nothing carried.
	otherMaster := *full2
	otherMaster.Master = full2.ByAddr("server2")
	topo = DiscoverWith(ctx, app, Options{ConnectTimeout: time.Second, Pool: pool, Light: &otherMaster})
	for _, s := range topo.Servers {
		if s.Carried {
			t.Errorf("%s read light although the master changed since the previous discovery", s.Name())
		}
	}
}

// BenchmarkDiscovery measures one discovery of a real three-server
// application through a Pool, full and light: the time, and the CPU this
// process (the manager's side; the servers are other processes) spends,
// in µs per discovery (cpu-µs/op). Run it alone:
//
//	go test -run '^$' -bench BenchmarkDiscovery -benchtime 1000x ./topology/
func BenchmarkDiscovery(b *testing.B) {
	c := testbed.Start(b, testbed.Options{N: 3, NoSSH: true})
	path, err := c.WriteAppConfig(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	app, err := config.Load(path, "")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range c.Servers {
		for {
			rows, err := s.QueryRows(ctx, "SHOW GLOBAL STATUS LIKE 'Uptime'")
			if err != nil || len(rows) != 1 {
				b.Fatalf("Uptime of %s: %v %v", s.Name(), rows, err)
			}
			if n, _ := strconv.Atoi(rows[0]["Value"]); n > int(minCarryUptime/time.Second) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s not up for %s after 30 s", s.Name(), minCarryUptime)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, light := range []bool{false, true} {
		name := "full"
		if light {
			name = "light"
		}
		b.Run(name, func(b *testing.B) {
			pool := NewPool()
			defer pool.Close()
			opts := Options{ConnectTimeout: time.Second, Pool: pool}
			base := DiscoverWith(ctx, app, opts)
			b.ResetTimer()
			cpu0 := processCPU(b)
			for range b.N {
				if light && time.Since(base.At) > FullReadPeriod/2 {
					b.StopTimer()
					cpu := processCPU(b)
					base = DiscoverWith(ctx, app, opts)
					cpu0 += processCPU(b) - cpu // not counted
					b.StartTimer()
				}
				o := opts
				if light {
					o.Light = base
				}
				topo := DiscoverWith(ctx, app, o)
				if topo.Master == nil || topo.Servers[0].Carried != light {
					b.Fatalf("discovery: master %v, carried %v", topo.Master, topo.Servers[0].Carried)
				}
			}
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// processCPU is this process's user and system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
