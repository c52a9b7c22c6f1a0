package manager

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/testbed"
)

// prewarmApp is an application whose master's SSH port is ssh (127.0.0.1),
// with a key and an empty known_hosts file: a dial to a listener that
// never answers stays pending for ssh_connection_timeout, one to a closed
// port fails at once.
func prewarmApp(t *testing.T, ssh int) *config.App {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Skipf("ssh-keygen: %v: %s", err, out)
	}
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := func(name string, port int) *config.Server {
		return &config.Server{Name: name, Hostname: "127.0.0.1", Port: 3306, SSHPort: port, SSHUser: "root",
			SSHKey: key, SSHKnownHosts: kh, SSHConnectTimeout: 5 * time.Second}
	}
	return &config.App{Name: "app1", Servers: []*config.Server{srv("server1", ssh), srv("server2", ssh)}}
}

// closedPort is a port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestPrewarmSSH: the leader dials the suspected master's SSH at the first
// suspicion and hands the dial to that master's pipeline only: not to
// another master's, not once the suspicion ended, and with its real start
// time; when the dial failed, a fresh recovery (the pipeline dials afresh)
// that still dates the dial from the suspicion's start.
func TestPrewarmSSH(t *testing.T) {
	tests := []struct {
		name     string
		closed   bool // the master's SSH port refuses
		stopSusp bool // the suspicion ends before the verdict
		dead     string
		handed   bool
	}{
		{"pending dial handed to the master's pipeline", false, false, "server1", true},
		{"not to another master's pipeline", false, false, "server2", false},
		{"dropped when the suspicion ends", false, true, "server1", false},
		{"a failed dial: a fresh recovery dated from the suspicion", true, false, "server1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			port := testbed.SilentListener(t)
			if tc.closed {
				port = closedPort(t)
			}
			app := prewarmApp(t, port)
			m := &Manager{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			before := time.Now()
			m.prewarmSSH(ctx, app, app.Servers[0], true)
			m.mu.Lock()
			p := m.prewarms["app1"]
			m.mu.Unlock()
			if p == nil {
				t.Fatal("no pre-warm after the first suspicion")
			}
			if tc.closed {
				select {
				case <-p.done:
				case <-time.After(5 * time.Second):
					t.Fatal("the dial of a closed port did not end")
				}
				// Within prewarmRetry the failed dial is kept, not redone.
				m.prewarmSSH(ctx, app, app.Servers[0], true)
				m.mu.Lock()
				again := m.prewarms["app1"]
				m.mu.Unlock()
				if again != p {
					t.Error("a failed dial was redone at once, want after prewarmRetry")
				}
			} else {
				m.prewarmSSH(ctx, app, app.Servers[0], true) // a later evaluation keeps the same dial
				m.mu.Lock()
				again := m.prewarms["app1"]
				m.mu.Unlock()
				if again != p {
					t.Error("a second evaluation replaced the pending dial")
				}
			}
			if tc.stopSusp {
				m.prewarmSSH(ctx, app, app.Servers[0], false)
				if p.ctx.Err() == nil {
					t.Error("the pre-warm's dials go on after the suspicion ended")
				}
			}
			rec, done := m.takePrewarm("app1", tc.dead)
			if (rec != nil) != tc.handed {
				t.Fatalf("handed over: %v, want %v", rec != nil, tc.handed)
			}
			if rec == nil {
				return
			}
			defer done()
			if tc.closed && rec == failover.LogRecovery(p.rec) {
				t.Error("the recovery whose dial failed (it keeps the error, never dials again) was handed over")
			}
			ds, ok := rec.(failover.SSHDialStarted)
			if !ok {
				t.Fatal("the handed recovery does not say when its dials started")
			}
			at, ok := ds.SSHDialStarted(app.Servers[0])
			if !ok || at.Before(before) || at.After(time.Now()) {
				t.Errorf("dial of the master started at %v (ok %v), want between %v and now", at, ok, before)
			}
			if r2, _ := m.takePrewarm("app1", tc.dead); r2 != nil {
				t.Error("a pre-warm was handed over twice")
			}
		})
	}
}

// TestPrewarmRedialKeepsSuspicionStart: a dial of the suspected master that
// timed out is done again at the next evaluation, and the re-dial still
// reports the suspicion's first dial as its start (ssh_connection_timeout
// counts from there in the pipeline), so a verdict that comes after the
// first dial failed is not held for a second ssh_connection_timeout.
func TestPrewarmRedialKeepsSuspicionStart(t *testing.T) {
	app := prewarmApp(t, testbed.SilentListener(t))
	for _, s := range app.Servers {
		s.SSHConnectTimeout = time.Second
	}
	m := &Manager{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.prewarmSSH(ctx, app, app.Servers[0], true)
	m.mu.Lock()
	first := m.prewarms["app1"]
	m.mu.Unlock()
	select {
	case <-first.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the dial of a silent listener did not time out")
	}
	if first.err == nil {
		t.Fatal("the dial of a silent listener succeeded")
	}
	m.prewarmSSH(ctx, app, app.Servers[0], true)
	m.mu.Lock()
	again := m.prewarms["app1"]
	m.mu.Unlock()
	if again == first {
		t.Fatal("a dial that timed out was not done again")
	}
	if !again.since.Equal(first.since) || !again.started.After(first.started) {
		t.Fatalf("re-dial: since %v started %v; first dial: since %v started %v", again.since, again.started, first.since, first.started)
	}
	rec, done := m.takePrewarm("app1", "server1")
	if rec == nil {
		t.Fatal("the re-dial in flight was not handed over")
	}
	defer done()
	at, ok := rec.(failover.SSHDialStarted).SSHDialStarted(app.Servers[0])
	if !ok || !at.Equal(first.since) {
		t.Fatalf("the handed recovery says the dial started at %v (ok %v), want the suspicion's first dial %v", at, ok, first.since)
	}
}

// TestPrewarmBound: no more than maxPrewarms pre-warms run at once (an
// overloaded leader suspects many masters that are not dead); a suspect
// beyond them is not pre-warmed, and is once one of them ended.
func TestPrewarmBound(t *testing.T) {
	app := prewarmApp(t, testbed.SilentListener(t))
	m := &Manager{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	named := func(i int) *config.App {
		a := *app
		a.Name = fmt.Sprintf("app%d", i)
		return &a
	}
	running := func() int {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.prewarms)
	}
	for i := range maxPrewarms + 3 {
		a := named(i)
		m.prewarmSSH(ctx, a, a.Servers[0], true)
	}
	if n := running(); n != maxPrewarms {
		t.Fatalf("%d pre-warms after %d suspects, want at most %d", n, maxPrewarms+3, maxPrewarms)
	}
	first := named(0)
	m.prewarmSSH(ctx, first, first.Servers[0], false) // its suspicion ended
	last := named(maxPrewarms + 2)
	m.prewarmSSH(ctx, last, last.Servers[0], true)
	m.mu.Lock()
	_, ok := m.prewarms[last.Name]
	m.mu.Unlock()
	if !ok || running() != maxPrewarms {
		t.Errorf("after one suspicion ended: %s pre-warmed %v, %d running; want true, %d", last.Name, ok, running(), maxPrewarms)
	}
}
