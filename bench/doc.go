// Package bench holds the measured runs behind `make bench`: each suite
// starts real servers, measures, compares against a reference measured in
// the same run where one exists (mariadb-binlog, the server's own
// replication, MHA's detection cadence), prints a table and writes JSON
// under out/bench/. Suites register themselves with Register.
//
// The scale suite (scale.go) has three real mhanode processes watch N
// applications: real ones (three mariadbd each) as many as the machine
// holds, the rest SIMULATED MySQL endpoints (internal/simmysql) that
// answer a healthy master's and replica's probes and discovery reads.
// Failovers are only of real applications. It reports per size the
// managers' CPU (utime+stime from /proc), RSS, MySQL connections counted
// on the endpoints' side and Raft entries (the leader's log index advance,
// read from a copy of its raft.db: any mhanode version is measured the
// same way), then at the largest size a leader kill, single kill -9
// failovers and several masters killed at once (rows counted). Its sizes
// come from MHABENCH_SCALE_* (scale.go); the goals are reported
// against, never asserted.
package bench
