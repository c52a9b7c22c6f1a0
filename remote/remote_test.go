package remote

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/testbed"
)

func startSSHD(t *testing.T) *testbed.SSHD {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real sshd (not in the -short unit lane)")
	}
	d, err := testbed.StartSSHD(filepath.Join(t.TempDir(), "sshd"), "127.0.0.1")
	if d != nil {
		t.Cleanup(d.Stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func cfgFor(d *testbed.SSHD) Config {
	return Config{User: d.User, Host: d.Host, Port: d.Port, KeyFile: d.ClientKey, KnownHostsFile: d.KnownHosts, Timeout: 3 * time.Second}
}

func TestReadAndWrite(t *testing.T) {
	d := startSSHD(t)
	ctx := context.Background()
	c, err := Dial(ctx, cfgFor(d))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	dir := t.TempDir()
	path := filepath.Join(dir, "it's a file")
	data := bytes.Repeat([]byte("0123456789"), 1000)
	if err := c.WriteFile(ctx, path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("WriteFile wrote %d bytes (err %v), want %d", len(got), err, len(data))
	}
	size, err := c.Stat(ctx, path)
	if err != nil || size != int64(len(data)) {
		t.Fatalf("Stat = %d, %v; want %d", size, err, len(data))
	}
	for _, tc := range []struct {
		name       string
		off, n     int64
		want       []byte
		wantErrSub string
	}{
		{"from offset", 9995, -1, data[9995:], ""},
		{"range", 5, 7, data[5:12], ""},
		{"range past end", 9990, 20, nil, "shorter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			var err error
			if tc.n < 0 {
				_, err = c.ReadFrom(ctx, path, tc.off, &b)
			} else {
				_, err = c.ReadRange(ctx, path, tc.off, tc.n, &b)
			}
			if tc.wantErrSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSub) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErrSub)
				}
				return
			}
			if err != nil || !bytes.Equal(b.Bytes(), tc.want) {
				t.Fatalf("got %q (err %v), want %q", b.Bytes(), err, tc.want)
			}
		})
	}
	all, err := c.ReadFile(ctx, path)
	if err != nil || !bytes.Equal(all, data) {
		t.Fatalf("ReadFile: %d bytes, %v", len(all), err)
	}
	if _, err := c.Run(ctx, "exit 3"); err == nil || !strings.Contains(err.Error(), "status 3") {
		t.Fatalf("Run of a failing command: err = %v, want status 3", err)
	}
}

func TestHostKeyMismatchAndUnknown(t *testing.T) {
	d := startSSHD(t)
	other := startSSHD(t) // a different host key
	ctx := context.Background()

	wrong := cfgFor(d)
	wrong.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
	// Pin d's address to the other server's key: what a re-keyed or spoofed host looks like.
	line := "[" + d.Host + "]:" + itoa(d.Port) + " " + other.HostKeyPub + "\n"
	os.WriteFile(wrong.KnownHostsFile, []byte(line), 0o644)
	_, err := Dial(ctx, wrong)
	if !errors.Is(err, ErrHostKeyMismatch) || !strings.Contains(err.Error(), d.Host) || !strings.Contains(err.Error(), "update") {
		t.Fatalf("mismatching host key: err = %v", err)
	}

	empty := cfgFor(d)
	empty.KnownHostsFile = filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty.KnownHostsFile, nil, 0o644)
	if _, err := Dial(ctx, empty); !errors.Is(err, ErrUnknownHost) {
		t.Fatalf("unknown host: err = %v, want ErrUnknownHost", err)
	}
}

func TestUnreachableAndBadKey(t *testing.T) {
	d := startSSHD(t)
	ctx := context.Background()
	closed := cfgFor(d)
	port, _ := testbed.FreePort("127.0.0.1")
	closed.Port = port
	if _, err := Dial(ctx, closed); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("closed port: err = %v, want ErrUnreachable", err)
	}
	other := startSSHD(t)
	badKey := cfgFor(d)
	badKey.KeyFile = other.ClientKey // a key d does not accept
	if _, err := Dial(ctx, badKey); !errors.Is(err, ErrAuth) {
		t.Fatalf("key not authorised: err = %v, want ErrAuth", err)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{"a": "'a'", "it's": `'it'\''s'`, "": "''"} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// blackholeProxy forwards TCP to target until cut, then holds its
// connections open and forwards nothing: a host that stopped answering.
type blackholeProxy struct {
	ln  net.Listener
	mu  sync.Mutex
	cut bool
}

func newBlackholeProxy(t *testing.T, target string) *blackholeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blackholeProxy{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			t.Cleanup(func() { in.Close(); out.Close() })
			go p.pipe(in, out)
			go p.pipe(out, in)
		}
	}()
	return p
}

func (p *blackholeProxy) pipe(from, to net.Conn) {
	buf := make([]byte, 32*1024)
	for {
		n, err := from.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if !cut {
			to.Write(buf[:n])
		}
	}
}

func (p *blackholeProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// TestHostStopsAnswering: once a connected host stops answering, a command
// returns when its context ends instead of hanging on the session's open.
func TestHostStopsAnswering(t *testing.T) {
	d := startSSHD(t)
	p := newBlackholeProxy(t, d.Addr())
	cfg := cfgFor(d)
	cfg.Port = p.port()
	// The known_hosts entry names [host]:port: pin the proxy's port to d's key.
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
	line := "[" + d.Host + "]:" + itoa(cfg.Port) + " " + d.HostKeyPub + "\n"
	if err := os.WriteFile(cfg.KnownHostsFile, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Run(context.Background(), "true"); err != nil {
		t.Fatalf("run through the proxy before the cut: %v", err)
	}
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, "true")
		done <- err
	}()
	select {
	case err = <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("run after the host stopped answering: err = %v, want the context's deadline", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run after the host stopped answering still blocked 5 s later: it ignored its 300 ms context")
	}
}

// An ssh key that group or others can read is refused before any
// connection, as OpenSSH refuses it, with the file, its mode and the fix.
func TestOpenKeyRefused(t *testing.T) {
	d := startSSHD(t)
	cfg := cfgFor(d)
	key := filepath.Join(t.TempDir(), "id_ed25519")
	b, err := os.ReadFile(d.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.KeyFile = key
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("0600 key: %v", err)
	}
	c.Close()
	os.Chmod(key, 0o644)
	want := "ssh key " + key + " has mode 0644: group or others can access it and it holds a secret; run `chmod 600 " + key + "`"
	if _, err := Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("0644 key: err = %v, want it to contain %q", err, want)
	}
}

// An MHA configuration that names the key, the port, the login, the
// known_hosts file and the timeouts only in ssh_options (sshd listens on a
// port other than 22): the loaded server connects with them. The same file
// with MHA's usual StrictHostKeyChecking=no is refused at load, saying why
// and how to add the host key instead.
func TestSSHOptionsFromConfig(t *testing.T) {
	d := startSSHD(t)
	dir := t.TempDir()
	write := func(options string) string {
		path := filepath.Join(dir, "app1.conf")
		conf := "[server default]\nssh_options=\"" + options + "\"\n[server1]\nhostname=" + d.Host + "\nport=3306\n"
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	options := "-i " + d.ClientKey + " -p " + itoa(d.Port) + " -l " + d.User +
		" -o UserKnownHostsFile=" + d.KnownHosts + " -o ConnectTimeout=3 -o ServerAliveInterval=1 -o ServerAliveCountMax=2"
	app, err := config.Load(write(options), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg := ConfigFor(app.Servers[0])
	want := Config{User: d.User, Host: d.Host, Port: d.Port, KeyFile: d.ClientKey, KnownHostsFile: d.KnownHosts,
		Timeout: 3 * time.Second, AliveInterval: time.Second, AliveCountMax: 2}
	if cfg != want {
		t.Fatalf("ConfigFor = %+v, want %+v", cfg, want)
	}
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("dial with the settings of ssh_options: %v", err)
	}
	defer c.Close()
	if out, err := c.Run(context.Background(), "echo ok"); err != nil || string(out) != "ok\n" {
		t.Fatalf("run: %q, %v", out, err)
	}

	_, err = config.Load(write(options+" -o StrictHostKeyChecking=no"), "")
	for _, frag := range []string{filepath.Join(dir, "app1.conf") + ":2: [server default] ssh_options = ",
		"-o StrictHostKeyChecking=no is refused: mharaft always verifies the host key", "ssh-keyscan -p SSH_PORT HOST >> FILE"} {
		if err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("StrictHostKeyChecking=no: err = %v, want it to contain %q", err, frag)
		}
	}
}

// ServerAliveInterval: a healthy host keeps its connection; once the host
// stops answering, the unanswered keepalives close the connection, so a
// command without a deadline fails instead of hanging.
func TestKeepalive(t *testing.T) {
	d := startSSHD(t)
	p := newBlackholeProxy(t, d.Addr())
	cfg := cfgFor(d)
	cfg.Port = p.port()
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
	line := "[" + d.Host + "]:" + itoa(cfg.Port) + " " + d.HostKeyPub + "\n"
	if err := os.WriteFile(cfg.KnownHostsFile, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.AliveInterval, cfg.AliveCountMax = 50*time.Millisecond, 2
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Ten keepalive intervals of an answering host: commands keep working.
	for end := time.Now().Add(10 * cfg.AliveInterval); time.Now().Before(end); {
		if _, err := c.Run(context.Background(), "true"); err != nil {
			t.Fatalf("run on an answering host with keepalives: %v", err)
		}
	}
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(context.Background(), "true")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("run after the host stopped answering succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run without a deadline still blocked 5 s after the host stopped answering: keepalives (every 50 ms, 2 missed) did not close the connection")
	}
}
