package mhacompat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// The catalogue itself: 90 distinct names, and every re-enacted scenario
// is in it and is neither not applicable nor unsupported. Fast; runs in CI.
func TestCatalogue(t *testing.T) {
	if len(Scenarios) != 90 {
		t.Errorf("catalogue has %d scenarios, MHA has 90", len(Scenarios))
	}
	seen := map[string]Scenario{}
	for _, s := range Scenarios {
		if _, dup := seen[s.Name]; dup {
			t.Errorf("scenario %s listed twice", s.Name)
		}
		if s.Intent == "" {
			t.Errorf("scenario %s has no intent", s.Name)
		}
		seen[s.Name] = s
	}
	for name := range runners {
		s, ok := seen[name]
		switch {
		case !ok:
			t.Errorf("runner %s is not an MHA scenario of the catalogue", name)
		case s.NotApplicable != "" || s.Unsupported != "":
			t.Errorf("runner %s is marked not applicable or unsupported in the catalogue", name)
		}
	}
	doc := Render(Scenarios, map[string]Result{"conf": {Status: Pass, Test: "x"}}, "test")
	if !strings.Contains(doc, "90 scenarios: 1 pass, 0 fail,") {
		t.Errorf("summary line wrong:\n%s", doc[:400])
	}
}

// TestMHACompat re-enacts every scenario that has a runner and writes
// docs/mha-compat.md. MHARAFT_MHA_COMPAT=1 enables it.
func TestMHACompat(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the MHA compatibility suite starts real clusters")
	}
	if os.Getenv("MHARAFT_MHA_COMPAT") != "1" {
		t.Skip("set MHARAFT_MHA_COMPAT=1 (or run `make mha-compat`) to run MHA's scenarios")
	}
	bin := os.Getenv("MHACTL_BIN")
	if bin == "" {
		dir := t.TempDir()
		if err := testbed.BuildBinaries(context.Background(), dir, "./cmd/mhactl"); err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(dir, "mhactl")
	}
	results := map[string]Result{}
	ran := 0
	for _, s := range Scenarios {
		run, ok := runners[s.Name]
		if !ok {
			results[s.Name] = StaticResult(s)
			continue
		}
		test := "TestMHACompat/" + s.Name
		var why string
		executed := false
		passed := t.Run(s.Name, func(t *testing.T) {
			executed = true
			b := newBed(t, bin, testbed.Options{N: 5, GTID: gtidScenarios[s.Name]})
			defer func() { why = b.why }()
			run(b)
		})
		if !executed {
			continue
		}
		ran++
		if passed {
			results[s.Name] = Result{Status: Pass, Test: test}
		} else {
			if why == "" {
				why = "failed; see the go test output"
			}
			results[s.Name] = Result{Status: Fail, Detail: why, Test: test}
		}
	}
	if ran != len(runners) {
		t.Logf("%d of %d scenarios ran (a -run filter?): docs/mha-compat.md not written", ran, len(runners))
		return
	}
	doc := Render(Scenarios, results, environment())
	if err := os.WriteFile(filepath.Join("..", "docs", "mha-compat.md"), []byte(doc), 0o644); err != nil {
		t.Fatalf("write docs/mha-compat.md: %v", err)
	}
}

// environment names the MariaDB version and the day, for the document.
func environment() string {
	out, err := exec.Command("mariadbd", "--version").Output()
	v := strings.TrimSpace(string(out))
	if err != nil {
		v = "mariadbd (version unknown: " + err.Error() + ")"
	}
	return fmt.Sprintf("%s; %s", v, time.Now().UTC().Format("2006-01-02"))
}

// bed is one scenario's cluster: M is MHA's master (port 10000 in MHA's
// sandbox), S[1]..S[4] its replicas (10001..10004). S[0] is M.
type bed struct {
	t   *testing.T
	ctx context.Context
	c   *testbed.Cluster
	bin string
	dir string
	M   *testbed.Server
	S   []*testbed.Server
	cnf map[*testbed.Server]string // each server's original my.cnf
	why string                     // the first failed assertion
}

// newBed starts a master and four replicas (opts.N is 5) and repeats
// MHA's init: table test.t1 (id, value, value2) with one row on every server.
func newBed(t *testing.T, bin string, opts testbed.Options) *bed {
	c := testbed.Start(t, opts)
	b := &bed{t: t, ctx: t.Context(), c: c, bin: bin, dir: t.TempDir(), M: c.Servers[0], S: c.Servers, cnf: map[*testbed.Server]string{}}
	for _, s := range c.Servers {
		data, err := os.ReadFile(s.CnfPath)
		if err != nil {
			t.Fatal(err)
		}
		b.cnf[s] = string(data)
	}
	b.sql(b.M, "CREATE DATABASE IF NOT EXISTS test",
		"CREATE TABLE test.t1 (id INT PRIMARY KEY, value INT, value2 TEXT)",
		"INSERT INTO test.t1 VALUES (1, 100, 'abc')")
	b.caughtUp(b.S[1:]...)
	return b
}

// failf records the first failed assertion for the document and stops.
func (b *bed) failf(format string, args ...any) {
	b.t.Helper()
	msg := fmt.Sprintf(format, args...)
	if b.why == "" {
		b.why = msg
	}
	b.t.Fatal(msg)
}

func (b *bed) sql(s *testbed.Server, stmts ...string) {
	b.t.Helper()
	if err := s.Exec(b.ctx, stmts...); err != nil {
		b.failf("setup on %s: %v", s.Name(), err)
	}
}

// insert writes rows id..to on s, one autocommit INSERT each (MHA's insert.pl),
// over one connection.
func (b *bed) insert(s *testbed.Server, from, to int) {
	b.t.Helper()
	var stmts []string
	for id := from; id <= to; id++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO test.t1 VALUES (%d, %d, 'aaaaaa')", id, id))
	}
	b.sql(s, stmts...)
}

// insertTx writes rows from..to on s, one INSERT each, in transactions of
// per rows (MHA's tran_insert.pl); per 0 is one transaction for all
// (insert.pl with its single-transaction flag).
func (b *bed) insertTx(s *testbed.Server, from, to, per int) {
	b.t.Helper()
	if per == 0 {
		per = to - from + 1
	}
	stmts := []string{"BEGIN"}
	for id := from; id <= to; id++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO test.t1 VALUES (%d, %d, 'aaaaaaa')", id, id))
		if (id-from+1)%per == 0 || id == to {
			stmts = append(stmts, "COMMIT", "BEGIN")
		}
	}
	stmts = append(stmts, "COMMIT")
	b.sql(s, stmts...)
}

// all runs stmts on each server.
func (b *bed) all(servers []*testbed.Server, stmts ...string) {
	b.t.Helper()
	for _, s := range servers {
		b.sql(s, stmts...)
	}
}

// newMaster finds the master the failover or switch made among S1..S4:
// the one running server that replicates from nobody and is writable.
// MHA's scripts name the server they expect; where mharaft deliberately
// elects another one, the scenario writes on the one it elected.
func (b *bed) newMaster() *testbed.Server {
	b.t.Helper()
	var found []*testbed.Server
	for _, s := range b.S[1:] {
		if !s.Running() {
			continue
		}
		st, err := s.SlaveStatus(b.ctx)
		if err != nil {
			b.failf("slave status of %s: %v", s.Name(), err)
		}
		ro, err := s.QueryString(b.ctx, "SELECT @@global.read_only")
		if err != nil {
			b.failf("read_only of %s: %v", s.Name(), err)
		}
		if (st == nil || st["Master_Host"] == "") && ro == "0" {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		b.failf("%d servers are writable and replicate from nobody, want exactly one new master; %s", len(found), b.topology())
	}
	b.t.Logf("new master: %s", found[0].Name())
	return found[0]
}

// wantNoCM is the _nocm scenarios' assertions: S1 (the new master) is
// still read_only, and S1..S4 all still replicate from the dead master.
func (b *bed) wantNoCM() {
	b.t.Helper()
	if ro, err := b.S[1].QueryString(b.ctx, "SELECT @@global.read_only"); err != nil || ro != "1" {
		b.failf("read_only of %s is %q (%v), MHA expects 1 with --skip_disable_read_only", b.S[1].Name(), ro, err)
	}
	for _, s := range b.S[1:] {
		b.wantMaster(s, b.M)
	}
}

// wantAllFrom asserts that every running server of S1..S4 but m
// replicates from m.
func (b *bed) wantAllFrom(m *testbed.Server) {
	b.t.Helper()
	for _, s := range b.S[1:] {
		if s != m && s.Running() {
			b.wantMaster(s, m)
		}
	}
}

// createUser creates an account with every privilege on every server,
// outside the binlog (MHA's grant.sql, replicated there).
func (b *bed) createUser(user, password string, withPassword bool) {
	b.t.Helper()
	ident := ""
	if withPassword {
		ident = " IDENTIFIED BY " + sqlQuote(password)
	}
	for _, s := range b.S {
		b.sql(s, "SET sql_log_bin=0",
			fmt.Sprintf("CREATE USER %s@'%%'%s", sqlQuote(user), ident),
			fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", sqlQuote(user)),
			"SET sql_log_bin=1")
	}
}

// sqlQuote is v as a single-quoted SQL string literal.
func sqlQuote(v string) string {
	v = strings.ReplaceAll(v, `\`, `\\`)
	return "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
}

// The account of MHA's *_pass scenarios: shell metacharacters, quotes and
// backslashes in both the name and the password (our own spelling of the
// same character classes).
const (
	shellUser     = `"'!=#&;` + "`" + `=|*?$\u`
	shellPassword = `p"'!#&;` + "`" + `|*?~<>^()[]{}$\, "'!#&;` + "`" + `|*?~=<>^()[]{}$\, \`
)

func (b *bed) caughtUp(rs ...*testbed.Server) {
	b.t.Helper()
	for _, r := range rs {
		if err := r.WaitCaughtUp(b.ctx, b.M, 60*time.Second); err != nil {
			b.failf("%s did not catch up with the master: %v", r.Name(), err)
		}
	}
}

func (b *bed) stopIO(rs ...*testbed.Server) {
	b.t.Helper()
	for _, r := range rs {
		b.sql(r, "STOP SLAVE IO_THREAD")
	}
}

// kill is MHA's kill_m.sh: SIGKILL the master.
func (b *bed) kill() {
	b.t.Helper()
	if err := b.M.Kill9(); err != nil {
		b.failf("kill the master: %v", err)
	}
}

// stop shuts a server down cleanly (MHA's stop_sN.sh).
func (b *bed) stop(s *testbed.Server) {
	b.t.Helper()
	if err := s.Shutdown(); err != nil {
		b.failf("stop %s: %v", s.Name(), err)
	}
}

// start starts a stopped server with its original my.cnf plus extra
// lines, and restarts replication on it (MHA's sandbox replicas start
// their threads on start-up; the test bed's do not).
func (b *bed) start(s *testbed.Server, extra ...string) {
	b.t.Helper()
	cnf := b.cnf[s] + strings.Join(extra, "\n") + "\n"
	if err := os.WriteFile(s.CnfPath, []byte(cnf), 0o644); err != nil {
		b.failf("write %s: %v", s.CnfPath, err)
	}
	if err := s.Start(b.ctx); err != nil {
		b.failf("start %s: %v", s.Name(), err)
	}
	if s != b.M {
		b.sql(s, "START SLAVE")
	}
}

// conf describes one MHA configuration file of a scenario.
type conf struct {
	name     string
	defaults []string            // extra [server default] lines
	servers  []int               // MHA server numbers 1..5 to list; nil: all
	extra    map[int][]string    // extra lines per server number
	noRepl   bool                // leave out repl_user/repl_password
	user     string              // user= instead of the test bed's manager account
	password *string             // password= for user; nil: no password line
	edit     func(string) string // last-minute rewrite of the text
	binlogs  []string            // one [binlogN] block per directory, on the sshd's host
}

// writeConf renders an MHA app configuration like MHA's mha_test.cnf:
// server1 (the master) and server2 are candidate masters, the others not.
func (b *bed) writeConf(o conf) string {
	b.t.Helper()
	var w strings.Builder
	work := filepath.Join(b.dir, o.name+"-work")
	w.WriteString("[server default]\n")
	if o.user == "" {
		fmt.Fprintf(&w, "user=%s\npassword=%s\n", testbed.MHAUser, testbed.MHAPassword)
	} else {
		// MHA's quoting: the value between double quotes, taken as is.
		fmt.Fprintf(&w, "user=\"%s\"\n", o.user)
		if o.password != nil {
			fmt.Fprintf(&w, "password=\"%s\"\n", *o.password)
		}
	}
	if !o.noRepl {
		fmt.Fprintf(&w, "repl_user=%s\nrepl_password=%s\n", testbed.ReplUser, testbed.ReplPassword)
	}
	fmt.Fprintf(&w, "manager_workdir=%s\nremote_workdir=%s\nping_interval=1\n", work, filepath.Join(work, "remote"))
	if ssh := b.c.SSH; ssh != nil {
		fmt.Fprintf(&w, "ssh_user=%s\nssh_port=%d\nssh_key=%s\nssh_known_hosts=%s\n", ssh.User, ssh.Port, ssh.ClientKey, ssh.KnownHosts)
	}
	for _, l := range o.defaults {
		w.WriteString(l + "\n")
	}
	list := o.servers
	if list == nil {
		list = []int{1, 2, 3, 4, 5}
	}
	for _, n := range list {
		s := b.S[n-1]
		fmt.Fprintf(&w, "\n[server%d]\nhostname=%s\nport=%d\nmaster_binlog_dir=%s\n", n, s.Host, s.Port, s.DataDir)
		if n <= 2 {
			w.WriteString("candidate_master=1\n")
		}
		for _, l := range o.extra[n] {
			w.WriteString(l + "\n")
		}
	}
	for i, dir := range o.binlogs {
		host := "127.0.0.1"
		if b.c.SSH != nil {
			host = b.c.SSH.Host
		}
		fmt.Fprintf(&w, "\n[binlog%d]\nhostname=%s\nmaster_binlog_dir=%s\n", i+1, host, dir)
	}
	text := w.String()
	if o.edit != nil {
		text = o.edit(text)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		b.failf("%v", err)
	}
	path := filepath.Join(b.dir, o.name+".cnf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		b.failf("write %s: %v", path, err)
	}
	return path
}

// mhactl runs the binary and returns its combined output and exit code.
func (b *bed) mhactl(args ...string) (string, int) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.bin, args...)
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		b.failf("run mhactl %v: %v", args, err)
	}
	b.t.Logf("mhactl %s: exit %d\n%s", strings.Join(args, " "), code, out)
	return string(out), code
}

// failover is MHA's run.sh after a kill (or masterha_master_switch
// --master_state=dead): a dead-master failover from this host. Like run.sh
// it ignores the last failover's marker.
func (b *bed) failover(cnf string, extra ...string) int {
	b.t.Helper()
	args := append([]string{"failover", "--local", "--conf", cnf, "--dead-master-host", b.M.Host,
		"--dead-master-port", strconv.Itoa(b.M.Port), "--interactive=0", "--ignore-last-failover"}, extra...)
	_, code := b.mhactl(args...)
	return code
}

// switchTo is masterha_master_switch --master_state=alive to s.
func (b *bed) switchTo(cnf string, s *testbed.Server, extra ...string) int {
	b.t.Helper()
	args := append([]string{"switch", "--local", "--conf", cnf, "--new-master-host", s.Host,
		"--new-master-port", strconv.Itoa(s.Port), "--interactive=0"}, extra...)
	_, code := b.mhactl(args...)
	return code
}

// checkRepl is masterha_check_repl.
func (b *bed) checkRepl(cnf string) int {
	b.t.Helper()
	_, code := b.mhactl("check-repl", "--conf", cnf)
	return code
}

func (b *bed) wantOK(what string, code int) {
	b.t.Helper()
	if code != 0 {
		b.failf("%s: exit %d, MHA expects success", what, code)
	}
}

func (b *bed) wantFail(what string, code int) {
	b.t.Helper()
	if code == 0 {
		b.failf("%s: exit 0, MHA expects it to fail", what)
	}
}

// masterPort is MHA's check_master: the port s replicates from (0: none).
func (b *bed) masterPort(s *testbed.Server) int {
	b.t.Helper()
	st, err := s.SlaveStatus(b.ctx)
	if err != nil {
		b.failf("slave status of %s: %v", s.Name(), err)
	}
	p, _ := strconv.Atoi(st["Master_Port"])
	return p
}

func (b *bed) wantMaster(s, master *testbed.Server) {
	b.t.Helper()
	if p := b.masterPort(s); p != master.Port {
		b.failf("%s replicates from port %d, MHA expects %s (%d)", s.Name(), p, master.Name(), master.Port)
	}
}

func (b *bed) sqlRunning(s *testbed.Server) string {
	b.t.Helper()
	st, err := s.SlaveStatus(b.ctx)
	if err != nil {
		b.failf("slave status of %s: %v", s.Name(), err)
	}
	return st["Slave_SQL_Running"]
}

func (b *bed) count(s *testbed.Server) int {
	b.t.Helper()
	v, err := s.QueryString(b.ctx, "SELECT COUNT(*) FROM test.t1")
	if err != nil {
		b.failf("count rows on %s: %v", s.Name(), err)
	}
	n, _ := strconv.Atoi(v)
	return n
}

func (b *bed) wantCount(s *testbed.Server, want int) {
	b.t.Helper()
	if n := b.count(s); n != want {
		b.failf("%s holds %d rows, MHA expects %d", s.Name(), n, want)
	}
}

// check is MHA's check script: the servers (default S1..S4) converge on
// the same checksum of test.t1 and on want rows within a deadline.
func (b *bed) check(want int, servers ...*testbed.Server) {
	b.t.Helper()
	if len(servers) == 0 {
		servers = b.S[1:]
	}
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for {
		sums := map[string]bool{}
		var state []string
		ok := true
		for _, s := range servers {
			n := -1
			if v, err := s.QueryString(b.ctx, "SELECT COUNT(*) FROM test.t1"); err == nil {
				n, _ = strconv.Atoi(v)
			}
			rows, err := s.QueryRows(b.ctx, "CHECKSUM TABLE test.t1")
			sum := "?"
			if err == nil && len(rows) == 1 {
				sum = rows[0]["Checksum"]
			}
			sums[sum] = true
			state = append(state, fmt.Sprintf("%s: %d rows checksum %s", s.Name(), n, sum))
			ok = ok && n == want
		}
		ok = ok && len(sums) == 1
		last = strings.Join(state, "; ")
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.failf("rows/checksums differ from MHA's expectation (%d rows, one checksum): %s; %s", want, last, b.topology())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// topology describes who replicates from whom, for failure messages.
func (b *bed) topology() string {
	var parts []string
	for _, s := range b.S {
		if !s.Running() {
			parts = append(parts, s.Name()+" down")
			continue
		}
		st, err := s.SlaveStatus(b.ctx)
		ro, _ := s.QueryString(b.ctx, "SELECT @@global.read_only")
		switch {
		case err != nil:
			parts = append(parts, fmt.Sprintf("%s: %v", s.Name(), err))
		case st == nil:
			parts = append(parts, fmt.Sprintf("%s: no replication, read_only=%s", s.Name(), ro))
		default:
			from := st["Master_Port"]
			for _, o := range b.S {
				if strconv.Itoa(o.Port) == from {
					from = o.Name()
				}
			}
			parts = append(parts, fmt.Sprintf("%s <- %s (IO %s SQL %s) read_only=%s", s.Name(), from, st["Slave_IO_Running"], st["Slave_SQL_Running"], ro))
		}
	}
	sort.Strings(parts)
	return "topology: " + strings.Join(parts, ", ")
}
