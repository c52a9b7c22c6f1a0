// Package binlog reads MySQL/MariaDB binlog and relay-log files, finds a
// master position in a replica's relay logs, writes the relay-log diff a
// lagging replica lacks, saves a dead master's binlog tail over SSH and
// applies such files to a server: MHA's save_binary_logs and
// apply_diff_relay_logs, without any tool of ours on the DB hosts.
//
// API:
//
//	Open(path) / NewReader(r, name) / NewReaderAt(r, name, offset, fde) -> *Reader
//	(*Reader).Next() (*Event, error); SetHeaderOnly(true) skips bodies; Decode(ev) decodes fully (go-mysql)
//	ReadHead(ctx, fs, path) (Head, error); ReadIndex(ctx, fs, indexFile) ([]string, error)
//	FindRelayPosition(ctx, RelayLogs, masterFile, masterPos) (RelayPos, error)
//	WriteDiff(ctx, RelayLogs, RelayPos, io.Writer) (CopyResult, error)
//	WriteRelayDiff(ctx, RelayLogs, indexFile, masterFile, masterPos, io.Writer) (RelayPos, CopyResult, error)
//	RelayBytesAfter(ctx, RelayLogs, indexFile, masterFile, masterPos, limit) (int64, error): the
//	master's bytes after a position, across rotations of its binlog (check_repl_delay)
//	SaveMasterTail(ctx, fs, binlogDir, indexFile, startFile, startPos, io.Writer) (SaveResult, error)
//	SaveBinlogServerTail(ctx, fs, dir, startFile, startPos, io.Writer) (SaveResult, error): the same
//	from a binlog server's copy (no index: ListBinlogDir(ctx, fs, dir, base), by number)
//	Apply(ctx, Target, files, ApplyOptions) (ApplyResult, error); RemoveLeftoverApply(ctx, Target, timeout)
//	Target.OnConnect(ctx, Session): optional hook run first on every connection Apply and
//	RemoveLeftoverApply open (the failover fences its connections with it; binlog knows nothing of why)
//	ConcatFiles(files, out); SavedMasterBinlogName, RelayDiffName, TotalBinlogName, Timestamp
//
// FS is the small interface the package needs to read a DB host's files:
// *remote.Client satisfies it over SSH, LocalFS reads the local disk.
//
// Invariants:
//
//   - Reading never panics on bad input (FuzzReader). Truncated or corrupt
//     input ends with an *Error naming the file and offset (wrapping
//     ErrTruncated or ErrCorrupt); every event returned before it is
//     intact.
//   - Finding a position needs only the 19-byte headers (plus the bodies of
//     rotate, format description, query and GTID events): the header-only
//     mode discards the other bodies unread.
//   - Diff and save outputs are byte copies of the source events: the magic
//     number, the format description event of the first source file, then
//     the events. Across rotated files (save) or relay files (diff) the
//     events are concatenated into ONE file; the later files' magic numbers
//     and format description events are skipped (kept only when the
//     checksum setting changes), the replica's own events (its server_id:
//     its format description and relay rotate events) are skipped, and the
//     master's rotate events are kept (harmless to apply, useful to read).
//   - Outputs end at a transaction boundary. An incomplete tail (a relay
//     log or binlog that ends mid-transaction, a half-written last event)
//     is dropped and reported in CopyResult.Incomplete, not applied. Open
//     transactions are held in memory until they end, so memory use is
//     bounded by the largest transaction.
//   - Apply stops at the first failing statement, rolls back the open
//     transaction and reports exactly what was committed (transactions,
//     last file:offset, last GTID) plus an *ApplyError (server, file,
//     offset, statement).
//   - Apply never leaves a replication connection of its own on the
//     target, and never applies an event twice: it switches from
//     replication to statements only when the replication attempt applied
//     nothing.
//
// Finding (apply_diff_relay_logs --command=find): the fast path applies
// when the position is in the master file the replica read last
// (RelayLogs.ReadMasterFile): the position is ReadMasterPos-masterPos bytes
// before the end of the last relay log, accepted only if the event header
// found there ends at masterPos+size in the master's binlog. Otherwise the
// relay logs are walked: rotate events from the master name the master
// file, each event's header log_pos is the master position after it, and
// the match is the event whose log_pos equals masterPos (the diff starts
// right after it).
//
// Over SSH (WriteRelayDiff with an FS that is a Runner) the number of
// sessions does not grow with the number of relay logs: one command reads
// the index, every relay log's size and the fast path's bytes; when the
// fast path does not apply, the relay logs are read newest first, many
// files per command (up to 64 MiB, the first read sized for the distance
// to the end when the position is in the master file read last), each
// scanned once, until the position is certain; the diff is then copied
// from the bytes already read. A relay log rotated for its size does not
// repeat the master's rotate event, so the master file of its first
// events is the one named by the last rotate event before them, or, when
// none follows them, the replica's ReadMasterFile (unless the last rotate
// event names another file). 94 relay logs of 8 KB: 2 sessions, ~0.2 s
// (one or two sessions per file before: 100 sessions, 3-37 s).
//
// Apply has two methods (ApplyOptions.Method); both keep the original
// GTIDs and honour disable_log_bin, and both leave the target holding
// exactly the events, in order.
//
// Replication (apply_repl.go, serve.go, serve_stream.go): Apply starts an
// event server in this process, a minimal MySQL master (go-mysql's server
// package for the handshake) that serves the files as ONE synthetic
// binlog file, mharaft-apply.000001, to a one-time user with a random
// password, and points a MariaDB named replication connection of the
// target ("mharaft_apply", so the default connection and its settings are
// untouched) at it with MASTER_USE_GTID=no. The target's own IO and SQL
// threads fetch and apply the events: the server's own code path, the
// reference the throughput goal is measured against, and everything the
// server can replicate (LOAD DATA, XA, any column type) applies. Events
// keep their bytes except log_pos, rewritten to positions in the served
// file (checksums recomputed), so Exec_Master_Log_Pos maps back to a file
// and offset of the input; MASTER_POS_WAIT says when all is applied; a
// failing transaction stops the SQL thread, whose error becomes the
// *ApplyError. Then STOP SLAVE and RESET SLAVE ALL remove the connection
// and its relay logs. It needs the target to reach this host over TCP
// (the address this host uses on its connection to the target, any port;
// ApplyOptions.ListenAddr/AdvertiseAddr change that) and is refused,
// before anything is applied, where the target's replication would not do
// what statements do: a MySQL target (no named connections here; a
// channel would do, untested without a MySQL server), replication
// filters, slave_skip_errors, log_slave_updates that disagrees with
// disable_log_bin, events of the target's own server_id (its IO thread
// skips them), more than 4 GiB; and when the target did not fetch
// anything within min(ConnectTimeout, 5 s) (a firewall). MethodAuto then
// uses statements (nothing was applied yet, so nothing is applied twice).
//
// Why MethodAuto uses statements unless the events hold something only
// replication applies (LOAD DATA logged as a statement, XA PREPARE,
// compressed query events): measured on 500 MB in `make bench` on
// 2026-11-25 (2 cores; the appliers take turns on ~100 MB segments), six
// runs gave statements 0.83x-0.88x of the server's own SQL thread and
// replication 0.75x-0.89x (medians of the segment ratios), and statements
// cost the target less CPU in all six (0.84-0.93 of the SQL thread's
// efficiency, against 0.69-0.77: replication adds the IO thread and the
// relay log). What statements cost the server beyond the SQL thread is
// mostly decoding the base64 of BINLOG (perf: ~9% of its time) and
// copying the parameters. Replication also costs ~15 ms more to set up
// (the failover walkthrough: 22-28 ms per server vs 8-16 ms) and needs
// the DB host to reach the manager. ReplicationMinBytes and
// apply_method = replication choose it anyway.
//
// Applying with several connections at once (independent transactions in
// parallel, commits in order) was measured and not built: on the bench's
// workload (appends to one table) the server's own optimistic parallel
// replication with 2 threads took 4.9 s where one thread took 3.0 s on
// the same 150 MB, so the row work does not scale on these 2 cores.
//
// Statements (apply.go, apply_batch.go), what mysqlbinlog | mysql does,
// over one connection: row events are sent back to the server as BINLOG
// '<base64>' statements (the format
// description event once per file, then each group of table-map and row
// events), so the server decodes its own events: full fidelity for every
// column type, no row decoding or SQL generation on our side. Query events
// are sent as their statement preceded by their session context (SET
// TIMESTAMP, pseudo_thread_id, flags, sql_mode, auto_increment, charset
// and collation ids, time_zone, lc_time_names, `use db`), intvar/rand/user
// variable events as the SETs mysqlbinlog writes, XID events as COMMIT.
// GTIDs are kept: MariaDB GTID events become SET @@session.gtid_domain_id,
// server_id, gtid_seq_no (+ BEGIN), MySQL ones SET GTID_NEXT, so that
// replicas repointed later do not replay them. We checked these forms
// against mariadb-binlog's output on binlogs written by the testbed's
// MariaDB 10.11. The alternative, decoding rows with go-mysql and writing
// SQL, loses fidelity (types, charsets, unique key order) and is slower.
// Speed comes from batching: many statements and transactions are sent in
// one multi-statement COM_QUERY (up to ApplyOptions.BatchBytes, within
// max_allowed_packet) and their results are read in order, so the number
// of round trips is the number of batches, not of events; counting the OK
// packets tells exactly which statement failed. Two batches are in flight
// (the next is written before the results of the previous one are read),
// so the server never waits for us; since it would run the next packet
// after a failing statement, each batch starts with a guard that fails
// unless the batch before it ran to its end (apply_batch.go), and Apply
// still stops at the first failing statement.
//
// A BINLOG statement holds table map and row events; a batch may end
// inside a group of them, and the server forgets table maps at the end of
// each BINLOG statement (and silently skips rows of unmapped tables), so a
// statement that starts inside a group repeats the group's table maps.
//
// The server's cost of BINLOG '<base64>' beyond applying the rows is
// lexing the literal byte by byte (10-20% of its time: in utf8mb4 every
// byte is checked for a multi-byte sequence) and decoding the base64
// (~11%, unavoidable). Literals are lexed as latin1 (base64 is ASCII: a
// SET character_set_client before them, the statement's own charset
// restored before the next query event). On MariaDB, big statements (16
// KiB of base64 or more) skip the lexer: their base64 text is sent as
// long data for parameters of a prepared SET of user variables, executed
// just before the batch, and the batch says BINLOG @var1, @var2, the
// fragmented form mariadb-binlog writes for big events (the server joins
// and empties the two variables). Each fragment may hold up to
// max_allowed_packet, so an event whose base64 text exceeds the target's
// max_allowed_packet still applies (up to 1.5 times it). The guard also
// checks that the execute of the batch's parameters succeeded. And MariaDB
// would write each BINLOG statement's text into the target's binlog as an
// annotation (binlog_annotate_row_events), a second copy of the rows:
// Apply's session turns that off. MySQL targets get literals only.
//
// Not supported by statements (Apply returns an error naming the event):
// LOAD DATA events, XA transactions and MariaDB compressed query events
// (replication applies them), MySQL 8 compressed transaction payload
// events and encrypted binlogs (neither method); string user variables
// are applied as binary strings.
package binlog
