// Package jepsen is mharaft's chaos harness. It drives REAL processes —
// mariadbd and sshd per DB host (through testbed) and the mhanode binary
// per manager — each host in its own network namespace, injects faults,
// records what clients saw and checks it. Product code never imports it.
//
// Hosts (netns.go, env.go): a "switch" namespace holds a Linux bridge;
// every DB host (db1..dbN, 10.213.S.11+) and manager (m1..mN, 10.213.S.21+)
// has a namespace linked to it by a veth pair; one veth gives the harness
// (root namespace, 10.213.S.254) its own address for the workload and the
// API calls. Names start with mhj<pid%1000><k>- and a marker file in
// /run/mhajepsen holds the owner's pid: Close removes everything, SIGINT or
// SIGTERM cancel a campaign into Close, and every campaign starts with a
// Sweep of namespaces and links whose owner is dead. Nothing leaves the
// machine. Each round starts fresh mariadbd and mhanode processes; the
// sshds live for the whole campaign.
//
// app1.conf of a round uses ping_interval=1 (configurable),
// ssh_connection_timeout=1 (a LAN), replicas with a 0.25 s replication
// heartbeat (HeartbeatPeriod: it sets how long the replicas' testimony about
// a silent master takes), and a shutdown_script that is an out-of-band
// power switch (it kills the named host's mariadbd, as IPMI would), which is
// how MHA deployments fence a dead master. Every mariadbd runs with
// general_log=1 and log_output=TABLE: mysql.general_log is a CSV file in
// the datadir, written as each statement arrives and kept across kill -9,
// which the one-actor checker reads at the end of the round. A killed
// mariadbd is never restarted on its old general log (genlog.go): after a
// kill -9 the table is marked crashed and MariaDB 10.11's automatic repair
// of it at start-up can die with signal 11, so DBHost.RestartServer saves
// general_log.CSV as general_log.CSV.001, .002, ... and starts the server
// on an empty table; every reader takes the saved parts, in order, then
// the current file. A nemesis's
// Setup may change the round's deployment first (RoundSetup: a server
// without ignore_fail, extra mhanode arguments, which manager starts
// first or last).
//
// Workload (workload.go): writers insert uniquely numbered rows as the
// application user (no SUPER: read_only really stops it) into whichever
// server the API names master, recording each write as ack, fail (server
// error or refused connection: not applied) or unknown (sent, no answer).
// A write still in flight when the named master changes is abandoned
// (unknown), as by a router that closes its connections to a server it
// takes out (HAProxy's on-marked-down shutdown-sessions, ProxySQL): the
// writer does not wait out its read timeout on a cut-off old master before
// it writes to the new one.
// Even writers write jepsen.w (primary key id), odd writers jepsen.nk,
// which has NO key (the value column v is unique by construction only): a
// transaction applied twice leaves two rows there instead of failing. A
// prober tries a write on EVERY server every 50 ms and records successes.
//
// Nemeses (nemesis.go), drawn by a printed seed (same seed, same
// schedule): kill -9 / long SIGSTOP / isolation of the master, short SIGSTOP
// (below the detection window), isolation of one manager, manager split,
// one manager cut from the master, one manager and the replicas cut from
// the master, kill of the Raft leader once it holds the failover lock,
// kill of a replica, and combinations. power-off-master takes the
// master's host off the LAN as a power cut does (Network.PowerOff): its
// link goes down inside its namespace (mariadbd keeps running, reachable
// by nobody, SSH included), every other host's neighbour entry for it is
// flushed, and a connect to it fails with "no route to host" once ARP
// gives up (3 probes PowerOffARPRetrans = 250 ms apart, the kernel's 3 x
// 1 s scaled to the harness's connect_timeout=1 as MHA's default 4 s is to
// 3 s), where isolate-master's DROP rules give timeouts; the nemesis checks
// that with a plain connect from m1. It holds until a failover SUCCEEDED
// and fails the round if any attempt of the round did not (issue 12
// finding 4: the session-start build refused its first attempt with "...
// connect: no route to host): it is not dead"). Heal brings every link up
// and restores the ARP timing. The nemeses of issue 12
// (nemesis_safety.go) depose or confuse the manager that acts:
//   - leader-partition-mid-phase: a dead-master tail (TailMB/4, at least
//     4 MB, that no replica received: their IO threads are stopped while
//     it is written) makes the failover long; once the lock is held and
//     the journal shows an acting phase (failover.2-5) — in half the
//     rounds (seeded) also once the holder's first batch of tail events
//     reached a server (its general log) — the lock holder is cut from the
//     OTHER managers only (it still reaches the DB hosts) for 8 s, longer
//     than an election, then healed. Its tail is ten smaller
//     transactions;
//   - leader-pause-mid-apply: issue 12 finding 1. A TailMB (default 20,
//     at least 5) MB tail of a few LARGE transactions, each one INSERT ...
//     SELECT of ~5 MB into the keyless jepsen.big (20 MB: 4 of them;
//     108 MB: 21, as the 19), so every transaction spans more
//     than one apply batch (binlog.Apply sends ~3 MB of events per
//     batch); the campaign's 1st, 3rd, ... rounds of it replicate by GTID
//     (the setup), the others by file and position. The lock
//     holder is SIGSTOPped once failover.3 started and its first batch of
//     tail events (a BINLOG statement, or START SLAVE 'mharaft_apply' for
//     an apply through replication; not phase 3's catch-up START SLAVE)
//     reached a server, read from the general logs every 10 ms: inside
//     the tail's first transaction. When another manager has finished the
//     failover (a successful history entry) it gets SIGCONT and the round
//     waits until it changed no server for 5 s (read from the general
//     logs) before the checkers run. A build without fencing (the one of
//     commit 1cb8b61) fails it: the resumed leader commits the rest of
//     its transaction on the new master (+5000 tail rows) and the
//     one-actor checker sees its batches after the successor's changes;
//     it then stops at the first workload row of the tail that hits a
//     primary key (jepsen.w), where the all-big-table tail let it
//     re-apply all 19 transactions;
//   - clock-skew: one manager runs with mhanode's test-only
//     --test-clock-offset (±30-60 s); the campaign's odd-numbered
//     clock-skew rounds start it last (likely follower), the even-numbered
//     ones first (likely leader). As leader: the master is killed and a
//     failover must follow. As follower: every other manager and every
//     replica are cut from the master for three windows; the skewed
//     follower still reaches it, and a manager that reaches the master is
//     a veto, so a failover is false (it would mean the follower's fresh
//     observation was judged stale on its clock). Without the flag in
//     mhanode the round records a harness error and runs unskewed;
//   - refused-failover: one replica has no ignore_fail; it is shut down
//     (a file/position replica killed with -9 may restart a transaction
//     behind and stop on a duplicate key: MariaDB's crash safety, not ours
//     to test here), then the master is killed. For 3 windows + 5 s every attempt must be refused: no
//     successful failover, at most RefusedHistoryBound (10) history
//     entries in the round. Then the replica is restarted, `ack` is sent
//     and a failover must follow.
//
// Datacenters (datacenter.go, nemesis_dc.go; issue 16). A datacenter
// round groups the hosts with a layout (RoundSetup.Layout, mhajepsen
// --layout; by default each dc nemesis takes 3dc and 2dc+tb in turn):
//   - 3dc: dc1 = db1 (the master) + m1 + its clients, dc2 = the first half
//     of the other DB hosts + m2, dc3 = the rest + m3;
//   - 2dc+tb: dc1 = db1 + m1, dc2 = every other DB host + m2, dc3 = m3
//     alone (the tie-breaker, no clients).
//
// app1.conf gets datacenter= on every server and mhanode --datacenter on
// every manager, so one manager per datacenter: a majority always spans
// two datacenters (the verdict's datacenter rule). Every datacenter with
// a DB host has its own clients (workload.go, dcClients): two writers
// whose MySQL and API connections leave from the datacenter's own address
// on the harness's veth (10.213.S.241 for dc1, .242, .243), so a cut of
// the datacenter cuts them with it. They write to the master named by the
// Raft leader when they reach it (its answer is taken as soon as it comes,
// without waiting for the other managers), else by any manager they reach
// (a manager cut from the others answers from its stale state), else to the
// last master they knew, as an application behind a fixed address would;
// every Op records its client's datacenter. The harness's own address
// (observer, prober, checks, mhactl) stays connected to every datacenter.
// The observer asks the Raft leader (Observer.API picks it afresh): a
// manager cut off with its datacenter keeps answering from its stale
// state. No shutdown_script in these rounds: a cut datacenter's power
// switch is cut off too, so the old master keeps running and taking its
// clients' writes.
//
// The datacenter nemeses cut one datacenter (iptables DROP, in every
// host's namespace, between its hosts and client address and those of
// every other datacenter; Network.CutGroup puts all rules in at once) for
// DCPartitionHold (15 s) at least, then heal:
//   - dc-partition-master: the master's datacenter (the master, m1, its
//     clients), without semi-sync. The other two managers (two
//     datacenters) and the replicas lose the master: a failover must
//     succeed. The cut lasts DCAfterFailover (4 s) after it, and the old
//     master's clients keep writing to it: those acknowledged writes are
//     lost to the new master, and the old and new master both took writes
//     (reported as divergent writes, not as a split-brain failure). The
//     divergence check waits (DivergenceDetectTimeout, 60 s) for the
//     leader to record the old master's divergence, must then find every
//     lost acknowledged write in `mhactl reconcile --app app1 --server
//     server1 --json` (inserted rows of jepsen.w id / jepsen.nk v), runs
//     `reconcile --apply`, must find none missing on the final master and
//     no row twice, and `mhactl rejoin`s the old master, after which
//     convergence includes it. Any problem there fails the round. With an
//     mhactl without reconcile the check is skipped (reported) and the
//     old master is stopped instead.
//   - dc-partition-master-lossless: the same with semi-sync
//     (RoundSetup.SemiSync: wait point AFTER_SYNC, a 10 min timeout, the
//     master semi-sync as a master, the replicas of other datacenters as
//     replicas). The old master's writes wait for an acknowledgement that
//     cannot come; ZeroLoss: a single lost acknowledged write fails the
//     round although the old master's host was unreachable, and no split
//     brain is excused. The same divergence flow follows (the old master
//     holds the commits that waited), but its problems (nothing recorded
//     within LosslessDetectTimeout, 45 s: then no rejoin is tried; rejoin
//     refused) are reported as notes, not failures, and the old master is
//     then stopped. (On 2026-12-07 the leader's check of such an old
//     master timed out on SHOW BINARY LOGS, which MariaDB does not answer
//     while commits wait for a semi-sync acknowledgement, and a rejoin
//     hung: docs/MULTI-DC.md.)
//   - dc-partition-other: a datacenter other than the master's (dc2, then
//     dc3; in 2dc+tb dc3 is the tie-breaker alone), semi-sync in every
//     other pair of rounds. The master keeps a majority of managers: any
//     failover is false; nothing may be lost. (2dc+tb with semi-sync and
//     dc2 cut: the master has no semi-sync replica left, its writes wait
//     until the heal: no loss, no failover, unavailable.)
//   - dc-partition-no-cross-dc: prevent_cross_dc_failover=1 and the
//     master's datacenter cut: its datacenter has no other DB host, so
//     every attempt must be refused (no successful failover, at most
//     RefusedHistoryBound history entries), and ZeroLoss (nothing failed
//     over, nothing lost).
//
// Only successful failovers count in datacenter rounds (a refused attempt
// is no false failover). Failover time is, as everywhere, from the fault
// (all rules in place) to the first acknowledged write on the new master.
// dc-partition-semisync-fallback is never drawn: a lossless round with
// rpl_semi_sync_master_timeout=500ms, whose master falls back to
// asynchronous replication: the lossless checker must fail it
// (TestLosslessCheckCaught).
//
// Cross-datacenter latency (latency.go): this kernel has no netem, so
// every host's namespace runs a delaying TCP relay (Relay, in the
// harness's process: its listener and its outgoing sockets are created on
// a thread switched into the namespace with setns). An iptables nat
// OUTPUT rule REDIRECTs the host's new TCP connections to hosts of other
// datacenters to it; it reads SO_ORIGINAL_DST, dials the destination from
// the same namespace with SO_MARK RelayMark (excluded from the redirect:
// the source address stays the host's, which the one-actor checker
// relies on) and forwards every chunk Options.DCLatency (default 10 ms,
// mhajepsen --dc-latency) later in each direction. Replication, Raft,
// the managers' probes and SSH across datacenters are delayed; the
// clients' connections (root namespace) and gossip's UDP are not. The
// partition's DROP rules still apply to the relay's connection; a connect
// through the relay succeeds locally and is closed when the relay's own
// dial fails. StopRound removes the redirects.
//
// Converge reads the checksums again (up to 30 s) when only they differ:
// a datacenter's client write abandoned during the cut can be
// retransmitted by its kernel and executed on the master 12 s after the
// heal, between the master's checksum and the replicas'.
//
// rogue-local-failover is never drawn: it is a deliberately broken
// deployment (the harness runs `mhactl failover --local` while the
// cluster's leader applies a tail) that the one-actor checker must fail
// (TestTwoActorsCaught). Like every Broken nemesis it skips the waits for
// a healthy end and the convergence check.
//
// Checkers (checker.go), each round:
//   - lost writes: every acknowledged write is on the final master; a loss
//     fails the round only where the old master's host stayed reachable
//     over SSH (both counts are reported), or in a ZeroLoss round
//     (lossless, no-cross-dc) whatever the host; in a datacenter round
//     whose master's datacenter was cut without semi-sync, every loss must
//     be listed by the divergence report and be back after reconcile
//     --apply (see Datacenters above); lost writes are counted per client
//     datacenter;
//   - split brain: no two servers each accepted a write that started after
//     the other had acknowledged one (workload acks and probes);
//   - false failover: no failover under a nemesis where the master stayed
//     healthy for a majority of managers; a missing failover where one was
//     due is reported as "missed" (liveness);
//   - convergence: every running server replicates from the final master,
//     catches up, and has the same CHECKSUM TABLE;
//   - epochs: history epochs unique and increasing;
//   - rows never applied twice: no value of jepsen.nk, and no row of the
//     tail table jepsen.big, is present more than once on the final
//     master; every tail row is there when the old master's host stayed
//     reachable over SSH;
//   - one actor (oneactor.go): from each server's general log, take the
//     rows sent by the managers' MySQL account (mha) from a network
//     address — each manager connects from its own namespace's address,
//     an unknown address is an actor of its own (the harness's is
//     "harness-client"); keep the state-changing ones: SHUTDOWN, KILL and
//     REFRESH commands, and queries with any statement starting with
//     CHANGE MASTER, START/STOP/RESET SLAVE, RESET MASTER, FLUSH, UNLOCK
//     TABLES, KILL, BINLOG, INSERT, UPDATE, DELETE, REPLACE, LOAD, XA,
//     SHUTDOWN, CREATE, DROP, ALTER, TRUNCATE, RENAME, PURGE, GRANT,
//     REVOKE, or a SET of a GLOBAL variable (the detector's
//     infra.chk_masterha pings excluded). Every connection of a failover
//     run starts with a statement carrying "/* mharaft run <tag> */" (the
//     fencing's first query, a random tag per run), which assigns that
//     connection to the run. Per (actor, run, server) the span is
//     [first, last] of those rows' times (the server's microsecond clock);
//     untagged connections of an actor form one span of their own, judged
//     against that actor's runs as one run (no overlap reported).
//     The round fails when two spans of DIFFERENT runs (of different
//     actors, or two runs of one actor) on servers of the same application
//     share an instant. So within a round, once a run has started changing
//     servers, no earlier run may change one again: a deposed leader that
//     wakes up and applies more is caught, a leader killed before its
//     successor acts is not, and a legitimate A, B, A sequence (leadership
//     handed back, a second takeover in one round: round 173 of the
//     200-round campaign with seed 20261208, a false positive while spans
//     were per actor) is three runs one after the other. Spans per
//     connection would not do: the fencing makes two actors kill each
//     other's connections in turn, so the rogue test below would pass.
//     A row's time is when the statement arrived, not when it
//     finished: a statement of a paused leader still executing when its
//     successor starts is not an overlap (the successor's KILL of that
//     connection is what ends it).
//   - the nemesis's own checks (refused-failover's bound).
//
// Reports (report.go): report.txt, report.json and timeline.html (inline
// SVG: writes per 100 ms and events per round, the first and last change
// of every actor span among them; in datacenter rounds a band while the
// datacenter is cut and one row per datacenter's clients) under
// Options.OutDir. Datacenter rounds print their layout, the cut,
// acknowledged and lost writes per client datacenter and the divergence
// check.
package jepsen
