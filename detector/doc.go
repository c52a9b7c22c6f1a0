// Package detector watches masters and their replicas from one manager,
// shares what it sees, and turns everyone's observations into a verdict:
// Healthy, UnreachableMaster, DeadMaster, ... It never acts on a server and
// imports neither consensus nor failover: the daemon wires a Batcher (one per
// manager, committing fsm.ObserveBatch entries through Raft) as the
// detectors' Publisher and feeds Evaluate from the replicated state.
//
// # Probing (Detector)
//
// Each manager runs one Detector per application (Watch; call it again
// after a failover to retarget). It holds a persistent "sentinel"
// connection to the master, blocked in SELECT SLEEP for ping_interval (two
// SLEEPs of half of it in a row, which share one deadline). When
// mysqld dies (kill -9, OOM, crash) the kernel closes its sockets and the
// blocked read fails at once, with no polling delay; the detector then
// reconnects immediately and the reconnect's result is the observation:
// "refused" (nothing listens: a strong signal), "alive-refusing" or
// "auth-error" (MHA's alive error codes: 1040 too many connections, 1129
// host blocked, 1203, 1226, ...; auth-error when our login itself is
// refused: 1044/1045 access denied, 1130 host not privileged, 4151/3118
// account locked: the server is up) or "ok" (it restarted). Measured on the test
// bed: about 10 ms from the end of kill -9 to a published "refused".
// Between sleeps it runs the ping_type probe: with SELECT, SELECT 1 on a
// new sentinel connection and then the sentinel's own SELECT SLEEPs, which
// prove every ping_interval what SELECT 1 would (issue 17: one query fewer
// per cycle); a fresh connection (CONNECT), or MHA's upsert into
// infra.chk_masterha (INSERT; the CREATE DATABASE/TABLE run once per
// connection, not every ping; a failed INSERT counts as a failure, as in
// MHA). A server that gives no signal (SIGSTOP, a host cut off) is caught
// by deadlines: the sleep must return within ping_interval plus the
// connect timeout, pings and connects within the connect timeout.
//
// We chose SELECT SLEEP over a binlog-dump connection (go-mysql's
// BinlogSyncer with a short heartbeat): a dump connection registers as a
// replica (it shows in SHOW SLAVE HOSTS and in topology discovery, needs a
// unique server_id and the REPLICATION SLAVE privilege) and gains nothing
// here, because the replicas' own heartbeats already prove the master's
// replication stream alive, and the sentinel proves the SQL layer.
//
// Observation.Detail is an error text and never contains a password.
//
// Config.Mode ModeMHA ("mha", mhanode --detection mha) swaps the probe
// loop for MHA's cadence, the chaos benchmark's baseline and not for
// production (mha.go, copied from MHA::HealthCheck): no sentinel and no
// immediate reconnect, one ping_type ping (or connect) every
// ping_interval, each failing when it errors or takes longer than
// ping_interval, and "unreachable" observed only at the 4th failure in a
// row. Everything else (replica sampling, publishing, Evaluate) is the same
// in both modes.
//
// Replicas are sampled in parallel (SHOW ALL SLAVES STATUS on MariaDB,
// falling back to SHOW REPLICA STATUS / SHOW SLAVE STATUS) by the watch
// loop every two ping_intervals, at most every two seconds
// (DefaultReplicaInterval: one status query per replica every two seconds
// in steady state; the daemon's detectors only while routing asked within
// ReplicaDemand: Config.OnDemand), every RetryInterval (200 ms) while this
// manager cannot reach the master, once at once when a sentinel sleep is late (it has not
// returned 50 ms after it should have: a sample only, the observation
// still waits for the deadline), and by the leader at every evaluation
// while any manager cannot reach it (CheckReplicas; a suspected
// application is evaluated every 100 ms): the fast cadence costs only
// while the master is unreachable. An earlier version sampled every
// 100 ms from the first late sleep; under the load of 300 applications on
// two cores enough sleeps ran late that the extra samples made more of
// them late, until the managers' observations flapped by the thousand. The
// tracker remembers when each replica's
// Slave_received_heartbeats or read position last moved (MariaDB 10.11 has
// Slave_received_heartbeats and Slave_heartbeat_period in SHOW ALL SLAVES
// STATUS and as global status; not in SHOW SLAVE STATUS): the sample that
// first saw the last progress, so the silence a replica testifies to is
// short of the real one by up to the time until a sentinel sleep is late
// (or the steady interval, when steady samples are taken and one falls
// between the last heartbeat and the stop): on average about 0.3 s at
// ping_interval=1 (two half-second sleeps; 0.6 s with one sleep of a
// second), by which a signalless master's verdict comes later. Progress is
// compared only across samples at most TrackGap apart: after a longer gap
// tracking starts over (a later verdict, never an earlier one). MariaDB 10.11 shows
// no time of the last received event (the IO thread's processlist time
// does not restart with events, performance_schema has no
// replication_connection_status), so nothing better is read.
//
// # Publishing (Batcher)
//
// A manager has one publisher, the Batcher, however many applications it
// watches; its detectors publish through it. One Raft entry (the daemon's
// fsm.ObserveBatch) carries any number of applications:
//
//   - a change (a new Kind or reachability, a new master watched, a first
//     result) is flushed at once, with every other change pending at that
//     moment; changes made while a flush is in flight go in the next one,
//     right after it (the kill -9 path waits for at most one round trip
//     before its own);
//   - every heartbeat period (the smallest RefreshEvery of its detectors,
//     Window/3 by default; at once when a new leader is known) one entry
//     refreshes the committed observations whose detectors are still
//     current: the observation the detector holds is the one committed
//     (same server, Kind, reachability and Since) and the detector produced
//     a result within ConfirmWithin (Window/2) of the heartbeat. The entry
//     names each observation by application, server and Since; the
//     replicated state re-stamps exactly that one (LoggedAt, LoggedTerm) and
//     nothing else, so a heartbeat built before a change cannot revive the
//     replaced observation. A refresh that names nothing stored comes back
//     unmatched and the full observation is published again;
//   - changes are sent by one loop, one batch at a time, so two changes of
//     one application are never in flight together and are logged in the
//     order the detector saw them; a heartbeat never carries a change;
//   - a change whose entry failed (no leader, timeout) or was refused is
//     sent again when the next heartbeat wakes that loop, and only if its
//     detector still holds it and produced a result within ConfirmWithin:
//     a change is never published late from a detector that hung
//     meanwhile;
//   - a heartbeat that cannot be committed within its own period is
//     abandoned (the next one replaces it), so no refresh is logged more
//     than about two periods after the result it confirms.
//
// Steady state is therefore one entry per manager per heartbeat period,
// whatever the number of applications (about 50 bytes per application),
// plus one entry per flush of changes. Freshness is decided as before
// (below): a silent manager writes nothing and its view expires one window
// after its last entry; a detector that stops producing results (a hung
// probe) is no longer refreshed after ConfirmWithin: its last refresh is
// logged at most ConfirmWithin plus one heartbeat period after its last
// result, and the view expires one window after that refresh, like a
// silent manager's. A manager removed from the group writes none.
// Detectors used without a Batcher (tests, tools) publish their own changes
// at once and every RefreshEvery otherwise, one observation per call.
//
// # Verdict (Evaluate)
//
// Evaluate is pure. A master is declared dead only when a majority of
// managers fail to reach it within the detection window and its replicas
// confirm: one manager cut off from the master never causes a failover.
// DeadMaster needs
//
//   - fresh (within the window) "cannot reach" observations from MORE than
//     half of ALL managers; a stale or missing observation is unknown,
//     never "cannot reach";
//   - no fresh "reachable" observation from any manager (alive-but-refusing
//     included). A manager can only publish while it is in contact with the
//     Raft majority, so a fresh "reachable" means the master is alive on the
//     majority's side and clients there may still write: a veto. A
//     manager that was partitioned together with the master cannot commit,
//     so its observation goes stale and does not veto for ever;
//   - with managers in more than one datacenter, non-reachers in more than
//     one datacenter;
//   - every reachable replica of the master confirms: its IO thread is not
//     running (Connecting/No with a connect error 2003/2013/..., or stopped
//     with no error: it receives no events), or it is connected but, with
//     heartbeats on, its samples witnessed neither heartbeats nor events
//     for longer than ReplicaStall = window/2 + one heartbeat period +
//     ReplicaJitter (250 ms), measured from the last progress to the sample
//     (never to now). A master paused for P stopped at most a heartbeat
//     period (plus jitter) after the replica's last progress and sends as
//     soon as it resumes, so a replica can witness at most P + heartbeat +
//     jitter of silence: a pause of half the window or less never makes a
//     replica confirm (jepsen's pause-master-short). With the window of 3 s
//     the threshold is 2.75 s at heartbeat 1 s, 2.25 s at 0.5 s and 2 s at
//     0.25 s (the chaos harness's). A replica that is connected and
//     still receives something, or that is connected without heartbeat
//     data (a quiet master and a paused one look alike), or whose retries
//     get an answer from the master, refutes: UnreachableMaster. At least
//     one replica must confirm, else DeadMasterWithoutReplicas (no action);
//     if some replicas could not be queried the verdict is
//     DeadMasterAndSomeReplicas (actionable);
//   - secondary_check_script, when configured, exited 0 (MHA's meaning).
//     Verdict.NeedSecondaryCheck tells the leader to run SecondaryCheck and
//     evaluate again. The password is passed in MHA_MASTER_PASSWORD, never
//     on the command line.
//
// A replica whose IO thread an operator stopped confirms (it receives
// nothing), as MHA would fail over in that state too; the cost is that if
// every replica is stopped AND a majority of managers lose the master, the
// failover relies on the fencing of the old master (package failover: where
// it still answers it gets read_only, its connections killed and FLUSH
// TABLES WITH READ LOCK before the new master is made writable).
//
// Timestamps: no decision depends on two managers' wall clocks agreeing.
// Freshness is decided on the Raft log's clock, never on the observing
// managers' clocks. Observation.At and Since
// are the observer's clock and are kept for operators only. When the FSM
// applies an Observe entry it records the entry's AppendedAt (stamped by
// the leader that appended it) as LoggedAt, the leader's term as
// LoggedTerm, and SinceLogged (the LoggedAt of the first entry with the
// current Kind). The evaluator is the leader: it passes its term in
// Input.Term and its own clock in Input.Now, and an observation is fresh
// (Observation.FreshAt) only if it was logged in that term, so the same
// clock stamped LoggedAt and reads Now, and Now-LoggedAt is at most the
// window. An entry logged in an earlier term is never fresh: after an
// election every manager's Batcher sends a heartbeat as soon as it knows
// the new leader (and every RefreshEvery anyway), and
// until then the verdict is NoFreshObservation or UnreachableMaster, never an
// action. A manager whose clock runs ahead therefore cannot keep a "cannot
// reach" vote alive, and one whose clock runs behind keeps its veto as
// long as it keeps publishing. Observations without LoggedAt (entries
// written by code without AppendedAt) fall back to the observer's At,
// which needs manager clocks to agree to a small fraction of the window.
// Evaluate also orders two observations of one manager by log position and
// explains every stale one in the verdict's reasons. Replica samples are
// taken by the evaluator itself and judged on its own clock.
// DefaultWindow is 2*ping_interval + connect timeout; the daemon must use
// the same window in Evaluate as in Config.Window.
package detector
