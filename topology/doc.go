// Package topology discovers what a configured application's servers are
// doing right now (who is the master, who replicates from whom and how far
// each replica got) and checks that a failover could succeed (grants,
// read_only, relay logs, binlogs, filters, threads, SSH).
//
// It reads and never writes: Discover only runs SHOW / SELECT statements,
// CheckSSH only runs `test -d` over SSH, CheckReplLogin only logs in as
// repl_user (with repl_password) to every server that could become the
// master, as its replicas would after a failover. Invariants: every configured server
// appears in a Topology exactly once, reachable or not, with the reason when
// not; a master that cannot be reached but that the replicas point at is
// still identified as the master (dead master); an application with no
// reachable replica of its master (one server only, or none replicating)
// is an error, as there is nothing to promote; problems name the server
// they concern and say how to fix them; passwords are never part of a
// Problem, a printed tree or a JSON report. Master-master pairs (two
// servers replicating from each other) are MHA's active/passive pairs:
// the master is the pair's one writable server, and a pair with both or
// neither writable has no master (a multi-master problem). A replica of a
// replica is accepted only with multi_tier_slave=1 in its block
// (Topology.BelowReplica; its upstream must be read_only like any
// replica) and is never one of AliveReplicas, Latest or Oldest: a
// failover leaves it where it is. A writable server whose replication
// threads are both stopped follows nobody (the new master of a failover
// with skip_reset_slave=1 keeps its settings to the dead old master): it
// is a root, never a replica of the server its settings name, so a
// dead old master is never taken for the master again. Semi-sync findings are
// warnings only, and none is raised for an application without semi-sync
// on any server. Discovery through a Pool (the leader's periodic discovery)
// reuses one connection per server and DSN (never across credentials),
// replaces it when a read fails and every PoolLifetime, and closes it when
// Retain no longer names it; without a Pool every discovery connects anew.
//
// Light discoveries (Options.Light, the application's previous discovery;
// the leader's periodic discovery): a server is read light when its state
// in Light is usable (carryOver): the same servers in the same order with
// the same address, login and repl user, reachable and read without error
// last time, settings read less than FullReadPeriod (30 s) ago, uptime
// known and at least 10 s. A light read reads what changes between
// discoveries: Ping, one SELECT of the clock, Uptime, server_id, read_only
// (super_read_only) and the GTID positions, SHOW MASTER STATUS and the
// replica status. It carries the settings from Light (ServerState.carryFrom:
// version, server_uuid, log_bin, log_slave_updates, relay_log_purge, binlog
// and relay log names, binlog_format, gtid_domain_id, gtid_strict_mode,
// gtid_mode, semi-sync variables and status, grants of the manager and
// repl users) and marks the server Carried with the FullAt of the full read
// they come from. Everything else is a full read. Invariants: a carried
// value is never older than FullReadPeriod when the discovery starts; it is
// never carried across a restart (another server_id, or another start
// time: UNIX_TIMESTAMP() minus Uptime, more than a second apart: the
// server is then read in full at once) nor across a change of master (a
// discovery that carried anything and finds another master than Light did
// is done again in full); a light read that fails is redone in full on the
// same connection; master, replicas, read_only, positions and reachability
// are never carried.
package topology
