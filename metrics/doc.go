// Package metrics owns mharaft's Prometheus registry and the typed
// collectors the daemon updates. It is a thin layer over
// github.com/prometheus/client_golang: no logic, no I/O, no goroutines.
//
// Build it once per process and hand the registry to the HTTP API, which
// serves it on GET /metrics:
//
//	m := metrics.New()
//	h := api.NewHandler(backend, cfg, m.Registry)
//
// The daemon then calls, wherever the event happens:
//
//	m.SetRaftRole("leader")                       // on every raft state change: leader, follower, candidate, shutdown
//	m.SetRaftTerm(term)                           // on every term change
//	m.ObserveProbe("app1", "server1", d)          // each successful probe of a MySQL server, d = its latency
//	m.ProbeFailed("app1", "server1", "timeout")   // each failed probe; kind = detector.Kind* ("refused", "timeout", ...)
//	m.Verdict("app1", "DeadMaster")               // each verdict the detector reaches (detector.VerdictKind)
//	m.Failover("app1", "switch", "success")       // each finished pipeline: kind failover|switch, result success|failed|halted
//	m.ObservePhase("save_binlog", d)              // each finished pipeline phase and its duration
//	m.SetReplicaLag("app1", "server2", 3)         // Seconds_Behind_Master of each replica, on every sample
//	m.ForgetServer("app1", "server2")             // when a server leaves an app (server-remove), drop its series
//	m.RaftEntryApplied("observe_batch", n)        // each Raft entry the FSM applies: its command type and size
//	m.ObservePublish("change", d)                 // each committed batch of observations: change or heartbeat
//
// Every method is safe for concurrent use and does nothing on a nil
// *Metrics, so code under test can pass nil.
//
// The series (all prefixed mharaft_):
//
//	raft_role{role}                               gauge, 1 for the current role, 0 for the others
//	raft_term                                     gauge
//	probe_duration_seconds{app,server}            histogram
//	probe_failures_total{app,server,kind}         counter
//	verdicts_total{app,verdict}                   counter
//	failovers_total{app,kind,result}              counter
//	failover_phase_duration_seconds{phase}        histogram
//	replica_lag_seconds{app,server}               gauge
//	raft_entries_applied_total{type}              counter: entries applied, by command type (fsm.CommandType's name)
//	raft_entry_bytes_applied_total{type}          counter: their bytes
//	observation_publish_seconds{batch}            histogram: commit time of a batch of observations (change, heartbeat)
//
// Server series carry the app label because server names (server1, ...)
// are only unique inside an application. The registry also holds the
// standard Go runtime and process collectors.
package metrics
