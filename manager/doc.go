// Package manager is the brain of the mhanode daemon: it wires the
// replicated state (fsm), the Raft group (consensus), failure detection
// (detector), discovery (topology) and the recovery pipelines (failover)
// into one loop per node, and it implements api.Backend.
//
// On every node it registers the configured applications (leader only,
// idempotent), probes each application's current master (as the FSM knows
// it) and publishes its observations through Raft. On the leader it
// evaluates the quorum verdict whenever the replicated state changes
// (event-driven: every applied command wakes the evaluator), and on
// DeadMaster it takes the failover lock and runs the dead-master pipeline
// with a Journal backed by the FSM.
//
// Invariants:
//
//  1. Only the Raft leader acts on MySQL servers, and only after a
//     committed AcquireLock gave it an epoch; every journal entry, the
//     SetMaster and the ReleaseLock carry that epoch (the fencing token), so
//     a manager that lost the lock to a newer epoch is refused by the FSM.
//  2. Every phase is journaled (committed) before it acts: the Journal's
//     Begin fails when this node is no longer the leader, which stops the
//     pipeline before its next phase.
//  3. A new leader that finds an unfinished journal (lock held, not halted,
//     no final release) takes the lock over with a new epoch and resumes
//     from the last completed phase through the failover package, or halts
//     with ResultHalted and a report; `ack` clears a halted lock.
//     A failed pipeline also halts (the lock stays, Halted): an automatic
//     failover is never retried on its own. `mhactl ack` force-unlocks a
//     halted lock and acknowledges the last failover; automatic failover
//     is then possible again, so repair the topology before acking.
//  4. Observations name the manager that made them; no node ever writes an
//     observation for another.
//  5. Passwords never reach a log line: loggers only ever get server names,
//     addresses, epochs and error texts that the lower layers redact.
//
// Metrics (Config.Metrics, served on GET /metrics, see metrics.go): raft
// role and term on every raft observation, every probe of the master,
// verdicts when they change (leader), failovers when their lock is released,
// phase durations from the journal's started to done entries, and the
// replicas' lag from the leader's discovery (dropped on a non-leader).
// With Config.TLSCert/TLSKey the API and the forwarding speak HTTPS and
// the Raft transport TLS (mutual with TLSCAFile).
//
// Servers that were the dead master of an earlier successful failover are
// handed to the pipelines with ignore_fail set (MHA's operator removes them
// from app1.conf; a daemon that keeps running must not let them block the
// next failover) until discovery sees them replicating again.
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
