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
//   - Signal-less masters: every MySQL connect (dial and handshake) is
//     bounded by connect_timeout. The dead master's SSH dial starts with
//     the run and is bounded by ssh_connection_timeout; the IP hook waits
//     for it only until connect_timeout after it started (then it is told
//     --command=stop); the tail, and shutdown_script (a power-off would
//     take the binlog away), wait for its outcome.
//   - fence_mode=shutdown (switch): the old master is fenced, every replica
//     reaches its final position, then it is shut down before the new
//     master becomes writable; it cannot become a replica.
//   - ignore_fail: an unreachable server with ignore_fail is left out of a
//     failover or a switch and named in the report.
//   - The old master is fenced before the new master is made writable.
//   - Passwords are passed to hooks as arguments (as MHA does) and never
//     written to logs, reports or the journal: they print as xxx.
//
// This package does not decide whether a master is dead (detector/ does).
package failover
