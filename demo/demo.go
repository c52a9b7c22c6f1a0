package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/testbed"
)

// noManagersHint follows every error that comes from the managers.
const noManagersHint = "The full demo needs working mhanode managers; `make demo DEMOFLAGS=--no-managers` shows the sandbox and check-repl without them."

// AppName is the application of the sandbox (from app1.conf).
const AppName = "app1"

// Options of a demo run.
type Options struct {
	// BinDir holds the mhactl and mhanode binaries (`go build -o bin/ ./cmd/...`).
	BinDir string
	// Dir is where everything of the sandbox lives. "" makes a new
	// temporary directory, removed at the end; a given Dir is left in place
	// (its processes are stopped all the same).
	Dir string
	// NoManagers starts only the sandbox and runs check-repl.
	NoManagers bool
	// Keep: after the demo, keep the sandbox running until ctx ends.
	Keep bool
	// Kept is called once the sandbox is kept running (Keep), with how to
	// reach it. Tests use it; the command leaves it nil.
	Kept func(KeepInfo)
	// GTID makes the replicas replicate with MASTER_USE_GTID=slave_pos.
	GTID bool
	// Rows per batch; three batches are written (default 10).
	Rows int
	// Out receives everything the demo prints (default os.Stdout).
	Out io.Writer
	// FailoverTimeout bounds the wait for the automatic failover (default 90 s).
	FailoverTimeout time.Duration
}

// KeepInfo is how to reach a kept sandbox.
type KeepInfo struct {
	Dir       string
	Conf      string // app1.conf
	Addr      string // MHACTL_ADDR: every manager's API address ("" without managers)
	TokenFile string // MHACTL_TOKEN_FILE
	Mhactl    string // path of the mhactl binary
}

// Result is what a demo run did.
type Result struct {
	Dir       string
	OldMaster string // server name of the killed master
	NewMaster string // server name of the promoted replica
	// Written are the rows (test.t1.a) written before the kill.
	Written []int
	// Missing are the written rows that the new master lacks (must be empty).
	Missing []int
	// FailoverTook is the time from the kill to the finished history entry.
	FailoverTook time.Duration
	// Writable is the time from the kill to the new master writable (the
	// journal's activate step done); 0 when unknown.
	Writable time.Duration
	// ClientOutage is the time from the kill to the first write
	// acknowledged through HAProxy (haproxy.go), ClientServer the server
	// that acknowledged it, ClientWrites how many writes HAProxy
	// acknowledged in all (every one is on the new master).
	ClientOutage time.Duration
	ClientServer string
	ClientWrites int
	// History is app1's history after the failover.
	History []api.HistoryEntry
	// Leftovers are the demo's processes still alive after cleanup (must
	// be empty).
	Leftovers []Process
}

// run is one demo in progress.
type run struct {
	opts     Options
	out      io.Writer
	dir      string
	db       *testbed.Cluster
	conf     string
	token    string
	managers []*manager
	haproxy  *testbed.HAProxy // in front of the servers (haproxy.go)
	writer   *testbed.Writer  // the application writing through haproxy
	client   *api.Client
	env      []string // MHACTL_ADDR, MHACTL_TOKEN_FILE for mhactl
	step     int
	res      *Result
	// before is the leader and verdict seen just before the kill.
	before struct{ leader, verdict string }
}

// Run runs the demo and always cleans up what it started before it
// returns: on success, on error and when ctx ends.
func Run(ctx context.Context, opts Options) (res *Result, err error) {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Rows <= 0 {
		opts.Rows = 10
	}
	if opts.FailoverTimeout <= 0 {
		opts.FailoverTimeout = 90 * time.Second
	}
	if err := checkBinaries(opts.BinDir, !opts.NoManagers); err != nil {
		return nil, err
	}
	r := &run{opts: opts, out: opts.Out}
	created := false
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "mhademo-")
		if err != nil {
			return nil, fmt.Errorf("create the sandbox directory: %w", err)
		}
		opts.Dir, created = d, true
	} else if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the sandbox directory %s: %w", opts.Dir, err)
	}
	if opts.Dir, err = filepath.Abs(opts.Dir); err != nil {
		return nil, err
	}
	r.dir = opts.Dir
	r.res = &Result{Dir: r.dir}
	defer func() {
		r.cleanup(created && err == nil)
		r.summary()
		if err == nil && len(r.res.Leftovers) > 0 {
			err = fmt.Errorf("cleanup left %d process(es) of the demo running: %v", len(r.res.Leftovers), r.res.Leftovers)
		}
		res = r.res
	}()
	if err := r.startSandbox(ctx); err != nil {
		return r.res, err
	}
	if opts.NoManagers {
		if err := r.noManagers(ctx); err != nil {
			return r.res, err
		}
	} else if err := r.full(ctx); err != nil {
		return r.res, err
	}
	if opts.Keep {
		r.keep(ctx)
	}
	return r.res, nil
}

// checkBinaries makes sure the binaries the demo runs exist.
func checkBinaries(binDir string, managers bool) error {
	names := []string{"mhactl"}
	if managers {
		names = append(names, "mhanode")
	}
	for _, n := range names {
		p := filepath.Join(binDir, n)
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is not an executable (build it first: go build -o %s/ ./cmd/...)", p, binDir)
		}
	}
	return nil
}

// header prints the title of the next step.
func (r *run) header(format string, args ...any) {
	r.step++
	fmt.Fprintf(r.out, "\n=== %d. %s\n\n", r.step, fmt.Sprintf(format, args...))
}

func (r *run) say(format string, args ...any) {
	fmt.Fprintf(r.out, format+"\n", args...)
}

// startSandbox starts the servers and the sshd and writes app1.conf.
func (r *run) startSandbox(ctx context.Context) error {
	mode := "file/position"
	if r.opts.GTID {
		mode = "GTID"
	}
	r.header("A sandbox of 3 MariaDB servers (%s replication) and an sshd on 127.0.0.1, in %s", mode, r.dir)
	t0 := time.Now()
	db, err := testbed.New(filepath.Join(r.dir, "db"), testbed.Options{N: 3, GTID: r.opts.GTID})
	r.db = db
	if err != nil {
		return fmt.Errorf("start the sandbox's MariaDB servers: %w", err)
	}
	for _, s := range db.Servers {
		role := "replica of server1, read_only"
		if s == db.Master() {
			role = "master"
		}
		r.say("  %s  %-15s  %s  (datadir %s)", s.Name(), s.Addr(), role, s.DataDir)
	}
	r.say("  sshd     %-15s  user %s, host key in %s", db.SSH.Addr(), db.SSH.User, db.SSH.KnownHosts)
	r.say("started in %.1f s", time.Since(t0).Seconds())

	d, err := sandboxConf(db, r.dir)
	if err != nil {
		return err
	}
	if r.conf, err = writeConf(r.dir, d); err != nil {
		return err
	}
	text, err := renderConf(d)
	if err != nil {
		return err
	}
	r.header("The application's configuration, %s (MHA syntax; passwords not shown)", r.conf)
	fmt.Fprint(r.out, indent(redact(text), "  "))
	return ctx.Err()
}

// noManagers is the first version of the demo: the sandbox and check-repl.
func (r *run) noManagers(ctx context.Context) error {
	r.header("Check the replication, as masterha_check_repl would")
	if err := r.mhactl(ctx, "check-repl", "--conf", r.conf); err != nil {
		return err
	}
	r.say("\nNo managers were started (--no-managers): run `make demo` without it to see an automatic failover.")
	return nil
}

// full is the whole demo: managers, status, check, rows, kill, failover.
func (r *run) full(ctx context.Context) error {
	if err := r.startManagers(ctx); err != nil {
		return err
	}
	r.header("The cluster as the managers see it")
	r.say("mhactl finds the managers through these two variables (or --addr / --token-file):")
	r.say("  export MHACTL_ADDR=%s", apiAddrs(r.managers))
	r.say("  export MHACTL_TOKEN_FILE=%s\n", r.tokenFile())
	r.waitDiscovered(ctx, nil)
	if err := r.mhactl(ctx, "status"); err != nil {
		return err
	}

	r.header("Check the replication, as masterha_check_repl would")
	if err := r.mhactl(ctx, "check-repl", "--conf", r.conf); err != nil {
		return err
	}

	if err := r.startHAProxy(ctx); err != nil {
		return err
	}

	r.header("Write rows while the replicas fall behind on purpose")
	if err := r.writeRows(ctx); err != nil {
		return err
	}
	if err := r.startWriter(ctx); err != nil {
		return err
	}

	if st, err := r.leaderStatus(ctx); err == nil && st.App(AppName) != nil {
		r.before.leader, r.before.verdict = st.Leader, st.App(AppName).Verdict
	}
	master := r.db.Master()
	r.res.OldMaster = master.Name()
	r.header("Kill the master: kill -9 of %s's mariadbd", master.Name())
	pid := "PID"
	if b, err := os.ReadFile(filepath.Join(master.Dir, "mysqld.pid")); err == nil {
		pid = strings.TrimSpace(string(b))
	}
	r.say("$ kill -9 %s    # mariadbd of %s (%s); its host stays reachable over SSH", pid, master.Name(), master.Addr())
	if err := master.Kill9(); err != nil {
		return fmt.Errorf("kill -9 mariadbd of %s: %w", master.Name(), err)
	}
	killedAt := time.Now()

	r.header("The managers detect the death and fail over (live; times since the kill)")
	r.say("journal lines carry the time the leader committed them; verdict and leader changes the time this demo saw them")
	entry, err := r.watchFailover(ctx, killedAt)
	if err != nil {
		return err
	}
	r.res.FailoverTook = entry.Finished.Sub(killedAt)
	if r.res.FailoverTook < 0 {
		r.res.FailoverTook = time.Since(killedAt)
	}
	nm := r.serverByAddr(entry.NewMaster)
	if nm == nil {
		return fmt.Errorf("the failover promoted %q, which is not a server of the sandbox", entry.NewMaster)
	}
	r.res.NewMaster = nm.Name()
	r.say("\nfailover %s: %s is the new master, %.1f s after the kill", entry.Result, r.res.NewMaster, r.res.FailoverTook.Seconds())
	if err := r.awaitClientWrite(ctx, killedAt); err != nil {
		return err
	}
	if at := r.writableAt(ctx); !at.IsZero() {
		r.res.Writable = at.Sub(killedAt)
	}

	r.header("After the failover")
	// The leader releases the lock right after the history entry; wait
	// for the managers to watch the new master before showing the status.
	if err := r.waitHealthy(ctx, nm.Addr(), 30*time.Second); err != nil {
		return err
	}
	r.waitDiscovered(ctx, r.db.Master())
	if err := r.mhactl(ctx, "status"); err != nil {
		return err
	}
	r.header("The failover report")
	if err := r.mhactl(ctx, "history", "--app", AppName); err != nil {
		return err
	}
	r.printReportFile()
	if h, err := r.client.History(ctx, AppName); err == nil {
		r.res.History = h
	}

	r.header("Verify: every row written before the kill is on the new master")
	return r.verify(ctx)
}

// tokenFile is the path of the API token.
func (r *run) tokenFile() string { return filepath.Join(r.dir, "token") }

// startManagers writes the token and starts m1, m2, m3, then waits until
// they elected a leader that sees the master healthy.
func (r *run) startManagers(ctx context.Context) error {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("make the API token: %w", err)
	}
	r.token = hex.EncodeToString(b)
	if err := os.WriteFile(r.tokenFile(), []byte(r.token+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the API token: %w", err)
	}
	ms, err := newManagers(r.dir, 3)
	if err != nil {
		return fmt.Errorf("pick ports for the managers: %w", err)
	}
	r.managers = ms
	r.env = []string{"MHACTL_ADDR=" + apiAddrs(ms), "MHACTL_TOKEN_FILE=" + r.tokenFile()}
	r.client = r.newClient()

	r.header("Three managers (mhanode) on 127.0.0.1 form a Raft group (MHA ran one masterha_manager)")
	bin := filepath.Join(r.opts.BinDir, "mhanode")
	for _, m := range ms {
		args := m.args(ms, r.conf, r.tokenFile())
		r.say("$ mhanode %s > %s 2>&1 &", strings.Join(args, " "), m.LogPath)
		if err := m.start(bin, args); err != nil {
			return err
		}
	}
	t0 := time.Now()
	if err := r.waitHealthy(ctx, r.db.Master().Addr(), 60*time.Second); err != nil {
		return err
	}
	r.say("a leader is elected and sees %s healthy after %.1f s", r.db.Master().Name(), time.Since(t0).Seconds())
	return nil
}

// newClient is an API client of the managers; it picks the Raft leader
// when there is one.
func (r *run) newClient() *api.Client {
	return &api.Client{Addrs: strings.Split(apiAddrs(r.managers), ","), Token: r.token, ProbeTimeout: time.Second}
}

// leaderStatus reads the status from the Raft leader: only the leader
// evaluates verdicts. The client sticks to the node it picked, so when
// that node is not (or no longer) the leader, pick again.
func (r *run) leaderStatus(ctx context.Context) (*api.Status, error) {
	st, err := r.client.Status(ctx)
	if err == nil && st.Leader != "" && st.Node != st.Leader {
		r.client = r.newClient()
		st, err = r.client.Status(ctx)
	}
	return st, err
}

// waitHealthy polls the cluster until it has a leader whose view of app1
// has master as its master with verdict Healthy and no lock.
func (r *run) waitHealthy(ctx context.Context, master string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		if err := r.managersAlive(); err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := r.leaderStatus(pctx)
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case st.Leader == "":
			last = "no raft leader yet"
		case st.App(AppName) == nil:
			last = "application " + AppName + " not registered yet"
		default:
			a := st.App(AppName)
			if a.Master == master && a.Verdict == "Healthy" && a.Lock == nil {
				return nil
			}
			last = fmt.Sprintf("master %q verdict %q lock %v", a.Master, a.Verdict, a.Lock != nil)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("managers not watching %s healthy after %s: %s (logs: %s)\n%s", master, timeout, last, r.logPaths(), noManagersHint)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitDiscovered waits (at most 15 s) until the leader's last discovery of
// app1 reached every server but dead, so that `mhactl status` shows the
// replication tree rather than the state before the first discovery.
func (r *run) waitDiscovered(ctx context.Context, dead *testbed.Server) {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := r.leaderStatus(pctx)
		cancel()
		if err == nil && st.App(AppName) != nil {
			a := st.App(AppName)
			ok := len(a.Servers) > 0
			for _, s := range a.Servers {
				if (dead == nil || s.Name != dead.Name()) && !s.Reachable {
					ok = false
				}
			}
			if ok {
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// managersAlive fails when a manager process has exited.
func (r *run) managersAlive() error {
	for _, m := range r.managers {
		if m.exited() {
			return fmt.Errorf("mhanode %s exited; the end of its log %s:\n%s\n%s", m.ID, m.LogPath, tailFile(m.LogPath, 3000), noManagersHint)
		}
	}
	return nil
}

func (r *run) logPaths() string {
	var p []string
	for _, m := range r.managers {
		p = append(p, m.LogPath)
	}
	return strings.Join(p, " ")
}

// mhactl prints and runs one mhactl command with the sandbox's
// environment; a non-zero exit is an error.
func (r *run) mhactl(ctx context.Context, args ...string) error {
	r.say("$ mhactl %s", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, filepath.Join(r.opts.BinDir, "mhactl"), args...)
	cmd.Env = append(os.Environ(), r.env...)
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mhactl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// writeRows reproduces the reference walkthrough with more rows: batch 1
// reaches every replica; server2 stops receiving; batch 2 reaches server3;
// server3 stops receiving; batch 3 is only in the master's binlog. A
// failover keeps every row only if it applies server3's relay log to
// server2 and the dead master's binlog tail (read over SSH) to both.
func (r *run) writeRows(ctx context.Context) error {
	m, s2, s3 := r.db.Servers[0], r.db.Servers[1], r.db.Servers[2]
	n := r.opts.Rows
	app, err := openApp(m)
	if err != nil {
		return err
	}
	defer app.Close()
	r.say("as the application user %q on %s (%s):", testbed.AppUser, m.Name(), m.Addr())
	if err := execAll(ctx, app, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE IF NOT EXISTS test.t1 (a INT PRIMARY KEY)"); err != nil {
		return fmt.Errorf("create test.t1 on %s: %w", m.Name(), err)
	}
	batch := func(from, to int) error {
		r.say("  INSERT INTO test.t1 VALUES (%d) ... (%d)", from, to)
		for i := from; i <= to; i++ {
			if _, err := app.ExecContext(ctx, "INSERT INTO test.t1 VALUES (?)", i); err != nil {
				return fmt.Errorf("insert row %d on %s: %w", i, m.Name(), err)
			}
			r.res.Written = append(r.res.Written, i)
		}
		return nil
	}
	if err := batch(1, n); err != nil {
		return err
	}
	if err := r.db.WaitCaughtUp(ctx, 30*time.Second); err != nil {
		return err
	}
	r.say("  STOP SLAVE IO_THREAD on %s: it receives nothing more", s2.Name())
	if err := s2.StopIOThread(ctx); err != nil {
		return err
	}
	if err := batch(n+1, 2*n); err != nil {
		return err
	}
	if err := s3.WaitCaughtUp(ctx, m, 30*time.Second); err != nil {
		return err
	}
	r.say("  STOP SLAVE IO_THREAD on %s: it receives nothing more", s3.Name())
	if err := s3.StopIOThread(ctx); err != nil {
		return err
	}
	if err := batch(2*n+1, 3*n); err != nil {
		return err
	}
	r.say("")
	for _, s := range r.db.Servers {
		rows, err := s.Rows(ctx)
		if err != nil {
			return err
		}
		r.say("  %s has %s", s.Name(), describeRows(rows))
	}
	r.say("rows %d..%d exist only in %s's binlog; %d..%d only there and in %s's relay log", 2*n+1, 3*n, m.Name(), n+1, 2*n, s3.Name())
	return nil
}

// watchFailover prints verdict changes and journal phases as they are
// committed, until app1's history has a finished entry.
func (r *run) watchFailover(ctx context.Context, killedAt time.Time) (*api.HistoryEntry, error) {
	deadline := time.Now().Add(r.opts.FailoverTimeout)
	seen := map[string]bool{}
	verdict, leader := r.before.verdict, r.before.leader
	since := func(t time.Time) string { return fmt.Sprintf("+%6.2fs", t.Sub(killedAt).Seconds()) }
	var lastErr error
	for {
		if err := r.managersAlive(); err != nil {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := r.leaderStatus(pctx)
		var hist []api.HistoryEntry
		if err == nil {
			hist, err = r.client.History(pctx, AppName)
		}
		cancel()
		if err != nil {
			lastErr = err
		} else {
			if st.Leader != leader {
				leader = st.Leader
				r.say("%s  raft leader is now %s (seen by polling)", since(time.Now()), orNone(leader))
			}
			if a := st.App(AppName); a != nil {
				if a.Verdict != verdict {
					verdict = a.Verdict
					r.say("%s  verdict %s (seen by polling)", since(time.Now()), verdict)
				}
				for _, e := range a.Journal {
					key := fmt.Sprintf("%d|%s|%s|%s", e.Epoch, e.Phase, e.Status, e.At.Format(time.RFC3339Nano))
					if seen[key] {
						continue
					}
					seen[key] = true
					detail := ""
					if e.Detail != "" {
						detail = "  " + shorten(e.Detail, 110)
					}
					r.say("%s  journal, epoch %d: %-37s %-7s%s", since(e.At), e.Epoch, e.Phase, e.Status, detail)
				}
			}
			for i := range hist {
				if !hist[i].Finished.IsZero() && hist[i].Finished.After(killedAt) {
					e := hist[i]
					if e.Result != "success" {
						return &e, fmt.Errorf("the failover ended %s: %s (logs: %s)", e.Result, e.Summary, r.logPaths())
					}
					return &e, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no finished failover %s after the kill (last error %v); logs: %s", r.opts.FailoverTimeout, lastErr, r.logPaths())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// serverByAddr finds a sandbox server by host:port or name.
func (r *run) serverByAddr(addr string) *testbed.Server {
	for _, s := range r.db.Servers {
		if s.Addr() == addr || s.Name() == addr {
			return s
		}
	}
	return nil
}

// printReportFile prints the newest failover report the leader wrote to
// manager_workdir.
func (r *run) printReportFile() {
	files, _ := filepath.Glob(filepath.Join(r.dir, "work", "failover_report_"+AppName+"_*.json"))
	if len(files) == 0 {
		r.say("\n(no failover report file in %s)", filepath.Join(r.dir, "work"))
		return
	}
	slices.Sort(files)
	path := files[len(files)-1]
	text, err := reportText(path)
	if err != nil {
		r.say("\n(cannot read the report %s: %v)", path, err)
		return
	}
	r.say("\nThe leader's report, %s:", path)
	fmt.Fprint(r.out, indent(text, "  "))
}

// verify checks that the new master holds every row written before the
// kill, that the application can write to it and that the other replica
// replicates from it.
func (r *run) verify(ctx context.Context) error {
	nm := r.serverByAddr(r.res.NewMaster)
	if nm == nil {
		return fmt.Errorf("the new master %q is not a server of the sandbox", r.res.NewMaster)
	}
	rows, err := nm.Rows(ctx)
	if err != nil {
		return err
	}
	r.res.Missing = missing(r.res.Written, rows)
	r.say("written before the kill: %s", describeRows(r.res.Written))
	r.say("on the new master %s:  %s", nm.Name(), describeRows(rows))
	if len(r.res.Missing) > 0 {
		return fmt.Errorf("rows lost by the failover: %v are not on the new master %s", r.res.Missing, nm.Name())
	}
	r.say("OK: no row was lost.")

	app, err := openApp(nm)
	if err != nil {
		return err
	}
	defer app.Close()
	next := len(r.res.Written) + 1
	if _, err := app.ExecContext(ctx, "INSERT INTO test.t1 VALUES (?)", next); err != nil {
		return fmt.Errorf("write row %d to the new master %s as the application user: %w", next, nm.Name(), err)
	}
	r.say("OK: the application user wrote row %d on %s.", next, nm.Name())
	for _, s := range r.db.Servers {
		if s == nm || s == r.db.Master() {
			continue
		}
		if err := s.WaitCaughtUp(ctx, nm, 30*time.Second); err != nil {
			return fmt.Errorf("%s does not replicate from the new master: %w", s.Name(), err)
		}
		got, err := s.Rows(ctx)
		if err != nil {
			return err
		}
		if m := missing(append(slices.Clone(r.res.Written), next), got); len(m) > 0 {
			return fmt.Errorf("%s lacks rows %v after the failover", s.Name(), m)
		}
		r.say("OK: %s replicates from %s and has %s.", s.Name(), nm.Name(), describeRows(got))
	}
	return r.verifyClientWrites(ctx, nm)
}

// keep waits for ctx to end, after telling how to reach the sandbox.
func (r *run) keep(ctx context.Context) {
	info := KeepInfo{Dir: r.dir, Conf: r.conf, TokenFile: r.tokenFile(), Mhactl: filepath.Join(r.opts.BinDir, "mhactl")}
	r.header("The sandbox keeps running (--keep); press Ctrl-C to stop it and clean up")
	if r.managers != nil {
		info.Addr = apiAddrs(r.managers)
		r.say("In another shell:")
		r.say("  export MHACTL_ADDR=%s", info.Addr)
		r.say("  export MHACTL_TOKEN_FILE=%s", info.TokenFile)
		r.say("  %s status", info.Mhactl)
		r.say("  %s history", info.Mhactl)
		r.say("  %s check-repl --conf %s", info.Mhactl, info.Conf)
		r.say("or with flags: %s status --addr %s --token-file %s", info.Mhactl, info.Addr, info.TokenFile)
		r.say("Manager logs: %s", r.logPaths())
	} else {
		r.say("In another shell:")
		r.say("  %s check-repl --conf %s", info.Mhactl, info.Conf)
	}
	r.say("MariaDB as root:")
	for _, s := range r.db.Servers {
		if s.Running() {
			r.say("  mariadb --socket=%s    # %s", s.Socket, s.Name())
		}
	}
	if r.opts.Kept != nil {
		r.opts.Kept(info)
	}
	<-ctx.Done()
	r.say("\nCtrl-C: stopping.")
}

// cleanup stops the managers and the sandbox, waits until none of their
// processes is left and removes the directory when Run created it.
func (r *run) cleanup(removeDir bool) {
	fmt.Fprintln(r.out, "\n=== Cleanup")
	r.stopHAProxy()
	for _, m := range r.managers {
		m.stop(10 * time.Second)
	}
	if r.db != nil {
		r.db.Close()
	}
	// Processes that were killed may take a moment to disappear.
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, err := Leftovers(r.dir)
		if err != nil {
			fmt.Fprintf(r.out, "cannot check for leftover processes: %v\n", err)
			break
		}
		r.res.Leftovers = left
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // a bounded poll: /proc has no notification
	}
	if len(r.res.Leftovers) > 0 {
		for _, p := range r.res.Leftovers {
			fmt.Fprintf(r.out, "STILL RUNNING: pid %d %s\n", p.PID, p.Cmdline)
		}
	} else {
		fmt.Fprintln(r.out, "every mariadbd, sshd, mhanode and haproxy of the demo is stopped")
	}
	if removeDir && len(r.res.Leftovers) == 0 {
		if err := os.RemoveAll(r.dir); err != nil {
			fmt.Fprintf(r.out, "cannot remove %s: %v\n", r.dir, err)
		} else {
			fmt.Fprintf(r.out, "removed %s\n", r.dir)
		}
	} else {
		fmt.Fprintf(r.out, "files kept in %s\n", r.dir)
	}
}

// missing returns the values of want that are not in have.
func missing(want, have []int) []int {
	var out []int
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

// describeRows prints a sorted list of ints as ranges: "30 rows: 1..30".
func describeRows(rows []int) string {
	if len(rows) == 0 {
		return "no rows"
	}
	s := slices.Clone(rows)
	slices.Sort(s)
	var parts []string
	start := s[0]
	for i := 1; i <= len(s); i++ {
		if i < len(s) && s[i] == s[i-1]+1 {
			continue
		}
		if start == s[i-1] {
			parts = append(parts, fmt.Sprint(start))
		} else {
			parts = append(parts, fmt.Sprintf("%d..%d", start, s[i-1]))
		}
		if i < len(s) {
			start = s[i]
		}
	}
	noun := "rows"
	if len(s) == 1 {
		noun = "row"
	}
	return fmt.Sprintf("%d %s: %s", len(s), noun, strings.Join(parts, ", "))
}

func indent(text, prefix string) string {
	lines := strings.SplitAfter(text, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l == "" {
			continue
		}
		if l != "\n" {
			b.WriteString(prefix)
		}
		b.WriteString(l)
	}
	if !strings.HasSuffix(b.String(), "\n") {
		b.WriteString("\n")
	}
	return b.String()
}

func shorten(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
