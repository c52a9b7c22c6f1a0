// Package manager is the brain of the mhanode daemon: it wires the
// replicated state (fsm), the Raft group (consensus), failure detection
// (detector), discovery (topology) and the recovery pipelines (failover)
// into one loop per node, and it implements api.Backend.
//
// On every node it probes each application's current master (as the FSM
// knows it) and publishes its observations through Raft with one
// publisher per node (detector.Batcher, detect.go): ObserveBatch entries
// through consensus.Node.Apply, forwarded to the leader from a follower;
// changes of any number of applications in one entry at once (bounded by
// 3 s), and one heartbeat entry per RefreshEvery that refreshes the
// unchanged observations its detectors still confirm (bounded by that
// period; sent at once when a new leader is known). On the leader it registers the configured
// applications (idempotent), evaluates the quorum verdict whenever the
// replicated state changes (every applied command wakes the evaluator; so
// does a change of the local detector's view, and a 250 ms backstop
// re-evaluates because freshness expires with time alone), and on
// DeadMaster it takes the failover lock and runs the dead-master pipeline
// with a Journal backed by the FSM.
//
// Invariants:
//
//  1. Leader work belongs to a leadership period (leadership.go), as in
//     Consul's and Nomad's leader loops: when this node becomes leader it
//     runs a Raft Barrier first (so the FSM holds every lock and journal
//     entry that earlier leaders committed), then opens a period whose
//     context every piece of leader work (registration, discovery,
//     evaluation, pipelines, switch, failover and rejoin actions) derives
//     from. The leader loop compares the period with Raft on every
//     leadership notification and at least once a second: it cancels the
//     period when the node is no longer leader or its term changed (a
//     leadership lost and regained is a new period, and the old period's
//     work does not continue into it), and a Barrier that failed (10 s
//     bound) is tried again at the next notification or tick, with no
//     leader work before it succeeds. Safety does not wait for that
//     cancellation: every command of invariant 2 is refused as soon as Raft
//     says this node is not the leader, and the Guard of invariant 3 asks
//     a quorum before every connection.
//  2. Only the leader acts on MySQL servers, and only after a committed
//     AcquireLock gave it an epoch. Every command of the leader's own work
//     (registration, discovered master, topology, lock, journal, release)
//     goes to this node's own Raft log (applyAsLeader:
//     consensus.Node.ApplyLocal) and fails when it is not the leader: it is
//     never forwarded to a new leader, so a
//     deposed leader's entry cannot commit through its successor, and it is
//     never retried (a refused journal entry stops the pipeline; the next
//     leader resumes from the journal). Every lock, journal and release
//     entry carries the lock's epoch (the fencing token): the FSM refuses a
//     stale one. Observations and the operator's ack, pause, resume and
//     server add/remove go through consensus.Node.Apply instead, which
//     forwards to the leader and waits for one (see its doc).
//  3. The previous holder of a lock cannot touch a server once another
//     manager acts on it: every connection a pipeline opens to a server it
//     may change is fenced (failover/doc.go: an advisory-lock slot, then the
//     run's Guard, then every earlier actor's connection killed and waited
//     for). The Guard of a run here is leaderGuard: the period is alive,
//     a quorum still accepts this leader (raft VerifyLeader), the term is
//     the one in which the lock was taken, and the FSM's lock still carries
//     the run's epoch with this node as holder. A manager paused or cut off
//     for minutes fails that check when it wakes, and its connections that
//     were open before the pause were killed by the taker.
//  4. Every phase is journaled (committed) before it acts. A new leader
//     that finds an unfinished journal (lock held, not halted) takes the
//     lock over with a new epoch and resumes from the last completed phase
//     (failover, switch) or halts with a report (an interrupted rejoin).
//     A failed pipeline halts (the lock stays, Halted) until `mhactl ack`;
//     a panic inside a pipeline halts its lock too, with the stack in the
//     log, instead of crashing every leader that resumes it.
//  5. An automatic lock is a compare-and-set on what the verdict saw: it
//     names the master and last epoch of the state the evaluation read, and
//     the FSM refuses it when either changed meanwhile.
//  6. A refused automatic failover (phase 1 refused, nothing changed) is
//     released as "refused": no anti-flapping block, one history entry per
//     distinct refusal, and the FSM's bounded retry policy (backoff, then
//     automatic failover halted until `mhactl ack`) decides when the next
//     attempt may start; the evaluator predicts it (AppState.AutoLockRefusal) so that a
//     refused attempt costs no Raft entry while it waits.
//  7. Freshness of observations is decided on the leader's clock only: the
//     FSM records on each observation the time and term of the Raft entry
//     that stored it (stamped by the leader that appended it), and the
//     evaluator compares that with its own clock in its own term. A
//     manager whose clock is wrong changes nothing but the times it shows.
//  8. Every action that changes a MySQL server runs under the lock with an
//     epoch: failover, switch, and rejoin (kind rejoin, which journals
//     nothing, keeps the last failover's journal and arms no anti-flapping).
//  9. Servers: the replicated state is authoritative once an application
//     is registered (registration turns this node's configuration into a
//     RegisterApp command here, registerCmd: package fsm knows nothing of
//     configuration files). `mhactl server add/remove` change it and persist across
//     restarts; the leader registers an application again only when its
//     configuration file differs from the one that registered it (server
//     names, last_failover_minute), never while a lock is held, and merges
//     (run-time additions and removals stay unless the file itself added or
//     dropped the server). A server that is not in a node's file takes its
//     settings and credentials from the file's [server default].
//  10. Observations name the manager that made them; no node ever writes an
//     observation for another (an ObserveBatch carries this node's ID, and
//     the FSM refuses a batch holding another manager's observation).
//  11. Passwords never reach a log line: loggers only ever get server names,
//     addresses, epochs and error texts that the lower layers redact.
//
// SSH pre-warm (prewarm.go): when the leader's evaluation first sees a
// fresh "cannot reach" observation it dials SSH to the master's host (and
// the replicas'), before any verdict, and a dead-master pipeline of that
// master takes the dials over: for a silent host ssh_connection_timeout
// then runs from the first suspicion, not from the lock (a dial that
// failed is done again while the suspicion lasts, keeping that start). A
// dial changes nothing on a server, so this is not an action of invariants
// 2 and 8; it is dropped when the suspicion ends, the master changes or
// the leadership period ends. An automatic failover (not a resume) tells
// the pipeline that the quorum verdict judged the master unreachable
// (failover.Options.DeadJudgedUnreachable): phase 1 does not wait for its
// connect_timeout.
//
// Discovery and status (discovery.go, statusview.go): the leader discovers
// every application's topology every DiscoveryInterval and at once when a
// pipeline ends (its lock is released), when a verdict changes (its kind or
// the master it is about) and when it becomes leader; a summary's
// ObservedAt is when its discovery started. Discoveries run in parallel,
// at most DiscoveryConcurrency periodic ones plus 4 requested ones, each
// bounded by 5 s, never two of one application at once: a slow or
// unreachable application delays no other. Their connections are
// long-lived (topology.Pool: one per server and set of credentials,
// replaced every 20 s so that a refused login still shows, closed when a
// read fails, when the server leaves the configuration and when this node
// is not the leader). A periodic discovery whose summary is unchanged
// (all but its times) is stored only once the stored one is 1.5 intervals
// old (every other interval), or when the stored one predates the
// master's last change; a requested one is always stored. A periodic
// discovery is light (topology.Options.Light: master and replica status,
// read_only, GTID positions, server_id and uptime read; grants, semi-sync
// and static variables carried from the last full read) but every
// FullDiscoveryEvery-th (6: 30 s at the default interval); a requested one
// and the first of each application in a leadership period read in full.
// What the status shows (roles, positions, read_only, reachability) is
// never carried. Status never
// passes an old
// view off as the current one: every server row carries the age of the
// discovery it shows and is stale beyond 3 intervals plus one discovery's
// 5 s bound; while the last summary predates the last change of the master,
// roles and the tree are the managers' belief (the new master, the plan's
// replicas, the failed master dead) and every row is stale; a verdict is
// shown only while it is about the current master; a manager's LAST
// CONTACT is its own time since it heard from a leader, never the leader's.
//
// Metrics (Config.Metrics, served on GET /metrics, see metrics.go): raft
// role and term on every raft observation, every probe of the master,
// verdicts when they change (leader), failovers when their lock is released,
// phase durations from the journal's started to done entries, and the
// replicas' lag from the leader's discovery (dropped on a non-leader).
// With Config.TLSCert/TLSKey the API and the forwarding speak HTTPS and
// the Raft transport TLS (mutual with TLSCAFile).
//
// Divergence (divergence.go, docs/DIVERGENCE.md): after each discovery the
// leader checks every former master (the dead master of a successful
// failover not rejoined since) that discovery sees reachable and not
// replicating from the current master, once per leadership term (so again
// after a leader change), not at every discovery; a check that failed is
// retried after 30 s, and a clean former master that is writable (clients
// may still write to it) is checked again at every discovery until it is
// read-only or rejoined. A check is bounded by 2 minutes (its count by
// 20 s), so it never holds the application for long. The check reads the server's binlog after the
// failover point of that failover's plan (the FSM's, else this manager's
// report) over an unfenced read-only connection. A server with
// transactions there is fenced at once under a lock of kind divergence
// (read_only, client connections killed), its transactions are written to
// the divergence file in manager_workdir, and the divergence is recorded
// in the replicated state (fsm.Divergence: server, failover epoch, count,
// GTID and coordinate range, file, detected-at, state) with a history
// entry. Status shows it with health "diverged" and the command to run; it
// is never the primary (routing) nor a replica (it replicates from
// nothing), it is never rejoined automatically, and failovers and switches
// run without it (withoutDiverged: never elected, repointed or waited
// for) until it is rejoined or seen replicating from the master. `mhactl reconcile`
// (api.ReconcileBackend, the leader only) shows the transactions read
// again from its binlog; --apply replays them on the current master under
// a lock of kind reconcile (the state becomes reconciled, with the replay's
// GTID and range); `mhactl rejoin` then passes the replay to
// failover.Rejoin and records the state rejoined. Locks of kinds
// divergence and reconcile keep the master (fsm.KeepsMaster), like rejoin:
// routing keeps answering for the master while they are held. A new
// leader releases an interrupted divergence lock (it checks again) and
// halts an interrupted reconcile (`mhactl ack`, then `mhactl reconcile`
// shows whether it committed: the replay is one transaction).
//
// Servers that were the dead master of an earlier successful failover are
// handed to the pipelines with ignore_fail set (MHA's operator removes them
// from app1.conf; a daemon that keeps running must not let them block the
// next failover) until discovery sees them replicating again.
//
// Routing (routing.go, api.RoutingBackend): every node answers the load
// balancers' GET .../primary and .../replica alone, from its FSM and its own
// probes, and only while its state is current (the leader with its period
// established, or a follower in contact with it and caught up). At most one
// server is primary: none from a failover or switch lock until the journal
// has the new master writable (PhaseActivate, failover.SwitchPromote).
//
// Names, not addresses, identify servers between nodes: the FSM's server
// address is mapped to the local configuration's server of the same name,
// so one manager may reach a server through another address (proxy, NAT).
//
// Test-only hook: when the environment variable
// MHARAFT_TEST_PAUSE_AFTER_PHASE names a phase, the leader blocks (until it
// is killed or shut down) right after the journal committed that phase's
// completion; with "begin:<phase>" it blocks right after the phase's start
// was committed, before the phase acts. The cluster tests use it to kill the leader between two
// phases deterministically. Never set it in production.
package manager
