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
//     journal. Where a resume is unsafe (interrupted while applying logs in
//     file/position mode) the pipeline halts with ErrUnsafeResume.
//   - The old master is fenced before the new master is made writable.
//   - Passwords are passed to hooks as arguments (as MHA does) and never
//     written to logs, reports or the journal: they print as xxx.
//
// This package does not decide whether a master is dead (detector/ does).
package failover
