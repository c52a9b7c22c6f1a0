package topology

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
)

// FullReadPeriod bounds the age of a carried setting: a light read carries
// only settings a full read read less than FullReadPeriod before the light
// discovery started; older ones are read again. The manager's periodic
// discovery asks for a full read every few discoveries anyway (30 s at its
// default interval); this bound holds whatever the caller asks.
const FullReadPeriod = 30 * time.Second

// minCarryUptime: a server that had been up for less than this at its last
// read is read in full. A restart is told from the server's start time
// (whole seconds), which a restart moves by more than the uptime the
// server had at the previous read; below a few seconds that could not be
// told from rounding.
const minCarryUptime = 10 * time.Second

// dynamicVariables are the global variables of variableNames that change
// in normal operation (read_only when an operator or a failover switches
// roles, the GTID positions with every transaction): a light read reads
// them again, those of them the full read found on the server.
var dynamicVariables = []string{
	"read_only", "super_read_only",
	"gtid_binlog_pos", "gtid_slave_pos", "gtid_current_pos", "gtid_executed", "gtid_purged",
}

// setDynamic sets the field of st that the dynamic variable name holds.
func setDynamic(st *ServerState, name, value string) {
	switch name {
	case "read_only":
		st.ReadOnly = on(value)
	case "super_read_only":
		st.SuperReadOnly = on(value)
	case "gtid_binlog_pos":
		st.GTIDBinlogPos = value
	case "gtid_slave_pos":
		st.GTIDSlavePos = value
	case "gtid_current_pos":
		st.GTIDCurrentPos = value
	case "gtid_executed":
		st.GTIDExecuted = strings.Join(strings.Fields(value), "")
	case "gtid_purged":
		st.GTIDPurged = strings.Join(strings.Fields(value), "")
	}
}

// previousStates returns, for each server of app in order, its state in
// prev, the previous discovery of the application; nil entries when there
// is none or the server set changed (another number of servers, or a
// server with another name, address, login or repl user): nothing is then
// carried.
func previousStates(prev *Topology, app *config.App) []*ServerState {
	out := make([]*ServerState, len(app.Servers))
	if prev == nil || len(prev.Servers) != len(app.Servers) {
		return out
	}
	for i, srv := range app.Servers {
		p := prev.Servers[i].Server
		if p.Name != srv.Name || p.ReplUser != srv.ReplUser || DSN(p, 0, 0) != DSN(srv, 0, 0) {
			return make([]*ServerState, len(app.Servers))
		}
	}
	copy(out, prev.Servers)
	return out
}

// carryOver reports whether the settings of prev, a server's state in the
// previous discovery, may be carried over to a light read of it in a
// discovery started at now, and why not.
func carryOver(prev *ServerState, now time.Time) (bool, string) {
	switch {
	case prev == nil:
		return false, "no previous discovery of this server"
	case !prev.Reachable:
		return false, "unreachable at the previous discovery"
	case len(prev.ReadErrors) > 0:
		return false, "reads failed at the previous discovery"
	case prev.FullAt.IsZero() || now.Sub(prev.FullAt) >= FullReadPeriod:
		return false, "settings read " + FullReadPeriod.String() + " ago or more"
	case prev.started == 0 || prev.Uptime < minCarryUptime:
		return false, "uptime unknown or under " + minCarryUptime.String() + " at the previous discovery"
	}
	return true, ""
}

// carryFrom copies into st the settings of prev: everything a full read
// reads but the light one does not (version, server_uuid, log_bin,
// log_slave_updates, relay_log_purge, the binlog and relay log names,
// binlog_format, gtid_domain_id, gtid_strict_mode, gtid_mode, semi-sync,
// grants), with the date they were read. The grant slices are shared:
// nobody modifies them.
func (st *ServerState) carryFrom(prev *ServerState) {
	st.Carried = true
	st.FullAt = prev.FullAt
	st.dynamic = prev.dynamic
	st.Version, st.Dialect = prev.Version, prev.Dialect
	st.ServerUUID = prev.ServerUUID
	st.LogBin, st.LogSlaveUpdates, st.RelayLogPurge = prev.LogBin, prev.LogSlaveUpdates, prev.RelayLogPurge
	st.BinlogBasename, st.RelayLogBasename, st.BinlogFormat = prev.BinlogBasename, prev.RelayLogBasename, prev.BinlogFormat
	st.GTIDDomainID, st.GTIDStrictMode, st.GTIDModeOn = prev.GTIDDomainID, prev.GTIDStrictMode, prev.GTIDModeOn
	st.SemiSync = prev.SemiSync
	st.Grants, st.ReplGrants = prev.Grants, prev.ReplGrants
	st.ReplUserFound, st.replGrantsRead = prev.ReplUserFound, prev.replGrantsRead
}

// restarted reports whether st, a light read, finds the server other than
// prev did: another server_id, or another start time (more than a second
// apart, for rounding).
func restarted(prev, st *ServerState) bool {
	d := st.started - prev.started
	return st.ServerID != prev.ServerID || d > 1 || d < -1
}

// light reads st light: prev's settings carried, then the state that
// changes (server_id, uptime, the dynamic variables) in one statement, the
// master and replica status. It returns false, leaving st to be read in
// full, when the statement fails or the server restarted since prev.
func (r *reader) light(prev *ServerState) bool {
	r.st.carryFrom(prev)
	if err := r.state(prev.dynamic); err != nil || restarted(prev, r.st) {
		return false
	}
	r.masterStatus()
	r.replicaStatus()
	return true
}

// stateQuery is the statement state runs: the server's clock, its Uptime,
// server_id, then the global variables vars (names of dynamicVariables,
// never user input), in that order.
func stateQuery(d dialect.Dialect, vars []string) string {
	// MySQL 5.7 moved the status tables to performance_schema (8.0 has
	// no other); MariaDB and older MySQL have them in information_schema.
	table := "information_schema.GLOBAL_STATUS"
	if !d.V.IsMariaDB() && d.V.AtLeast(5, 7, 0) {
		table = "performance_schema.global_status"
	}
	var b strings.Builder
	b.WriteString("SELECT UNIX_TIMESTAMP(), (SELECT VARIABLE_VALUE FROM " + table + " WHERE VARIABLE_NAME = 'Uptime'), @@global.server_id")
	for _, v := range vars {
		b.WriteString(", @@global." + v)
	}
	return b.String()
}

// state reads the server's start time, Uptime, server_id and the dynamic
// variables vars in one statement (stateQuery) into st.
func (r *reader) state(vars []string) error {
	rows, err := r.conn.QueryContext(r.ctx, stateQuery(r.st.Dialect, vars))
	if err != nil {
		return err
	}
	defer rows.Close()
	vals := make([]sql.NullString, 3+len(vars))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return fmt.Errorf("no row")
	}
	if err := rows.Scan(ptrs...); err != nil {
		return err
	}
	if err := rows.Close(); err != nil {
		return err
	}
	now, err1 := strconv.ParseInt(vals[0].String, 10, 64)
	up, err2 := strconv.ParseInt(vals[1].String, 10, 64)
	id, err3 := strconv.ParseUint(vals[2].String, 10, 32)
	if err1 != nil || err2 != nil || err3 != nil || now <= 0 || up < 0 {
		return fmt.Errorf("clock %q, Uptime %q, server_id %q: not numbers", vals[0].String, vals[1].String, vals[2].String)
	}
	st := r.st
	st.Uptime = time.Duration(up) * time.Second
	st.started = now - up
	st.ServerID = uint32(id)
	for i, v := range vars {
		setDynamic(st, v, vals[3+i].String)
	}
	return nil
}

// carried reports whether any server of t was read light.
func (t *Topology) carried() bool {
	for _, s := range t.Servers {
		if s.Carried {
			return true
		}
	}
	return false
}

// masterName is the configured name of t's master, "" when it has none.
func masterName(t *Topology) string {
	if t.Master == nil {
		return ""
	}
	return t.Master.Name()
}
