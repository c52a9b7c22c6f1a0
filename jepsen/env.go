package jepsen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// Fixed ports inside each host's own namespace.
const (
	raftPort = 7000
	httpPort = 7080
)

// EnvOptions describe the hosts of a run.
type EnvOptions struct {
	Dir        string // everything of the run lives below Dir
	DBs        int    // MariaDB hosts (default 3)
	Managers   int    // mhanode hosts (default 3)
	MhanodeBin string // path of the mhanode binary (built by BuildMhanode)
	// PingInterval and ConnectTimeout (seconds) go into app1.conf; the
	// detection window is 2*PingInterval+ConnectTimeout.
	PingInterval   int
	ConnectTimeout int
	Detection      string // mhanode --detection ("" leaves mhanode's default, fast)
	// DCLatency is the one-way delay between datacenters in rounds with a
	// layout (latency.go); 0: none.
	DCLatency time.Duration
	Prefix    string // namespace/link prefix, unique on the machine
	Subnet    int    // third octet of 10.213.x.0/24
	Log       io.Writer
}

// Env is a run's hosts: the network, one namespace per DB host with its
// long-lived sshd, one namespace per manager. Each round starts fresh
// mariadbd and mhanode processes on them (StartRound) and stops them
// (StopRound).
type Env struct {
	Opts     EnvOptions
	Net      *Network
	DBs      []*DBHost
	Managers []*ManagerHost

	sshKey, knownHosts string
	tokenFile, token   string
	stonithScript      string
	stonithLog         string
	app                string // application config path of the current round
	roundDir           string
	gtid               bool
	setup              RoundSetup
	layout             *DCLayout       // the round's datacenters, nil without
	clientAddrs        map[string]bool // client source addresses added to the harness's veth
	relays             map[string]*Relay
	clockOnce          sync.Once
	clockFlag          bool
}

// DBHost is one MariaDB host: a namespace, its sshd and (during a round)
// its mariadbd.
type DBHost struct {
	Net    *NetHost
	SSH    *testbed.SSHD
	Server *testbed.Server
}

// Name is the MHA section name of the host's server (server1, ...).
func (d *DBHost) Name() string { return "server" + strings.TrimPrefix(d.Net.Name, "db") }

// Addr is the MySQL address.
func (d *DBHost) Addr() string { return d.Net.IP + ":3306" }

// ManagerHost is one mhanode host.
type ManagerHost struct {
	ID      string
	Net     *NetHost
	DataDir string
	LogPath string
	args    []string

	mu   sync.Mutex
	proc *testbed.Proc // nil until started
}

// RaftAddr and APIAddr of the manager.
func (m *ManagerHost) RaftAddr() string { return fmt.Sprintf("%s:%d", m.Net.IP, raftPort) }
func (m *ManagerHost) APIAddr() string  { return fmt.Sprintf("%s:%d", m.Net.IP, httpPort) }

// BuildMhanode builds cmd/mhanode into dir and returns the binary's path.
// It runs from the module root (testbed.BuildBinaries), which must be at or
// above the working directory.
func BuildMhanode(ctx context.Context, dir string) (string, error) {
	if err := testbed.BuildBinaries(ctx, dir, "./cmd/mhanode"); err != nil {
		return "", fmt.Errorf("build mhanode: %w", err)
	}
	return filepath.Join(dir, "mhanode"), nil
}

// NewEnv creates the network and the hosts and starts one sshd per DB
// host. Call Close (also after an error: it removes what was made).
func NewEnv(ctx context.Context, o EnvOptions) (*Env, error) {
	if o.DBs == 0 {
		o.DBs = 3
	}
	if o.Managers == 0 {
		o.Managers = 3
	}
	if o.PingInterval == 0 {
		o.PingInterval = 1
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 1
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	e := &Env{Opts: o}
	var err error
	e.Net, err = NewNetwork(o.Prefix, o.Subnet)
	if err != nil {
		return e, err
	}
	for i := 1; i <= o.DBs; i++ {
		h, err := e.Net.AddHost(fmt.Sprintf("db%d", i), 10+i)
		if err != nil {
			return e, err
		}
		e.DBs = append(e.DBs, &DBHost{Net: h})
	}
	for i := 1; i <= o.Managers; i++ {
		h, err := e.Net.AddHost(fmt.Sprintf("m%d", i), 20+i)
		if err != nil {
			return e, err
		}
		e.Managers = append(e.Managers, &ManagerHost{ID: fmt.Sprintf("m%d", i), Net: h})
	}
	// One sshd per DB host; the first host's client key is accepted by all,
	// and one known_hosts file pins every host key.
	var known []string
	for _, d := range e.DBs {
		sshd, err := testbed.StartSSHDInNetNS(filepath.Join(o.Dir, "sshd-"+d.Net.Name), d.Net.IP, d.Net.NS)
		if err != nil {
			return e, fmt.Errorf("start sshd on %s: %w", d.Net.Name, err)
		}
		d.SSH = sshd
		known = append(known, fmt.Sprintf("%s %s", d.Net.IP, sshd.HostKeyPub))
	}
	e.sshKey = e.DBs[0].SSH.ClientKey
	pub, err := os.ReadFile(e.sshKey + ".pub")
	if err != nil {
		return e, err
	}
	for _, d := range e.DBs[1:] {
		if err := os.WriteFile(filepath.Join(d.SSH.Dir, "authorized_keys"), pub, 0o600); err != nil {
			return e, err
		}
	}
	e.knownHosts = filepath.Join(o.Dir, "known_hosts")
	if err := os.WriteFile(e.knownHosts, []byte(strings.Join(known, "\n")+"\n"), 0o644); err != nil {
		return e, err
	}
	for _, d := range e.DBs {
		if err := waitTCP(ctx, d.Net.IP+":22", 10*time.Second); err != nil {
			return e, fmt.Errorf("sshd on %s: %w", d.Net.Name, err)
		}
	}
	tok := make([]byte, 16)
	rand.Read(tok)
	e.token = hex.EncodeToString(tok)
	e.tokenFile = filepath.Join(o.Dir, "token")
	if err := os.WriteFile(e.tokenFile, []byte(e.token+"\n"), 0o600); err != nil {
		return e, err
	}
	e.stonithLog = filepath.Join(o.Dir, "stonith.log")
	e.stonithScript = filepath.Join(o.Dir, "stonith.sh")
	if err := os.WriteFile(e.stonithScript, []byte(stonithScript(filepath.Join(o.Dir, "stonith"), e.stonithLog)), 0o755); err != nil {
		return e, err
	}
	return e, os.MkdirAll(filepath.Join(o.Dir, "stonith"), 0o755)
}

// stonithScript is the shutdown_script of the harness: an out-of-band
// power switch (as IPMI would be) that kills the mariadbd of the host
// named by --ip=, whatever the network says. It exits 0: "power off done".
func stonithScript(mapDir, logPath string) string {
	return `#!/bin/sh
# mhajepsen power switch: kills the mariadbd of the host given by --ip.
ip=""; cmd=""
for a in "$@"; do
  case "$a" in
    --ip=*) ip="${a#--ip=}" ;;
    --command=*) cmd="${a#--command=}" ;;
  esac
done
[ "$cmd" = "status" ] && exit 0
f="` + mapDir + `/$ip"
[ -n "$ip" ] && [ -f "$f" ] || { echo "unknown host $ip"; exit 1; }
pid=$(cat "$(cat "$f")" 2>/dev/null)
[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
echo "$(date +%s.%N) $ip $cmd" >> "` + logPath + `"
exit 0
`
}

// waitTCP polls until addr accepts a TCP connection.
func waitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	return poll(ctx, timeout, 20*time.Millisecond, func() error {
		c, err := dialTCP(addr, 500*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// poll calls f every interval until it returns nil, ctx ends or timeout
// passes; the error names the last failure.
func poll(ctx context.Context, timeout, interval time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// RoundSetup is what a round changes in the deployment before it starts;
// a nemesis's Setup fills it in.
type RoundSetup struct {
	GTID bool
	// NoIgnoreFail names the servers whose app1.conf section lacks
	// ignore_fail=1: the failover must refuse while one is down.
	NoIgnoreFail []string
	// ManagerArgs are extra mhanode arguments per manager ID.
	ManagerArgs map[string][]string
	// LeadFirst, when set, is started alone StaggerStart before the
	// others, so that it is likely to win the first election; StartLast is
	// started StaggerStart after the others, so that it is likely a
	// follower.
	LeadFirst, StartLast string
	// Layout, when set, groups the hosts into datacenters (datacenter.go):
	// datacenter= on every server of app1.conf, --datacenter on every
	// manager, and one client source address per datacenter with DB hosts.
	Layout string
	// SemiSync: every server runs semi-synchronous replication (wait point
	// AFTER_SYNC, SemiSyncTimeout, default 10 min: it never falls back to
	// asynchronous in a round); the master has it enabled as a master,
	// the replicas in another datacenter than the master as replicas (the
	// replicas of its own datacenter stay asynchronous: a write they
	// acknowledged would be lost with the datacenter).
	SemiSync        bool
	SemiSyncTimeout time.Duration
	// PreventCrossDC sets prevent_cross_dc_failover=1.
	PreventCrossDC bool
	// NoShutdownScript leaves shutdown_script out of app1.conf: the power
	// switch of a datacenter cut off is out of reach too.
	NoShutdownScript bool
}

// DefaultSemiSyncTimeout is rpl_semi_sync_master_timeout of a lossless
// round: far longer than a round, so the master never falls back to
// asynchronous replication while its semi-sync replicas are cut off.
const DefaultSemiSyncTimeout = 10 * time.Minute

// Layout is the current round's datacenter layout, or nil.
func (e *Env) Layout() *DCLayout { return e.layout }

// DCOf returns the datacenter of host name (db1, m2), "" without layout.
func (e *Env) DCOf(name string) string {
	if e.layout == nil {
		return ""
	}
	return e.layout.Of[name]
}

// DCNetHosts returns the namespaces of dc's hosts.
func (e *Env) DCNetHosts(dc string) []*NetHost {
	var out []*NetHost
	for _, h := range e.layout.Hosts(dc) {
		if n := e.Net.Host(h); n != nil {
			out = append(out, n)
		}
	}
	return out
}

// setLayout prepares the round's layout and its client addresses.
func (e *Env) setLayout(name string) error {
	e.layout = nil
	if name == "" {
		return nil
	}
	l, err := NewLayout(name, len(e.DBs), len(e.Managers))
	if err != nil {
		return err
	}
	if e.clientAddrs == nil {
		e.clientAddrs = map[string]bool{}
	}
	for _, dc := range l.ClientDCs() {
		ip := fmt.Sprintf("10.213.%d.%d", e.Net.Subnet, clientOctet(l, dc))
		if !e.clientAddrs[ip] {
			if err := e.Net.AddClientAddr(ip); err != nil {
				return err
			}
			e.clientAddrs[ip] = true
		}
		l.Addr[dc] = ip
	}
	e.layout = l
	return e.delayLayout()
}

// delayLayout starts (once) a delaying relay in every host's namespace
// and redirects each host's connections to the hosts of other
// datacenters through it (Opts.DCLatency > 0). StopRound removes the
// redirects.
func (e *Env) delayLayout() error {
	if e.Opts.DCLatency <= 0 || e.layout == nil {
		return nil
	}
	if e.relays == nil {
		e.relays = map[string]*Relay{}
	}
	for host, dc := range e.layout.Of {
		h := e.Net.Host(host)
		if h == nil {
			continue
		}
		if e.relays[h.NS] == nil {
			r, err := StartRelay(h.NS, e.Opts.DCLatency)
			if err != nil {
				return err
			}
			e.relays[h.NS] = r
		}
		var far []string
		for other, odc := range e.layout.Of {
			if odc != dc {
				if oh := e.Net.Host(other); oh != nil {
					far = append(far, oh.IP)
				}
			}
		}
		sort.Strings(far)
		if err := e.Net.DelayTo(h, far); err != nil {
			return fmt.Errorf("delay %s's connections to other datacenters: %w", host, err)
		}
	}
	return nil
}

// StaggerStart separates the manager that starts first (or last) from the
// others: long enough for its election timeout to pass alone.
const StaggerStart = 2 * time.Second

// GeneralLogPath is the CSV file of d's mysql.general_log (every server of
// a round logs with log_output=TABLE, see oneactor.go).
func (d *DBHost) GeneralLogPath() string {
	return filepath.Join(d.Server.DataDir, "mysql", "general_log.CSV")
}

// StartRound starts fresh mariadbd servers (db1 master, the others
// replicating, in GTID or file/position mode), the schema, app1.conf and
// the managers, below dir.
func (e *Env) StartRound(ctx context.Context, dir string, setup RoundSetup) error {
	gtid := setup.GTID
	e.roundDir, e.gtid, e.setup = dir, gtid, setup
	if err := e.setLayout(setup.Layout); err != nil {
		return err
	}
	errs := make([]error, len(e.DBs))
	var wg sync.WaitGroup
	for i, d := range e.DBs {
		// Replicas notice a silent master within a few seconds (heartbeat
		// HeartbeatPeriod, net timeout 4 s) instead of MariaDB's default 60 s, as a
		// production setup tuned for fast failover would.
		// Every statement goes to mysql.general_log (a CSV file that
		// survives kill -9): the one-actor checker reads who changed what.
		so := testbed.ServerOptions{Host: d.Net.IP, NetNS: d.Net.NS, Extra: []string{"slave_net_timeout=4",
			"general_log=1", "log_output=TABLE"}}
		if i > 0 {
			// A replica restarted by a nemesis must not come back writable.
			so.Extra = append(so.Extra, "read_only=1")
		}
		so.Extra = append(so.Extra, e.semiSyncConf(i, d)...)
		s, err := testbed.NewServer(filepath.Join(dir, d.Net.Name), i+1, 100+i+1, so)
		if err != nil {
			return fmt.Errorf("prepare mariadbd on %s: %w", d.Net.Name, err)
		}
		d.Server = s
		wg.Add(1)
		go func(i int, d *DBHost) {
			defer wg.Done()
			if err := d.Server.Start(ctx); err != nil {
				errs[i] = err
				return
			}
			errs[i] = createUsers(ctx, d.Server)
		}(i, d)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	master := e.DBs[0].Server
	for _, d := range e.DBs[1:] {
		if err := replicate(ctx, d.Server, master, gtid); err != nil {
			return err
		}
	}
	if err := master.Exec(ctx, "CREATE DATABASE IF NOT EXISTS jepsen",
		"CREATE TABLE jepsen.w (id BIGINT PRIMARY KEY, writer INT NOT NULL, at DATETIME(6) NOT NULL DEFAULT NOW(6))",
		"CREATE TABLE jepsen.probe (id BIGINT PRIMARY KEY, srv VARCHAR(32) NOT NULL)",
		// No key at all: a transaction applied twice leaves two rows
		// instead of failing on a duplicate key.
		"CREATE TABLE jepsen.nk (v BIGINT NOT NULL, writer INT NOT NULL, at DATETIME(6) NOT NULL DEFAULT NOW(6))",
		"CREATE TABLE jepsen.big (v BIGINT NOT NULL, pad VARCHAR(2000) NOT NULL)"); err != nil {
		return err
	}
	for _, d := range e.DBs[1:] {
		if err := d.Server.WaitCaughtUp(ctx, master, 20*time.Second); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(e.Opts.Dir, "stonith", d.Net.IP), []byte(filepath.Join(d.Server.Dir, "mysqld.pid")), 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(e.Opts.Dir, "stonith", e.DBs[0].Net.IP), []byte(filepath.Join(master.Dir, "mysqld.pid")), 0o644); err != nil {
		return err
	}
	e.app = filepath.Join(dir, "app1.conf")
	if err := os.WriteFile(e.app, []byte(e.appConfig(filepath.Join(dir, "work"))), 0o600); err != nil {
		return err
	}
	var peers []string
	for _, m := range e.Managers {
		peers = append(peers, m.ID+"="+m.RaftAddr())
	}
	var first, middle, last []*ManagerHost
	for _, m := range e.Managers {
		m.DataDir = filepath.Join(dir, m.ID)
		m.LogPath = filepath.Join(dir, m.ID+".log")
		m.args = []string{"--id", m.ID, "--data-dir", m.DataDir, "--raft-addr", m.RaftAddr(),
			"--http-addr", m.APIAddr(), "--peers", strings.Join(peers, ","), "--conf", e.app,
			"--token-file", e.tokenFile, "--log-level", "info"}
		if e.Opts.Detection != "" {
			m.args = append(m.args, "--detection", e.Opts.Detection)
		}
		if dc := e.DCOf(m.Net.Name); dc != "" {
			m.args = append(m.args, "--datacenter", dc)
		}
		m.args = append(m.args, setup.ManagerArgs[m.ID]...)
		switch m.ID {
		case setup.LeadFirst:
			first = append(first, m)
		case setup.StartLast:
			last = append(last, m)
		default:
			middle = append(middle, m)
		}
	}
	started := false
	for _, group := range [][]*ManagerHost{first, middle, last} {
		if len(group) == 0 {
			continue
		}
		if started {
			pause(ctx, StaggerStart) // a deliberate head start, not a wait for a condition
		}
		for _, m := range group {
			if err := e.StartManager(m); err != nil {
				return err
			}
		}
		started = true
	}
	return nil
}

// SignalManager sends sig (SIGSTOP, SIGCONT) to m's mhanode.
func (e *Env) SignalManager(m *ManagerHost, sig syscall.Signal) error {
	m.mu.Lock()
	proc := m.proc
	m.mu.Unlock()
	if proc == nil {
		return fmt.Errorf("signal mhanode %s: not started", m.ID)
	}
	if err := proc.Signal(sig); err != nil {
		return fmt.Errorf("signal mhanode %s: %w", m.ID, err)
	}
	return nil
}

// SupportsClockOffset reports whether the mhanode binary has the test-only
// --test-clock-offset flag (it lists it in --help).
func (e *Env) SupportsClockOffset() bool {
	e.clockOnce.Do(func() {
		out, _ := exec.Command(e.Opts.MhanodeBin, "--help").CombinedOutput()
		e.clockFlag = strings.Contains(string(out), "test-clock-offset")
	})
	return e.clockFlag
}

// HeartbeatPeriod is the replicas' MASTER_HEARTBEAT_PERIOD. The replicas'
// testimony about a silent master needs half the detection window, one
// heartbeat period and 250 ms without an event or heartbeat
// (detector.ReplicaStall): 0.25 s makes that 2 s with the window of 3 s
// (1 s would make it 2.75 s), while pause-master-short's 1.5 s pause
// leaves at most 1.75 s of silence. A heartbeat is a few dozen bytes sent
// only while the master has nothing else to send.
const HeartbeatPeriod = 250 * time.Millisecond

// SSHConnectionTimeout is ssh_connection_timeout of app1.conf (seconds):
// the hosts share a LAN, where an sshd answers in milliseconds, so a host
// whose SSH has not answered within a second is down or cut off (MHA's
// default 5 s would hold an isolated master's failover 5 s after the first
// suspicion; see manager/prewarm.go).
const SSHConnectionTimeout = 1

// replicate points replica at master with a HeartbeatPeriod heartbeat.
func replicate(ctx context.Context, replica, master *testbed.Server, gtid bool) error {
	change := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=%g",
		master.Host, master.Port, testbed.ReplUser, testbed.ReplPassword, HeartbeatPeriod.Seconds())
	if gtid {
		change += ", MASTER_USE_GTID=slave_pos"
	} else {
		change += ", MASTER_USE_GTID=no, MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4"
	}
	return replica.Exec(ctx, "STOP SLAVE", "SET GLOBAL read_only=1", change, "START SLAVE")
}

// createUsers creates the test bed's users without binlogging them (as
// testbed does for its own clusters).
func createUsers(ctx context.Context, s *testbed.Server) error {
	return s.Exec(ctx,
		"SET sql_log_bin=0",
		fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'", testbed.MHAUser, testbed.MHAPassword),
		fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION", testbed.MHAUser),
		fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'", testbed.ReplUser, testbed.ReplPassword),
		fmt.Sprintf("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '%s'@'%%'", testbed.ReplUser),
		fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'", testbed.AppUser, testbed.AppPassword),
		fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON *.* TO '%s'@'%%'", testbed.AppUser),
		"SET sql_log_bin=1",
	)
}

// appConfig is the MHA-style app1.conf of the round.
func (e *Env) appConfig(workdir string) string {
	var b strings.Builder
	b.WriteString("[server default]\n")
	fmt.Fprintf(&b, "user=%s\npassword=%s\nrepl_user=%s\nrepl_password=%s\n", testbed.MHAUser, testbed.MHAPassword, testbed.ReplUser, testbed.ReplPassword)
	fmt.Fprintf(&b, "manager_workdir=%s\nremote_workdir=%s\n", workdir, filepath.Join(e.roundDir, "remote"))
	fmt.Fprintf(&b, "ssh_user=%s\nssh_port=22\nssh_key=%s\nssh_known_hosts=%s\n", e.DBs[0].SSH.User, e.sshKey, e.knownHosts)
	fmt.Fprintf(&b, "ping_interval=%d\nconnect_timeout=%d\n", e.Opts.PingInterval, e.Opts.ConnectTimeout)
	fmt.Fprintf(&b, "ssh_connection_timeout=%d\n", SSHConnectionTimeout)
	if !e.setup.NoShutdownScript {
		fmt.Fprintf(&b, "shutdown_script=%s\n", e.stonithScript)
	}
	if e.setup.PreventCrossDC {
		b.WriteString("prevent_cross_dc_failover=1\n")
	}
	for _, d := range e.DBs {
		// ignore_fail=1: a replica that is down must not stop the failover
		// (MHA refuses without it); the combination nemeses kill one. The
		// refused-failover nemesis leaves it out on one replica.
		ignore := "ignore_fail=1\n"
		for _, n := range e.setup.NoIgnoreFail {
			if n == d.Name() {
				ignore = ""
			}
		}
		fmt.Fprintf(&b, "\n[%s]\nhostname=%s\nport=3306\nmaster_binlog_dir=%s\ncandidate_master=1\n%s", d.Name(), d.Net.IP, d.Server.DataDir, ignore)
		if dc := e.DCOf(d.Net.Name); dc != "" {
			fmt.Fprintf(&b, "datacenter=%s\n", dc)
		}
	}
	return b.String()
}

// semiSyncConf is the my.cnf lines of semi-synchronous replication for
// server i (0 is the master) of a SemiSync round: the master enabled as a
// master, the replicas of another datacenter enabled as replicas, wait
// point and timeout everywhere (a server promoted later gets
// rpl_semi_sync_master_enabled=ON from the failover, as configured).
func (e *Env) semiSyncConf(i int, d *DBHost) []string {
	if !e.setup.SemiSync {
		return nil
	}
	t := e.setup.SemiSyncTimeout
	if t == 0 {
		t = DefaultSemiSyncTimeout
	}
	out := []string{"rpl_semi_sync_master_wait_point=AFTER_SYNC", fmt.Sprintf("rpl_semi_sync_master_timeout=%d", t.Milliseconds())}
	if i == 0 {
		return append(out, "rpl_semi_sync_master_enabled=ON")
	}
	if e.layout == nil || e.layout.Of[d.Net.Name] != e.layout.Of[e.DBs[0].Net.Name] {
		// As check-repl recommends: STOP SLAVE does not wait 5 s for a
		// cut-off master (topology.SlowSemiSyncKill).
		out = append(out, "rpl_semi_sync_slave_enabled=ON", "rpl_semi_sync_slave_kill_conn_timeout=1")
	}
	return out
}

// StartManager (re)starts m's mhanode inside its namespace.
func (e *Env) StartManager(m *ManagerHost) error {
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", m.Net.NS, e.Opts.MhanodeBin}, m.args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	proc, err := testbed.StartProc(cmd, logf)
	if err != nil {
		return fmt.Errorf("start mhanode %s: %w", m.ID, err)
	}
	m.mu.Lock()
	m.proc = proc
	m.mu.Unlock()
	return nil
}

// KillManager sends SIGKILL to m's mhanode and waits until it is gone.
func (e *Env) KillManager(m *ManagerHost) {
	m.mu.Lock()
	proc := m.proc
	m.mu.Unlock()
	if proc != nil {
		proc.Kill()
	}
}

// Running reports whether m's mhanode runs.
func (m *ManagerHost) Running() bool {
	m.mu.Lock()
	proc := m.proc
	m.mu.Unlock()
	return proc != nil && proc.Running()
}

// ManagerByID returns the manager called id, or nil.
func (e *Env) ManagerByID(id string) *ManagerHost {
	for _, m := range e.Managers {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// DBByAddr returns the DB host whose name (server1) or address matches key.
func (e *Env) DBByAddr(key string) *DBHost {
	for _, d := range e.DBs {
		if d.Addr() == key || d.Name() == key || d.Net.IP == key {
			return d
		}
	}
	return nil
}

// StopRound kills every mhanode and mariadbd of the round and heals the
// network.
func (e *Env) StopRound() {
	var wg sync.WaitGroup
	for _, m := range e.Managers {
		wg.Add(1)
		go func(m *ManagerHost) { defer wg.Done(); e.KillManager(m) }(m)
	}
	for _, d := range e.DBs {
		if d.Server != nil {
			wg.Add(1)
			go func(s *testbed.Server) { defer wg.Done(); s.Stop() }(d.Server)
		}
	}
	wg.Wait()
	if e.Net != nil {
		e.Net.Heal()
		if e.layout != nil && e.Opts.DCLatency > 0 {
			for host := range e.layout.Of {
				if h := e.Net.Host(host); h != nil {
					e.Net.NoDelay(h)
				}
			}
		}
	}
}

// Close stops everything and removes the network.
func (e *Env) Close() {
	e.StopRound()
	for _, r := range e.relays {
		r.Close()
	}
	for _, d := range e.DBs {
		if d.SSH != nil {
			d.SSH.Stop()
		}
	}
	if e.Net != nil {
		e.Net.Close()
	}
}

// StonithLog returns the lines the power switch wrote (time and ip).
func (e *Env) StonithLog() []string {
	b, _ := os.ReadFile(e.stonithLog)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
