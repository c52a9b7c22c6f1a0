package topology

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql" // also registers the "mysql" driver

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
)

// ServerState is what discovery saw on one configured server.
type ServerState struct {
	Server    *config.Server
	Reachable bool
	// Err says why the server could not be reached (Reachable false).
	Err error
	// ReadErrors are reads that failed on a reachable server (a missing
	// privilege, typically); Check reports them.
	ReadErrors []error

	Version dialect.Version
	Dialect dialect.Dialect

	ServerID        uint32
	ServerUUID      string // MySQL
	ReadOnly        bool
	SuperReadOnly   bool // MySQL only; always false on MariaDB
	LogBin          bool
	LogSlaveUpdates bool
	RelayLogPurge   bool

	BinlogBasename   string // log_bin_basename
	RelayLogBasename string // relay_log_basename (or relay_log)
	BinlogFormat     string

	// MariaDB GTID state.
	GTIDBinlogPos, GTIDSlavePos, GTIDCurrentPos string
	GTIDDomainID                                uint32
	GTIDStrictMode                              bool
	// MySQL GTID state.
	GTIDExecuted, GTIDPurged string
	GTIDModeOn               bool

	// MasterStatus is SHOW MASTER STATUS; nil when the binlog is off.
	MasterStatus *dialect.Pos
	// BinlogDoDB and BinlogIgnoreDB are SHOW MASTER STATUS's binlog
	// filters (binlog-do-db, binlog-ignore-db), when MasterStatus is set.
	BinlogDoDB, BinlogIgnoreDB string
	// Replica is the replica status; nil when the server is no replica.
	Replica *dialect.ReplicaStatus
	// SemiSync is the semi-synchronous replication state (either spelling).
	SemiSync dialect.SemiSync

	// Grants is SHOW GRANTS of the manager user (the configured user=).
	Grants []string
	// ReplGrants are the grants of every account of the repl user (repl_user=);
	// ReplUserFound is false when no such account exists. Both are read only
	// when the manager user may read mysql.user.
	ReplGrants     []string
	ReplUserFound  bool
	replGrantsRead bool

	// Upstream is the configured server this one replicates from; nil when
	// it is no replica or replicates from a server not in the configuration.
	Upstream *ServerState

	// Uptime is the server's Uptime status at this read; zero when unknown
	// (the status could not be read).
	Uptime time.Duration
	// Carried is true when this read was light (Options.Light): the
	// settings (carryFrom lists them) are those of the full read at
	// FullAt, not read again.
	Carried bool
	// FullAt is when the settings were read: the start of this discovery
	// when it read them (a full read), of the last full read when Carried.
	FullAt time.Time
	// started is when the server started, on its own clock, in whole
	// seconds (UNIX_TIMESTAMP() minus Uptime, in one statement); 0 when
	// unknown. A restart changes it.
	started int64
	// dynamic are the dynamicVariables the full read found on the server:
	// what a light read reads again.
	dynamic []string
}

// Name is the configured section name ("server1").
func (s *ServerState) Name() string { return s.Server.Name }

// String is the MHA form host(ip:port).
func (s *ServerState) String() string { return s.Server.String() }

// IsReplica reports whether the server has a replica configuration.
func (s *ServerState) IsReplica() bool { return s.Replica != nil }

// ReadPos is the replica's read position on its master's binlog (zero when no replica).
func (s *ServerState) ReadPos() dialect.Pos {
	if s.Replica == nil {
		return dialect.Pos{}
	}
	return s.Replica.ReadPos()
}

// Topology is one application's servers as discovered.
type Topology struct {
	App     *config.App
	Servers []*ServerState // every configured server, in configuration order
	// Master is the current master: the server the replicas replicate from,
	// not itself a replica. It may be unreachable (dead master). nil when
	// no master could be identified (see Problems).
	Master *ServerState
	// Replicas are every configured server other than the master, reachable
	// or not, in configuration order.
	Replicas []*ServerState
	// Problems found while discovering (more than one master, no master).
	Problems []Problem
	// At is when discovery finished.
	At time.Time
}

// ByAddr returns the server whose configured name, ip:port or hostname:port is addr.
func (t *Topology) ByAddr(addr string) *ServerState {
	for _, s := range t.Servers {
		if s.Server.Name == addr || s.Server.Addr() == addr ||
			net.JoinHostPort(s.Server.Hostname, strconv.Itoa(s.Server.Port)) == addr {
			return s
		}
	}
	return nil
}

// AliveReplicas are the reachable replicas that replicate from the master.
func (t *Topology) AliveReplicas() []*ServerState {
	var out []*ServerState
	for _, s := range t.Replicas {
		if s.Reachable && s.Replica != nil && t.Master != nil && s.Upstream == t.Master {
			out = append(out, s)
		}
	}
	return out
}

// BelowReplica reports whether s is a replica of a replica that the
// application accepts (multi_tier_slave=1 in its block, MHA's
// "unmanaged" slave): it replicates from a configured server other than
// the master whose chain of upstreams leads to the master. Failovers and
// switches leave such a server below its upstream: it is never elected
// nor repointed, and its relay logs are not used.
func (t *Topology) BelowReplica(s *ServerState) bool {
	return t.Master != nil && s != t.Master && s.Server.MultiTierSlave && s.Replica != nil &&
		s.Upstream != nil && s.Upstream != t.Master && rootIs(s, t.Master)
}

// rootIs reports whether s's chain of upstreams leads to m.
func rootIs(s, m *ServerState) bool {
	root, _ := rootOf(s)
	return root == m
}

// Latest returns the alive replicas of the master that have read the most
// of its binlog (Master_Log_File, Read_Master_Log_Pos), as MHA's "latest
// slaves": several when they are at the same position.
func (t *Topology) Latest() []*ServerState { return t.extreme(1) }

// Oldest returns the alive replicas that have read the least of the master's binlog.
func (t *Topology) Oldest() []*ServerState { return t.extreme(-1) }

func (t *Topology) extreme(sign int) []*ServerState {
	var out []*ServerState
	for _, s := range t.AliveReplicas() {
		if len(out) == 0 {
			out = []*ServerState{s}
			continue
		}
		switch c := s.ReadPos().Compare(out[0].ReadPos()) * sign; {
		case c > 0:
			out = []*ServerState{s}
		case c == 0:
			out = append(out, s)
		}
	}
	return out
}

// Options tune discovery.
type Options struct {
	// ConnectTimeout per server; default the app's ConnectTimeout, or 2s.
	ConnectTimeout time.Duration
	// QueryTimeout for all reads of one server; default 10s.
	QueryTimeout time.Duration
	// Pool, when set, holds the connections between discoveries (the
	// leader's periodic discovery): a server's connection is reused, and
	// closed when a read through it fails. Nil: every discovery opens one
	// connection per server and closes it.
	Pool *Pool
	// Light, when set, is the application's previous discovery: each
	// server whose settings may be carried over from it (carryOver) is read
	// light, its settings carried from Light instead of read again (see
	// doc.go for the rule). Nil: every server is read in full.
	Light *Topology
}

// withDefaults fills the zero fields as DiscoverWith does.
func (o Options) withDefaults(app *config.App) Options {
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = app.ConnectTimeout
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 2 * time.Second
	}
	if o.QueryTimeout == 0 {
		o.QueryTimeout = 10 * time.Second
	}
	return o
}

// Discover connects to every configured server in parallel and reads its
// state, then identifies the master and the replicas. It never fails: an
// unreachable server is recorded as such.
func Discover(ctx context.Context, app *config.App) *Topology {
	return DiscoverWith(ctx, app, Options{})
}

// DiscoverWith is Discover with options. With opts.Light, a discovery
// that carried settings and finds another master than opts.Light did is
// done again in full: no setting is carried across a change of master.
func DiscoverWith(ctx context.Context, app *config.App, opts Options) *Topology {
	opts = opts.withDefaults(app)
	t := discoverOnce(ctx, app, opts)
	if opts.Light != nil && t.carried() && masterName(t) != masterName(opts.Light) {
		opts.Light = nil
		t = discoverOnce(ctx, app, opts)
	}
	return t
}

// discoverOnce reads every server in parallel, light where opts.Light allows.
func discoverOnce(ctx context.Context, app *config.App, opts Options) *Topology {
	start := time.Now()
	prev := previousStates(opts.Light, app)
	t := &Topology{App: app, Servers: make([]*ServerState, len(app.Servers))}
	var wg sync.WaitGroup
	for i, srv := range app.Servers {
		t.Servers[i] = &ServerState{Server: srv}
		var carry *ServerState
		if ok, _ := carryOver(prev[i], start); ok {
			carry = prev[i]
		}
		wg.Add(1)
		go func(st *ServerState) {
			defer wg.Done()
			read(ctx, st, opts, carry, start)
		}(t.Servers[i])
	}
	wg.Wait()
	t.link()
	t.At = time.Now()
	return t
}

// DSN returns the go-sql-driver DSN for the manager user on srv. It holds the
// password: never log it.
func DSN(srv *config.Server, connectTimeout, rwTimeout time.Duration) string {
	c := dialect.DriverConfig(srv)
	c.Timeout = connectTimeout
	c.ReadTimeout = rwTimeout
	c.WriteTimeout = rwTimeout
	return c.FormatDSN()
}

// read fills st from its server: on a connection of opts.Pool, or on a
// connection of its own, closed at the end. With prev (the server's state
// in the last discovery, whose settings may be carried) it reads light,
// and in full when the light read fails or finds the server restarted;
// start is when the discovery started (FullAt of a full read).
func read(ctx context.Context, st *ServerState, opts Options, prev *ServerState, start time.Time) {
	ctx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout+opts.QueryTimeout)
	defer cancel()
	dsn := DSN(st.Server, opts.ConnectTimeout, opts.QueryTimeout)
	var q queryer
	if opts.Pool != nil {
		db, err := opts.Pool.get(dsn)
		if err != nil {
			st.Err = fmt.Errorf("open connection to %s: %w", st.Server, err)
			return
		}
		// database/sql replaces a pooled connection the server closed
		// (wait_timeout, a restart) before it fails a query on it.
		if err := db.PingContext(ctx); err != nil {
			opts.Pool.drop(dsn, db)
			st.Err = fmt.Errorf("connect to %s as %s: %w", st.Server, st.Server.User, err)
			return
		}
		q = db
		defer func() {
			if ctx.Err() != nil || !onlyServerErrors(st.ReadErrors) {
				// A read that failed other than with the server's own
				// error (a missing privilege) may have left the
				// connection broken or mid-answer: the next discovery
				// starts on a fresh one.
				opts.Pool.drop(dsn, db)
			}
		}()
	} else {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			st.Err = fmt.Errorf("open connection to %s: %w", st.Server, err)
			return
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		conn, err := db.Conn(ctx)
		if err == nil {
			err = conn.PingContext(ctx)
		}
		if err != nil {
			st.Err = fmt.Errorf("connect to %s as %s: %w", st.Server, st.Server.User, err)
			return
		}
		defer conn.Close()
		q = conn
	}
	st.Reachable = true
	r := reader{ctx: ctx, conn: q, st: st}
	if prev != nil {
		if r.light(prev) {
			return
		}
		*st = ServerState{Server: st.Server, Reachable: true} // nothing of the light read is kept
	}
	st.FullAt = start
	r.variables()
	if err := r.state(nil); err != nil {
		st.Uptime, st.started = 0, 0 // unknown: the next read is full again
	}
	r.masterStatus()
	r.replicaStatus()
	r.semiSync()
	r.grants()
}

// onlyServerErrors reports whether every error is an error the server
// answered with (the connection is still in sync).
func onlyServerErrors(errs []error) bool {
	for _, err := range errs {
		var me *mysql.MySQLError
		if !errors.As(err, &me) {
			return false
		}
	}
	return true
}

// queryer is a connection (*sql.Conn) or a pooled handle of one connection
// (*sql.DB).
type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// reader runs the reads of one server, recording failures in st.ReadErrors.
type reader struct {
	ctx  context.Context
	conn queryer
	st   *ServerState
}

func (r *reader) fail(what string, err error) {
	r.st.ReadErrors = append(r.st.ReadErrors, fmt.Errorf("%s on %s: %w", what, r.st.Server, err))
}

// rows runs q and returns each row as column -> value (NULL as "").
func (r *reader) rows(q string, args ...any) ([]map[string]string, error) {
	rows, err := r.conn.QueryContext(r.ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return dialect.ScanRows(rows)
}

// variableNames are read with one SHOW GLOBAL VARIABLES; names a server does
// not know are simply absent from the answer.
var variableNames = []string{
	"version", "version_comment", "server_id", "server_uuid", "read_only", "super_read_only",
	"log_bin", "log_slave_updates", "log_replica_updates", "log_bin_basename",
	"relay_log", "relay_log_basename", "binlog_format", "relay_log_purge",
	"gtid_binlog_pos", "gtid_slave_pos", "gtid_current_pos", "gtid_domain_id", "gtid_strict_mode",
	"gtid_mode", "gtid_executed", "gtid_purged",
}

func (r *reader) variables() {
	quoted := make([]string, len(variableNames))
	for i, n := range variableNames {
		quoted[i] = "'" + n + "'"
	}
	rows, err := r.rows("SHOW GLOBAL VARIABLES WHERE Variable_name IN (" + strings.Join(quoted, ",") + ")")
	if err != nil {
		r.fail("read global variables", err)
		return
	}
	v := map[string]string{}
	for _, row := range rows {
		v[strings.ToLower(row["Variable_name"])] = row["Value"]
	}
	st := r.st
	for _, n := range dynamicVariables {
		if _, ok := v[n]; ok {
			st.dynamic = append(st.dynamic, n)
		}
	}
	st.Version, err = dialect.ParseVersion(v["version"], v["version_comment"])
	if err != nil {
		r.fail("read version", err)
	}
	st.Dialect = dialect.For(st.Version)
	id, _ := strconv.ParseUint(v["server_id"], 10, 32)
	st.ServerID = uint32(id)
	st.ServerUUID = v["server_uuid"]
	for _, n := range st.dynamic {
		setDynamic(st, n, v[n])
	}
	st.LogBin = on(v["log_bin"])
	st.LogSlaveUpdates = on(v["log_slave_updates"]) || on(v["log_replica_updates"])
	st.RelayLogPurge = on(v["relay_log_purge"])
	st.BinlogBasename = v["log_bin_basename"]
	st.RelayLogBasename = v["relay_log_basename"]
	if st.RelayLogBasename == "" {
		st.RelayLogBasename = v["relay_log"]
	}
	st.BinlogFormat = v["binlog_format"]
	d, _ := strconv.ParseUint(v["gtid_domain_id"], 10, 32)
	st.GTIDDomainID = uint32(d)
	st.GTIDStrictMode = on(v["gtid_strict_mode"])
	st.GTIDModeOn = strings.EqualFold(v["gtid_mode"], "ON")
}

func on(v string) bool { return v == "1" || strings.EqualFold(v, "ON") || strings.EqualFold(v, "YES") }

func (r *reader) masterStatus() {
	if !r.st.LogBin {
		return
	}
	q := r.st.Dialect.ShowMasterStatus()
	rows, err := r.rows(q)
	if err != nil {
		r.fail(q, err)
		return
	}
	if len(rows) == 0 {
		return
	}
	n, err := strconv.ParseUint(rows[0]["Position"], 10, 64)
	if err != nil {
		r.fail(q, fmt.Errorf("position %q: %w", rows[0]["Position"], err))
		return
	}
	r.st.MasterStatus = &dialect.Pos{File: rows[0]["File"], Pos: n}
	r.st.BinlogDoDB, r.st.BinlogIgnoreDB = rows[0]["Binlog_Do_DB"], rows[0]["Binlog_Ignore_DB"]
}

func (r *reader) replicaStatus() {
	q := r.st.Dialect.ShowReplicaStatus()
	rows, err := r.rows(q)
	if err != nil {
		r.fail(q, err)
		return
	}
	if len(rows) == 0 {
		return
	}
	rs, err := dialect.ParseReplicaStatus(rows[0])
	if err != nil {
		r.fail(q, err)
		return
	}
	r.st.Replica = rs
}

// grants reads SHOW GRANTS of the manager user and of every account of the
// repl user.
func (r *reader) grants() {
	rows, err := r.rows("SHOW GRANTS")
	if err != nil {
		r.fail("SHOW GRANTS", err)
	}
	for _, row := range rows {
		for _, v := range row {
			r.st.Grants = append(r.st.Grants, v)
		}
	}
	replUser := r.st.Server.ReplUser
	if replUser == "" {
		return
	}
	accounts, err := r.rows("SELECT User, Host FROM mysql.user WHERE User = ?", replUser)
	if err != nil {
		// Without SELECT on mysql.user the repl grants cannot be checked;
		// Check reports the manager's missing privileges instead.
		return
	}
	r.st.replGrantsRead = true
	for _, a := range accounts {
		r.st.ReplUserFound = true
		q := fmt.Sprintf("SHOW GRANTS FOR %s@%s", dialect.QuoteString(a["User"]), dialect.QuoteString(a["Host"]))
		grows, err := r.rows(q)
		if err != nil {
			r.fail(q, err)
			continue
		}
		for _, row := range grows {
			for _, v := range row {
				r.st.ReplGrants = append(r.st.ReplGrants, v)
			}
		}
	}
}

// link finds each replica's upstream and the master.
func (t *Topology) link() {
	for _, s := range t.Servers {
		if s.Replica != nil {
			s.Upstream = t.match(s.Replica.MasterHost, s.Replica.MasterPort)
		}
	}
	// Every replica's chain of upstreams ends at a root; the master is the
	// root most replicas lead to. A root is a server that is not a replica,
	// or one that cannot be read (a dead master), or the one writable
	// server of a replication cycle (a master-master pair: MHA's rule is
	// that exactly one of the pair is writable, the active master).
	count := map[*ServerState]int{}
	cycles := map[string]bool{}
	for _, s := range t.Servers {
		if s.Replica == nil || s.Upstream == nil || detached(s) {
			continue
		}
		root, cycle := rootOf(s)
		if root != nil {
			count[root]++
			continue
		}
		if len(cycle) > 0 && !cycles[cycleKey(cycle)] {
			cycles[cycleKey(cycle)] = true
			t.Problems = append(t.Problems, cycleProblem(t, cycle))
		}
	}
	var roots []*ServerState
	for root := range count {
		roots = append(roots, root)
	}
	sort.Slice(roots, func(i, j int) bool {
		if count[roots[i]] != count[roots[j]] {
			return count[roots[i]] > count[roots[j]]
		}
		return t.index(roots[i]) < t.index(roots[j])
	})
	if len(roots) > 0 {
		t.Master = roots[0]
		for _, other := range roots[1:] {
			t.Problems = append(t.Problems, problem(other, Error, CodeMultipleMasters,
				fmt.Sprintf("%s is the master of %d replica(s) while %s is the master of %d: the servers form more than one replication group",
					other, count[other], t.Master, count[t.Master]),
				"make every replica replicate from "+t.Master.String()+" (CHANGE MASTER TO) or remove the other group's servers from "+t.App.File))
		}
	} else {
		// No replica points at a configured server: the master is the one
		// writable, reachable server that is no replica.
		var writable []*ServerState
		for _, s := range t.Servers {
			if s.Reachable && (s.Replica == nil || detached(s)) && !s.ReadOnly {
				writable = append(writable, s)
			}
		}
		if len(writable) >= 1 {
			t.Master = writable[0]
		}
	}
	if t.Master == nil {
		t.Problems = append(t.Problems, Problem{Severity: Error, Code: CodeNoMaster,
			What: "no master found: no configured server is replicated from, and none is a writable non-replica",
			Fix:  "check that the replicas replicate from a server listed in " + t.App.File + " and that the servers are reachable"})
	}
	for _, s := range t.Servers {
		if s != t.Master {
			t.Replicas = append(t.Replicas, s)
		}
	}
}

func (t *Topology) index(s *ServerState) int {
	for i, x := range t.Servers {
		if x == s {
			return i
		}
	}
	return -1
}

// rootOf follows upstream links from s to a server that is no replica (or
// cannot be read), and returns it. When the links loop (a master-master
// pair, or a longer ring) the root is the ring's one writable server; a
// ring with none or several writable servers has no root and is returned
// as cycle. An unconfigured upstream has neither.
func rootOf(s *ServerState) (root *ServerState, cycle []*ServerState) {
	path := []*ServerState{s}
	cur := s.Upstream
	for cur != nil {
		if !cur.Reachable || cur.Replica == nil || detached(cur) {
			return cur, nil
		}
		for i, p := range path {
			if p != cur {
				continue
			}
			ring := path[i:]
			var writable []*ServerState
			for _, m := range ring {
				if !m.ReadOnly {
					writable = append(writable, m)
				}
			}
			if len(writable) == 1 {
				return writable[0], nil
			}
			return nil, ring
		}
		path = append(path, cur)
		cur = cur.Upstream
	}
	return nil, nil
}

// detached reports a server that keeps a replica configuration but
// follows nobody: writable, both replication threads stopped. That is the
// new master of a failover or switch with skip_reset_slave=1 (its
// replication from the old master kept, stopped), or the active master of
// a pair whose own replication is stopped: a master, not a replica of the
// server it once replicated from (which may be the dead old master).
func detached(s *ServerState) bool {
	r := s.Replica
	return s.Reachable && r != nil && !s.ReadOnly && !r.SQLRunning && !r.IOThreadRunning()
}

// cycleKey names a ring whatever server it was entered from.
func cycleKey(ring []*ServerState) string {
	var names []string
	for _, s := range ring {
		names = append(names, s.Server.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// cycleProblem is MHA's refusal of a master-master ring without exactly one
// writable server: all read_only (no active master), or more than one
// writable (two masters taking writes).
func cycleProblem(t *Topology, ring []*ServerState) Problem {
	var desc, writable []string
	for _, s := range ring {
		d := fmt.Sprintf("%s replicating from %s", s, s.Upstream)
		if s.ReadOnly {
			d += ", read-only"
		} else {
			writable = append(writable, s.String())
		}
		desc = append(desc, d)
	}
	first := ring[0]
	for _, s := range ring {
		if t.index(s) < t.index(first) {
			first = s
		}
	}
	if len(writable) == 0 {
		return problem(first, Error, CodeMultiMaster,
			fmt.Sprintf("multi-master configuration detected, but all of them are read-only: no active master (%s)", strings.Join(desc, "; ")),
			"make exactly one server of the pair writable, the active master: SET GLOBAL read_only=0 on it (the other, the passive master, stays read_only=1)")
	}
	return problem(first, Error, CodeMultiMaster,
		fmt.Sprintf("multi-master configuration detected, but two or more masters are writable (read_only is not set): %s (%s)", strings.Join(writable, ", "), strings.Join(desc, "; ")),
		"keep one server of the pair writable, the active master, and SET GLOBAL read_only=1 on the other (the passive master) and in its my.cnf")
}

// match finds the configured server at host:port, comparing host with the
// configured ip and hostname, and with the addresses host resolves to.
func (t *Topology) match(host string, port int) *ServerState {
	if port == 0 {
		port = 3306
	}
	candidates := []string{host}
	for _, s := range t.Servers {
		if s.Server.Port == port && (s.Server.IP == host || s.Server.Hostname == host) {
			return s
		}
	}
	if net.ParseIP(host) == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		addrs, err := net.DefaultResolver.LookupHost(ctx, host)
		cancel()
		if err == nil {
			candidates = addrs
		}
	}
	for _, s := range t.Servers {
		if s.Server.Port != port {
			continue
		}
		mine := []string{s.Server.IP, s.Server.Hostname}
		for _, a := range candidates {
			for _, m := range mine {
				if sameIP(a, m) {
					return s
				}
			}
		}
	}
	return nil
}

func sameIP(a, b string) bool {
	x, y := net.ParseIP(a), net.ParseIP(b)
	return x != nil && y != nil && x.Equal(y)
}
