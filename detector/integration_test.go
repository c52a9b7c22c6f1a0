package detector

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/testbed"
)

// The integration tests run real mariadbd servers from the test bed.

// store is the test's stand-in for the replicated state: the latest
// observation per (manager, server), plus every observation ever published.
type store struct {
	mu      sync.Mutex
	latest  map[string]Observation
	history []Observation
}

func newStore() *store { return &store{latest: map[string]Observation{}} }

func (s *store) Publish(_ context.Context, o Observation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latest[o.Manager+"/"+o.Server] = o
	s.history = append(s.history, o)
	return nil
}

func (s *store) all() []Observation {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Observation
	for _, o := range s.latest {
		out = append(out, o)
	}
	return out
}

func (s *store) published() []Observation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Observation(nil), s.history...)
}

// testLogger sends slog output to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// appFor builds the configuration of the test bed's cluster by hand.
func appFor(c *testbed.Cluster, pingType string, pingInterval time.Duration) *config.App {
	app := &config.App{Name: "app1", PingInterval: pingInterval, PingType: pingType, ConnectTimeout: time.Second}
	for _, s := range c.Servers {
		app.Servers = append(app.Servers, &config.Server{Name: s.Name(), Hostname: s.Host, IP: s.Host, Port: s.Port,
			User: testbed.MHAUser, Password: testbed.MHAPassword, ReplUser: testbed.ReplUser, ReplPassword: testbed.ReplPassword})
	}
	return app
}

// withMaster returns a copy of app whose master entry is replaced by m
// (another address or user), leaving the replicas as they are.
func withMaster(app *config.App, m config.Server) *config.App {
	cp := *app
	cp.Servers = append([]*config.Server{&m}, app.Servers[1:]...)
	return &cp
}

// startDetector starts a detector for manager id and stops it when the test ends.
func startDetector(t *testing.T, id string, app *config.App, pub Publisher) *Detector {
	d := New(Config{Manager: id}, pub, testLogger(t).With("m", id))
	d.Watch(context.Background(), app, app.Servers[0])
	t.Cleanup(d.Stop)
	return d
}

// waitFor polls cond every 10ms until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
	return 0
}

func localKind(d *Detector) string {
	if l := d.Local(); len(l) == 1 {
		return l[0].Kind
	}
	return ""
}

func evaluate(app *config.App, st *store, replicas []ReplicaView, ids ...string) Verdict {
	return Evaluate(Input{Master: app.Servers[0].Name, Managers: managers(ids...), Observations: st.all(),
		Replicas: replicas, Now: time.Now(), Window: DefaultWindow(app)})
}

// TestKill9 kills the master's mariadbd with SIGKILL: the sentinel
// connection of every detector breaks at once, the reconnect is refused,
// and the replicas' IO threads report error 2003/2013.
func TestKill9(t *testing.T) {
	c := testbed.Start(t, testbed.Options{N: 3, NoSSH: true})
	app := appFor(c, "SELECT", 3*time.Second) // MHA's default ping_interval: detection must not depend on it
	st := newStore()
	ds := []*Detector{startDetector(t, "m1", app, st), startDetector(t, "m2", app, st), startDetector(t, "m3", app, st)}
	waitFor(t, "every detector reaches the master", 10*time.Second, func() bool {
		return Evaluate(Input{Master: "server1", Managers: managers("m1", "m2", "m3"), Observations: st.all(),
			Now: time.Now(), Window: DefaultWindow(app)}).Kind == Healthy && len(st.all()) == 3
	})
	// Wait until the three sentinels are blocked in SELECT SLEEP, so the
	// kill is noticed through them and not through a later probe.
	waitFor(t, "three sentinels in SELECT SLEEP", 10*time.Second, func() bool {
		n, err := c.Master().QueryString(context.Background(),
			"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP%'")
		return err == nil && n == "3"
	})

	start := time.Now()
	if err := c.Master().Kill9(); err != nil {
		t.Fatal(err)
	}
	killed := time.Since(start)
	noticed := waitFor(t, "m1 notices the dead master", 10*time.Second, func() bool { return localKind(ds[0]) == KindRefused })
	var v Verdict
	verdict := waitFor(t, "DeadMaster", 10*time.Second, func() bool {
		v = evaluate(app, st, ds[0].CheckReplicas(context.Background(), app, app.Servers[0]), "m1", "m2", "m3")
		return v.Kind == DeadMaster
	})
	t.Logf("kill -9 returned after %s (process gone); m1 noticed %s after that; DeadMaster after %s; reasons: %q",
		killed, noticed, verdict, v.Reasons)
	for _, d := range ds {
		if k := localKind(d); k != KindRefused {
			t.Errorf("manager %s local kind %q, want %q", d.cfg.Manager, k, KindRefused)
		}
	}
	for _, r := range ds[0].CheckReplicas(context.Background(), app, app.Servers[0]) {
		if r.IORunning == "Yes" || !ioConnectErrors[r.LastIOErrno] {
			t.Errorf("replica %s: IO %s errno %d, want not running with a connect error", r.Server, r.IORunning, r.LastIOErrno)
		}
	}
}

// TestLiveMaster covers a master that stays alive: a manager cut off from
// it, the INSERT ping, and "alive but refusing" errors.
func TestLiveMaster(t *testing.T) {
	c := testbed.Start(t, testbed.Options{N: 3, NoSSH: true, HeartbeatPeriod: 500 * time.Millisecond})
	ctx := context.Background()

	t.Run("one manager cut off never makes DeadMaster", func(t *testing.T) {
		app := appFor(c, "SELECT", time.Second)
		px := startProxy(t, c.Master().Addr())
		viaProxy := *app.Servers[0]
		viaProxy.IP, viaProxy.Port = px.host, px.port
		st := newStore()
		d1 := startDetector(t, "m1", withMaster(app, viaProxy), st)
		startDetector(t, "m2", app, st)
		startDetector(t, "m3", app, st)
		waitFor(t, "all three reach the master", 10*time.Second, func() bool {
			return evaluate(app, st, nil, "m1", "m2", "m3").Kind == Healthy && len(st.all()) == 3
		})
		px.blackhole(true)
		start := time.Now()
		cut := waitFor(t, "m1 times out", 10*time.Second, func() bool { return localKind(d1) == KindTimeout })
		t.Logf("the cut-off manager reported %s after %s", KindTimeout, cut)
		seenUnreachable := false
		for time.Since(start) < 2*DefaultWindow(app) {
			// d1 is the cut-off manager; let it be the one that evaluates.
			v := evaluate(app, st, d1.CheckReplicas(ctx, app, app.Servers[0]), "m1", "m2", "m3")
			if v.Actionable() || v.Kind == DeadMasterWithoutReplicas {
				t.Fatalf("verdict %s with one manager cut off; reasons %q", v.Kind, v.Reasons)
			}
			if v.Kind == UnreachableMaster {
				seenUnreachable = true
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !seenUnreachable {
			t.Fatal("the cut-off manager's observation never made the verdict UnreachableMaster")
		}
		px.blackhole(false)
		waitFor(t, "m1 reaches the master again", 10*time.Second, func() bool { return localKind(d1) == KindOK })
	})

	t.Run("ping_type INSERT writes infra.chk_masterha", func(t *testing.T) {
		app := appFor(c, "INSERT", 200*time.Millisecond)
		st := newStore()
		d := startDetector(t, "m1", app, st)
		waitFor(t, "insert ping ok", 10*time.Second, func() bool { return localKind(d) == KindOK })
		var first int
		waitFor(t, "a row in infra.chk_masterha", 10*time.Second, func() bool {
			s, err := c.Master().QueryString(ctx, "SELECT val FROM infra.chk_masterha WHERE `key`=1")
			first, _ = strconv.Atoi(s)
			return err == nil && first > 0
		})
		waitFor(t, "the row is updated again", 5*time.Second, func() bool {
			s, _ := c.Master().QueryString(ctx, "SELECT val FROM infra.chk_masterha WHERE `key`=1")
			n, _ := strconv.Atoi(s)
			return n > first
		})
		waitFor(t, "the row replicated", 10*time.Second, func() bool {
			s, _ := c.Servers[1].QueryString(ctx, "SELECT val FROM infra.chk_masterha WHERE `key`=1")
			n, _ := strconv.Atoi(s)
			return n >= first
		})
	})

	t.Run("ping_type CONNECT, metrics", func(t *testing.T) {
		app := appFor(c, "CONNECT", 200*time.Millisecond)
		st := newStore()
		mt := &countMetrics{}
		d := New(Config{Manager: "m1", Metrics: mt}, st, testLogger(t))
		d.Watch(ctx, app, app.Servers[0])
		t.Cleanup(d.Stop)
		waitFor(t, "connect ping ok, probes and samples counted", 10*time.Second, func() bool {
			mt.mu.Lock()
			defer mt.mu.Unlock()
			return localKind(d) == KindOK && mt.probes[KindOK] >= 3 && mt.samples >= 2 && mt.published >= 1
		})
		if n := len(st.published()); n > 2 {
			t.Fatalf("published %d observations of an unchanged master within the refresh period", n)
		}
	})

	t.Run("alive but refusing is not a failure", func(t *testing.T) {
		m := c.Master()
		if err := m.Exec(ctx, "CREATE USER IF NOT EXISTS 'probe'@'%' IDENTIFIED BY 'probe-pw'",
			"GRANT SELECT, PROCESS ON *.* TO 'probe'@'%'"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Exec(context.Background(), "DROP USER IF EXISTS 'probe'@'%'") })
		app := appFor(c, "SELECT", 500*time.Millisecond)
		probe := *app.Servers[0]
		probe.User, probe.Password = "probe", "probe-pw"
		st := newStore()
		d := startDetector(t, "m1", withMaster(app, probe), st)
		waitFor(t, "probe user reaches the master", 10*time.Second, func() bool { return localKind(d) == KindOK })

		// Lock the account and kill its connections: the sentinel breaks,
		// the reconnect gets "account locked" (4151).
		if err := m.Exec(ctx, "ALTER USER 'probe'@'%' ACCOUNT LOCK"); err != nil {
			t.Fatal(err)
		}
		rows, err := m.QueryRows(ctx, "SELECT id FROM information_schema.processlist WHERE user='probe'")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			m.Exec(ctx, "KILL "+r["id"])
		}
		waitFor(t, "auth-error (account locked)", 10*time.Second, func() bool { return localKind(d) == KindAuthError })
		t.Logf("locked account: %+v", d.Local()[0])

		// A wrong password: access denied (1045).
		bad := *app.Servers[0]
		bad.Password = "wrong-password"
		d2 := startDetector(t, "m2", withMaster(app, bad), st)
		waitFor(t, "auth-error", 10*time.Second, func() bool { return localKind(d2) == KindAuthError })

		for _, o := range st.published() {
			if !o.Reachable {
				t.Errorf("published a failure for a live master: %+v", o)
			}
			for _, pw := range []string{"probe-pw", "wrong-password", testbed.MHAPassword} {
				if strings.Contains(o.Detail, pw) {
					t.Errorf("observation detail contains a password: %q", o.Detail)
				}
			}
		}
	})
}

// TestPausedMaster stops the master with SIGSTOP: nothing breaks, so the
// probes time out and the replicas' heartbeats stop. DeadMaster must come
// only after the window.
func TestPausedMaster(t *testing.T) {
	c := testbed.Start(t, testbed.Options{N: 3, NoSSH: true, HeartbeatPeriod: 500 * time.Millisecond})
	app := appFor(c, "SELECT", time.Second)
	window := DefaultWindow(app)
	st := newStore()
	ds := []*Detector{startDetector(t, "m1", app, st), startDetector(t, "m2", app, st), startDetector(t, "m3", app, st)}
	waitFor(t, "healthy, and heartbeats arrive", 15*time.Second, func() bool {
		rs := ds[0].Replicas()
		if len(rs) != 2 || evaluate(app, st, nil, "m1", "m2", "m3").Kind != Healthy {
			return false
		}
		for _, r := range rs {
			if r.Heartbeats < 2 {
				return false
			}
		}
		return true
	})

	m := c.Master()
	start := time.Now()
	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Resume() })
	var v Verdict
	var firstTimeout time.Duration
	for {
		elapsed := time.Since(start)
		if elapsed > 20*time.Second {
			t.Fatalf("no DeadMaster 20s after SIGSTOP; last verdict %s %q", v.Kind, v.Reasons)
		}
		if firstTimeout == 0 && localKind(ds[0]) == KindTimeout {
			firstTimeout = elapsed
		}
		v = evaluate(app, st, ds[0].Replicas(), "m1", "m2", "m3")
		if v.Actionable() {
			if v.Kind != DeadMaster {
				t.Fatalf("verdict %s, want DeadMaster; reasons %q", v.Kind, v.Reasons)
			}
			if elapsed < window/2 {
				t.Fatalf("DeadMaster %s after SIGSTOP, before half the window (%s)", elapsed, window)
			}
			t.Logf("SIGSTOP: m1 timed out after %s; DeadMaster after %s (window %s); reasons %q", firstTimeout, elapsed, window, v.Reasons)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "healthy again after SIGCONT", 15*time.Second, func() bool {
		return evaluate(app, st, ds[0].Replicas(), "m1", "m2", "m3").Kind == Healthy
	})
}

// proxy forwards TCP connections to a target until it is blackholed; then
// it forwards nothing and keeps every connection open, like a host that was
// cut off from the network.
type proxy struct {
	host string
	port int
	ln   net.Listener

	mu   sync.Mutex
	hole bool
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, host: "127.0.0.1", port: ln.Addr().(*net.TCPAddr).Port}
	var conns sync.WaitGroup
	var open []net.Conn
	var openMu sync.Mutex
	track := func(c net.Conn) {
		openMu.Lock()
		open = append(open, c)
		openMu.Unlock()
	}
	t.Cleanup(func() {
		ln.Close()
		openMu.Lock()
		for _, c := range open {
			c.Close()
		}
		openMu.Unlock()
		conns.Wait()
	})
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			track(client)
			conns.Add(1)
			go func() {
				defer conns.Done()
				if p.blackholed() {
					io.Copy(io.Discard, client) // hold it: never answer
					return
				}
				server, err := net.Dial("tcp", target)
				if err != nil {
					client.Close()
					return
				}
				track(server)
				conns.Add(1)
				go func() { defer conns.Done(); p.pipe(server, client) }()
				p.pipe(client, server)
			}()
		}
	}()
	return p
}

func (p *proxy) blackhole(on bool) {
	p.mu.Lock()
	p.hole = on
	p.mu.Unlock()
}

func (p *proxy) blackholed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hole
}

// pipe copies src to dst, dropping the bytes while the proxy is blackholed.
func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.blackholed() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !p.blackholed() { // a cut-off host would not pass the close on either
				dst.Close()
			}
			return
		}
	}
}

// countMetrics counts what the detector reports.
type countMetrics struct {
	mu        sync.Mutex
	probes    map[string]int
	samples   int
	published int
}

func (m *countMetrics) Probe(_, _, kind string, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.probes == nil {
		m.probes = map[string]int{}
	}
	m.probes[kind]++
}

func (m *countMetrics) ReplicaSample(_, _ string, ok bool, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ok {
		m.samples++
	}
}

func (m *countMetrics) Published(_, _, _ string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		m.published++
	}
}
