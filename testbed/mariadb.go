package testbed

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql" // the driver every helper uses

	"github.com/mharaft/mharaft/dialect"
)

// Passwords of the users the test bed creates on every server.
const (
	MHAUser      = "mha"
	MHAPassword  = "mha-secret-pw"
	ReplUser     = "repl"
	ReplPassword = "repl-secret-pw"
	AppUser      = "app"
	AppPassword  = "app-secret-pw"
)

// Server is one real mariadbd process.
type Server struct {
	Index    int    // 1-based, as in server1, server2, ...
	Host     string // address it listens on
	Port     int
	ServerID int
	Dir      string // everything of this server lives below Dir
	DataDir  string // datadir; binlogs and relay logs live here too
	Socket   string
	CnfPath  string
	LogPath  string // error log
	NetNS    string // network namespace it runs in, "" for the host's

	mu   sync.Mutex
	proc *Proc // nil until Start
	root *sql.DB
}

// Name is the MHA-style section name of the server (server1, ...).
func (s *Server) Name() string { return fmt.Sprintf("server%d", s.Index) }

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// BinlogBase is the path prefix of the binary logs (log_bin_basename).
func (s *Server) BinlogBase() string { return filepath.Join(s.DataDir, "mysql-bin") }

// RelayBase is the path prefix of the relay logs.
func (s *Server) RelayBase() string { return filepath.Join(s.DataDir, "relay-bin") }

// DSN returns a go-sql-driver DSN for user over TCP.
func (s *Server) DSN(user, password, db string) string {
	return fmt.Sprintf("%s:%s@tcp(%s)/%s?timeout=5s&readTimeout=30s&writeTimeout=30s&interpolateParams=true",
		user, password, s.Addr(), db)
}

var (
	templateOnce sync.Once
	templateDir  string
	templateErr  error
)

// template returns a datadir initialised by mariadb-install-db, which
// servers copy: that turns the slowest step into a file copy. It is made
// once per machine and mariadbd version and shared by every test process
// (os.TempDir()/mharaft-template-<hash>): a template per process was never
// removed, and each left 114 MB behind.
func template() (string, error) {
	templateOnce.Do(func() { templateDir, templateErr = makeTemplate() })
	return templateDir, templateErr
}

func makeTemplate() (string, error) {
	installArgs := []string{"--no-defaults", "--user=root", "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve"}
	version, err := exec.Command("mariadbd", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("mariadbd --version: %w (is MariaDB installed? scripts/deps.sh installs it)", err)
	}
	sum := sha256.Sum256([]byte(string(version) + strings.Join(installArgs, " ")))
	final := filepath.Join(os.TempDir(), fmt.Sprintf("mharaft-template-%x", sum[:6]))
	if fi, err := os.Stat(filepath.Join(final, "data")); err == nil && fi.IsDir() {
		return filepath.Join(final, "data"), nil
	}
	// Build it beside, then rename: another process sees either no
	// template or a complete one.
	dir, err := os.MkdirTemp("", "mharaft-template-new-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir) // gone already after a successful rename
	data := filepath.Join(dir, "data")
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	// A private tmpdir: the bootstrap's temporary tables must not share
	// /tmp with whatever else runs on the machine.
	cmd := exec.Command("mariadb-install-db", append(installArgs, "--datadir="+data, "--tmpdir="+tmp)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("mariadb-install-db into %s: %w\n%s", data, err, out)
	}
	if err := os.Rename(dir, final); err != nil {
		// Another process made it first: use that one.
		if fi, serr := os.Stat(filepath.Join(final, "data")); serr != nil || !fi.IsDir() {
			return "", fmt.Errorf("install the template datadir at %s: %w", final, err)
		}
	}
	return filepath.Join(final, "data"), nil
}

// ServerOptions tune one server.
type ServerOptions struct {
	Host  string   // listen address, default 127.0.0.1
	NetNS string   // run inside this network namespace (created by the caller)
	Extra []string // extra my.cnf lines for [mysqld]
}

// NewServer initialises (but does not start) a server below dir.
func NewServer(dir string, index, serverID int, opts ServerOptions) (*Server, error) {
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := 0
	var err error
	if opts.NetNS == "" {
		port, err = FreePort(host)
		if err != nil {
			return nil, err
		}
	} else {
		port = 3306 // its own namespace: nothing else listens there
	}
	s := &Server{Index: index, Host: host, Port: port, ServerID: serverID, Dir: dir, NetNS: opts.NetNS}
	s.DataDir = filepath.Join(dir, "data")
	s.Socket = filepath.Join(dir, "mysql.sock")
	s.CnfPath = filepath.Join(dir, "my.cnf")
	s.LogPath = filepath.Join(dir, "error.log")
	tmpl, err := template()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.Command("cp", "-a", tmpl, s.DataDir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copy template datadir to %s: %w: %s", s.DataDir, err, out)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	cnf := []string{
		"[mysqld]",
		"user=root",
		"datadir=" + s.DataDir,
		"socket=" + s.Socket,
		"pid-file=" + filepath.Join(dir, "mysqld.pid"),
		"log-error=" + s.LogPath,
		"tmpdir=" + filepath.Join(dir, "tmp"),
		"port=" + strconv.Itoa(port),
		"bind-address=" + host,
		"server-id=" + strconv.Itoa(serverID),
		"log-bin=" + s.BinlogBase(),
		"relay-log=" + s.RelayBase(),
		"relay_log_purge=0",
		"log_slave_updates=1",
		"binlog_format=ROW",
		"skip-name-resolve",
		"innodb_buffer_pool_size=32M",
		"innodb_log_file_size=16M",
		"performance_schema=OFF",
		"skip-slave-start",
		"max_connections=200",
		"character-set-server=utf8mb4",
	}
	cnf = append(cnf, opts.Extra...)
	if err := os.WriteFile(s.CnfPath, []byte(strings.Join(cnf, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	return s, nil
}

// Start runs mariadbd and waits until it accepts connections.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	args := []string{"--defaults-file=" + s.CnfPath}
	var cmd *exec.Cmd
	if s.NetNS != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", s.NetNS, "mariadbd"}, args...)...)
	} else {
		cmd = exec.Command("mariadbd", args...)
	}
	proc, err := StartProc(cmd)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start mariadbd %s: %w", s.Name(), err)
	}
	s.proc = proc
	s.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := s.rootDB()
		if err == nil {
			if err = db.PingContext(ctx); err == nil {
				return nil
			}
		}
		select {
		case <-proc.Done():
			return fmt.Errorf("mariadbd %s exited during start-up; see %s: %s", s.Name(), s.LogPath, tail(s.LogPath))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mariadbd %s not accepting connections after 30s: %v; see %s", s.Name(), err, s.LogPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// rootDB is a pool for root over the unix socket.
func (s *Server) rootDB() (*sql.DB, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.root != nil {
		return s.root, nil
	}
	db, err := sql.Open("mysql", fmt.Sprintf("root@unix(%s)/?timeout=2s&readTimeout=30s&multiStatements=true&interpolateParams=true", s.Socket))
	if err != nil {
		return nil, err
	}
	db.SetMaxIdleConns(2)
	db.SetConnMaxLifetime(time.Minute)
	s.root = db
	return db, nil
}

// Root returns a pool that logs in as root over the socket.
func (s *Server) Root() *sql.DB {
	db, err := s.rootDB()
	if err != nil {
		panic(err) // sql.Open fails only on a bad driver name
	}
	return db
}

// Exec runs statements as root, each in turn.
func (s *Server) Exec(ctx context.Context, stmts ...string) error {
	conn, err := s.Root().Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", s.Name(), err)
	}
	// Session settings (SET sql_log_bin=0, ...) must not leak into the pool:
	// the connection is thrown away afterwards instead of being reused.
	defer func() {
		conn.Raw(func(any) error { return driver.ErrBadConn })
		conn.Close()
	}()
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s on %s: %w", q, s.Name(), err)
		}
	}
	return nil
}

// QueryRows runs q as root and returns every row as strings (NULL as "").
func (s *Server) QueryRows(ctx context.Context, q string, args ...any) ([]map[string]string, error) {
	rows, err := s.Root().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", q, s.Name(), err)
	}
	return dialect.ScanRows(rows)
}

// QueryString returns the first column of the first row of q.
func (s *Server) QueryString(ctx context.Context, q string, args ...any) (string, error) {
	var v sql.NullString
	if err := s.Root().QueryRowContext(ctx, q, args...).Scan(&v); err != nil {
		return "", fmt.Errorf("%s on %s: %w", q, s.Name(), err)
	}
	return v.String, nil
}

// SlaveStatus returns SHOW SLAVE STATUS as a map, or nil when not a replica.
func (s *Server) SlaveStatus(ctx context.Context) (map[string]string, error) {
	rows, err := s.QueryRows(ctx, "SHOW SLAVE STATUS")
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return rows[0], nil
}

// StopIOThread runs STOP SLAVE IO_THREAD.
func (s *Server) StopIOThread(ctx context.Context) error {
	return s.Exec(ctx, "STOP SLAVE IO_THREAD")
}

// createUsers creates the test bed's users without writing to the binlog.
func (s *Server) createUsers(ctx context.Context) error {
	return s.Exec(ctx,
		"SET sql_log_bin=0",
		fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'", MHAUser, MHAPassword),
		fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION", MHAUser),
		fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'", ReplUser, ReplPassword),
		fmt.Sprintf("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '%s'@'%%'", ReplUser),
		fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'", AppUser, AppPassword),
		fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON *.* TO '%s'@'%%'", AppUser),
		"SET sql_log_bin=1",
	)
}

// Running reports whether the mariadbd process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	proc := s.proc
	s.mu.Unlock()
	return proc != nil && proc.Running()
}

// Kill9 sends SIGKILL to mariadbd and waits for it to be gone.
func (s *Server) Kill9() error { return s.signalAndWait(syscall.SIGKILL, 10*time.Second) }

// Pause sends SIGSTOP; Resume sends SIGCONT.
func (s *Server) Pause() error  { return s.signal(syscall.SIGSTOP) }
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT) }

// Shutdown stops mariadbd cleanly (SIGTERM, as `mysql> shutdown` does).
func (s *Server) Shutdown() error { return s.signalAndWait(syscall.SIGTERM, 60*time.Second) }

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	proc := s.proc
	s.mu.Unlock()
	if proc == nil {
		return fmt.Errorf("signal %s: %s was never started", sig, s.Name())
	}
	if err := proc.Signal(sig); err != nil {
		return fmt.Errorf("mariadbd %s: %w", s.Name(), err)
	}
	return nil
}

// signalAndWait sends SIGTERM or SIGKILL and waits for mariadbd to exit,
// killing it after timeout.
func (s *Server) signalAndWait(sig syscall.Signal, timeout time.Duration) error {
	s.mu.Lock()
	proc := s.proc
	root := s.root
	s.root = nil
	s.mu.Unlock()
	if root != nil {
		root.Close()
	}
	if proc == nil || !proc.Running() {
		return nil
	}
	if err := proc.Stop(sig, timeout); err != nil {
		return fmt.Errorf("mariadbd %s: %w", s.Name(), err)
	}
	return nil
}

// Stop kills the server whatever its state (used by Close).
func (s *Server) Stop() {
	if s.Running() {
		s.signal(syscall.SIGCONT)
		s.Kill9()
	}
}

// ErrNotReplica is returned by WaitReplicating for a server with no replica status.
var ErrNotReplica = errors.New("not a replica")

// WaitReplicating polls until both replication threads run, or the deadline.
func (s *Server) WaitReplicating(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last map[string]string
	for {
		st, err := s.SlaveStatus(ctx)
		if err == nil && st == nil {
			return fmt.Errorf("%s: %w", s.Name(), ErrNotReplica)
		}
		if err == nil && st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes" {
			return nil
		}
		last = st
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not replicating after %s: io=%s sql=%s io_error=%q sql_error=%q (err %v)",
				s.Name(), timeout, last["Slave_IO_Running"], last["Slave_SQL_Running"],
				last["Last_IO_Error"], last["Last_SQL_Error"], err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitCaughtUp polls until the replica has executed everything the master
// logged so far (by GTID position, which both replication modes maintain).
func (s *Server) WaitCaughtUp(ctx context.Context, master *Server, timeout time.Duration) error {
	want, err := master.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		got, err := s.QueryString(ctx, "SELECT @@gtid_slave_pos")
		if err == nil && gtidCovers(got, want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s has not caught up with %s after %s: has %q, wants %q (err %v)",
				s.Name(), master.Name(), timeout, got, want, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gtidCovers reports whether MariaDB GTID position have includes want
// (per domain, sequence numbers compared; server ids ignored).
func gtidCovers(have, want string) bool {
	seq := func(pos string) map[string]uint64 {
		m := map[string]uint64{}
		for _, g := range strings.Split(pos, ",") {
			p := strings.Split(strings.TrimSpace(g), "-")
			if len(p) != 3 {
				continue
			}
			n, _ := strconv.ParseUint(p[2], 10, 64)
			m[p[0]] = n
		}
		return m
	}
	h := seq(have)
	for d, n := range seq(want) {
		if h[d] < n {
			return false
		}
	}
	return true
}
