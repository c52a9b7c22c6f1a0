// Package simmysql serves SIMULATED MySQL endpoints: not databases, but
// listeners that speak the MySQL protocol (go-mysql's server package) and
// answer the few statements mharaft's managers send to a healthy master or
// replica of MariaDB 10.11, so that the scale benchmark (bench/scale.go)
// can have three managers watch far more applications than this machine
// can run real MariaDB servers for. Failovers are only ever measured on
// real applications: a simulated master never dies and never changes role.
//
// What a simulated endpoint answers (anything else is an error, counted in
// Stats.Unknown so that a test sees a statement the simulation misses):
//   - the master probe: COM_PING, SELECT 1, SELECT SLEEP(n) (held for n
//     seconds, ended early by Close), ping_type=INSERT's CREATE DATABASE /
//     CREATE TABLE / INSERT INTO infra.chk_masterha (acknowledged, stored
//     nowhere);
//   - the replica sample: SHOW ALL SLAVES STATUS, SHOW SLAVE STATUS, SHOW
//     REPLICA STATUS: on a replica one channel to its master, both threads
//     running, no error, a heartbeat period of one second and a received
//     heartbeat count that advances once a second; on a master no row;
//   - discovery and check reads: SHOW GLOBAL VARIABLES (WHERE
//     Variable_name IN (...) or LIKE 'prefix%'), SHOW GLOBAL STATUS LIKE
//     (no semi-sync: no row), SELECT @@name[, @@name...], topology's
//     light read (SELECT UNIX_TIMESTAMP(), the Uptime from
//     information_schema.GLOBAL_STATUS, @@name...: the Uptime counted from
//     New, with the clock of the same instant), SHOW MASTER
//     STATUS / SHOW BINARY LOG STATUS, SHOW BINARY LOGS, SHOW GRANTS, SHOW
//     GRANTS FOR, SELECT User, Host FROM mysql.user WHERE User = '...', SET
//     and USE (acknowledged).
//
// Endpoint.Stall makes one stop answering (connections accepted, no
// handshake, statements held) as a paused mysqld would, for tests of a
// slow application among many.
//
// Its variables say what it is: version 10.11.6-MariaDB-simulated and
// version_comment "simulated MySQL endpoint (mharaft bench): not a
// database". Logins are checked against one user and password (mysql_
// native_password, no TLS). Stats counts connections on the endpoints'
// side (accepted, open now) for the benchmark's connection figures.
package simmysql
