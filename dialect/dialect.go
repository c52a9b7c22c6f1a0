package dialect

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
)

// Dialect returns the SQL text for one server version. Build it with For.
type Dialect struct {
	V Version
}

// For returns the dialect of a server version.
func For(v Version) Dialect { return Dialect{V: v} }

// mysqlAtLeast reports whether the server is MySQL of that version or newer.
func (d Dialect) mysqlAtLeast(major, minor, patch int) bool {
	return d.V.Flavor == MySQL && d.V.AtLeast(major, minor, patch)
}

// replicaWords reports whether the server wants REPLICA instead of SLAVE
// (MySQL 8.0.22 and later; MariaDB keeps SLAVE, which every version accepts).
func (d Dialect) replicaWords() bool { return d.mysqlAtLeast(8, 0, 22) }

// sourceWords reports whether CHANGE REPLICATION SOURCE / SOURCE_* options
// are the spelling (MySQL 8.0.23 and later; required from 8.4).
func (d Dialect) sourceWords() bool { return d.mysqlAtLeast(8, 0, 23) }

// sourceFuncs reports whether SOURCE_POS_WAIT and the *_source_* / *_replica_*
// variable names exist (MySQL 8.0.26 and later).
func (d Dialect) sourceFuncs() bool { return d.mysqlAtLeast(8, 0, 26) }

func (d Dialect) replica() string {
	if d.replicaWords() {
		return "REPLICA"
	}
	return "SLAVE"
}

// ShowReplicaStatus is SHOW SLAVE STATUS, or SHOW REPLICA STATUS on MySQL >= 8.0.22.
func (d Dialect) ShowReplicaStatus() string { return "SHOW " + d.replica() + " STATUS" }

// HeartbeatPeriodQuery returns one row with one column, the replica's
// current heartbeat period in seconds (MASTER_HEARTBEAT_PERIOD), which
// RESET SLAVE ALL forgets: MariaDB's global status Slave_heartbeat_period
// (of the default connection), MySQL's
// performance_schema.replication_connection_configuration.
func (d Dialect) HeartbeatPeriodQuery() string {
	if d.V.IsMariaDB() {
		return "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'SLAVE_HEARTBEAT_PERIOD'"
	}
	return "SELECT HEARTBEAT_INTERVAL FROM performance_schema.replication_connection_configuration WHERE CHANNEL_NAME = ''"
}

// StopReplica stops both replication threads.
func (d Dialect) StopReplica() string { return "STOP " + d.replica() }

// StartReplica starts both replication threads.
func (d Dialect) StartReplica() string { return "START " + d.replica() }

// StopIOThread stops the IO (receiver) thread only.
func (d Dialect) StopIOThread() string { return "STOP " + d.replica() + " IO_THREAD" }

// StartIOThread starts the IO (receiver) thread only.
func (d Dialect) StartIOThread() string { return "START " + d.replica() + " IO_THREAD" }

// StopSQLThread stops the SQL (applier) thread only.
func (d Dialect) StopSQLThread() string { return "STOP " + d.replica() + " SQL_THREAD" }

// StartSQLThread starts the SQL (applier) thread only.
func (d Dialect) StartSQLThread() string { return "START " + d.replica() + " SQL_THREAD" }

// ResetReplicaAll forgets the replication configuration (RESET SLAVE ALL).
func (d Dialect) ResetReplicaAll() string { return "RESET " + d.replica() + " ALL" }

// ShowMasterStatus returns the binlog file and position the server writes at.
// MySQL 8.2 introduced SHOW BINARY LOG STATUS and 8.4 removed SHOW MASTER STATUS.
func (d Dialect) ShowMasterStatus() string {
	if d.mysqlAtLeast(8, 2, 0) {
		return "SHOW BINARY LOG STATUS"
	}
	return "SHOW MASTER STATUS"
}

// ShowBinaryLogs lists the binary log files (Log_name, File_size).
func (d Dialect) ShowBinaryLogs() string { return "SHOW BINARY LOGS" }

// GTIDMode says how a replica positions itself on its master.
type GTIDMode int

// Positioning modes for ChangeMaster.
const (
	// FilePos: by binlog file and position (MariaDB MASTER_USE_GTID=no,
	// MySQL MASTER_AUTO_POSITION=0).
	FilePos GTIDMode = iota
	// GTIDSlavePos: MariaDB MASTER_USE_GTID=slave_pos; MySQL auto-position.
	GTIDSlavePos
	// GTIDCurrentPos: MariaDB MASTER_USE_GTID=current_pos; MySQL auto-position.
	GTIDCurrentPos
)

// ChangeMasterOpts are the options of CHANGE MASTER TO. Zero values are left
// out of the statement (the server keeps its current setting), except Host.
type ChangeMasterOpts struct {
	Host     string
	Port     int
	User     string
	Password string
	// File and Pos are used only in FilePos mode; File "" leaves them out.
	File string
	Pos  uint64
	Mode GTIDMode
	// HeartbeatPeriod and ConnectRetry: 0 leaves them out.
	HeartbeatPeriod time.Duration
	ConnectRetry    time.Duration
	// GetSourcePublicKey asks a MySQL 8 master for its RSA key
	// (caching_sha2_password without TLS). Ignored on MariaDB.
	GetSourcePublicKey bool
}

// ChangeMaster returns CHANGE MASTER TO ... (CHANGE REPLICATION SOURCE TO on
// MySQL >= 8.0.23). The text holds the password: log it only through
// RedactPassword.
func (d Dialect) ChangeMaster(o ChangeMasterOpts) string {
	prefix, stmt := "MASTER_", "CHANGE MASTER TO "
	if d.sourceWords() {
		prefix, stmt = "SOURCE_", "CHANGE REPLICATION SOURCE TO "
	}
	var opts []string
	add := func(name, value string) { opts = append(opts, prefix+name+"="+value) }
	add("HOST", QuoteString(o.Host))
	if o.Port != 0 {
		add("PORT", fmt.Sprint(o.Port))
	}
	if o.User != "" {
		add("USER", QuoteString(o.User))
	}
	if o.Password != "" {
		add("PASSWORD", QuoteString(o.Password))
	}
	if o.Mode == FilePos && o.File != "" {
		add("LOG_FILE", QuoteString(o.File))
		add("LOG_POS", fmt.Sprint(o.Pos))
	}
	if d.V.Flavor == MariaDB {
		switch o.Mode {
		case FilePos:
			add("USE_GTID", "no")
		case GTIDSlavePos:
			add("USE_GTID", "slave_pos")
		case GTIDCurrentPos:
			add("USE_GTID", "current_pos")
		}
	} else {
		if o.Mode == FilePos {
			add("AUTO_POSITION", "0")
		} else {
			add("AUTO_POSITION", "1")
		}
		if o.GetSourcePublicKey {
			if d.sourceWords() {
				opts = append(opts, "GET_SOURCE_PUBLIC_KEY=1")
			} else {
				opts = append(opts, "GET_MASTER_PUBLIC_KEY=1")
			}
		}
	}
	if o.HeartbeatPeriod > 0 {
		add("HEARTBEAT_PERIOD", trimFloat(o.HeartbeatPeriod.Seconds()))
	}
	if o.ConnectRetry > 0 {
		add("CONNECT_RETRY", fmt.Sprint(ceilSeconds(o.ConnectRetry)))
	}
	return stmt + strings.Join(opts, ", ")
}

var passwordRe = regexp.MustCompile(`((?:MASTER|SOURCE)_PASSWORD\s*=\s*)'(?:[^'\\]|\\.|'')*'`)

// RedactPassword replaces the password in a CHANGE MASTER / CHANGE
// REPLICATION SOURCE statement with '***' so the statement can be logged.
func RedactPassword(stmt string) string {
	return passwordRe.ReplaceAllString(stmt, "${1}'***'")
}

// MasterPosWait returns a SELECT that waits until the replica's SQL thread
// executed up to file:pos, or timeout. It yields >= 0 when reached, -1 on
// timeout and NULL when replication is not running.
func (d Dialect) MasterPosWait(file string, pos uint64, timeout time.Duration) string {
	fn := "MASTER_POS_WAIT"
	if d.sourceFuncs() {
		fn = "SOURCE_POS_WAIT"
	}
	return fmt.Sprintf("SELECT %s(%s, %d, %d)", fn, QuoteString(file), pos, ceilSeconds(timeout))
}

// GTIDWait returns a SELECT that waits until the server has executed gtid,
// or timeout: MASTER_GTID_WAIT on MariaDB (0 reached, -1 timeout),
// WAIT_FOR_EXECUTED_GTID_SET on MySQL (0 reached, 1 timeout). Use
// GTIDWaitReached to read the result.
func (d Dialect) GTIDWait(gtid string, timeout time.Duration) string {
	fn := "WAIT_FOR_EXECUTED_GTID_SET"
	if d.V.Flavor == MariaDB {
		fn = "MASTER_GTID_WAIT"
	}
	return fmt.Sprintf("SELECT %s(%s, %d)", fn, QuoteString(gtid), ceilSeconds(timeout))
}

// GTIDWaitReached interprets the result of GTIDWait: 0 means reached on both flavors.
func (d Dialect) GTIDWaitReached(result int64) bool { return result == 0 }

// HasSuperReadOnly reports whether the server has super_read_only (MySQL 5.7.8+;
// MariaDB has none: users with SUPER / READ ONLY ADMIN still write).
func (d Dialect) HasSuperReadOnly() bool { return d.mysqlAtLeast(5, 7, 8) }

// SetReadOnly returns the statements that make the server read-only (on) or
// writable (off). On MySQL it sets super_read_only too, in the order the
// server accepts; on MariaDB only read_only exists, so a fence must also
// deal with users holding SUPER (see the failover package).
func (d Dialect) SetReadOnly(on bool) []string {
	if !d.HasSuperReadOnly() {
		if on {
			return []string{"SET GLOBAL read_only=1"}
		}
		return []string{"SET GLOBAL read_only=0"}
	}
	if on {
		return []string{"SET GLOBAL read_only=1", "SET GLOBAL super_read_only=1"}
	}
	return []string{"SET GLOBAL super_read_only=0", "SET GLOBAL read_only=0"}
}

// SemiSyncMasterEnabledVar is the variable that enables semi-sync on a master.
func (d Dialect) SemiSyncMasterEnabledVar() string {
	if d.sourceFuncs() {
		return "rpl_semi_sync_source_enabled"
	}
	return "rpl_semi_sync_master_enabled"
}

// SemiSyncReplicaEnabledVar is the variable that enables semi-sync on a replica.
func (d Dialect) SemiSyncReplicaEnabledVar() string {
	if d.sourceFuncs() {
		return "rpl_semi_sync_replica_enabled"
	}
	return "rpl_semi_sync_slave_enabled"
}

// LogReplicaUpdatesVar is log_slave_updates, or log_replica_updates on MySQL >= 8.0.26.
func (d Dialect) LogReplicaUpdatesVar() string {
	if d.sourceFuncs() {
		return "log_replica_updates"
	}
	return "log_slave_updates"
}

// GTIDVariables are the global variables that describe the server's GTID
// state: MariaDB gtid_binlog_pos, gtid_slave_pos, gtid_current_pos,
// gtid_domain_id, gtid_strict_mode; MySQL gtid_mode, gtid_executed,
// gtid_purged, server_uuid, enforce_gtid_consistency.
func (d Dialect) GTIDVariables() []string {
	if d.V.Flavor == MariaDB {
		return []string{"gtid_binlog_pos", "gtid_slave_pos", "gtid_current_pos", "gtid_domain_id", "gtid_strict_mode"}
	}
	return []string{"gtid_mode", "gtid_executed", "gtid_purged", "server_uuid", "enforce_gtid_consistency"}
}

// QuoteString returns s as a single-quoted SQL string literal (backslashes
// and quotes escaped; assumes the default sql_mode without NO_BACKSLASH_ESCAPES).
func QuoteString(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `'`, `''`)
	return "'" + s + "'"
}

func ceilSeconds(d time.Duration) int64 {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

func trimFloat(f float64) string { return fmt.Sprintf("%g", f) }
