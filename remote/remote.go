package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/internal/secret"
)

// Config says how to reach one host.
type Config struct {
	User           string
	Host           string
	Port           int
	KeyFile        string        // private key; "" tries ~/.ssh/id_ed25519, id_ecdsa, id_rsa
	KnownHostsFile string        // "" means ~/.ssh/known_hosts
	Timeout        time.Duration // dial and handshake; default 5s
	// AliveInterval, when not 0, sends a keepalive request after each
	// interval without an answer to the last one and closes the connection
	// once AliveCountMax (default 3) of them went unanswered, as ssh's
	// ServerAliveInterval and ServerAliveCountMax do: a host that stopped
	// answering then fails every command on the connection instead of only
	// those bounded by a context.
	AliveInterval time.Duration
	AliveCountMax int
}

// Addr is host:port.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// ConfigFor derives the SSH settings of a configured server.
func ConfigFor(s *config.Server) Config {
	host := s.SSHIP
	if host == "" {
		host = s.SSHHost
	}
	if host == "" {
		host = s.Hostname
	}
	port := s.SSHPort
	if port == 0 {
		port = 22
	}
	return Config{User: s.SSHUser, Host: host, Port: port, KeyFile: s.SSHKey,
		KnownHostsFile: s.SSHKnownHosts, Timeout: s.SSHConnectTimeout,
		AliveInterval: s.SSHAliveInterval, AliveCountMax: s.SSHAliveCountMax}
}

// Sentinel errors; returned wrapped with the host they concern.
var (
	ErrHostKeyMismatch = errors.New("ssh host key mismatch")
	ErrUnknownHost     = errors.New("ssh host key unknown")
	ErrAuth            = errors.New("ssh authentication failed")
	ErrUnreachable     = errors.New("ssh unreachable")
)

// Client is one SSH connection to a host.
type Client struct {
	cfg Config
	c   *ssh.Client
}

// Dial connects and verifies the host key.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Port == 0 {
		cfg.Port = 22
	}
	home, _ := os.UserHomeDir()
	if cfg.KnownHostsFile == "" {
		cfg.KnownHostsFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	hostKeyCallback, err := knownhosts.New(cfg.KnownHostsFile)
	if err != nil {
		return nil, fmt.Errorf("ssh to %s: read known_hosts %s: %w (set ssh_known_hosts to a file holding the host's key)", cfg.Addr(), cfg.KnownHostsFile, err)
	}
	signers, err := loadSigners(cfg.KeyFile, home)
	if err != nil {
		return nil, fmt.Errorf("ssh to %s: %w", cfg.Addr(), err)
	}
	sc := &ssh.ClientConfig{
		User:            cfg.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signers...)},
		HostKeyCallback: hostKeyCallback,
		Timeout:         cfg.Timeout,
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", cfg.Addr())
	if err != nil {
		return nil, fmt.Errorf("ssh to %s: %w: %v", cfg.Addr(), ErrUnreachable, err)
	}
	conn.SetDeadline(time.Now().Add(cfg.Timeout))
	cc, chans, reqs, err := ssh.NewClientConn(conn, cfg.Addr(), sc)
	if err != nil {
		conn.Close()
		return nil, classify(cfg, err)
	}
	conn.SetDeadline(time.Time{})
	c := &Client{cfg: cfg, c: ssh.NewClient(cc, chans, reqs)}
	if cfg.AliveInterval > 0 {
		go c.keepalive()
	}
	return c, nil
}

// keepalive runs until the connection closes: at each AliveInterval it
// sends a keepalive@openssh.com request (any reply, even a refusal, shows
// the host is alive) unless the previous one is still unanswered, which
// counts as a miss; AliveCountMax misses in a row close the connection.
func (c *Client) keepalive() {
	closed := make(chan struct{})
	go func() {
		c.c.Wait()
		close(closed)
	}()
	max := c.cfg.AliveCountMax
	if max <= 0 {
		max = 3
	}
	t := time.NewTicker(c.cfg.AliveInterval)
	defer t.Stop()
	var pending chan struct{} // the unanswered request, nil when none
	missed := 0
	for {
		select {
		case <-closed:
			return
		case <-pending:
			pending, missed = nil, 0
		case <-t.C:
			if pending != nil {
				missed++
				if missed >= max {
					c.c.Close()
					return
				}
				continue
			}
			answered := make(chan struct{})
			pending = answered
			go func() {
				c.c.SendRequest("keepalive@openssh.com", true, nil)
				close(answered)
			}()
		}
	}
}

func classify(cfg Config, err error) error {
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		if len(ke.Want) > 0 {
			return fmt.Errorf("ssh to %s: %w: the host presented a key that does not match %s:%d; if the host was legitimately re-keyed, verify its new key out of band and update %s",
				cfg.Addr(), ErrHostKeyMismatch, cfg.KnownHostsFile, ke.Want[0].Line, cfg.KnownHostsFile)
		}
		return fmt.Errorf("ssh to %s: %w: no entry for it in %s; add the host's verified key (e.g. ssh-keyscan -p %d %s, checked against the host) to that file",
			cfg.Addr(), ErrUnknownHost, cfg.KnownHostsFile, cfg.Port, cfg.Host)
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		return fmt.Errorf("ssh to %s as %s: %w: check ssh_user and ssh_key, and the key in the user's authorized_keys", cfg.Addr(), cfg.User, ErrAuth)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) {
		return fmt.Errorf("ssh to %s: %w: %v", cfg.Addr(), ErrUnreachable, err)
	}
	return fmt.Errorf("ssh to %s: %w", cfg.Addr(), err)
}

func loadSigners(keyFile, home string) ([]ssh.Signer, error) {
	files := []string{keyFile}
	if keyFile == "" {
		files = []string{filepath.Join(home, ".ssh", "id_ed25519"), filepath.Join(home, ".ssh", "id_ecdsa"), filepath.Join(home, ".ssh", "id_rsa")}
	}
	var signers []ssh.Signer
	for _, f := range files {
		if err := secret.File("ssh key", f); err != nil {
			if keyFile == "" && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		b, err := os.ReadFile(f)
		if err != nil {
			if keyFile != "" {
				return nil, fmt.Errorf("read ssh key %s: %w", f, err)
			}
			continue
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("parse ssh key %s: %w (passphrase-protected keys are not supported; use an agent-less key for the manager)", f, err)
		}
		signers = append(signers, s)
	}
	if len(signers) == 0 {
		return nil, fmt.Errorf("no ssh key found in %s: set ssh_key", strings.Join(files, ", "))
	}
	return signers, nil
}

// Host is user@host:port, for messages.
func (c *Client) Host() string { return c.cfg.User + "@" + c.cfg.Addr() }

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// session opens a session within ctx. Opening one is a round trip on the
// connection: to a host that stopped answering (cut off, powered off) it
// would block forever, so when ctx ends first the connection is closed,
// which also ends every other session on it, and the client is useless.
func (c *Client) session(ctx context.Context) (*ssh.Session, error) {
	type opened struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := c.c.NewSession()
		ch <- opened{s, err}
	}()
	select {
	case o := <-ch:
		return o.s, o.err
	case <-ctx.Done():
		c.c.Close()
		go func() {
			if o := <-ch; o.s != nil {
				o.s.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// Run runs cmd with sh on the host and returns its standard output. A
// non-zero exit is an error carrying the exit status and standard error.
func (c *Client) Run(ctx context.Context, cmd string) ([]byte, error) {
	var out bytes.Buffer
	if err := c.stream(ctx, cmd, &out); err != nil {
		return out.Bytes(), err
	}
	return out.Bytes(), nil
}

// stream runs cmd and copies its standard output to w.
func (c *Client) stream(ctx context.Context, cmd string, w io.Writer) error {
	sess, err := c.session(ctx)
	if err != nil {
		return fmt.Errorf("ssh session to %s: %w", c.Host(), err)
	}
	defer sess.Close()
	var stderr bytes.Buffer
	sess.Stdout = w
	sess.Stderr = &stderr
	done := make(chan error, 1)
	go func() { done <- sess.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		sess.Signal(ssh.SIGKILL)
		sess.Close()
		return fmt.Errorf("run %q on %s: %w", cmd, c.Host(), ctx.Err())
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		return fmt.Errorf("run %q on %s: %w: %s", cmd, c.Host(), err, msg)
	}
	return nil
}

// Stat returns the size of a regular file.
func (c *Client) Stat(ctx context.Context, path string) (int64, error) {
	out, err := c.Run(ctx, "stat -L -c %s "+Quote(path))
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat %s on %s: unexpected output %q", path, c.Host(), out)
	}
	return n, nil
}

// ReadFrom streams path from offset to its end into w.
func (c *Client) ReadFrom(ctx context.Context, path string, offset int64, w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	// tail -c +N is 1-based; it streams without reading what it skips.
	err := c.stream(ctx, fmt.Sprintf("tail -c +%d %s", offset+1, Quote(path)), cw)
	return cw.n, err
}

// ReadRange streams length bytes of path starting at offset into w.
func (c *Client) ReadRange(ctx context.Context, path string, offset, length int64, w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	err := c.stream(ctx, fmt.Sprintf("tail -c +%d %s | head -c %d", offset+1, Quote(path), length), cw)
	if err == nil && cw.n != length {
		return cw.n, fmt.Errorf("read %s[%d:%d] on %s: got %d bytes, the file is shorter", path, offset, offset+length, c.Host(), cw.n)
	}
	return cw.n, err
}

// ReadFile returns the whole file.
func (c *Client) ReadFile(ctx context.Context, path string) ([]byte, error) {
	var b bytes.Buffer
	err := c.stream(ctx, "cat "+Quote(path), &b)
	return b.Bytes(), err
}

// WriteFile writes data to path (creating parent directories) with mode.
func (c *Client) WriteFile(ctx context.Context, path string, data []byte, mode os.FileMode) error {
	sess, err := c.session(ctx)
	if err != nil {
		return fmt.Errorf("ssh session to %s: %w", c.Host(), err)
	}
	defer sess.Close()
	sess.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	sess.Stderr = &stderr
	tmp := path + ".tmp"
	cmd := fmt.Sprintf("mkdir -p %s && cat > %s && chmod %o %s && mv %s %s",
		Quote(filepath.Dir(path)), Quote(tmp), mode.Perm(), Quote(tmp), Quote(tmp), Quote(path))
	done := make(chan error, 1)
	go func() { done <- sess.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		sess.Close()
		return fmt.Errorf("write %s on %s: %w", path, c.Host(), ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("write %s on %s: %w: %s", path, c.Host(), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Quote quotes s for a POSIX shell.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
