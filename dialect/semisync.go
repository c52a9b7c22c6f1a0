package dialect

import (
	"strconv"
	"strings"
	"time"
)

// Semi-synchronous replication has two spellings: MariaDB (built in since
// 10.3.3) and MySQL before 8.0.26 name its variables rpl_semi_sync_master_*
// and rpl_semi_sync_slave_* (status Rpl_semi_sync_master_*, ...); MySQL
// 8.0.26 and later, with the semisync_source / semisync_replica plugins,
// name them rpl_semi_sync_source_* and rpl_semi_sync_replica_*. Both are
// read with the same LIKE pattern and normalised to the master/slave
// spelling by ParseSemiSync.

// SemiSyncVariables lists the server's semi-sync system variables in
// either spelling (none when MySQL has no semi-sync plugin loaded).
const SemiSyncVariables = "SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync%'"

// SemiSyncStatus lists the server's semi-sync status variables in either spelling.
const SemiSyncStatus = "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync%'"

// SemiSync is one server's semi-synchronous replication state.
type SemiSync struct {
	// Known is false when the server has no semi-sync variables (MySQL
	// without the plugins); every other field is then zero.
	Known bool
	// MasterEnabled and ReplicaEnabled are rpl_semi_sync_master_enabled /
	// rpl_semi_sync_source_enabled and rpl_semi_sync_slave_enabled /
	// rpl_semi_sync_replica_enabled.
	MasterEnabled, ReplicaEnabled bool
	// Timeout is rpl_semi_sync_master_timeout: how long a commit waits for
	// an acknowledgement before the master falls back to asynchronous.
	Timeout time.Duration
	// WaitPoint is AFTER_SYNC (lossless) or AFTER_COMMIT.
	WaitPoint string
	// WaitForReplicaCount is rpl_semi_sync_master_wait_for_slave_count (MySQL; 1 when absent).
	WaitForReplicaCount int
	// MasterActive is Rpl_semi_sync_master_status: the master waits for
	// acknowledgements now (OFF after a fallback to asynchronous).
	MasterActive bool
	// ReplicaActive is Rpl_semi_sync_slave_status: the replica's IO thread
	// acknowledges (semi-sync enabled and the IO thread connected as such).
	ReplicaActive bool
	// Clients is Rpl_semi_sync_master_clients: the semi-sync replicas connected.
	Clients int
	// NoTx is Rpl_semi_sync_master_no_tx: commits not acknowledged in time.
	NoTx uint64
	// KillConnTimeout is rpl_semi_sync_slave_kill_conn_timeout (MariaDB
	// 10.3+; 0 when absent): how long STOP SLAVE on a semi-sync replica
	// waits for its connection to the master that kills the dump thread.
	KillConnTimeout time.Duration
}

// Lossless reports whether the master waits for an acknowledgement after
// syncing its binlog and before committing (AFTER_SYNC), and does now.
func (s SemiSync) Lossless() bool {
	return s.MasterEnabled && s.MasterActive && strings.EqualFold(s.WaitPoint, "AFTER_SYNC")
}

// normSemiSync lowercases a semi-sync variable name and turns the MySQL
// 8.0.26 spelling into the master/slave one.
func normSemiSync(name string) string {
	n := strings.ToLower(name)
	n = strings.Replace(n, "rpl_semi_sync_source_", "rpl_semi_sync_master_", 1)
	n = strings.Replace(n, "rpl_semi_sync_replica_", "rpl_semi_sync_slave_", 1)
	n = strings.Replace(n, "wait_for_replica_count", "wait_for_slave_count", 1)
	return n
}

// ParseSemiSync reads the rows of SemiSyncVariables and SemiSyncStatus
// (name -> value, either spelling, any case).
func ParseSemiSync(vars, status map[string]string) SemiSync {
	v, st := map[string]string{}, map[string]string{}
	for k, x := range vars {
		v[normSemiSync(k)] = x
	}
	for k, x := range status {
		st[normSemiSync(k)] = x
	}
	_, m := v["rpl_semi_sync_master_enabled"]
	_, r := v["rpl_semi_sync_slave_enabled"]
	if !m && !r {
		return SemiSync{}
	}
	s := SemiSync{Known: true, WaitForReplicaCount: 1}
	s.MasterEnabled = isOn(v["rpl_semi_sync_master_enabled"])
	s.ReplicaEnabled = isOn(v["rpl_semi_sync_slave_enabled"])
	if ms, err := strconv.ParseUint(v["rpl_semi_sync_master_timeout"], 10, 64); err == nil {
		s.Timeout = time.Duration(ms) * time.Millisecond
	}
	s.WaitPoint = strings.ToUpper(v["rpl_semi_sync_master_wait_point"])
	if n, err := strconv.Atoi(v["rpl_semi_sync_master_wait_for_slave_count"]); err == nil {
		s.WaitForReplicaCount = n
	}
	s.MasterActive = isOn(st["rpl_semi_sync_master_status"])
	s.ReplicaActive = isOn(st["rpl_semi_sync_slave_status"])
	s.Clients, _ = strconv.Atoi(st["rpl_semi_sync_master_clients"])
	s.NoTx, _ = strconv.ParseUint(st["rpl_semi_sync_master_no_tx"], 10, 64)
	if sec, err := strconv.ParseUint(v["rpl_semi_sync_slave_kill_conn_timeout"], 10, 64); err == nil {
		s.KillConnTimeout = time.Duration(sec) * time.Second
	}
	return s
}

func isOn(v string) bool { return v == "1" || strings.EqualFold(v, "ON") }

// SetSemiSyncMaster returns the statement that enables or disables
// semi-sync on a master, in the server's spelling.
func (d Dialect) SetSemiSyncMaster(on bool) string {
	return "SET GLOBAL " + d.SemiSyncMasterEnabledVar() + "=" + onOff(on)
}

// SetSemiSyncReplica returns the statement that enables or disables
// semi-sync on a replica, in the server's spelling; it takes effect when
// the IO thread (re)connects.
func (d Dialect) SetSemiSyncReplica(on bool) string {
	return "SET GLOBAL " + d.SemiSyncReplicaEnabledVar() + "=" + onOff(on)
}

func onOff(on bool) string {
	if on {
		return "ON"
	}
	return "OFF"
}
