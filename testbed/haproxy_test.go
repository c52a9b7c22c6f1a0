package testbed_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/api/apitest"
	"github.com/mharaft/mharaft/testbed"
)

// docExample is the example of docs/HAPROXY.md: three servers, three
// managers with TLS, reads within 10 s of lag.
func docExample(ca string) testbed.HAProxyOptions {
	return testbed.HAProxyOptions{
		App: "app1",
		Servers: []testbed.HAProxyServer{
			{Name: "server1", Addr: "10.0.0.11:3306"}, {Name: "server2", Addr: "10.0.0.12:3306"}, {Name: "server3", Addr: "10.0.0.13:3306"},
		},
		Managers:  []string{"10.0.0.21:8080", "10.0.0.22:8080", "10.0.0.23:8080"},
		WriteAddr: "0.0.0.0:3306",
		ReadAddr:  "0.0.0.0:3307",
		MaxLag:    10 * time.Second,
		CAFile:    ca,
		Socket:    "/run/haproxy/admin.sock",
	}
}

// TestHAProxyDocConfig: the configuration docs/HAPROXY.md shows is what
// HAProxyConfig renders for its example (the one the e2e test, the demo
// and the bench run), and haproxy -c accepts it.
func TestHAProxyDocConfig(t *testing.T) {
	want, err := testbed.HAProxyConfig(docExample("/etc/mharaft/ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/HAPROXY.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- haproxy.cfg: testbed.HAProxyConfig\\(docExample\\) -->\n```\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/HAPROXY.md has no haproxy.cfg block marked <!-- haproxy.cfg: testbed.HAProxyConfig(docExample) -->")
	}
	if got := string(m[1]); got != want {
		t.Errorf("docs/HAPROXY.md's haproxy.cfg differs from HAProxyConfig(docExample); render it again:\n%s", want)
	}

	bin, err := testbed.HAProxyBinary()
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	certs, err := testbed.WriteCerts(filepath.Join(dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, b, 0o644); err != nil {
		t.Fatal(err)
	}
	o := docExample(ca)
	o.Socket = filepath.Join(dir, "admin.sock")
	text, err := testbed.HAProxyConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c refuses the documented configuration: %v\n%s\n%s", err, out, text)
	}
}

// TestHAProxyConfigRefuses: names and addresses HAProxy's check cannot use.
func TestHAProxyConfigRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*testbed.HAProxyOptions)
	}{
		{"server name with a colon", func(o *testbed.HAProxyOptions) { o.Servers[0].Name = "db:1" }},
		{"manager by host name", func(o *testbed.HAProxyOptions) { o.Managers[1] = "m2.example:8080" }},
		{"manager without a port", func(o *testbed.HAProxyOptions) { o.Managers[1] = "10.0.0.22" }},
		{"no write address", func(o *testbed.HAProxyOptions) { o.WriteAddr = "" }},
		{"no managers", func(o *testbed.HAProxyOptions) { o.Managers = nil }},
	} {
		o := docExample("")
		tc.edit(&o)
		if _, err := testbed.HAProxyConfig(o); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// fakeManager serves the real API handler with a settable routing view.
type fakeManager struct {
	*apitest.FakeBackend
	mu      sync.Mutex
	primary string // the server it vouches for as primary
}

func (f *fakeManager) set(primary string) {
	f.mu.Lock()
	f.primary = primary
	f.mu.Unlock()
}

func (f *fakeManager) RoutingView(app string) (api.RoutingView, bool) {
	if app != "app1" {
		return api.RoutingView{}, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v := api.RoutingView{Current: true}
	for _, n := range []string{"server1", "server2"} {
		v.Servers = append(v.Servers, api.RoutingServer{Name: n, Primary: n == f.primary, Replica: n != f.primary, Lag: new(time.Duration)})
	}
	return v, true
}

// nameServer is a TCP listener that writes its name to every connection.
func nameServer(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", name)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// TestHAProxyFollowsPrimary: a real haproxy with HAProxyConfig sends new
// connections to the server the managers answer 200 for; when they move
// the primary, the connections follow; a manager that is down takes only
// its own check lines down.
func TestHAProxyFollowsPrimary(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts haproxy")
	}
	if _, err := testbed.HAProxyBinary(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mgrs []*fakeManager
	var addrs []string
	var servers []*httptest.Server
	for i := 0; i < 2; i++ {
		f := &fakeManager{FakeBackend: apitest.NewFakeBackend(), primary: "server1"}
		ts := httptest.NewServer(api.NewHandler(f, api.ServerConfig{Token: "a-token-of-16-bytes"}, nil))
		t.Cleanup(ts.Close)
		mgrs, servers = append(mgrs, f), append(servers, ts)
		addrs = append(addrs, strings.TrimPrefix(ts.URL, "http://"))
	}
	wport, err := testbed.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	rport, err := testbed.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	h, err := testbed.StartHAProxy(ctx, t.TempDir(), testbed.HAProxyOptions{
		App:       "app1",
		Servers:   []testbed.HAProxyServer{{Name: "server1", Addr: nameServer(t, "server1")}, {Name: "server2", Addr: nameServer(t, "server2")}},
		Managers:  addrs,
		WriteAddr: fmt.Sprintf("127.0.0.1:%d", wport),
		ReadAddr:  fmt.Sprintf("127.0.0.1:%d", rport),
		MaxLag:    5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := h.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("haproxy log:\n%s", h.Log())
		}
	}()
	// through reads one name from the frontend at addr; "" when the
	// connection is closed without one (no server UP).
	through := func(addr string) string {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return ""
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		b, _ := io.ReadAll(c)
		return strings.TrimSpace(string(b))
	}
	waitUp := func(kind string, want ...string) {
		t.Helper()
		for {
			up, err := h.UpServers(kind)
			if err == nil && slices.Equal(up, want) {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s backend: UP %v (%v), want %v\n%s", kind, up, err, want, h.Log())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	write, read := fmt.Sprintf("127.0.0.1:%d", wport), fmt.Sprintf("127.0.0.1:%d", rport)
	waitUp("primary", "server1")
	waitUp("replica", "server2")
	for i := 0; i < 4; i++ {
		if got := through(write); got != "server1" {
			t.Fatalf("write connection %d reached %q, want server1", i, got)
		}
		if got := through(read); got != "server2" {
			t.Fatalf("read connection %d reached %q, want server2", i, got)
		}
	}

	// One manager goes away: the other one keeps both servers routed.
	servers[0].Close()
	for _, m := range mgrs[1:] {
		m.set("server2")
	}
	waitUp("primary", "server2")
	waitUp("replica", "server1")
	for i := 0; i < 4; i++ {
		if got := through(write); got != "server2" {
			t.Fatalf("after the move, write connection %d reached %q, want server2", i, got)
		}
	}
	// No manager vouches for a primary (a failover lock): no server.
	mgrs[1].set("")
	waitUp("primary")
	if got := through(write); got != "" {
		t.Errorf("with no primary, a write connection reached %q", got)
	}
}
