// Package testbed starts real MariaDB servers and a real sshd on this machine
// for tests, the demo, benchmarks and the chaos harness.
//
// It owns processes, data directories and ports; it knows nothing about
// failover. Every cluster gets its own temporary directory and free ports,
// so tests may run in parallel. Close (or the test's Cleanup) always kills
// every process it started, also when a test fails.
//
// Users created on every server (with sql_log_bin=0, so no errant GTIDs):
//
//	root   over the socket, no password (testbed helpers use it)
//	mha    ALL PRIVILEGES, password MHAPassword: the manager's user
//	repl   REPLICATION SLAVE/CLIENT, password ReplPassword
//	app    DML and DDL but no SUPER or READ ONLY ADMIN: the application user,
//	       the one that read_only really stops
//
// The SSH server accepts one generated key; its host key is written to a
// known_hosts file, so clients verify it like they would in production.
// WriteCerts makes the CA and certificate that TLS tests (API, Raft
// transport, the end-to-end cluster) verify the same way. StartHAProxy runs
// haproxy with HAProxyConfig, the configuration docs/HAPROXY.md shows, and
// a Writer is an application writing through it.
//
// Every child process of a test, the demo or the chaos harness (mariadbd,
// sshd, mhanode) is started by StartProc: its own process group, signals
// to the group, SIGKILL when the starting process dies. Test binaries are
// built by BuildBinaries, from the module root, once per process. Under
// -short (`make test-unit`) Start skips the test: that lane starts no
// MariaDB server.
package testbed
