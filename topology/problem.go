package topology

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/mharaft/mharaft/dialect"
)

// Severity of a Problem.
type Severity string

// Severities: an Error makes a failover unsafe or impossible (check-repl
// exits non-zero); a Warning deserves attention but does not block.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Problem codes: stable identifiers for programs and tests; the text may change.
const (
	CodeUnreachable      = "unreachable"
	CodeReadFailed       = "read-failed"
	CodeNoMaster         = "no-master"
	CodeNoReplica        = "no-replica"
	CodeMultipleMasters  = "multiple-masters"
	CodeMultiMaster      = "multi-master"
	CodeReplGrant        = "repl-grant"
	CodeReplUserMissing  = "repl-user-missing"
	CodeManagerGrant     = "manager-grant"
	CodeReadOnlyOff      = "read-only-off"
	CodeRelayLogPurge    = "relay-log-purge"
	CodeLogBinOff        = "log-bin-off"
	CodeLogSlaveUpdates  = "log-slave-updates-off"
	CodeFilters          = "filters-differ"
	CodeBinlogFilters    = "binlog-filters-differ"
	CodeWrongMaster      = "wrong-master"
	CodeNotReplicating   = "not-replicating"
	CodeThreadStopped    = "thread-stopped"
	CodeMultipleWritable = "multiple-writable"
	CodeBinlogFormat     = "binlog-format-differs"
	CodeSSHHostKey       = "ssh-host-key"
	CodeSSHAuth          = "ssh-auth"
	CodeSSHUnreachable   = "ssh-unreachable"
	CodeSSHCommand       = "ssh-command"
)

// Problem is one finding of a check.
type Problem struct {
	Server   string   `json:"server"`         // section name, "" for the whole application
	Addr     string   `json:"addr,omitempty"` // host(ip:port) of that server
	Severity Severity `json:"severity"`       // Error or Warning
	Code     string   `json:"code"`           // one of the Code constants
	What     string   `json:"what"`           // what is wrong
	Fix      string   `json:"fix"`            // how to fix it
}

func (p Problem) String() string {
	who := p.Server
	if p.Addr != "" {
		who += " " + p.Addr
	}
	if who == "" {
		who = "application"
	}
	return fmt.Sprintf("[%s] %s: %s (fix: %s)", p.Severity, who, p.What, p.Fix)
}

func problem(s *ServerState, sev Severity, code, what, fix string) Problem {
	return Problem{Server: s.Server.Name, Addr: s.Server.String(), Severity: sev, Code: code, What: what, Fix: fix}
}

// HasErrors reports whether any problem is of Error severity.
func HasErrors(ps []Problem) bool {
	for _, p := range ps {
		if p.Severity == Error {
			return true
		}
	}
	return false
}

// Check returns discovery's problems and every problem found in t: what
// would make a failover fail or lose data, as masterha_check_repl does.
func Check(t *Topology) []Problem {
	ps := append([]Problem(nil), t.Problems...)
	for _, s := range t.Servers {
		if !s.Reachable {
			sev, fix := Error, "start the server or fix the network, the address or the credentials in "+t.App.File
			what := fmt.Sprintf("cannot connect: %v", s.Err)
			if s == t.Master {
				what = fmt.Sprintf("the master is unreachable (dead master?): %v", s.Err)
				fix = "if the master is dead, run a failover; otherwise start it or fix the network"
			} else if s.Server.IgnoreFail {
				sev = Warning
			}
			ps = append(ps, problem(s, sev, CodeUnreachable, what, fix))
			continue
		}
		for _, err := range s.ReadErrors {
			ps = append(ps, problem(s, Error, CodeReadFailed, err.Error(),
				"grant the manager user "+s.Server.User+" the privileges it needs (SUPER or ALL PRIVILEGES on MariaDB; REPLICATION CLIENT, REPLICATION_SLAVE_ADMIN, SYSTEM_VARIABLES_ADMIN on MySQL 8)"))
		}
		ps = append(ps, checkManagerGrants(s)...)
		ps = append(ps, checkServer(t, s)...)
	}
	ps = append(ps, checkAcross(t)...)
	ps = append(ps, checkHasReplica(t)...)
	ps = append(ps, checkSemiSync(t)...)
	return ps
}

// checkHasReplica refuses an application with no reachable replica of its
// master, as masterha_check_repl does ("There is not any alive slave"): a
// failover would have no server to promote. The servers that should be
// replicas have problems of their own (unreachable, not replicating, wrong
// master); this one says what it means for the application.
func checkHasReplica(t *Topology) []Problem {
	if t.Master == nil { // reported as no-master
		return nil
	}
	for _, s := range t.Servers {
		if s == t.Master || !s.Reachable {
			continue
		}
		// A server whose status could not be read may be a replica: its
		// read error is the problem to fix first.
		if s.Replica != nil && s.Upstream == t.Master || len(s.ReadErrors) > 0 {
			return nil
		}
	}
	p := problem(t.Master, Error, CodeNoReplica, "", "")
	if len(t.Servers) == 1 {
		p.What = fmt.Sprintf("the application's only server is its master %s: there is no replica to promote, so a failover is impossible", t.Master)
		p.Fix = fmt.Sprintf("add a block per replica to %s ([server2] with hostname= and port=), each replicating from %s; mharaft manages a master with at least one replica", t.App.File, t.Master)
	} else {
		p.What = fmt.Sprintf("no configured server is a reachable replica of the master %s: there is no replica to promote, so a failover is impossible", t.Master)
		p.Fix = fmt.Sprintf("start the replicas and make them replicate from %s (CHANGE MASTER TO ...; START SLAVE); the other problems say what is wrong on each server", t.Master)
	}
	return []Problem{p}
}

// candidate reports whether s could become the master.
func candidate(s *ServerState) bool { return !s.Server.NoMaster }

func checkServer(t *Topology, s *ServerState) []Problem {
	var ps []Problem
	isMaster := s == t.Master
	if candidate(s) || isMaster {
		ps = append(ps, checkReplGrants(s)...)
		if !s.LogBin {
			ps = append(ps, problem(s, Error, CodeLogBinOff,
				"log_bin is off: this server cannot become the master (its replicas would have no binlog to read) and saves no events",
				"enable the binary log (log-bin=... in my.cnf, restart), or set no_master=1 for this server"))
		}
	}
	if isMaster {
		return append(ps, checkPairReplication(s)...)
	}
	if candidate(s) && s.LogBin && !s.LogSlaveUpdates {
		ps = append(ps, problem(s, Warning, CodeLogSlaveUpdates,
			"log_slave_updates is off: if this server becomes the master, replicas cannot start from what it received from the old master",
			"set log_slave_updates=1 in my.cnf and restart"))
	}
	if s.Replica == nil {
		if s.Reachable && len(s.ReadErrors) == 0 {
			ps = append(ps, problem(s, Error, CodeNotReplicating,
				"the server is not a replica (no replica status) and not the master",
				"make it replicate from the master: CHANGE MASTER TO MASTER_HOST='...' and START SLAVE"))
			if !s.ReadOnly && t.Master != nil {
				ps = append(ps, problem(s, Error, CodeMultipleWritable,
					fmt.Sprintf("the server is writable (read_only=0) and not a replica, besides the master %s: more than one writable master", t.Master),
					"SET GLOBAL read_only=1 on it, and make it replicate from the master"))
			}
		}
		return ps
	}
	r := s.Replica
	belowReplica := t.BelowReplica(s)
	if t.Master != nil && s.Upstream != t.Master && !belowReplica {
		upstream := fmt.Sprintf("%s:%d", r.MasterHost, r.MasterPort)
		if s.Upstream != nil {
			upstream = s.Upstream.String()
		}
		fix := fmt.Sprintf("point it at the master: STOP SLAVE; CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, ...; START SLAVE",
			t.Master.Server.IP, t.Master.Server.Port)
		if s.Upstream != nil && rootIs(s, t.Master) {
			fix += fmt.Sprintf(", or set multi_tier_slave=1 in %s to keep it below %s (a replica of a replica: failovers and switches leave it there)", t.App.File, s.Upstream.Server.Name)
		}
		ps = append(ps, problem(s, Error, CodeWrongMaster,
			fmt.Sprintf("replicates from %s, not from the application's master %s", upstream, t.Master), fix))
	}
	if !s.ReadOnly {
		ps = append(ps, problem(s, Error, CodeReadOnlyOff,
			"read_only is off on a replica: applications can write to it and diverge from the master",
			"SET GLOBAL read_only=1 on it and put read_only=1 in its my.cnf"))
	}
	if s.RelayLogPurge && !belowReplica {
		ps = append(ps, problem(s, Error, CodeRelayLogPurge,
			"relay_log_purge is on: relay logs are deleted once applied, so the events other replicas lack cannot be recovered from this replica",
			"SET GLOBAL relay_log_purge=0 and put relay_log_purge=0 in its my.cnf (purge relay logs with a cron job instead)"))
	}
	// The IO thread of a replica whose upstream is dead cannot run.
	masterDead := s.Upstream != nil && !s.Upstream.Reachable
	// A thread stopped by an error is broken replication: an Error. A thread
	// stopped without one was stopped on purpose (a backup job, an operator
	// holding a replica back): MHA's check accepts it and a failover catches
	// the replica up from the others' relay logs, so it is a Warning.
	if !r.SQLRunning {
		sev, fix := Warning, "START SLAVE SQL_THREAD when it should apply again (a failover catches it up meanwhile)"
		if r.LastSQLErrno != 0 {
			sev, fix = Error, "fix the cause of the error, then START SLAVE SQL_THREAD"
		}
		ps = append(ps, problem(s, sev, CodeThreadStopped,
			fmt.Sprintf("the SQL thread is not running (last SQL error %d: %s)", r.LastSQLErrno, orNone(r.LastSQLError)), fix))
	}
	if !r.IOThreadRunning() && !masterDead {
		sev, fix := Warning, "START SLAVE IO_THREAD when it should receive again (a failover catches it up from the other replicas meanwhile)"
		if r.LastIOErrno != 0 {
			sev, fix = Error, "fix the cause of the error, then START SLAVE IO_THREAD"
		}
		ps = append(ps, problem(s, sev, CodeThreadStopped,
			fmt.Sprintf("the IO thread is not running (Slave_IO_Running=%s; last IO error %d: %s)", orNone(r.IORunning), r.LastIOErrno, orNone(r.LastIOError)), fix))
	}
	return ps
}

// checkPairReplication warns when the active master of a master-master
// pair (a master that replicates from one of its replicas) has that
// replication broken: what the passive master writes would not reach it,
// and after a switch the pair would not be re-established.
func checkPairReplication(m *ServerState) []Problem {
	r := m.Replica
	if r == nil || m.Upstream == nil || r.SQLRunning && r.IOThreadRunning() {
		return nil
	}
	return []Problem{problem(m, Warning, CodeThreadStopped,
		fmt.Sprintf("the master replicates from %s (a master-master pair) but that replication is not running (Slave_IO_Running=%s, last IO error %d: %s; SQL thread running %v, last SQL error %d: %s)",
			m.Upstream, orNone(r.IORunning), r.LastIOErrno, orNone(r.LastIOError), r.SQLRunning, r.LastSQLErrno, orNone(r.LastSQLError)),
		"fix the cause, then START SLAVE on the master, so that the pair works in both directions")}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// checkAcross compares servers: filters, binlog_format, writable servers.
func checkAcross(t *Topology) []Problem {
	var ps []Problem
	var ref *ServerState
	for _, s := range t.Servers {
		if s.Replica == nil || !s.Reachable {
			continue
		}
		if ref == nil {
			ref = s
			continue
		}
		if !s.Replica.Filters.Equal(ref.Replica.Filters) {
			ps = append(ps, problem(s, Error, CodeFilters,
				fmt.Sprintf("replication filters differ: %s has %s, %s has %s; after a failover the replicas would silently miss or apply different data",
					s.Server.Name, s.Replica.Filters, ref.Server.Name, ref.Replica.Filters),
				"use the same replicate_* settings on every server (STOP SLAVE; SET GLOBAL replicate_...; START SLAVE, and in my.cnf)"))
		}
	}
	ps = append(ps, checkBinlogFilters(t)...)
	ref = nil
	for _, s := range t.Servers {
		if !s.Reachable || s.BinlogFormat == "" || !s.LogBin {
			continue
		}
		if ref == nil {
			ref = s
			continue
		}
		if !strings.EqualFold(s.BinlogFormat, ref.BinlogFormat) {
			ps = append(ps, problem(s, Warning, CodeBinlogFormat,
				fmt.Sprintf("binlog_format is %s here but %s on %s", s.BinlogFormat, ref.BinlogFormat, ref.Server.Name),
				"use the same binlog_format on every server (ROW recommended)"))
		}
	}
	return ps
}

// Privilege tests. A grant line such as "GRANT SELECT, REPLICATION SLAVE ON *.* TO ..."
// counts only when it is global (ON *.*).
var grantRe = regexp.MustCompile(`(?i)^GRANT\s+(.+?)\s+ON\s+\*\.\*\s+TO\s`)

// globalPrivileges returns the upper-case global privileges of grant lines.
func globalPrivileges(grants []string) map[string]bool {
	out := map[string]bool{}
	for _, g := range grants {
		m := grantRe.FindStringSubmatch(g)
		if m == nil {
			continue
		}
		for _, p := range strings.Split(m[1], ",") {
			p = strings.ToUpper(strings.Join(strings.Fields(p), " "))
			p = strings.ReplaceAll(p, "`", "")
			out[p] = true
		}
	}
	return out
}

func hasAny(privs map[string]bool, names ...string) bool {
	if privs["ALL PRIVILEGES"] || privs["ALL"] {
		return true
	}
	for _, n := range names {
		if privs[n] {
			return true
		}
	}
	return false
}

func checkReplGrants(s *ServerState) []Problem {
	if !s.replGrantsRead || s.Server.ReplUser == "" {
		return nil
	}
	if !s.ReplUserFound {
		return []Problem{problem(s, Error, CodeReplUserMissing,
			fmt.Sprintf("the replication user %q (repl_user) does not exist here: replicas cannot replicate from this server after a failover", s.Server.ReplUser),
			fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '...'; GRANT REPLICATION SLAVE ON *.* TO '%s'@'%%'", s.Server.ReplUser, s.Server.ReplUser))}
	}
	if !hasAny(globalPrivileges(s.ReplGrants), "REPLICATION SLAVE", "REPLICATION REPLICA") {
		return []Problem{problem(s, Error, CodeReplGrant,
			fmt.Sprintf("the replication user %q (repl_user) lacks REPLICATION SLAVE: replicas cannot replicate from this server", s.Server.ReplUser),
			fmt.Sprintf("GRANT REPLICATION SLAVE ON *.* TO '%s'@'%%'", s.Server.ReplUser))}
	}
	return nil
}

func checkManagerGrants(s *ServerState) []Problem {
	if len(s.Grants) == 0 {
		return nil // SHOW GRANTS failed: reported as a read error
	}
	privs := globalPrivileges(s.Grants)
	var ps []Problem
	user := s.Server.User
	if !hasAny(privs, "REPLICATION CLIENT", "BINLOG MONITOR", "SLAVE MONITOR", "REPLICA MONITOR", "SUPER") {
		ps = append(ps, problem(s, Error, CodeManagerGrant,
			fmt.Sprintf("the manager user %q (user=) lacks REPLICATION CLIENT: it cannot read replica and binlog status", user),
			fmt.Sprintf("GRANT REPLICATION CLIENT ON *.* TO '%s'@'...' (or ALL PRIVILEGES)", user)))
	}
	superLike := hasAny(privs, "SUPER")
	if !superLike && s.Version.Flavor == dialect.MySQL {
		superLike = hasAny(privs, "REPLICATION_SLAVE_ADMIN") && hasAny(privs, "SYSTEM_VARIABLES_ADMIN")
	}
	if !superLike && s.Version.Flavor == dialect.MariaDB {
		superLike = hasAny(privs, "REPLICATION SLAVE ADMIN") && hasAny(privs, "READ_ONLY ADMIN", "READ ONLY ADMIN")
	}
	if !superLike {
		fix := fmt.Sprintf("GRANT SUPER ON *.* TO '%s'@'...' (or ALL PRIVILEGES)", user)
		if s.Version.Flavor == dialect.MySQL && s.Version.AtLeast(8, 0, 0) {
			fix = fmt.Sprintf("GRANT REPLICATION_SLAVE_ADMIN, SYSTEM_VARIABLES_ADMIN, CONNECTION_ADMIN ON *.* TO '%s'@'...' (or SUPER)", user)
		}
		ps = append(ps, problem(s, Error, CodeManagerGrant,
			fmt.Sprintf("the manager user %q (user=) lacks SUPER (or its replacements): it cannot stop/start replication, CHANGE MASTER or set read_only in a failover", user),
			fix))
	}
	return ps
}
