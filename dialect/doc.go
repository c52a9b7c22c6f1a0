// Package dialect is the one place that knows how MariaDB 10.x and MySQL
// 5.7 / 8.0 / 8.4 differ: the SQL text of replication statements (SHOW SLAVE
// STATUS vs SHOW REPLICA STATUS, CHANGE MASTER vs CHANGE REPLICATION SOURCE,
// MASTER_POS_WAIT vs SOURCE_POS_WAIT, ...), the names of variables (semi-sync,
// GTID state, super_read_only), the two spellings of replica status columns,
// the two GTID forms (MariaDB domain-server-seq positions and MySQL uuid
// interval sets) and binlog coordinates.
//
// It does no I/O: every function takes values or strings and returns values
// or SQL text, so it is tested without a server. Invariants: a Dialect is
// chosen from a parsed Version only; statements that carry a password are
// never logged as they are (use RedactPassword); a Pos compares by the binlog
// file's sequence number first and the offset second.
package dialect
