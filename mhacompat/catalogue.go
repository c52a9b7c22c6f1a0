package mhacompat

// Scenario is one of MHA's 90 regression scenarios (tests/t/t_NAME.sh in
// mha4mysql-manager), described in our own words.
type Scenario struct {
	// Name is MHA's file name without "t_" and ".sh".
	Name string
	// Intent says what MHA sets up, what it runs and what it asserts.
	Intent string
	// NotApplicable, when set, says why the scenario has no meaning for
	// mharaft (the status is then "not applicable").
	NotApplicable string
	// Unsupported, when set, names what mharaft lacks to re-enact it (the
	// status is then "not supported yet").
	Unsupported string
	// Differs, when set, names a deliberate difference from MHA that makes
	// the scenario fail MHA's assertion; the document shows it with the
	// failure.
	Differs string
}

// Scenarios lists all of MHA's scenarios in the order of its file names.
var Scenarios = []Scenario{
	{Name: "4tier", Intent: "chain master -> S1 -> S2 -> S3 (S4 on the master); checks refuse while S1/S2 are writable; once both are read_only a check with the multi-tier setting passes; after the master is killed S1 takes over, S2 stays below S1, S4 moves to S1; 4 rows everywhere"},
	{Name: "4tier_subm_dead", Intent: "same 4-tier chain with the intermediate S2 stopped: every check and the failover after killing the master must refuse"},
	{Name: "advisory_connect", Intent: "two managers started on the same application: exactly one keeps running (a per-application lock)",
		NotApplicable: "mharaft's managers are a Raft group; one leader acts per application and the failover lock is in the replicated state machine (covered by manager/ and consensus/ tests), there is no second stand-alone manager to refuse"},
	{Name: "advisory_select", Intent: "a second manager on an application that already has one must exit with an error",
		NotApplicable: "same as advisory_connect: mharaft's managers cooperate through Raft rather than refusing each other"},
	{Name: "apply_many_logs", Intent: "tiny max_relay_log_size (many relay logs without rotate events); S1's IO thread stopped half-way through 2000 inserts; master killed; failover must apply many relay logs to S1; 2001 rows everywhere"},
	{Name: "apply_many_logs2", Intent: "as apply_many_logs with relay_log_purge=0 everywhere and 3000 rows"},
	{Name: "apply_many_logs3", Intent: "as apply_many_logs with relay_log_purge=0 only on S4 and 3000 rows"},
	{Name: "binary", Intent: "binary (latin1 blob) data in the lost events, S2 fully stopped; failover must carry the blobs byte-exact; checksums equal"},
	{Name: "conf", Intent: "a configuration without the master, and one with only the master: check and manager must both refuse"},
	{Name: "data_io_error", Intent: "all replicas' IO threads stopped, then the master's binlog files are moved away and the master killed: the failover must still succeed (ignoring the binlog server error) with the rows the replicas have plus one written afterwards"},
	{Name: "dual_master_error", Intent: "S1 no longer replicates (RESET SLAVE), so two writable masters are configured: check and manager refuse, with and without the multi-master configuration"},
	{Name: "filter_incorrect", Intent: "S1 restarted with binlog-do-db, then replicate-ignore-db, then replicate-do-table: replication filters that differ between servers make check and manager refuse"},
	{Name: "ignore_nostart", Intent: "with ignore_fail on S3/S4, a stopped S4 still blocks the manager from starting (it needs all servers at start), also after the master is killed"},
	{Name: "ignore_recovery1", Intent: "ignore_fail on S3/S4; monitored master killed while S4 is stopped: failover proceeds without S4, S4 stays on the old master with its 2 rows, others get 3"},
	{Name: "ignore_recovery2", Intent: "ignore_fail; S3 lacks relay logs to catch up (its IO thread stopped early, tiny relay logs): failover proceeds and leaves S3 on the old master (without GTID)"},
	{Name: "ignore_recovery3", Intent: "as ignore_recovery2 with both S3 and S4 behind: both left on the old master, S1 and S2 hold 3001 rows"},
	{Name: "ignore_recovery4", Intent: "as ignore_recovery3 with one more row written on the master: S1 and S2 hold 3002 rows"},
	{Name: "ignore_start", Intent: "master killed and S4 stopped before the manager starts with --ignore_fail_on_start: the manager exits with its 'initial check failed' code 10"},
	{Name: "keep_relay_log_purge", Intent: "S3/S4 have relay_log_purge=0, S1/S2 have 1; after a failover each server keeps its own relay_log_purge value; 3 rows everywhere"},
	{Name: "large_data", Intent: "100,000 rows in one transaction that S1 (IO stopped) lacks: failover must catch S1 up from the others' relay logs; 100,001 rows"},
	{Name: "large_data_bulk", Intent: "100,000 rows in multi-row transactions of 1000 plus large UPDATEs missing on S1: failover catches it up; 100,001 rows, equal checksums"},
	{Name: "large_data_bulk_slow", Intent: "as large_data_bulk with 64 KB relay logs so MHA's fast position search fails and the slow one is used"},
	{Name: "large_data_slow", Intent: "as large_data with 64 KB relay logs (slow relay log position search)"},
	{Name: "large_data_slow2", Intent: "one 1,000,000-row transaction that S1 lacks: S1's SQL thread would take too long, S2 becomes the new master instead; 1,000,001 rows"},
	{Name: "large_data_slow3", Intent: "all SQL threads stopped, 1,000,000-row transaction: failover with a configuration tolerating the delay makes S1 master; 1,000,001 rows"},
	{Name: "large_data_sql_fail", Intent: "S2's SQL thread stopped and S2 holds a conflicting row: manager does not start S2's SQL thread; the failover reports an error, S2 stays on the old master with 99,001 rows, others get 100,001"},
	{Name: "large_data_sql_stop", Intent: "S2's SQL thread stopped (like a backup job) while 100,000 rows arrive: the monitor leaves it stopped; failover still succeeds; 100,001 rows everywhere"},
	{Name: "large_data_tran", Intent: "100,000 rows in transactions of 1000 that S1 (IO stopped) lacks: failover catches S1 up; 100,001 rows"},
	{Name: "latest_recovery1", Intent: "latest_priority=0: S1 (IO stopped, behind by 3 rows) is still chosen by configuration order and caught up; 5 rows everywhere"},
	{Name: "latest_recovery2", Intent: "latest_priority=0, S1 and S2 stopped at different points across a binlog rotation: S2 takes over (S1's missing events span the rotation); 6 rows everywhere",
		Differs: "MHA rejects a candidate whose SQL thread is on an older binlog file of the master than the latest replica (check_slave_delay); mharaft measures the delay in bytes across rotations (issue 14 item 9), keeps S1 as the new master and catches it up, so the row MHA writes on the replica it elected (S2, or S3 in needsync_flush3) does not reach S1"},
	{Name: "latest_recovery3", Intent: "latest_priority=0, S1, S2 and S3 behind at different points: failover catches all up; 6 rows everywhere"},
	{Name: "manual", Intent: "manual dead-master failover: refused while the master is alive; refused while S1 is down; succeeds once S1 is back; 3 rows everywhere"},
	{Name: "mm", Intent: "master-master pair M<->S1: checks and manager refuse while both are writable or both read_only, pass once only M is writable; after killing M, S1 takes over; 7 rows"},
	{Name: "mm_3tier", Intent: "M<->S1 pair with S2 below S1: refused with the plain configuration, the multi-tier one fails over to S1 keeping S2 below it; 3 rows"},
	{Name: "mm_3tier_subm_dead", Intent: "M<->S1 pair with S2 below S1 and S1 stopped: every check and failover refuses"},
	{Name: "mm_normal", Intent: "M<->S1 pair, S1 read_only: after killing M, S1 takes over; 4 rows"},
	{Name: "mm_normal_skip_reset", Intent: "M<->S1 pair, configuration keeps the new master's replication settings (skip_reset_slave): S1's SQL thread left stopped, restarting it and M resumes the pair; 5 rows"},
	{Name: "mm_noslaves", Intent: "a master-master pair with no other replicas: check rules as in mm; failover to S1 works with only S1 left; 7 rows"},
	{Name: "mm_ro_fail", Intent: "M<->S1 pair with wrong read_only settings: check and manager refuse"},
	{Name: "mm_subm_dead", Intent: "M<->S1 pair with S1 stopped: refused until M is read_only and the multi-tier configuration is used; then the manager runs"},
	{Name: "mm_subm_dead_many", Intent: "as mm_subm_dead with S2 also stopped: everything refuses"},
	{Name: "mm_subm_dead_noslave", Intent: "pair only, S1 stopped: checks refuse, a dead-master switch with the multi configuration refuses, the manager on the pair config runs"},
	{Name: "needsync_1", Intent: "S1's IO thread stopped, one more row, master killed: failover to S1 must recover the missing row from the latest replica; 3 rows"},
	{Name: "needsync_1_nocm", Intent: "as needsync_1 with --skip_change_master --skip_disable_read_only: S1 caught up but read_only stays 1 and every replica still points at the dead master; 2 rows",
		Unsupported: "mhactl failover has no --skip-change-master/--skip-disable-read-only (only mhactl switch has them)"},
	{Name: "needsync_1_nopass", Intent: "as needsync_1 with a root account without a password"},
	{Name: "needsync_1_pass", Intent: "as needsync_1 with a user name and password full of shell metacharacters"},
	{Name: "needsync_1_ssh", Intent: "as needsync_1 with a 20-second SSH connection timeout"},
	{Name: "needsync_2", Intent: "S1's IO thread stopped after 1000 rows, 2000 more, master killed: failover recovers S1 from relay logs; 3001 rows"},
	{Name: "needsync_2_nobinlog", Intent: "as needsync_2 with a configuration that has no binlog server section"},
	{Name: "needsync_2_pass", Intent: "as needsync_2 with the shell-metacharacter user and password"},
	{Name: "needsync_2_ssh", Intent: "as needsync_2 with a 20-second SSH connection timeout"},
	{Name: "needsync_binlog", Intent: "replicas stopped at different points; the master's binlogs are copied to a binlog server before the kill: the monitored failover fetches the missing events from the binlog server; 3002 rows"},
	{Name: "needsync_fail", Intent: "S1 lacks events from before a binlog rotation and the others' relay logs were purged: failover must fail (without GTID)"},
	{Name: "needsync_flush", Intent: "master binlog rotated, S1 behind across the rotation; S3 keeps relay logs: failover; 3 rows",
		Differs: "MHA rejects a candidate whose SQL thread is on an older binlog file of the master than the latest replica (check_slave_delay); mharaft measures the delay in bytes across rotations (issue 14 item 9), keeps S1 as the new master and catches it up, so the row MHA writes on the replica it elected (S2, or S3 in needsync_flush3) does not reach S1"},
	{Name: "needsync_flush2", Intent: "as needsync_flush with rows containing the text ROLLBACK (the relay log parser must not mistake data for statements); 6 rows",
		Differs: "MHA rejects a candidate whose SQL thread is on an older binlog file of the master than the latest replica (check_slave_delay); mharaft measures the delay in bytes across rotations (issue 14 item 9), keeps S1 as the new master and catches it up, so the row MHA writes on the replica it elected (S2, or S3 in needsync_flush3) does not reach S1"},
	{Name: "needsync_flush3", Intent: "as needsync_flush2 with S2 also behind: 7 rows",
		Differs: "MHA rejects a candidate whose SQL thread is on an older binlog file of the master than the latest replica (check_slave_delay); mharaft measures the delay in bytes across rotations (issue 14 item 9), keeps S1 as the new master and catches it up, so the row MHA writes on the replica it elected (S2, or S3 in needsync_flush3) does not reach S1"},
	{Name: "needsync_flush_slave", Intent: "replicas flushed their relay logs five times, S1 behind by one row: failover finds the events in older relay logs; 3 rows"},
	{Name: "new_master_heavy", Intent: "a 200-second SELECT runs on S1 when the master is shut down: the failover must not wait for it; 2 rows"},
	{Name: "new_master_heavy_wait", Intent: "as new_master_heavy with S1 read_only: MHA's run is expected to time out (its own test marks this as a wait)"},
	{Name: "no_relay_log", Intent: "S1 needs events that only exist in rotated, purged relay logs (tiny max_relay_log_size): without GTID the failover must refuse and leave every replica on the old master"},
	{Name: "no_relay_log_gtid", Intent: "as no_relay_log under GTID auto-positioning: the failover succeeds regardless of relay logs; all replicas on S1; 3001 rows"},
	{Name: "normal_crash", Intent: "secondary network check reports the master alive, then dead after the kill; the failover succeeds; 2 rows"},
	{Name: "normal_crash_nocm", Intent: "failover with --skip_change_master --skip_disable_read_only: S1 stays read_only, all replicas still on the dead master",
		Unsupported: "mhactl failover has no --skip-change-master/--skip-disable-read-only (only mhactl switch has them)"},
	{Name: "online_3tier", Intent: "S2 below S1: online switch to S1 refused by the plain configuration and while S1 is writable; allowed with the multi-tier configuration; S2 stays below S1, old master keeps 2 rows"},
	{Name: "online_3tier_slave", Intent: "as online_3tier with --orig_master_is_new_slave: the old master becomes S1's replica; 3 rows"},
	{Name: "online_3tier_slave_keep", Intent: "S2 below S1, log_slave_updates on M and S1: switch with --orig_master_is_new_slave keeps S2 below S1, S3/S4 below the old master; 4 rows"},
	{Name: "online_busy", Intent: "--check_only passes; a switch is refused while 15 long queries run on S1, and while a table lock blocks FLUSH TABLES on the master; then it succeeds"},
	{Name: "online_filter", Intent: "master restarted with a replication filter: an online switch with --orig_master_is_new_slave is refused and leaves the master without replication settings"},
	{Name: "online_mm", Intent: "M<->S1 pair: switch refused while both writable or both read_only, allowed once only M is writable; 2 rows"},
	{Name: "online_mm_3tier", Intent: "M<->S1 pair with S2 below S1: plain config refuses, multi-tier config switches; S2 stays below S1; 3 rows"},
	{Name: "online_mm_3tier_slave", Intent: "as online_mm_3tier with --orig_master_is_new_slave; old master below S1; 3 rows"},
	{Name: "online_mm_skip_reset", Intent: "M<->S1 pair, switch with skip_reset_slave: S1's SQL thread left stopped; restarting it resumes the pair"},
	{Name: "online_normal", Intent: "online switch refused with a configuration lacking the master and with one lacking replicas; succeeds with the right one; 2 rows"},
	{Name: "online_slave", Intent: "online switch to S1 with --orig_master_is_new_slave: the old master replicates from S1 and receives the new row; 2 rows"},
	{Name: "online_slave_fail", Intent: "--orig_master_is_new_slave without repl_user/repl_password in the configuration: refused; old master keeps 1 row, the rest 2"},
	{Name: "online_slave_pass", Intent: "as online_slave with an account with shell metacharacters in its name and password"},
	{Name: "online_slave_sql_stop", Intent: "a replica's SQL thread stopped: the online switch is refused; after restarting it, the switch succeeds; 2 rows"},
	{Name: "recover_master_fail", Intent: "S1 (the candidate) holds a row that conflicts with the events it must apply: the failover fails and leaves the replicas on the old master with their rows"},
	{Name: "recover_slave_fail", Intent: "S3 holds a conflicting row: the failover reports an error, S3 stays on the old master with 4 rows, the others get 7"},
	{Name: "recover_slave_fail2", Intent: "S3 and S4 hold conflicting rows: both stay on the old master (4 and 5 rows), the others get 7"},
	{Name: "recover_slave_ok", Intent: "S3 and S4 behind by five rows: failover catches them up; 7 rows"},
	{Name: "save_binlog_gtid", Intent: "GTID: all replicas behind, master killed: configurations without a binlog server cannot recover the rows and must fail; the one with a binlog server succeeds; 7 rows"},
	{Name: "save_master_log", Intent: "all replicas behind by five rows, master killed, its host reachable over SSH: the failover saves the dead master's binlog tail and applies it; 7 rows"},
	{Name: "save_master_log_pass", Intent: "as save_master_log with the shell-metacharacter account"},
	{Name: "save_master_log_ssh", Intent: "as save_master_log with a 20-second SSH connection timeout"},
	{Name: "slave_incorrect", Intent: "S3 no longer replicates (RESET SLAVE): check and manager refuse, before and after the master is killed"},
	{Name: "slave_sql_start", Intent: "S2's SQL thread stopped: the monitor leaves it stopped; after the kill the failover starts it; 3 rows"},
	{Name: "slave_sql_start2", Intent: "S1's SQL thread stopped on a duplicate-key error: check and manager refuse until the row is removed and the thread restarted; then failover; 5 rows"},
	{Name: "slave_sql_start3", Intent: "S2's SQL thread stopped and S2 holds a conflicting row: after the kill the failover proceeds without S2; the others get 3 rows"},
	{Name: "slave_stop", Intent: "a stopped replica (S1) blocks the manager from starting; once it is back, kill and failover; 2 rows"},
}
