// Package failover owns the two recovery pipelines of mharaft and the rules
// they share:
//
//   - DeadMaster: MHA's masterha_master_switch --master_state=dead. Phases
//     (1) configuration check, (2) dead master shutdown (stop IO threads,
//     master_ip_failover_script stop/stopssh, shutdown_script), (3) master
//     recovery (latest/oldest replica, save the dead master's binlog tail over
//     SSH, elect, apply relay diff + tail on the new master, activate it),
//     (4) replica recovery in parallel, (5) RESET SLAVE ALL on the new master.
//   - Switch: MHA's --master_state=alive online switch, with the old master
//     fenced (read_only=1, app connections killed, FLUSH TABLES WITH READ
//     LOCK held on a dedicated connection) before the new one is writable.
//   - Rejoin: make a repaired old master a replica of the new one, only after
//     proving it holds nothing the new master lacks.
//   - Elect: MHA's new-master election (select_new_master and
//     get_bad_candidate_masters) plus datacenter awareness.
//   - Hooks with MHA's exact arguments and exit-code meanings.
//
// Invariants:
//
//   - Every phase calls Journal.Begin before it touches any server and
//     Journal.Done after it completed. An error from Begin means this manager
//     may no longer act: the pipeline returns at once.
//   - Every step checks before it repeats (a new master already writable and
//     not a replica is not promoted again; a replica already replicating from
//     the new master is left alone), so a pipeline can be resumed from the
//     journal. A resumed phase that may have applied logs to a server
//     applies only what the server's gtid_binlog_pos proves it lacks
//     (binlog.Apply commits in order with the original GTIDs); without that
//     proof (MySQL, log_bin off, disable_log_bin) the pipeline halts with
//     ErrUnsafeResume. Phase 4 journals a step "<phase>: repoint <server>"
//     around each replica's CHANGE MASTER.
//   - A resume may run on another manager host (a new Raft leader), where
//     the saved tail, top-up and relay diffs of the plan's manager_workdir
//     (Plan.ManagerHost) are missing. A missing tail or top-up is found by
//     name in this manager's workdir (an operator's copy) or saved again
//     from the dead master from the recorded start, checked to reach the
//     recorded end and to hold the recorded last GTID, and cut right after
//     it; a relay diff is generated again from the latest replica. When
//     the source is gone and the target lacks the data (gtid_binlog_pos),
//     the run halts with ErrUnsafeResume naming the file, what it held and
//     the operator's options (copy it into the workdir, or
//     `touch <workdir>/<file>.accept-loss` to accept the loss, reported as
//     Lost). Nothing is skipped silently.
//   - A replica whose relay log ends inside a transaction (its IO thread
//     stopped while the transaction streamed in; its SQL thread waits at
//     the end for good) counts as having received its master's binlog up
//     to where that transaction starts (node.partial, found by
//     waitRelayApplied). Phase 2 settles the latest replica this way before
//     the dead master's tail is saved from its position, so the tail never
//     starts inside a transaction (whose first half would be lost and
//     second half applied alone).
//   - Semi-synchronous replication (semisync.go): where any server of the
//     new topology has it on, the new master gets it enabled before its
//     replicas are repointed, each replica keeps its own setting, and the
//     election prefers semi-sync replicas; nothing is ever turned off. The
//     new master is writable a moment before that (end of phase 3).
//   - Speed: one SSH connection per host for the whole run, dialled in
//     parallel with the MySQL connections; the dead master's tail and the
//     relay diffs (reads only) start right after phase 1 from the positions
//     read there and are redone in phase 2 only if a position moved after
//     the IO threads stopped; each is one SSH session (binlog's batched
//     reads); logs are applied natively with binlog.Apply; per-replica work
//     runs in parallel over one *sql.DB per server.
//   - The dead master is fenced where it answers: after the IP hook and
//     shutdown_script it is tried over MySQL (connect_timeout); if it
//     answers (a paused mysqld resumed, a partition healed) it gets
//     read_only=1, its client connections killed and FLUSH TABLES WITH
//     READ LOCK held on a dedicated connection until the pipeline ends
//     (fence_mode=shutdown: SHUTDOWN). A master that answers but cannot be
//     fenced stops the failover. Then its binlog is read again from the
//     tail's end (the "top-up", <tail>_after_fence, dropped when empty) and
//     applied after the tail wherever the tail is; the plan carries it. A
//     top-up that cannot be read, or a master that did not answer (paused,
//     cut off: not fenced), is reported as PossiblyLost. A resume before
//     the new master is active fences again and reads the top-up again (a
//     superset of the earlier one; the gtid_binlog_pos proof skips what
//     was applied).
//   - Binlog servers ([binlogN], config.App.BinlogServers): when the dead
//     master's binlog cannot be read (SSH unreachable, or the read
//     failed), phase 2 reads the tail from the latest replica's read
//     position from each binlog server in turn (their copies have the
//     master's file names and positions) and keeps the one that reaches
//     furthest; it is applied as the dead master's tail is, in both
//     modes, and Plan.TailSource names its block. Only when none has it
//     is the tail reported Lost. The top-up still reads the dead master.
//   - Signal-less masters: every MySQL connect (dial and handshake) is
//     bounded by connect_timeout. With Options.DeadJudgedUnreachable (the
//     managers' automatic failover: a quorum verdict judged the master
//     unreachable) phase 1 waits for the dead master's connect only as
//     long as for the other servers' (connectJudged); it goes on in the
//     background, and phase 2's fence tries it again. The dead master's
//     SSH dial starts with the run, or earlier when the caller's recovery
//     says so (SSHDialStarted: a manager dials at the first suspicion),
//     and is waited for until ssh_connection_timeout after that start,
//     never longer (deadSSHDeadline); the IP hook waits for it only until
//     connect_timeout after it started (then it is told --command=stop);
//     the tail, and shutdown_script (a power-off would take the binlog
//     away), wait for its outcome up to that deadline. A host whose SSH
//     answers within ssh_connection_timeout of the first dial has its
//     tail saved; one that has not answered by then is unreachable, and
//     its tail is read from the binlog servers or reported Lost.
//   - fence_mode=shutdown (switch): the old master is fenced, every replica
//     reaches its final position, then it is shut down before the new
//     master becomes writable; it cannot become a replica.
//   - ignore_fail: an unreachable server with ignore_fail is left out of a
//     failover or a switch and named in the report.
//   - Phase 1 of a failover refuses, naming it, a server that answers but
//     is not a working replica of the dead master (no replica status,
//     another master, an empty Master_Log_File, or configured and never
//     started: nothing received); with ignore_fail it is left out as an
//     unreachable one is, and the log says why.
//   - Replicas of replicas and master-master pairs (tiers.go, MHA's
//     validate_current_master rules): a server whose upstream is another
//     configured server whose chain leads to the master is refused unless
//     its block has multi_tier_slave=1; then it is left where it is (never
//     a candidate, never repointed, its relay logs never read) and every
//     server such a one replicates from must be read_only. The election
//     therefore only ever picks a direct replica of the master. The
//     switch's current master is the one server that is no replica, or
//     the writable server of a pair replicating from each other (both or
//     neither writable is refused); the passive side of the pair, left
//     without --orig_master_is_new_slave, stays read_only and replicating
//     from the new master.
//   - skip_reset_slave=1 (the new master's block): phase 5 of a failover
//     and the switch's promotion keep the new master's replication
//     settings, stopped, instead of RESET SLAVE ALL. After a failover its
//     position is moved to the end of what was recovered from the dead
//     master (top-up, tail, or the latest replica's read position; by
//     GTID it points at the dead master with slave_pos, gtid_slave_pos set
//     to the new master's gtid_binlog_pos at activation on MariaDB), so a
//     START SLAVE never applies a recovered event twice.
//   - Relay diffs (file/position) are read from the latest replica's relay
//     logs or, where those no longer hold them (purged), from the other
//     equally latest replicas in turn. A replica whose relay logs may be
//     read is repointed (RESET SLAVE ALL deletes them) only once every
//     replica's diff is written locally (MHA's 4.1 before 4.2); the new
//     master's RESET SLAVE ALL is phase 5, after phase 4.
//   - The old master is fenced before the new master is made writable.
//   - Every phase of Switch resumes: the servers are connected (and
//     fenced) before phase 1; a resume binds the plan's servers, fences
//     the old master again while the new master is not promoted (the
//     earlier run's FLUSH TABLES WITH READ LOCK ended with it) and waits
//     again for its final position, skips a promotion or a repoint that a
//     server's state shows done, and halts with ErrUnsafeResume naming the
//     phase and what to check where it cannot tell (the new master or a
//     replica unreachable; the old master unreachable before the
//     promotion; a promoted, writable new master whose position for
//     file/position replicas was never recorded). A resumed switch never
//     dereferences a server it did not bind.
//   - Switch's phase 1 refuses, as MHA's online switch does: binlog
//     filters (SHOW MASTER STATUS's Binlog_Do_DB, Binlog_Ignore_DB) of the
//     old and new master that differ (check_repl_filter; with
//     --orig_master_is_new_slave also their replicate_* filters), an
//     update running running_updates_limit or longer on the old master,
//     any query running running_seconds_limit (10 s) or longer on the new
//     master. --check_only stops after phase 1 over unfenced, read-only
//     connections: it journals nothing, runs no hook, changes nothing.
//   - A repointed replica is verified: after START SLAVE, changeMaster
//     polls (50 ms) until Slave_IO_Running=Yes and Slave_SQL_Running=Yes,
//     bounded by Options.ReplicaStartTimeout (15 s); a refused login
//     (1044, 1045, 1130, 1251) or an SQL thread error fails at once. The
//     error names the server, its master, the repl user and
//     Last_IO_Error / Last_SQL_Error (server texts, no password).
//     Failover, switch and rejoin all repoint through it.
//   - "Is it dead" is dialect.Classify, the detector's classifier (by
//     error value, never by text): a server is never dead for one and
//     alive for the other. A refusal of the guard or of the fencing is
//     never read as "dead".
//   - Passwords are passed to hooks as arguments (as MHA does) and never
//     written to logs, reports or the journal: they print as xxx.
//
// Divergence (divergence.go; docs/DIVERGENCE.md): a former master that
// comes back after a failover holding transactions the new master never got
// (a partition: clients next to it kept writing, no semi-sync).
//
//   - The failover point (DivergencePoint) is the end of what the failover
//     recovered from the old master's binlog: the top-up's end, else the
//     saved tail's end, else the latest replica's read position. Every
//     transaction of its binlog after that point is divergent (SHOW BINLOG
//     EVENTS, DivergentTransactions; no GTID comparison is needed, and a
//     MariaDB per-domain comparison would miss them once the new master's
//     sequence numbers passed the old master's). Rejoin uses the same point.
//   - FenceDiverged: every client connection killed, then read_only=ON
//     (and super_read_only on MySQL; bounded by 10 s), then the clients
//     that connected meanwhile killed, over a fenced connection. Killing
//     first matters: SET GLOBAL read_only waits for the commits in
//     progress, and a commit waiting for a semi-sync acknowledgement that
//     never comes (lossless mode's old master) would hold it for ever;
//     killed, its client gets an error, never an acknowledgement, and the
//     transaction (in the binlog already) is one of the divergent ones. No
//     FTWRL is held (nothing stays connected), so a SUPER user can still
//     write to it.
//   - ReadDivergence reads the binlog from the point over SSH into
//     <manager_workdir>/divergence_<app>_<server>_epoch<N>.binlog (a byte
//     copy: the raw events, kept for exact replay with mariadb-binlog) and
//     writes divergence_<app>_<server>_epoch<N>.sql, both 0600: per
//     transaction a comment header (GTID, binlog file:pos, event time,
//     tables) and its readable SQL, rows rendered as INSERT/UPDATE/DELETE
//     with the column names of the binlog's metadata or of the old master's
//     information_schema (@1, @2, ... when neither has them), UPDATE and
//     DELETE matching the full before image (NULL-safe, FLOAT/DOUBLE
//     columns left out), statements as they were logged. It holds data,
//     never credentials. It changes nothing on any server.
//   - ReplayDivergence replays that readable SQL on the current master as
//     ONE transaction (MariaDB: its GTID is @@last_gtid): every UPDATE and
//     DELETE must match exactly one row (CLIENT_FOUND_ROWS), an INSERT must
//     not hit a duplicate key; the first statement that fails rolls
//     everything back and is named (transaction, GTID, position, statement,
//     error). All or nothing, and one contiguous range in the master's
//     binlog, recorded (GTID, start, end). Why not the raw events as BINLOG
//     statements: a row event finds its row by primary key and overwrites
//     it, so a row the new master changed since the failover would be
//     overwritten silently instead of stopping the replay. A DDL or a table
//     whose column names are unknown is not replayed (a conflict before
//     anything runs): the operator applies it by hand.
//   - Rejoin with Replayed (the record of a replay): the old master must
//     hold exactly the replayed number of transactions after the point.
//     When all of them are row events it rewinds them (each row change
//     reverted, newest first, one transaction with sql_log_bin=0, each
//     revert matching its row exactly, else nothing is reverted and the
//     rejoin is refused) and replicates the new master from the failover's
//     position (NewMasterPos / gtid_slave_pos = NewMasterGTID), the replay
//     included: this converges whatever the new master wrote before the
//     replay, also to the same rows. Otherwise it replicates up to the
//     replay's start (START SLAVE UNTIL), skips the replay (file/pos: from
//     its end; GTID: gtid_slave_pos with its GTID) and replicates on; that
//     needs the new master's writes before the replay to commute with the
//     divergent ones (else its SQL thread stops and the rejoin fails,
//     naming the error). Without Replayed, Rejoin refuses a server holding
//     transactions after the point, as before.
//
// Fencing: one actor per application, also against a deposed leader.
//
// A run acts on MySQL servers for minutes; the manager that runs it may be
// deposed in the middle (partitioned, or paused: SIGSTOP, a VM freeze, a
// long GC) and wake up later, mid-statement, while another manager has
// taken the failover over. Journal entries alone cannot stop it: they are
// refused only at its next phase. So every MySQL connection a pipeline
// opens to a server it may change (failover, switch, rejoin, the dead
// master's fence, binlog.Apply's connections through Target.OnConnect,
// binlog.RemoveLeftoverApply's) is fenced when it is opened, before any
// other statement runs on it, in this order (fencing.go):
//
//	a) it takes a free advisory-lock slot of the application (the first
//	   statement carries the comment "/* mharaft run <tag> */", a random
//	   tag per run, so the servers' logs tell runs apart):
//	   GET_LOCK('mharaft.<app>.<i>', 0), i in 0..63 (the app's name hashed
//	   when the name would exceed 64 characters); the connection's id is
//	   registered as the run's own before, so two connections of one run
//	   never take each other for a foreign one; no free slot: an error
//	   naming the server;
//	b) Guard.MayAct (Options.Guard, implemented by the manager: leadership
//	   context alive, raft VerifyLeader, the same term as when the lock was
//	   taken, the FSM's lock epoch and holder still ours); a refusal ends
//	   the run with an error wrapping ErrMayNotAct;
//	c) every slot whose IS_USED_LOCK holder is not one of this run's
//	   connections to the server is an earlier actor's: KILL CONNECTION,
//	   then wait (bounded by Options.FenceWait, default 1 minute) until
//	   the slot is no longer held by that id. A user lock is released
//	   only when its thread ends, after the rollback of its open
//	   transaction (THD cleanup), so after the wait nothing of that
//	   connection runs or can commit.
//
// The argument. Let X be a stale actor and Y the actor that took over. X
// took the slot of each of its connections to a server S in (a) before
// that connection's successful MayAct in (b), so before X's last
// successful VerifyLeader. Y was elected after that VerifyLeader (a quorum
// acknowledged X's term then, and the same quorum intersects the one that
// elected Y later), took the lock after, and opened its first connection
// to S after. That connection's (c) reads the slots after X's slots
// existed: it kills every X connection to S still open and waits until
// each has ended, before Y's first statement on S (its state queries
// included, so a resume fences every reachable server before it reads
// what they hold). Hence every statement of X on S either completed
// before Y started acting on S, or fails (its connection is gone; an open
// transaction is rolled back). A connection X opens later takes a slot
// and then fails its own VerifyLeader in (b) (a quorum has moved to Y's
// term), so it runs nothing. database/sql's transparent reconnect goes
// through the same connector, and go-mysql connections never reconnect.
//
// The paused-then-wakes case: X is paused for minutes, possibly with a
// statement half sent or running. A statement the server already runs is
// the server's, not X's: KILL aborts it (a running statement is
// interrupted at its next check, a read of a half-sent packet by the
// socket shutdown) and the wait in (c) covers its rollback; a statement
// that completed before the kill did so before Y acted on S, which Y then
// reads as state (gtid_binlog_pos is the proof of what was applied). When
// X wakes, its writes hit a closed socket and fail; its context (derived
// from its lost leadership) is cancelled, and any new connection fails
// (b). Tested on real MariaDB: TestFenceKillsStaleActor (a SLEEP(30) and
// an open transaction with inserted rows of a stale actor: both killed
// and ended before the new run's connect returns, the rows rolled back,
// the stale connection's next statement and every new one fail) and
// TestGuardStopsPipeline (a refusing guard: failover and switch stop with
// ErrMayNotAct and the servers are unchanged).
//
// Apply through replication: binlog.Apply's "replication" method has the
// target's own IO and SQL threads read a stream served by the manager
// process, on the named connection binlog.ApplyConnection. Killing X's
// client connection does not stop those threads, and X's event server
// would go on feeding them when X wakes. So every fenced pool, right
// after its first (fenced) connection and before it reads the server's
// state, stops and removes that named connection if one exists (an own
// apply never runs at that point: the pools are opened when a run starts);
// binlog.Apply does the same at its start, and a resumed phase that may
// have applied logs calls binlog.RemoveLeftoverApply before it reads the
// target's GTID position. Once removed, X's stream has no reader: a new
// CHANGE MASTER from X would need a connection, which (b) refuses.
//
// What is not fenced through MySQL: the hooks (master_ip_failover_script,
// shutdown_script, master_ip_online_change_script) run outside MySQL, so
// the guard is asked right before each; the window is from that MayAct to
// the end of the script (a paused manager can wake and start nothing new,
// but a script already running goes on; scripts should be idempotent and
// fence by their own means, e.g. an IP move that the new actor repeats).
// SSH reads (the tail, relay diffs) change nothing. Read-only connections
// (detector probes, discovery, check-repl) are not fenced: they take no
// slot and are never killed. Options.Guard nil (mhactl --local) skips (b);
// (a) and (c) still run, so a local run still fences off earlier runs.
// Cost: three queries per new connection plus one MayAct (a Raft
// round-trip); pools are capped at 8 connections per server.
//
// Files. Read in this order, the dead-master files meet the steps of MHA's
// MasterFailover.pm (see a manual failover's log) in order, except that
// mharaft finds the latest replica (MHA's 3.1), starts the tail and relay
// diff reads (3.2, 3.4) and elects (3.3) already in phase 1, so that the
// operator confirms the whole plan and the slow reads overlap phase 2:
//
//	pipeline.go            Options and the run every pipeline shares: a
//	                       phase journaled (run.phase), connections, hooks,
//	                       the report
//	failover.go            DeadMaster: the entry, the phases in order
//	phase1_check.go        1 configuration check: the dead master, the alive
//	                       replicas, GTID mode, latest and oldest (3.1),
//	                       background reads started, election (3.3), confirm
//	phase2_dead_master.go  2 dead master shutdown: IO threads stopped, latest
//	                       again (3.1) and settled on a transaction boundary,
//	                       SSH HealthCheck, IP hook stop/stopssh, the tail
//	                       made final (3.2), shutdown_script; the fence over
//	                       MySQL and the top-up
//	phase3_new_master.go   3 new master recovery: relay logs applied, GTID
//	                       catch-up or relay diff (3.4), apply (3.5), its
//	                       position, IP hook start, read_only=0
//	phase4_replicas.go     4 replicas recovery in parallel (4.1, 4.2)
//	phase5_cleanup.go      5 new master cleanup: RESET SLAVE ALL
//	resume.go              what the phases share to work ahead and resume:
//	                       the background reads (futures), saved files missing
//	                       on another manager host, what an interrupted apply
//	                       committed (resumeFiles, appliedPrefix)
//	logrecovery.go         LogRecovery: SSH reads and binlog.Apply
//	binlogserver.go        the tail read from the binlog servers ([binlogN])
//	                       when the dead master's binlog cannot be read
//	switch.go              Switch: the entry, the phases in order
//	switch1_check.go       1 check and election
//	switch2_fence.go       2 reject updates: IP hook stop, fence the old
//	                       master (also the dead master's fence), its final
//	                       position; fenced again on a resume
//	switch3_wait.go        3 the new master (fence_mode=shutdown: every
//	                       replica) reaches that position; shutdown
//	switch4_promote.go     4 promote: position, RESET SLAVE ALL, IP hook start,
//	                       read_only=0
//	switch5_replicas.go    5 repoint the replicas
//	switch6_old_master.go  6 the old master becomes a replica
//	rejoin.go              Rejoin (also after a reconcile's replay: rewind or skip)
//	divergence.go          a diverged former master: detect, fence, read and
//	                       render its transactions, replay them (Divergence)
//	election.go            Elect and its rules
//	node.go                one server: state, waits, CHANGE MASTER
//	fencing.go             connection fencing (Fencing, above)
//	hooks.go               hooks and their arguments
//	journal.go             Journal, LocalJournal, Progress
//	report.go              Plan and Report
//
// This package does not decide whether a master is dead (detector/ does).
package failover
