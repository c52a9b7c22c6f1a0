package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options describe a replication cluster.
type Options struct {
	N       int  // number of servers; server1 is the master; default 3
	GTID    bool // replicas use MASTER_USE_GTID=slave_pos instead of file/position
	NoSSH   bool // do not start an sshd
	Servers []ServerOptions
	// HeartbeatPeriod for CHANGE MASTER (0: the server's default).
	HeartbeatPeriod time.Duration
}

// Cluster is a running master with replicas, and an sshd that reaches them.
type Cluster struct {
	Dir     string
	Servers []*Server
	SSH     *SSHD
	GTID    bool
	opts    Options
}

// Start starts a cluster for a test and stops it when the test ends.
// Under -short (`make test-unit`) it skips the test instead.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: starts real MariaDB servers")
	}
	c, err := New(t.TempDir(), opts)
	if c != nil {
		t.Cleanup(c.Close)
	}
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	return c
}

// New starts a cluster below dir. On error it returns what it started so far
// (call Close on it) and the error.
func New(dir string, opts Options) (*Cluster, error) {
	if opts.N == 0 {
		opts.N = 3
	}
	c := &Cluster{Dir: dir, GTID: opts.GTID, opts: opts}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := template(); err != nil {
		return c, err
	}
	// Initialise and start every server in parallel.
	c.Servers = make([]*Server, opts.N)
	errs := make([]error, opts.N)
	var wg sync.WaitGroup
	for i := 0; i < opts.N; i++ {
		var so ServerOptions
		if i < len(opts.Servers) {
			so = opts.Servers[i]
		}
		s, err := NewServer(filepath.Join(dir, fmt.Sprintf("server%d", i+1)), i+1, 100+i+1, so)
		if err != nil {
			return c, err
		}
		c.Servers[i] = s
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := c.Servers[i].Start(ctx); err != nil {
				errs[i] = err
				return
			}
			errs[i] = c.Servers[i].createUsers(ctx)
		}(i)
	}
	if !opts.NoSSH {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sshd, err := StartSSHD(filepath.Join(dir, "sshd"), "127.0.0.1")
			c.SSH = sshd
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return c, err
		}
	}
	for _, r := range c.Servers[1:] {
		if err := c.Replicate(ctx, r, c.Servers[0]); err != nil {
			return c, err
		}
	}
	for _, r := range c.Servers[1:] {
		if err := r.WaitReplicating(ctx, 20*time.Second); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Master is server1, the initial master.
func (c *Cluster) Master() *Server { return c.Servers[0] }

// Replicate points replica at master from the master's first binlog (or by
// GTID) and starts replication. The replica is made read_only.
func (c *Cluster) Replicate(ctx context.Context, replica, master *Server) error {
	change := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_CONNECT_RETRY=1",
		master.Host, master.Port, ReplUser, ReplPassword)
	if c.opts.HeartbeatPeriod > 0 {
		change += fmt.Sprintf(", MASTER_HEARTBEAT_PERIOD=%g", c.opts.HeartbeatPeriod.Seconds())
	}
	if c.GTID {
		change += ", MASTER_USE_GTID=slave_pos"
	} else {
		change += ", MASTER_USE_GTID=no, MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4"
	}
	return replica.Exec(ctx, "STOP SLAVE", "SET GLOBAL read_only=1", change, "START SLAVE")
}

// WaitCaughtUp waits until every replica executed all of the master's binlog.
func (c *Cluster) WaitCaughtUp(ctx context.Context, timeout time.Duration) error {
	for _, r := range c.Servers[1:] {
		if err := r.WaitCaughtUp(ctx, c.Master(), timeout); err != nil {
			return err
		}
	}
	return nil
}

// Close stops every process of the cluster.
func (c *Cluster) Close() {
	for _, s := range c.Servers {
		if s != nil {
			s.Stop()
		}
	}
	if c.SSH != nil {
		c.SSH.Stop()
	}
}

// AppConfig renders an MHA-style app1.conf for the cluster: a [server
// default] block with the test bed's users and SSH settings, and one
// [serverN] block per server. extra lines go into [server default].
func (c *Cluster) AppConfig(workdir string, extra ...string) string {
	var b strings.Builder
	b.WriteString("[server default]\n")
	fmt.Fprintf(&b, "user=%s\npassword=%s\nrepl_user=%s\nrepl_password=%s\n", MHAUser, MHAPassword, ReplUser, ReplPassword)
	fmt.Fprintf(&b, "manager_workdir=%s\nremote_workdir=%s\n", workdir, filepath.Join(workdir, "remote"))
	if c.SSH != nil {
		fmt.Fprintf(&b, "ssh_user=%s\nssh_port=%d\nssh_key=%s\nssh_known_hosts=%s\n", c.SSH.User, c.SSH.Port, c.SSH.ClientKey, c.SSH.KnownHosts)
	}
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	for _, s := range c.Servers {
		fmt.Fprintf(&b, "\n[%s]\nhostname=%s\nport=%d\nmaster_binlog_dir=%s\ncandidate_master=1\n", s.Name(), s.Host, s.Port, s.DataDir)
	}
	return b.String()
}

// WriteAppConfig writes AppConfig to dir/app1.conf and returns its path.
func (c *Cluster) WriteAppConfig(dir string, extra ...string) (string, error) {
	path := filepath.Join(dir, "app1.conf")
	if err := os.MkdirAll(filepath.Join(dir, "work"), 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, []byte(c.AppConfig(filepath.Join(dir, "work"), extra...)), 0o600)
}

// Walkthrough reproduces the state of the reference walkthrough: row 1 on
// all servers; server2's IO thread stopped; row 2; server3's IO thread
// stopped; row 3. Afterwards server1 holds 1,2,3, server2 holds 1 and
// server3 holds 1,2. It needs at least three servers.
func (c *Cluster) Walkthrough(ctx context.Context) error {
	if len(c.Servers) < 3 {
		return fmt.Errorf("walkthrough needs 3 servers, have %d", len(c.Servers))
	}
	m, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
	if err := m.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test",
		"CREATE TABLE IF NOT EXISTS test.t1 (a INT PRIMARY KEY)", "INSERT INTO test.t1 VALUES (1)"); err != nil {
		return err
	}
	if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
		return err
	}
	if err := s2.StopIOThread(ctx); err != nil {
		return err
	}
	if err := m.Exec(ctx, "INSERT INTO test.t1 VALUES (2)"); err != nil {
		return err
	}
	if err := s3.WaitCaughtUp(ctx, m, 20*time.Second); err != nil {
		return err
	}
	if err := s3.StopIOThread(ctx); err != nil {
		return err
	}
	if err := m.Exec(ctx, "INSERT INTO test.t1 VALUES (3)"); err != nil {
		return err
	}
	for _, s := range c.Servers[3:] {
		if err := s.WaitCaughtUp(ctx, m, 20*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// Rows returns the values of column a of test.t1 in order, as root.
func (s *Server) Rows(ctx context.Context) ([]int, error) {
	rows, err := s.Root().QueryContext(ctx, "SELECT a FROM test.t1 ORDER BY a")
	if err != nil {
		return nil, fmt.Errorf("read test.t1 on %s: %w", s.Name(), err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
