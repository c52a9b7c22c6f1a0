package manager_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/manager"
	"github.com/mharaft/mharaft/testbed"
)

// proxy forwards TCP to a target until Blackhole, after which it keeps
// every connection open and silent (a host cut off, not a refused port).
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	dark   bool
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(p.close)
	go p.serve()
	return p
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		dark := p.dark
		p.mu.Unlock()
		if dark {
			go io.Copy(io.Discard, c)
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, up)
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// pipe copies while the proxy is not dark; once dark it reads and drops.
func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			dark := p.dark
			p.mu.Unlock()
			if !dark {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if !p.isDark() {
				dst.Close()
			}
			return
		}
	}
}

func (p *proxy) isDark() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dark
}

func (p *proxy) blackhole() {
	p.mu.Lock()
	p.dark = true
	p.mu.Unlock()
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// TestOneManagerCutOffNoFailover: the third manager reaches the master
// through a proxy that the test blackholes. The leader sees that manager's
// "cannot reach" observation (verdict UnreachableMaster) and never takes
// the lock or fails over.
func TestOneManagerCutOffNoFailover(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	var px *proxy
	e := startEnv(t, testbed.Options{N: 3}, func(c *testbed.Cluster) {
		px = startProxy(t, c.Master().Addr())
	}, func(i int, conf string) []string {
		if i != 2 {
			return []string{conf}
		}
		// m3's app1.conf: server1 through the proxy.
		dir := filepath.Join(filepath.Dir(conf), "m3conf")
		os.MkdirAll(dir, 0o755)
		b, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		master := px.target[strings.LastIndex(px.target, ":")+1:]
		text := strings.Replace(string(b), "port="+master+"\n", "port="+strconv.Itoa(px.port())+"\n", 1)
		path := filepath.Join(dir, "app1.conf")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{path}
	})
	t0 := time.Now()
	e.waitHealthy(e.db.Master())
	t.Logf("healthy after %s", time.Since(t0))
	px.blackhole()
	t0 = time.Now()
	// Precondition: m3 saw the master as unreachable.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(e.mc.Log(2), "reachable=false") {
		if time.Now().After(deadline) {
			t.Fatal("m3 never observed the master as unreachable through the blackholed proxy")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("m3 sees the master unreachable %s after the blackhole", time.Since(t0))
	// A generous window (detection window is 3 s at ping_interval=1):
	// never a lock, never a history entry; the leader's verdict shows it
	// counted m3's observation.
	sawUnreachable := false
	e.watchLeader(ctx, 12*time.Second, func(a api.AppStatus) {
		if a.Lock != nil || len(a.Journal) > 0 {
			t.Fatalf("failover lock taken while only one manager is cut off: lock %+v journal %+v", a.Lock, a.Journal)
		}
		if a.Verdict == "UnreachableMaster" {
			sawUnreachable = true
		}
		if a.Verdict != "Healthy" && a.Verdict != "UnreachableMaster" {
			t.Fatalf("verdict %q with one manager cut off", a.Verdict)
		}
	})
	if h := e.history(ctx); len(h) != 0 {
		t.Fatalf("history %+v, want none", h)
	}
	if !sawUnreachable {
		t.Fatal("the leader never evaluated UnreachableMaster: m3's observation did not count")
	}
	if rows, err := e.db.Master().QueryString(ctx, "SELECT @@read_only"); err != nil || rows != "0" {
		t.Fatalf("master read_only=%q (%v): it was touched", rows, err)
	}
}

// TestLeaderKilledBetweenPhases: the leader blocks after journaling the end
// of phase 2 (test hook) and is killed with SIGKILL; the new leader takes
// the lock over with a new epoch and completes the failover once.
func TestLeaderKilledBetweenPhases(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	e := startEnv(t, testbed.Options{N: 3}, func(c *testbed.Cluster) {
		if err := c.Walkthrough(ctx); err != nil {
			t.Fatal(err)
		}
	}, nil, manager.TestPauseAfterPhaseEnv+"="+failover.PhaseShutdown)
	e.waitHealthy(e.db.Master())
	if err := e.db.Master().Kill9(); err != nil {
		t.Fatal(err)
	}
	a := e.waitPhaseDone(-1, failover.PhaseShutdown)
	firstEpoch := a.Lock.Epoch
	li, err := e.mc.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.Lock.Holder != e.mc.Nodes[li].ID {
		t.Fatalf("lock holder %s is not the leader %s", a.Lock.Holder, e.mc.Nodes[li].ID)
	}
	t.Logf("killing leader %s paused after %q at epoch %d", e.mc.Nodes[li].ID, failover.PhaseShutdown, firstEpoch)
	if err := e.mc.Kill(li); err != nil {
		t.Fatal(err)
	}
	h := e.waitHistory(ctxT(t, 60*time.Second), 1)
	if h[0].Result != "success" || h[0].Epoch <= firstEpoch {
		t.Fatalf("history %+v: want success at an epoch after %d", h[0], firstEpoch)
	}
	st, err := e.mc.Client().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var shutdowns int
	epochs := map[uint64]bool{}
	for _, j := range st.Apps[0].Journal {
		epochs[j.Epoch] = true
		if j.Phase == failover.PhaseShutdown && j.Status == "started" {
			shutdowns++
		}
	}
	if shutdowns != 1 || !epochs[firstEpoch] || !epochs[h[0].Epoch] {
		t.Fatalf("journal: phase 2 started %d times (want 1), epochs %v (want %d and %d)", shutdowns, epochs, firstEpoch, h[0].Epoch)
	}
	newMaster := e.server(h[0].NewMaster)
	var other *testbed.Server
	for _, s := range e.db.Servers[1:] {
		if s != newMaster {
			other = s
		}
		rows, err := s.Rows(ctx)
		if err != nil || !slices.Equal(rows, []int{1, 2, 3}) {
			t.Fatalf("%s rows %v (%v), want [1 2 3]", s.Name(), rows, err)
		}
	}
	e.checkNewTopology(ctx, newMaster, other)
	if h := e.history(ctx); len(h) != 1 {
		t.Fatalf("history %+v: want exactly one failover", h)
	}
}

// TestSecondDeathNeedsAck: a second master death within
// last_failover_minute is detected but not failed over until the last
// failover is acknowledged; then it is.
func TestSecondDeathNeedsAck(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	e := startEnv(t, testbed.Options{N: 3}, func(c *testbed.Cluster) {
		if err := c.Master().Exec(ctx, "CREATE DATABASE test", "CREATE TABLE test.t1 (a INT PRIMARY KEY)", "INSERT INTO test.t1 VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}, nil)
	e.waitHealthy(e.db.Master())
	if err := e.db.Master().Kill9(); err != nil {
		t.Fatal(err)
	}
	h := e.waitHistory(ctxT(t, 60*time.Second), 1)
	second := e.server(h[0].NewMaster)
	var third *testbed.Server
	for _, s := range e.db.Servers[1:] {
		if s != second {
			third = s
		}
	}
	e.waitHealthy(second)

	if err := second.Kill9(); err != nil {
		t.Fatal(err)
	}
	// Detected (the verdict says the master is dead) but refused: no lock,
	// no new history entry, for well over the detection window.
	sawDead := false
	e.watchLeader(ctx, 8*time.Second, func(a api.AppStatus) {
		if a.Lock != nil {
			t.Fatalf("lock taken within last_failover_minute without ack: %+v", a.Lock)
		}
		if strings.HasPrefix(a.Verdict, "DeadMaster") {
			sawDead = true
		}
	})
	if !sawDead {
		t.Fatal("the second master death was never detected")
	}
	if h := e.history(ctx); len(h) != 1 {
		t.Fatalf("history %+v: want still one entry before ack", h)
	}
	if !strings.Contains(strings.Join([]string{e.mc.Log(0), e.mc.Log(1), e.mc.Log(2)}, ""), "automatic failover refused") {
		t.Error("no log line explains the refusal")
	}

	res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionAck, App: "app1"})
	if err != nil || !res.OK {
		t.Fatalf("ack: %+v %v", res, err)
	}
	h = e.waitHistory(ctxT(t, 60*time.Second), 2)
	if h[1].Result != "success" || h[1].DeadMaster != second.Addr() || h[1].NewMaster != third.Addr() {
		t.Fatalf("second history entry %+v: want %s -> %s", h[1], second.Addr(), third.Addr())
	}
	e.checkNewTopology(ctx, third)
}

// TestRestartKeepsState: a paused application stays paused across a
// restart of every node with the same data dirs; a node restarted with a
// peer list that disagrees with the stored one refuses to start.
func TestRestartKeepsState(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	e := startEnv(t, testbed.Options{N: 2, NoSSH: true}, nil, nil)
	e.waitHealthy(e.db.Master())
	if res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionPause, App: "app1", Reason: "maintenance"}); err != nil || !res.OK {
		t.Fatalf("pause: %+v %v", res, err)
	}
	for i := range e.mc.Nodes {
		if err := e.mc.Stop(i); err != nil {
			t.Fatal(err)
		}
		if err := e.mc.Wait(i, time.Second); err != nil {
			t.Fatalf("%s exit after SIGTERM: %v", e.mc.Nodes[i].ID, err)
		}
	}
	if err := e.mc.StartAll(); err != nil {
		t.Fatal(err)
	}
	for i := range e.mc.Nodes {
		if _, err := e.mc.WaitApp(ctxT(t, 30*time.Second), i, "app1", func(a *api.AppStatus) bool {
			return a.Paused && a.Master == e.db.Master().Addr()
		}); err != nil {
			t.Fatalf("%s after restart: %v", e.mc.Nodes[i].ID, err)
		}
	}

	// m2 with a peer list naming another address for m3.
	if err := e.mc.Stop(1); err != nil {
		t.Fatal(err)
	}
	args := e.mc.Args(1)
	for k, a := range args {
		if a == "--peers" {
			args[k+1] = strings.Replace(args[k+1], e.mc.Nodes[2].RaftAddr, "127.0.0.1:1", 1)
		}
	}
	if err := e.mc.StartWith(1, args); err != nil {
		t.Fatal(err)
	}
	err := e.mc.Wait(1, 20*time.Second)
	if err == nil || !strings.Contains(e.mc.Log(1), "stored peers") {
		t.Fatalf("m2 with a disagreeing peer list: exit %v, log:\n%s", err, tail(e.mc.Log(1), 2000))
	}
	// With the right list it comes back.
	if err := e.mc.Start(1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mc.WaitApp(ctxT(t, 30*time.Second), 1, "app1", func(a *api.AppStatus) bool { return a.Paused }); err != nil {
		t.Fatal(err)
	}
}

// TestFailedFailoverHaltsUntilAck: master_ip_failover_script fails the
// first time, so the pipeline stops: the failover halts (history "halted",
// lock kept, nothing promoted) and nothing more happens until `ack`, which
// clears the halt; the failover then runs again and succeeds.
func TestFailedFailoverHaltsUntilAck(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	dir := t.TempDir()
	script := filepath.Join(dir, "ip_failover.sh")
	marker := filepath.Join(dir, "failed-once")
	body := "#!/bin/sh\nif [ -e " + marker + " ]; then exit 0; fi\ntouch " + marker + "\necho 'VIP move failed' >&2\nexit 1\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	e := startEnv(t, testbed.Options{N: 3}, func(c *testbed.Cluster) {
		if err := c.Walkthrough(ctx); err != nil {
			t.Fatal(err)
		}
	}, func(i int, conf string) []string {
		b, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(filepath.Dir(conf), fmt.Sprintf("m%d", i+1), "app1.conf")
		os.MkdirAll(filepath.Dir(path), 0o755)
		text := strings.Replace(string(b), "[server default]\n", "[server default]\nmaster_ip_failover_script="+script+"\n", 1)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{path}
	})
	e.waitHealthy(e.db.Master())
	if err := e.db.Master().Kill9(); err != nil {
		t.Fatal(err)
	}
	h := e.waitHistory(ctxT(t, 60*time.Second), 1)
	if h[0].Result != "halted" || !strings.Contains(h[0].Summary, "ack") || !strings.Contains(h[0].Summary, "VIP move failed") {
		t.Fatalf("history %+v: want a halted failover whose summary gives the cause and how to clear it", h[0])
	}
	a, err := e.mc.WaitApp(ctxT(t, 10*time.Second), -1, "app1", func(a *api.AppStatus) bool { return a.Lock != nil })
	if err != nil {
		t.Fatal(err)
	}
	if !a.Unfinished {
		t.Fatal("a halted failover is not shown as unfinished")
	}
	// Nothing happens while halted, for longer than the detection window.
	end := time.Now().Add(4 * time.Second)
	for time.Now().Before(end) {
		if h := e.history(ctx); len(h) != 1 {
			t.Fatalf("history changed while halted: %+v", h)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, s := range e.db.Servers[1:] {
		if ro, err := s.QueryString(ctx, "SELECT @@read_only"); err != nil || ro != "1" {
			t.Fatalf("%s read_only=%q (%v) while halted: something was promoted", s.Name(), ro, err)
		}
	}
	res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionAck, App: "app1"})
	if err != nil || !res.OK || !strings.Contains(res.Message, "halted") {
		t.Fatalf("ack: %+v %v", res, err)
	}
	h = e.waitHistory(ctxT(t, 60*time.Second), 2)
	if h[1].Result != "success" {
		t.Fatalf("after ack: %+v", h[1])
	}
	for _, s := range e.db.Servers[1:] {
		rows, err := s.Rows(ctx)
		if err != nil || !slices.Equal(rows, []int{1, 2, 3}) {
			t.Fatalf("%s rows %v (%v), want [1 2 3]", s.Name(), rows, err)
		}
	}
}
