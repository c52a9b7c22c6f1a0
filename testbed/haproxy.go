package testbed

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// HAProxy in front of an application's servers, routed by the managers'
// routing endpoints (docs/HAPROXY.md): HAProxyConfig renders the
// configuration that document shows, StartHAProxy runs Debian's haproxy
// with it (StartProc, like every child process here).

// HAProxyOptions describes the load balancer of one application.
type HAProxyOptions struct {
	App      string          // the application's name in the managers' API ("app1")
	Servers  []HAProxyServer // the application's database servers
	Managers []string        // every manager's API address, IP:port (HAProxy's check addr takes an IP)
	// WriteAddr is the writes' frontend (IP:port): it routes to the server
	// that a manager's GET .../primary answers 200 for.
	WriteAddr string
	// ReadAddr, when set, is the reads' frontend: the servers that
	// .../replica?lag=MaxLag answers 200 for.
	ReadAddr string
	MaxLag   time.Duration // ?lag= of the replica checks; 0: the API's default (no parameter)
	// CAFile: the managers speak HTTPS (--tls-*); the checks verify their
	// certificate with this CA. "": plain HTTP.
	CAFile string
	// Socket is the path of HAProxy's stats socket ("" none); StartHAProxy
	// sets one in its directory (ServerStates reads it).
	Socket string
}

// HAProxyServer is one database server: its name in the application's
// configuration (the [section]; it must not contain ':') and its IP:port.
type HAProxyServer struct {
	Name string
	Addr string
}

// The health check timing of HAProxyConfig: a line is checked every
// 500 ms while UP and every 250 ms while DOWN, and it changes state on
// one answer (rise 1, fall 1): a manager that answers one check wrong
// takes only its own line down, the server stays reachable through the
// other managers' lines.
const (
	haproxyInter     = "500ms"
	haproxyDownInter = "250ms"
)

// HAProxyConfig renders the haproxy.cfg of o: per frontend one backend
// with one server line per database server and manager, named
// "<server>:m<i>", whose traffic goes to the database server and whose
// health check asks manager i (check addr/port) about that server (the
// name before the ':', %[srv_name,field(1,:)]). A database server is used
// while at least one manager vouches for it; a manager that is down, cut
// off or removed answers nothing or 503, which takes only its own lines
// down.
func HAProxyConfig(o HAProxyOptions) (string, error) {
	if o.App == "" || len(o.Servers) == 0 || len(o.Managers) == 0 || o.WriteAddr == "" {
		return "", errors.New("haproxy config: an application, its servers, the managers and a write address are needed")
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("global")
	w("    log stderr format iso local0 info")
	if o.Socket != "" {
		w("    stats socket %s mode 600 level admin", o.Socket)
	}
	w("")
	w("defaults")
	w("    mode tcp")
	w("    log global")
	w("    option log-health-checks")
	w("    timeout connect 1s")
	w("    timeout client 1h")
	w("    timeout server 1h")
	w("    timeout check 1s")
	w("    retries 0")
	for _, fe := range []struct{ kind, addr, path string }{
		{"primary", o.WriteAddr, "primary"},
		{"replica", o.ReadAddr, "replica"},
	} {
		if fe.addr == "" {
			continue
		}
		name := o.App + "_" + fe.kind
		query := ""
		if fe.kind == "replica" && o.MaxLag > 0 {
			query = "?lag=" + o.MaxLag.String()
		}
		w("")
		w("frontend %s", name)
		w("    bind %s", fe.addr)
		w("    default_backend %s", name)
		w("")
		w("backend %s", name)
		w("    option httpchk")
		w("    http-check send meth GET uri-lf /v1/apps/%s/servers/%%[srv_name,field(1,:)]/%s%s", o.App, fe.path, query)
		w("    http-check expect status 200")
		tls := ""
		if o.CAFile != "" {
			tls = " check-ssl verify required ca-file " + o.CAFile
		}
		w("    default-server inter %s downinter %s rise 1 fall 1%s", haproxyInter, haproxyDownInter, tls)
		for _, s := range o.Servers {
			if s.Name == "" || strings.Contains(s.Name, ":") {
				return "", fmt.Errorf("haproxy config: server name %q: want a name without ':' (the check takes the name before it)", s.Name)
			}
			for i, m := range o.Managers {
				host, port, err := net.SplitHostPort(m)
				if err != nil || net.ParseIP(host) == nil {
					return "", fmt.Errorf("haproxy config: manager address %q: want IP:port (HAProxy's check addr is an IP)", m)
				}
				w("    server %s:m%d %s check addr %s port %s", s.Name, i+1, s.Addr, host, port)
			}
		}
	}
	return b.String(), nil
}

// HAProxy is a running haproxy.
type HAProxy struct {
	Dir     string // haproxy.cfg, haproxy.log, haproxy.sock
	Conf    string
	LogPath string
	Opts    HAProxyOptions
	proc    *Proc
}

// HAProxyBinary is the path of haproxy, or an error saying how to install it.
func HAProxyBinary() (string, error) {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy", nil
	}
	return "", errors.New("haproxy not found: install it (bash scripts/deps.sh, or apt-get install haproxy)")
}

// StartHAProxy writes dir/haproxy.cfg for o (with a stats socket in dir),
// checks it with haproxy -c, starts haproxy in the foreground with its log
// in dir/haproxy.log, and waits until the frontends accept connections.
func StartHAProxy(ctx context.Context, dir string, o HAProxyOptions) (*HAProxy, error) {
	bin, err := HAProxyBinary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("haproxy directory: %w", err)
	}
	if o.Socket == "" {
		o.Socket = filepath.Join(dir, "haproxy.sock")
	}
	text, err := HAProxyConfig(o)
	if err != nil {
		return nil, err
	}
	h := &HAProxy{Dir: dir, Conf: filepath.Join(dir, "haproxy.cfg"), LogPath: filepath.Join(dir, "haproxy.log"), Opts: o}
	if err := os.WriteFile(h.Conf, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", h.Conf, err)
	}
	if out, err := exec.CommandContext(ctx, bin, "-c", "-q", "-f", h.Conf).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("haproxy -c -f %s: %w\n%s", h.Conf, err, out)
	}
	logf, err := os.Create(h.LogPath)
	if err != nil {
		return nil, fmt.Errorf("haproxy log: %w", err)
	}
	cmd := exec.Command(bin, "-db", "-f", h.Conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if h.proc, err = StartProc(cmd, logf); err != nil {
		return nil, fmt.Errorf("start haproxy: %w", err)
	}
	for _, addr := range []string{o.WriteAddr, o.ReadAddr} {
		if addr == "" {
			continue
		}
		if err := h.waitListening(ctx, addr, 10*time.Second); err != nil {
			h.Stop()
			return nil, err
		}
	}
	return h, nil
}

// waitListening polls until addr accepts a TCP connection.
func (h *HAProxy) waitListening(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if !h.proc.Running() {
			return fmt.Errorf("haproxy exited: %s", haproxyLogTail(h.LogPath, 2000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("haproxy does not listen on %s after %s: %w; log %s", addr, timeout, err, h.LogPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops haproxy (SIGTERM, then SIGKILL after 5 s).
func (h *HAProxy) Stop() error {
	if h.proc == nil {
		return nil
	}
	return h.proc.Stop(syscall.SIGTERM, 5*time.Second)
}

// Running reports whether haproxy has not exited.
func (h *HAProxy) Running() bool { return h.proc != nil && h.proc.Running() }

// Log is haproxy's output so far.
func (h *HAProxy) Log() string {
	b, _ := os.ReadFile(h.LogPath)
	return string(b)
}

// ServerStates reads `show stat` from the stats socket: backend -> server
// line ("server1:m2") -> status ("UP", "DOWN", "UP 1/2", ...).
func (h *HAProxy) ServerStates() (map[string]map[string]string, error) {
	c, err := net.DialTimeout("unix", h.Opts.Socket, time.Second)
	if err != nil {
		return nil, fmt.Errorf("haproxy stats socket %s: %w", h.Opts.Socket, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("show stat\n")); err != nil {
		return nil, fmt.Errorf("haproxy stats socket: %w", err)
	}
	r := csv.NewReader(bufio.NewReader(c))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("haproxy show stat: %w", err)
	}
	if len(rows) == 0 {
		return nil, errors.New("haproxy show stat: empty answer")
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[strings.TrimPrefix(strings.TrimSpace(name), "# ")] = i
	}
	px, sv, status := col["pxname"], col["svname"], col["status"]
	out := map[string]map[string]string{}
	for _, row := range rows[1:] {
		if len(row) <= max(px, sv, status) || row[sv] == "FRONTEND" || row[sv] == "BACKEND" {
			continue
		}
		if out[row[px]] == nil {
			out[row[px]] = map[string]string{}
		}
		out[row[px]][row[sv]] = row[status]
	}
	return out, nil
}

// UpServers is the database servers (names before the ':') with at least
// one line UP in the backend of kind "primary" or "replica".
func (h *HAProxy) UpServers(kind string) ([]string, error) {
	st, err := h.ServerStates()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var up []string
	for line, status := range st[h.Opts.App+"_"+kind] {
		name, _, _ := strings.Cut(line, ":")
		if strings.HasPrefix(status, "UP") && !seen[name] {
			seen[name] = true
			up = append(up, name)
		}
	}
	sort.Strings(up)
	return up, nil
}

// haproxyLogTail is the end of a file, at most n bytes.
func haproxyLogTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strconv.Quote(string(b))
}
