package binlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// Target is the server events are applied to.
type Target struct {
	Name     string // for errors, e.g. "server2(127.0.0.1:3307)"
	Addr     string // host:port
	User     string
	Password string // never logged
	// OnConnect, when set, runs on every connection that Apply and
	// RemoveLeftoverApply open to the target, first thing after the
	// handshake; an error closes that connection and fails the call. A
	// caller fences its connections with it (failover takes an advisory
	// lock slot and checks that it may still act); nil: nothing runs.
	OnConnect func(ctx context.Context, s Session) error
}

// Session is a connection to the target as Target.OnConnect sees it.
type Session interface {
	// QueryRow runs one statement and returns the first row of its
	// result as text (NULL as ""), nil when it returned no row.
	QueryRow(ctx context.Context, query string) ([]string, error)
}

// clientSession is a go-mysql connection as a Session.
type clientSession struct{ c *client.Conn }

func (s clientSession) QueryRow(ctx context.Context, query string) ([]string, error) {
	stop := context.AfterFunc(ctx, func() { s.c.Close() })
	defer stop()
	r, err := s.c.Execute(query)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return nil, err
	}
	if r.Resultset == nil || r.RowNumber() == 0 {
		return nil, nil
	}
	row := make([]string, r.ColumnNumber())
	for i := range row {
		row[i], _ = r.GetString(0, i)
	}
	return row, nil
}

// connectTarget connects to t and runs t.OnConnect on the connection.
func connectTarget(ctx context.Context, t Target, timeout time.Duration, options ...client.Option) (*client.Conn, error) {
	conn, err := client.ConnectWithContext(ctx, t.Addr, t.User, t.Password, "", timeout, options...)
	if err != nil {
		return nil, err
	}
	if t.OnConnect != nil {
		if err := t.OnConnect(ctx, clientSession{conn}); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

// ApplyMethod is how Apply hands the events to the target (see doc.go).
type ApplyMethod string

const (
	// MethodAuto applies with statements, and with the target's
	// replication threads when the events hold something statements
	// cannot apply (LOAD DATA, XA) or are at least ReplicationMinBytes,
	// where the target allows it.
	MethodAuto ApplyMethod = "auto"
	// MethodStatements sends the events as statements over one client
	// connection (BINLOG for row events), as mysqlbinlog | mysql would.
	MethodStatements ApplyMethod = "statements"
	// MethodReplication serves the events over the replication protocol
	// from this process; the target's own IO and SQL threads apply them
	// (MariaDB targets). Apply fails when that cannot be used.
	MethodReplication ApplyMethod = "replication"
)

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// Method: MethodAuto (the default, also for ""), MethodStatements or
	// MethodReplication: the values of the config key apply_method.
	Method ApplyMethod
	// ReplicationMinBytes: with MethodAuto, inputs of at least this many
	// bytes go through replication. 0 (the default): size never decides,
	// because statements measured as fast or faster and cost the target
	// less CPU (see doc.go).
	ReplicationMinBytes int64
	// ListenAddr is where the event server listens for the target's
	// replication connection (host:port). Default: this host's address on
	// the connection to the target, any free port.
	ListenAddr string
	// AdvertiseAddr is the host:port the target is told to connect to,
	// when it differs from ListenAddr (NAT, port forwarding); port 0 keeps
	// the listening port.
	AdvertiseAddr string
	// DisableLogBin applies with sql_log_bin=0 (MHA's disable_log_bin).
	DisableLogBin bool
	// BatchBytes bounds the size of one batch: its multi-statement query
	// plus the row events it sends as parameters (default 4 MiB, and never
	// more than the server's max_allowed_packet allows; one event bigger
	// than that gets a batch of its own on MariaDB, see doc.go).
	BatchBytes int
	// BatchTransactions bounds the transactions sent in one query (default
	// 2000).
	BatchTransactions int
	// ConnectTimeout defaults to 10s.
	ConnectTimeout time.Duration
}

// ApplyResult says exactly what was applied.
type ApplyResult struct {
	// Method is how the events were applied; Fallback says why
	// MethodAuto did not use replication ("" when it did, or was not asked).
	Method       ApplyMethod
	Fallback     string
	Transactions int   // committed transactions (or standalone statements)
	Events       int   // events of those transactions
	Statements   int   // statements the server executed successfully (0 with replication)
	Bytes        int64 // bytes of the files read
	// LastFile and LastPos: the end of the last committed transaction.
	LastFile string
	LastPos  int64
	// LastGTID is the GTID of the last committed transaction ("" if none).
	LastGTID string
}

// ApplyError is the first failing statement.
type ApplyError struct {
	Server    string
	File      string
	Offset    int64 // offset of the event the statement came from
	Statement string
	Err       error
}

func (e *ApplyError) Error() string {
	return fmt.Sprintf("apply %s:%d to %s: %v; statement: %s", e.File, e.Offset, e.Server, e.Err, e.Statement)
}
func (e *ApplyError) Unwrap() error { return e.Err }

// Apply executes the events of files, in order, on the target, the way
// mysqlbinlog | mysql would (see doc.go), many transactions per round trip.
// It stops at the first failing statement, rolls back the open
// transaction and returns an *ApplyError (wrapped) together with what was
// committed before it. Files must end at transaction boundaries (WriteDiff
// and SaveMasterTail output does).
func Apply(ctx context.Context, t Target, files []string, opts ApplyOptions) (ApplyResult, error) {
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 4 << 20
	}
	if opts.BatchTransactions <= 0 {
		opts.BatchTransactions = 2000
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	switch opts.Method {
	case "":
		opts.Method = MethodAuto
	case MethodAuto, MethodStatements, MethodReplication:
	default:
		return ApplyResult{}, fmt.Errorf("apply binlog events to %s: unknown method %q (want %s, %s or %s)",
			t.Name, opts.Method, MethodAuto, MethodStatements, MethodReplication)
	}
	conn, err := connectTarget(ctx, t, opts.ConnectTimeout, func(c *client.Conn) error {
		c.SetCapability(mysql.CLIENT_MULTI_STATEMENTS)
		c.SetCapability(mysql.CLIENT_MULTI_RESULTS)
		return nil
	})
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply binlog events to %s: connect: %w", t.Name, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := removeLeftover(conn); err != nil {
		return ApplyResult{}, fmt.Errorf("apply binlog events to %s: %w", t.Name, err)
	}
	var fallback string
	if opts.Method != MethodStatements {
		res, why, err := applyReplication(ctx, conn, t, files, opts)
		if why == "" {
			if err != nil {
				return res, fmt.Errorf("apply binlog events to %s: %w", t.Name, err)
			}
			return res, nil
		}
		if opts.Method == MethodReplication {
			return res, fmt.Errorf("apply binlog events to %s through replication: %s", t.Name, why)
		}
		fallback = why
	}

	a := &applier{conn: conn, target: t, opts: opts}
	a.res.Method, a.res.Fallback = MethodStatements, fallback
	if err := a.init(); err != nil {
		return a.res, fmt.Errorf("apply binlog events to %s: %w", t.Name, err)
	}
	for _, f := range files {
		if err := a.applyFile(ctx, f); err != nil {
			if werr := a.waitAll(); werr != nil {
				err = werr
			}
			a.rollback()
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%v)", ctx.Err(), err)
			}
			return a.res, fmt.Errorf("apply binlog events to %s: %w", t.Name, err)
		}
	}
	a.closeRows()
	err = a.flush()
	if werr := a.waitAll(); err == nil {
		err = werr
	}
	if err != nil {
		a.rollback()
		return a.res, fmt.Errorf("apply binlog events to %s: %w", t.Name, err)
	}
	if a.pendingTx {
		a.rollback()
		return a.res, fmt.Errorf("apply binlog events to %s: the last file ends inside a transaction (rolled back)", t.Name)
	}
	if a.gtidNext {
		if _, err := conn.Execute("SET @@SESSION.GTID_NEXT='AUTOMATIC'"); err != nil {
			return a.res, fmt.Errorf("apply binlog events to %s: reset GTID_NEXT: %w", t.Name, err)
		}
	}
	return a.res, nil
}

// stmtInfo remembers where a statement of the batch came from.
type stmtInfo struct {
	file     string
	off      int64 // event offset
	end      int64 // end of the event
	start    int   // byte range in the batch
	stop     int
	commit   bool // ends a transaction
	events   int  // events of the transaction (on commit)
	gtid     string
	internal bool // a batch guard or marker, not from the events
	frag     int  // 1 + index in the batch's fragments of a BINLOG statement sent in fragments
}

type applier struct {
	conn   *client.Conn
	target Target
	opts   ApplyOptions
	res    ApplyResult

	// batch is the next COM_QUERY packet being built: packetHead reserved
	// bytes, then the statements (see apply_batch.go); frags are its
	// BINLOG statements sent in fragments, using slotsUsed parameters and
	// fragBytes bytes.
	batch     []byte
	stmts     []stmtInfo
	frags     []fragments
	slotsUsed int
	fragBytes int
	batchNo   int    // number of the batch being built
	inflight  []sent // batches sent whose results are not read yet, oldest first
	spare     []sent // buffers to reuse
	batchTx   int    // transactions ended in the batch
	maxBatch  int    // bound on a batch's statements (bytes)
	maxFrag   int    // bound on one fragment (bytes of base64)
	maxStmt   int    // bound on one BINLOG statement (bytes)
	pendingTx bool   // a transaction is open (statements sent or queued)
	txEvents  int
	gtid      string
	gtidNext  bool
	failed    bool // a batch failed: stop, and expect the guards after it to fail

	// latin1 is set while the session's character_set_client is latin1
	// (see addRows); clientCS is the one to restore.
	latin1   bool
	clientCS string

	// stmtID is the prepared statement that sets the fragment
	// parameters, 0 if the server does not take fragments (MySQL).
	stmtID  uint32
	execBuf []byte

	fdeSent []byte // the FDE the session knows
	ctxSent string
	dbSent  string
	rows    rowsStmt // the open BINLOG statement of table map and row events
	b64     []byte   // ldHead reserved bytes, then its base64 text
	b64Pool [][]byte
	// maps holds the table map events of the current group of table map
	// and row events; afterRows is set once a row event of it came.
	maps      []byte
	afterRows bool
	tr        txTracker
	file      string
}

func (a *applier) init() error {
	r, err := a.conn.Execute("SELECT @@max_allowed_packet, @@character_set_client, VERSION()")
	if err != nil {
		return fmt.Errorf("read max_allowed_packet: %w", err)
	}
	maxPacket, _ := r.GetInt(0, 0)
	cs, _ := r.GetString(0, 1)
	version, _ := r.GetString(0, 2)
	mariadb := strings.Contains(version, "MariaDB")
	a.clientCS = quoteString(cs)
	a.maxBatch = a.opts.BatchBytes
	a.maxFrag = 1 << 30
	if lim := int(maxPacket) - 64<<10; maxPacket > 0 {
		a.maxBatch = min(a.maxBatch, lim)
		a.maxFrag = lim
	}
	// One packet, never split (go-mysql splits larger ones in place).
	a.maxBatch = min(a.maxBatch, mysql.MaxPayloadLen-64<<10)
	a.maxStmt = a.maxBatch
	a.b64 = a.newB64()
	setup := []string{"SET @@session.pseudo_slave_mode=1", "SET " + batchVar + "=0"}
	if mariadb {
		if err := a.prepareFragments(); err != nil {
			return fmt.Errorf("prepare the row event parameters: %w", err)
		}
		if a.stmtID != 0 {
			a.maxStmt = 2 * a.maxFrag
		}
		// MariaDB writes the text of the statement that made row events
		// into the binlog as an annotation (binlog_annotate_row_events,
		// on by default): a copy of every BINLOG literal, 4/3 the size of
		// its events. Annotations are comments; the events suffice.
		setup = append(setup, "SET @@session.binlog_annotate_row_events=0")
	}
	if a.opts.DisableLogBin {
		setup = append(setup, "SET @@session.sql_log_bin=0")
	}
	for _, s := range setup {
		if _, err := a.conn.Execute(s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	a.startBatch()
	return nil
}

func (a *applier) applyFile(ctx context.Context, name string) error {
	r, err := Open(name)
	if err != nil {
		return err
	}
	defer r.Close()
	a.file = name
	a.fdeSent = nil // each file's own format description is sent before its row events
	for i := 0; ; i++ {
		if i%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			a.res.Bytes += r.Offset()
			return nil
		}
		if err != nil {
			return err
		}
		if err := r.VerifyChecksum(ev); err != nil {
			return &Error{File: name, Offset: ev.Offset, Err: err}
		}
		if err := a.event(r, ev); err != nil {
			var ae *ApplyError
			if errors.As(err, &ae) {
				return err
			}
			return &Error{File: name, Offset: ev.Offset, Err: err}
		}
	}
}

// add appends one statement to the batch.
func (a *applier) add(ev *Event, s string, commit bool) {
	st := stmtInfo{file: a.file, off: ev.Offset, end: ev.End(), start: len(a.batch), commit: commit}
	a.batch = append(a.batch, s...)
	a.endStmt(st)
}

// addInternal appends a statement of ours, not from the events.
func (a *applier) addInternal(ev *Event, s string) {
	st := stmtInfo{file: a.file, off: ev.Offset, end: ev.End(), start: len(a.batch), internal: true}
	a.batch = append(a.batch, s...)
	a.endStmt(st)
}

// endStmt records the statement that ends the batch, from st.start on.
func (a *applier) endStmt(st stmtInfo) {
	st.stop = len(a.batch)
	a.batch = append(a.batch, stmtSep...)
	if st.commit {
		st.events, st.gtid = a.txEvents, a.gtid
	}
	a.stmts = append(a.stmts, st)
}

func (a *applier) event(r *Reader, ev *Event) error {
	body := r.Body(ev)
	ended, err := a.tr.step(ev.Header, body)
	if err != nil {
		return err
	}
	if ev.Type != replication.TABLE_MAP_EVENT && !isRowsEvent(ev.Type) {
		a.closeRows()
		a.endRowsGroup()
	}
	if !a.tr.idle() || ended {
		a.txEvents++
	}
	switch ev.Type {
	case replication.FORMAT_DESCRIPTION_EVENT:
		// sent lazily before the first row event
	case replication.TABLE_MAP_EVENT, replication.WRITE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv0,
		replication.WRITE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv1,
		replication.WRITE_ROWS_EVENTv2, replication.UPDATE_ROWS_EVENTv2, replication.DELETE_ROWS_EVENTv2,
		replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1,
		replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1, replication.PARTIAL_UPDATE_ROWS_EVENT:
		need := binlogStmtLen(len(a.maps) + len(ev.Raw))
		if need > a.maxStmt {
			return fmt.Errorf("a %s event of %d bytes exceeds what one statement may carry (%d bytes of base64)", ev.Type, len(ev.Raw), a.maxStmt)
		}
		if a.fdeSent == nil || string(a.fdeSent) != string(r.Format()) {
			if r.Format() == nil {
				return fmt.Errorf("%w: row event before any format description event", ErrCorrupt)
			}
			a.closeRows()
			a.addBinlog(ev, r.Format())
			a.fdeSent = r.Format()
		}
		// Stay within max_allowed_packet: send what is queued first.
		if a.batchLen()+need > a.maxBatch {
			a.closeRows()
			if err := a.flush(); err != nil {
				return err
			}
		}
		a.addRows(ev)
	case replication.MARIADB_GTID_EVENT:
		g, err := parseGTID(ev.Header, body)
		if err != nil {
			return err
		}
		if g.XA {
			return fmt.Errorf("cannot apply the XA transaction %s with statements (not supported; apply_method=replication applies it)", g)
		}
		a.gtid = g.String()
		a.txEvents = 1
		a.add(ev, fmt.Sprintf("SET @@session.gtid_domain_id=%d, @@session.server_id=%d, @@session.gtid_seq_no=%d", g.Domain, g.ServerID, g.Seq), false)
		if !g.Standalone {
			a.add(ev, "BEGIN", false)
			a.pendingTx = true
		}
	case replication.GTID_EVENT:
		g, err := parseGTID(ev.Header, body)
		if err != nil {
			return err
		}
		a.gtid = g.String()
		a.txEvents = 1
		a.gtidNext = true
		a.add(ev, "SET @@SESSION.GTID_NEXT='"+g.String()+"'", false)
	case replication.QUERY_EVENT:
		q, err := parseQuery(body)
		if err != nil {
			return err
		}
		if a.latin1 { // restore the charset the statement text is in
			a.addInternal(ev, "SET @@session.character_set_client="+a.clientCS)
			a.latin1 = false
		}
		if c := contextSQL(q.ctx); c != a.ctxSent {
			a.add(ev, c, false)
			a.ctxSent = c
			if q.ctx.hasCharset {
				a.clientCS = strconv.Itoa(int(q.ctx.csClient))
			}
		}
		if q.db != "" && q.db != a.dbSent {
			a.add(ev, "use "+quoteIdent(q.db), false)
			a.dbSent = q.db
		}
		ts := strconv.FormatUint(uint64(ev.Timestamp), 10)
		if q.ctx.micros >= 0 {
			ts += fmt.Sprintf(".%06d", q.ctx.micros)
		}
		a.add(ev, fmt.Sprintf("SET TIMESTAMP=%s, @@session.pseudo_thread_id=%d", ts, q.threadID), false)
		text := string(q.text)
		if isStmt(q.text, "BEGIN") {
			a.pendingTx = true
		}
		a.add(ev, text, ended)
	case replication.XID_EVENT:
		a.add(ev, "COMMIT", true)
	case replication.INTVAR_EVENT:
		if len(body) < 9 {
			return fmt.Errorf("%w: intvar event of %d bytes", ErrCorrupt, len(body))
		}
		v := binary.LittleEndian.Uint64(body[1:])
		switch body[0] {
		case 1:
			a.add(ev, fmt.Sprintf("SET LAST_INSERT_ID=%d", v), false)
		case 2:
			a.add(ev, fmt.Sprintf("SET INSERT_ID=%d", v), false)
		default:
			return fmt.Errorf("%w: intvar type %d", ErrCorrupt, body[0])
		}
	case replication.RAND_EVENT:
		if len(body) < 16 {
			return fmt.Errorf("%w: rand event of %d bytes", ErrCorrupt, len(body))
		}
		a.add(ev, fmt.Sprintf("SET @@RAND_SEED1=%d, @@RAND_SEED2=%d", binary.LittleEndian.Uint64(body), binary.LittleEndian.Uint64(body[8:])), false)
	case replication.USER_VAR_EVENT:
		s, err := userVarSQL(body)
		if err != nil {
			return err
		}
		a.add(ev, s, false)
	case replication.ROTATE_EVENT, replication.MARIADB_GTID_LIST_EVENT, replication.MARIADB_BINLOG_CHECKPOINT_EVENT,
		replication.PREVIOUS_GTIDS_EVENT, replication.HEARTBEAT_EVENT, replication.STOP_EVENT,
		replication.MARIADB_ANNOTATE_ROWS_EVENT, replication.ROWS_QUERY_EVENT, replication.ANONYMOUS_GTID_EVENT,
		replication.IGNORABLE_EVENT:
	default:
		if ev.Flags&0x80 != 0 { // LOG_EVENT_IGNORABLE_F
			return nil
		}
		return fmt.Errorf("cannot apply a %s event (not supported)", ev.Type)
	}
	if ended {
		a.pendingTx = false
		a.txEvents, a.gtid = 0, ""
		a.batchTx++
		if a.batchTx >= a.opts.BatchTransactions || a.batchLen() >= a.maxBatch/2 {
			a.closeRows()
			return a.flush()
		}
	} else if a.batchLen() >= a.maxBatch/2 && ev.Type != replication.GTID_EVENT {
		// A batch may end inside a transaction (and inside a BINLOG group
		// of row events), but not between SET GTID_NEXT and the
		// transaction it names.
		a.closeRows()
		return a.flush()
	}
	return nil
}

func (a *applier) rollback() {
	a.conn.Execute("ROLLBACK")
	if a.gtidNext {
		a.conn.Execute("SET @@SESSION.GTID_NEXT='AUTOMATIC'")
	}
}

// contextSQL renders a query event's session context as one SET statement.
func contextSQL(c sessionContext) string {
	var p []string
	if c.hasFlags2 {
		p = append(p, fmt.Sprintf("@@session.foreign_key_checks=%d, @@session.sql_auto_is_null=%d, @@session.unique_checks=%d, @@session.autocommit=%d",
			b2i(c.flags2&0x04000000 == 0), b2i(c.flags2&0x00004000 != 0), b2i(c.flags2&0x08000000 == 0), b2i(c.flags2&0x00080000 == 0)))
	}
	if c.hasSQLMode {
		p = append(p, fmt.Sprintf("@@session.sql_mode=%d", c.sqlMode))
	}
	if c.hasAutoInc {
		p = append(p, fmt.Sprintf("@@session.auto_increment_increment=%d, @@session.auto_increment_offset=%d", c.autoIncInc, c.autoIncOff))
	}
	if c.hasCharset {
		p = append(p, fmt.Sprintf("@@session.character_set_client=%d, @@session.collation_connection=%d, @@session.collation_server=%d", c.csClient, c.collConn, c.collServer))
	}
	if c.timeZone != "" {
		p = append(p, "@@session.time_zone="+quoteString(c.timeZone))
	}
	if c.hasLCTime {
		p = append(p, fmt.Sprintf("@@session.lc_time_names=%d", c.lcTimeNames))
	}
	if c.hasCollDB {
		p = append(p, fmt.Sprintf("@@session.collation_database=%d", c.collDatabase))
	} else {
		p = append(p, "@@session.collation_database=DEFAULT")
	}
	if c.hasExplicit {
		p = append(p, fmt.Sprintf("@@session.explicit_defaults_for_timestamp=%d", c.explicitDefs))
	}
	return "SET " + strings.Join(p, ", ")
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func quoteString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}

// userVarSQL renders a user variable event (statement-based replication).
func userVarSQL(b []byte) (string, error) {
	if len(b) < 5 {
		return "", fmt.Errorf("%w: user var event of %d bytes", ErrCorrupt, len(b))
	}
	nl := int(binary.LittleEndian.Uint32(b))
	if 4+nl+1 > len(b) {
		return "", fmt.Errorf("%w: user var name length %d", ErrCorrupt, nl)
	}
	name := quoteIdent(string(b[4 : 4+nl]))
	b = b[4+nl:]
	if b[0] != 0 {
		return "SET @" + name + ":=NULL", nil
	}
	if len(b) < 10 {
		return "", fmt.Errorf("%w: user var event value", ErrCorrupt)
	}
	typ := b[1]
	charset := binary.LittleEndian.Uint32(b[2:])
	vl := int(binary.LittleEndian.Uint32(b[6:]))
	if 10+vl > len(b) {
		return "", fmt.Errorf("%w: user var value length %d", ErrCorrupt, vl)
	}
	v := b[10 : 10+vl]
	switch typ {
	case 0: // STRING_RESULT
		return fmt.Sprintf("SET @%s:=CONVERT(0x%x USING binary) COLLATE `binary`", name, v) + collateHint(charset), nil
	case 1: // REAL_RESULT
		if vl != 8 {
			break
		}
		return "SET @" + name + ":=" + strconv.FormatFloat(math.Float64frombits(binary.LittleEndian.Uint64(v)), 'g', -1, 64), nil
	case 2: // INT_RESULT
		if vl != 8 {
			break
		}
		unsigned := len(b) > 10+vl && b[10+vl]&1 != 0
		if unsigned {
			return "SET @" + name + ":=" + strconv.FormatUint(binary.LittleEndian.Uint64(v), 10), nil
		}
		return "SET @" + name + ":=" + strconv.FormatInt(int64(binary.LittleEndian.Uint64(v)), 10), nil
	}
	return "", fmt.Errorf("user variable %s of type %d is not supported", name, typ)
}

func collateHint(charset uint32) string {
	if charset == 63 {
		return ""
	}
	return fmt.Sprintf(" /* charset %d */", charset)
}

func parseErrPacket(p []byte) error {
	if len(p) < 3 {
		return fmt.Errorf("malformed error packet")
	}
	code := binary.LittleEndian.Uint16(p[1:])
	msg := p[3:]
	if len(msg) > 0 && msg[0] == '#' && len(msg) >= 6 {
		return mysql.NewError(code, string(msg[6:]))
	}
	return mysql.NewError(code, string(msg))
}
