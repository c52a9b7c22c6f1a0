// Package fsm is the replicated state of mharaft: what every manager agrees
// on through Raft. It owns, per application (keyed by app name):
//
//   - the registered servers (identity only, never passwords) and the
//     current master as far as the cluster knows;
//   - the last discovered topology summary, set by the leader;
//   - failure-detection observations, one per (manager, server);
//   - the failover lock (epoch, holder, kind) and the phase journal of the
//     current or last failover, with the pipeline's plan stored once per
//     epoch (AppState.Plans), not in the entries;
//   - the history of finished failovers and switches;
//   - the divergences of former masters that came back holding
//     transactions the current master lacks (AppState.Divergences, one per
//     server, recorded under a divergence, reconcile or rejoin lock with
//     its epoch: divergence.go);
//   - anti-flapping data (last failover, acknowledged flag) and the paused
//     (maintenance) flag.
//
// The package does no I/O and never reads the clock: every timestamp comes
// in the command payload from the proposer, or from the log entry itself
// (raft.Log.AppendedAt, stamped once by the leader that appended it and
// replicated with the entry), so Apply is deterministic.
//
// Log entry format (Consul/Nomad style): one byte of CommandType followed
// by a JSON payload. Apply dispatches through a table of handlers
// registered once. An entry that cannot be decoded panics (the log is
// corrupt or the code is wrong: going on would diverge the replicas); an
// unknown command type panics unless its IgnoreUnknown bit (0x80) is set,
// so managers can be upgraded one at a time. ObserveBatch carries that bit:
// a manager of an older version skips it (its replica then counts the
// upgraded managers' views as unknown, never as "cannot reach"). The old
// per-observation Observe command is still applied (logs and snapshots
// written before ObserveBatch replay unchanged). A domain refusal (lock held,
// stale epoch, anti-flapping, paused, ...) is not a panic: it is returned
// as the Apply response, an error wrapping one of the sentinel errors of
// errors.go.
//
// Invariants (random_test.go applies long random command sequences, with
// snapshots and restores, and checks them after every command; run
// `go test -fuzz=FuzzFSM ./fsm/` to search further):
//
//  1. Epochs are monotonic per application: each granted lock has epoch
//     LastEpoch+1 and LastEpoch never decreases, across releases, force
//     unlocks and snapshots. No two grants of one application share an
//     epoch.
//  2. A lock is granted to one holder at a time: AcquireLock is refused
//     while a lock is held (a takeover names the epoch it replaces and gets
//     a new epoch, which fences the previous holder).
//  3. Journal entries, SetMaster during a failover and ReleaseLock are
//     accepted only with the epoch of the lock currently held (the fencing
//     token); anything else is ErrStaleEpoch or ErrNoLock.
//  4. An automatic lock is refused while the application is paused, and
//     an automatic (or manual, unless it says IgnoreLastFailover) lock is
//     refused within LastFailoverMinute of the last successful failover
//     unless that failover was acknowledged.
//  5. An AcquireLock that carries Seen is a compare-and-set: it is granted
//     only if the application's Master and LastEpoch are still the values
//     Seen names (else ErrStaleVerdict), so a lock is never taken on a
//     verdict about a master that has changed. TakeOver requests are
//     checked against the held lock's epoch instead.
//  6. An applied observation records the Raft log's clock: LoggedAt is
//     the entry's AppendedAt (UTC, no monotonic reading, so every replica
//     stores the same value), LoggedTerm its term, and SinceLogged the
//     LoggedAt of the first entry at which that (manager, server)
//     observation got its current Kind; values the proposer put there are
//     overwritten. Freshness is decided on these (detector.FreshAt), never
//     on the observers' At/Since. An entry without AppendedAt records zero.
//     ObserveBatch (one entry per manager and flush, any number of
//     applications) stores its observations exactly so; its refreshes
//     re-stamp LoggedAt and LoggedTerm (and At) of stored observations
//     only: each names the manager (the batch's own, never another's),
//     the server and the observation's Since, and a refresh whose
//     observation was replaced, pruned or never stored changes nothing and
//     is returned as unmatched. So no entry can make an observation fresh
//     that its manager did not confirm after storing it: a refresh built
//     before a change cannot revive the replaced observation.
//  7. A refused failover (ReleaseLock with ResultRefused: the pipeline
//     refused before any acting phase) releases the lock without changing
//     the master or the anti-flapping record. Consecutive refusals with
//     the same kind, old master and summary share one history entry
//     (Attempts counts them), so a refusal that repeats never pushes real
//     failovers out of the bounded history.
//  8. Refused automatic failovers are retried with a bounded policy
//     (AppState.AutoRetry): after the n-th refusal in a window, automatic
//     locks are refused with ErrRetryBackoff until 1 s * 2^(n-1) (at most
//     60 s) after the release; the 5th refusal within 10 minutes halts
//     automatic failover (ErrAutoHalted) until an Ack. Ack and a
//     successful failover or switch clear it; a manual lock clears the
//     counters but not Halted. Snapshots carry it. AppState.AutoLockRefusal
//     predicts every refusal of an automatic lock (held, paused, halted,
//     backoff, anti-flapping) with the same code Apply runs.
//  9. History epochs are strictly increasing per application (an entry
//     merged by a repeated refusal takes the latest attempt's epoch).
//  10. Readers get deep copies; nothing outside the package can change the
//     state except through Apply and Restore.
//  11. The plan is stored once per epoch: AppState.Plans holds at most one
//     plan per epoch, epochs increasing, none above LastEpoch; only an
//     accepted JournalPhase changes it (the plan of its epoch), and a new
//     (not taken over, not rejoin) lock empties it with the journal. No
//     journal entry's detail holds a plan: one written before Plans
//     existed (a log entry replayed, or an old snapshot restored) has its
//     Detail["plan"] moved to its epoch's plan, the last entry of an epoch
//     winning.
package fsm
