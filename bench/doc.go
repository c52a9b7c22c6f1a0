// Package bench holds the measured runs behind `make bench`: each suite
// starts real servers, measures, compares against a reference measured in
// the same run where one exists (mariadb-binlog, the server's own
// replication, MHA's detection cadence), prints a table and writes JSON
// under out/bench/. Suites register themselves with Register.
package bench
