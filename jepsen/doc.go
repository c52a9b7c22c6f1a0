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
// app1.conf of a round uses ping_interval=1 (configurable), replicas with a
// 1 s replication heartbeat, and a shutdown_script that is an out-of-band
// power switch (it kills the named host's mariadbd, as IPMI would), which is
// how MHA deployments fence a dead master.
//
// Workload (workload.go): writers insert uniquely numbered rows as the
// application user (no SUPER: read_only really stops it) into whichever
// server the API names master, recording each write as ack, fail (server
// error or refused connection: not applied) or unknown (sent, no answer). A
// prober tries a write on EVERY server every 50 ms and records successes.
//
// Nemeses (nemesis.go), drawn by a printed seed (same seed, same
// schedule): kill -9 / long SIGSTOP / isolation of the master, short SIGSTOP
// (below the detection window), isolation of one manager, manager split,
// one manager cut from the master, one manager and the replicas cut from
// the master, kill of the Raft leader once it holds the failover lock,
// kill of a replica, and combinations.
//
// Checkers (checker.go), each round:
//   - lost writes: every acknowledged write is on the final master; a loss
//     fails the round only where the old master's host stayed reachable
//     over SSH (both counts are reported);
//   - split brain: no two servers each accepted a write that started after
//     the other had acknowledged one (workload acks and probes);
//   - false failover: no failover under a nemesis where the master stayed
//     healthy for a majority of managers; a missing failover where one was
//     due is reported as "missed" (liveness);
//   - convergence: every running server replicates from the final master,
//     catches up, and has the same CHECKSUM TABLE;
//   - epochs: history epochs unique and increasing.
//
// Reports (report.go): report.txt, report.json and timeline.html (inline
// SVG: writes per 100 ms and events per round) under Options.OutDir.
package jepsen
