package topology

import (
	"fmt"
	"strings"
	"time"

	"github.com/mharaft/mharaft/dialect"
)

// Semi-sync problem codes (all warnings: semi-sync is optional, but where
// it is enabled, these are the ways it cannot give zero loss).
const (
	CodeSemiSyncInactive  = "semi-sync-inactive"
	CodeSemiSyncWaitPoint = "semi-sync-wait-point"
	CodeSemiSyncTimeout   = "semi-sync-timeout"
	CodeSemiSyncNoReplica = "semi-sync-no-replica"
	CodeSemiSyncNoOtherDC = "semi-sync-no-other-dc"
	// CodeSemiSyncKillTimeout is about failover time, not loss: STOP
	// SLAVE on a semi-sync replica of a cut-off master waits
	// rpl_semi_sync_slave_kill_conn_timeout (see SlowSemiSyncKill).
	CodeSemiSyncKillTimeout = "semi-sync-kill-timeout"
)

// SlowSemiSyncKill: MariaDB's semi-sync replica, when its IO thread is
// stopped, first connects to the master to kill its dump thread and waits
// for that up to rpl_semi_sync_slave_kill_conn_timeout (default 5 s). A
// failover stops the IO threads of every replica, so with a master cut off
// by a partition it waits that long in phase 2 (about 2 s per failover in
// the datacenter campaign). check-repl warns above one second.
const SlowSemiSyncKill = time.Second

// ShortSemiSyncTimeout: a master whose rpl_semi_sync_master_timeout is
// shorter falls back to asynchronous replication (silently, committing
// without any replica's copy) as soon as its semi-sync replicas are that
// slow; check-repl warns below MariaDB's default of 10 s.
const ShortSemiSyncTimeout = 10 * time.Second

// semiSync reads the semi-sync variables and status in either spelling.
func (r *reader) semiSync() {
	vars, err := r.nameValues(dialect.SemiSyncVariables)
	if err != nil {
		r.fail("read semi-sync variables", err)
		return
	}
	status, err := r.nameValues(dialect.SemiSyncStatus)
	if err != nil {
		r.fail("read semi-sync status", err)
		return
	}
	r.st.SemiSync = dialect.ParseSemiSync(vars, status)
}

// nameValues runs a SHOW ... VARIABLES / STATUS and returns name -> value.
func (r *reader) nameValues(q string) (map[string]string, error) {
	rows, err := r.rows(q)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, row := range rows {
		out[row["Variable_name"]] = row["Value"]
	}
	return out, nil
}

// semiSyncInUse reports whether any reachable server has semi-sync enabled.
func semiSyncInUse(t *Topology) bool {
	for _, s := range t.Servers {
		if s.Reachable && (s.SemiSync.MasterEnabled || s.SemiSync.ReplicaEnabled) {
			return true
		}
	}
	return false
}

// checkSemiSync warns where semi-synchronous replication, enabled on some
// server, cannot give zero loss: the master does not wait (disabled, fell
// back to asynchronous), waits after the commit, falls back after a short
// timeout, has no semi-sync replica, or none in another datacenter. An
// application without semi-sync anywhere gets no warning.
func checkSemiSync(t *Topology) []Problem {
	m := t.Master
	if m == nil || !m.Reachable || !semiSyncInUse(t) {
		return nil
	}
	var ps []Problem
	ss := m.SemiSync
	v := m.Dialect.SemiSyncMasterEnabledVar()
	if !ss.MasterEnabled {
		return []Problem{problem(m, Warning, CodeSemiSyncInactive,
			fmt.Sprintf("replicas have semi-sync enabled but the master does not (%s=OFF): commits do not wait for any replica, a failover can lose acknowledged writes", v),
			fmt.Sprintf("SET GLOBAL %s=ON on the master and put it in its my.cnf", v))}
	}
	if !ss.MasterActive {
		ps = append(ps, problem(m, Warning, CodeSemiSyncInactive,
			fmt.Sprintf("semi-sync is enabled but inactive on the master (Rpl_semi_sync_master_status=OFF, %d commit(s) not acknowledged): it fell back to asynchronous replication, a failover can lose acknowledged writes", ss.NoTx),
			"make a semi-sync replica connect and catch up (START SLAVE on a replica with semi-sync enabled); the master switches back by itself"))
	}
	if !strings.EqualFold(ss.WaitPoint, "AFTER_SYNC") {
		ps = append(ps, problem(m, Warning, CodeSemiSyncWaitPoint,
			fmt.Sprintf("the semi-sync wait point is %s: other clients can read a commit no replica holds, which a failover loses", orNone(ss.WaitPoint)),
			"SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_SYNC (rpl_semi_sync_source_wait_point on MySQL 8.0.26+) and in my.cnf"))
	}
	if ss.Timeout < ShortSemiSyncTimeout {
		ps = append(ps, problem(m, Warning, CodeSemiSyncTimeout,
			fmt.Sprintf("the semi-sync timeout is %s (shorter than %s): a commit that no replica acknowledges in time is committed anyway and the master silently falls back to asynchronous replication",
				ss.Timeout, ShortSemiSyncTimeout),
			fmt.Sprintf("raise rpl_semi_sync_master_timeout (milliseconds) to at least %d, higher for lossless mode, and watch Rpl_semi_sync_master_status", ShortSemiSyncTimeout.Milliseconds())))
	}
	var acking []*ServerState
	for _, s := range t.AliveReplicas() {
		if s.SemiSync.ReplicaEnabled && s.SemiSync.ReplicaActive {
			acking = append(acking, s)
		}
		if s.SemiSync.ReplicaEnabled && s.SemiSync.KillConnTimeout > SlowSemiSyncKill {
			ps = append(ps, problem(s, Warning, CodeSemiSyncKillTimeout,
				fmt.Sprintf("rpl_semi_sync_slave_kill_conn_timeout is %s: when the master is cut off, STOP SLAVE on this semi-sync replica (every failover does it) waits that long for a connection to the master", s.SemiSync.KillConnTimeout),
				"SET GLOBAL rpl_semi_sync_slave_kill_conn_timeout=1 and put it in its my.cnf"))
		}
		if s.SemiSync.ReplicaEnabled && !s.SemiSync.ReplicaActive && s.Replica.IOThreadRunning() {
			ps = append(ps, problem(s, Warning, CodeSemiSyncInactive,
				"semi-sync is enabled on this replica but it does not acknowledge (Rpl_semi_sync_slave_status=OFF): its IO thread connected before semi-sync was enabled",
				"restart its IO thread: STOP SLAVE IO_THREAD; START SLAVE IO_THREAD"))
		}
	}
	if len(acking) == 0 {
		ps = append(ps, problem(m, Warning, CodeSemiSyncNoReplica,
			"the master has semi-sync enabled but no replica acknowledges (no replica with semi-sync enabled and connected): every commit waits for the timeout, then the master falls back to asynchronous",
			"SET GLOBAL rpl_semi_sync_slave_enabled=ON on at least one replica (two for safety), restart its IO thread, and put it in its my.cnf"))
	} else if otherDCs(t) {
		remote := false
		for _, s := range acking {
			remote = remote || s.Server.Datacenter != m.Server.Datacenter
		}
		if !remote {
			ps = append(ps, problem(m, Warning, CodeSemiSyncNoOtherDC,
				fmt.Sprintf("no semi-sync replica is in another datacenter than the master's (%s): losing that datacenter loses acknowledged writes", orNone(m.Server.Datacenter)),
				"enable semi-sync (rpl_semi_sync_slave_enabled=ON) on a replica in another datacenter"))
		}
	}
	return ps
}

// otherDCs reports whether some configured server is in another datacenter than the master.
func otherDCs(t *Topology) bool {
	for _, s := range t.Servers {
		if s.Server.Datacenter != t.Master.Server.Datacenter {
			return true
		}
	}
	return false
}
