package failover

// Divergence: a former master that comes back holding transactions the new
// master never got (a datacenter partition: the old master kept taking
// writes from clients next to it after the others failed over). See doc.go,
// "Divergence".

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
	"github.com/mharaft/mharaft/internal/secret"
)

// DivergencePoint is the end of what the failover of plan recovered from
// the old master's binlog: the top-up's end when one was applied, else the
// saved tail's end, else the latest replica's read position. Every
// transaction of the old master's binlog after it is one the new master
// never got.
func DivergencePoint(p *Plan) Coord {
	switch {
	case p.TopUpFile != "" && !p.TopUpEnd.IsZero():
		return p.TopUpEnd
	case p.TailFile != "" && !p.TailEnd.IsZero():
		return p.TailEnd
	}
	return p.LatestRead
}

// DivergenceFileName is the name of the reviewable file of server's
// divergent transactions after the failover of epoch (the raw events are
// kept next to it, with the extension .binlog instead of .sql).
func DivergenceFileName(app, server string, epoch uint64) string {
	return fmt.Sprintf("divergence_%s_%s_epoch%d.sql", app, server, epoch)
}

// DivergentRow is one row change of a divergent transaction. Values is the
// row (for an update, the after image); Before is the before image of an
// update or delete. A SQL NULL is nil.
type DivergentRow struct {
	Table   string    `json:"table"`
	Type    string    `json:"type"` // insert, update, delete
	Columns []string  `json:"columns"`
	Values  []*string `json:"values"`
	Before  []*string `json:"before,omitempty"`
}

// DivergentTx is one transaction of the old master that the new master
// lacks, as its binlog holds it.
type DivergentTx struct {
	GTID   string         `json:"gtid"`   // "" without GTID events
	Binlog string         `json:"binlog"` // file:pos of its first event in the old master's binlog
	Time   time.Time      `json:"time"`   // the event time (the commit on the old master, second precision)
	Tables []string       `json:"tables"`
	SQL    []string       `json:"sql"` // readable SQL; what a reconcile applies
	Rows   []DivergentRow `json:"rows"`

	end Coord // just after its last event
	// stmts are the statements a reconcile runs, each with the number of
	// rows it must match (-1: not checked, an INSERT or a statement).
	stmts []replayStmt
	// notReplayable says why the transaction cannot be replayed ("" when
	// it can): a DDL, unknown column names.
	notReplayable string
	// undo holds, per row change in order, the statement that reverts it
	// on the old master (rejoin's rewind); a statement event has none.
	undo []replayStmt
	// statements: the transaction holds statement events (not invertible).
	statements bool
}

type replayStmt struct {
	db    string // `USE` before it ("" for none)
	sql   string
	match int64 // rows it must match; -1: not checked
}

// DivergenceOptions name the former master and the failover it missed.
type DivergenceOptions struct {
	Options
	// Host is the former master (name, host:port or ip:port).
	Host string
	// Plan is the plan of the failover that left it behind (required).
	Plan *Plan
	// Epoch is that failover's epoch: it names the files.
	Epoch uint64
	// Recovery reads the old master's binlog over SSH; nil: DefaultRecovery.
	Recovery LogRecovery
}

func (o *DivergenceOptions) server() (*config.Server, error) {
	if o.Plan == nil {
		return nil, fmt.Errorf("%w: no failover plan to check %s against", ErrRefused, o.Host)
	}
	srv := o.App.Server(o.Host)
	if srv == nil {
		return nil, fmt.Errorf("%w: %s is not in the configuration of %s", ErrRefused, o.Host, o.App.Name)
	}
	return srv, nil
}

func (o *DivergenceOptions) timeout() time.Duration {
	if o.App.ConnectTimeout > 0 {
		return o.App.ConnectTimeout
	}
	return 2 * time.Second
}

func (o *DivergenceOptions) fencing() *fencing {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	return newFencing(o.App.Name, o.Guard, o.FenceWait, o.timeout(), func(format string, args ...any) {
		fmt.Fprintf(out, "%s - [info] %s\n", time.Now().Format("Mon Jan _2 15:04:05.000 2006"), fmt.Sprintf(format, args...))
	})
}

// DivergentTransactions counts, without changing anything (an unfenced,
// read-only connection), the transactions in the former master's binlog
// after the failover point (SHOW BINLOG EVENTS), and returns them as
// "file:pos GTID" lines (the GTID when it has one). None: it holds nothing
// the new master lacks.
func DivergentTransactions(ctx context.Context, opts DivergenceOptions) ([]string, error) {
	srv, err := opts.server()
	if err != nil {
		return nil, err
	}
	n, err := connect(ctx, srv, opts.timeout(), nil)
	if err != nil {
		return nil, fmt.Errorf("check %s for divergent transactions: %w", srv, err)
	}
	defer n.close()
	return transactionsAfter(ctx, n, DivergencePoint(opts.Plan))
}

// transactionsAfter lists the transactions of n's binlog after end, one
// "file:pos GTID" line each (a GTID event, or a BEGIN or standalone query
// without one).
func transactionsAfter(ctx context.Context, n *node, end Coord) ([]string, error) {
	var out []string
	inTx := false
	err := binlogEventsAfter(ctx, n, end, func(file string, rows []map[string]string) {
		inTx = false
		for _, e := range rows {
			where := file + ":" + e["Pos"]
			switch e["Event_type"] {
			case "Gtid":
				// MariaDB: "BEGIN GTID 0-1-5" or "GTID 0-1-5" (standalone).
				info := e["Info"]
				gtid := info[strings.LastIndex(info, " ")+1:]
				out = append(out, where+" "+gtid)
				inTx = strings.HasPrefix(info, "BEGIN")
			case "Anonymous_Gtid":
				out = append(out, where)
				inTx = true
			case "Query":
				switch {
				case strings.HasPrefix(e["Info"], "BEGIN"):
					if !inTx && !hasGTIDAt(out, where) {
						out = append(out, where)
					}
					inTx = true
				case strings.HasPrefix(e["Info"], "COMMIT"):
					inTx = false
				case !inTx && (len(out) == 0 || !strings.HasPrefix(out[len(out)-1], file+":")):
					out = append(out, where)
				}
			case "Xid":
				inTx = false
			}
		}
	})
	return out, err
}

// binlogEventsAfter calls fn with the SHOW BINLOG EVENTS rows of each of
// n's binlog files from end on (the file of end from its position, the
// later ones whole), in order.
func binlogEventsAfter(ctx context.Context, n *node, end Coord, fn func(file string, rows []map[string]string)) error {
	logs, err := n.queryRows(ctx, n.d.ShowBinaryLogs())
	if err != nil {
		return err
	}
	for _, l := range logs {
		file := l["Log_name"]
		from := uint64(4)
		switch c := (Coord{File: file}).Compare(Coord{File: end.File}); {
		case c < 0:
			continue
		case c == 0:
			from = end.Pos
		}
		rows, err := n.queryRows(ctx, fmt.Sprintf("SHOW BINLOG EVENTS IN %s FROM %d", dialect.QuoteString(file), from))
		if err != nil {
			return err
		}
		fn(file, rows)
	}
	return nil
}

func hasGTIDAt(out []string, where string) bool {
	return len(out) > 0 && strings.HasPrefix(out[len(out)-1], where)
}

// FenceDiverged fences the former master at once: read_only=ON (with
// super_read_only on MySQL) and every client connection killed, as the
// dead master's fence does, over a fenced connection (the run's guard
// first). It holds no lock afterwards: read_only stays until an operator
// or a rejoin changes it. It returns what it did.
func FenceDiverged(ctx context.Context, opts DivergenceOptions) (string, error) {
	srv, err := opts.server()
	if err != nil {
		return "", err
	}
	n, err := connect(ctx, srv, opts.timeout(), opts.fencing())
	if err != nil {
		return "", fmt.Errorf("fence diverged %s: %w", srv, err)
	}
	defer n.close()
	conn, err := n.db.Conn(ctx)
	if err != nil {
		return "", fmt.Errorf("fence diverged %s: connect: %w", srv, err)
	}
	defer conn.Close()
	var myID int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&myID); err != nil {
		return "", fmt.Errorf("fence diverged %s: %w", srv, err)
	}
	// Kill the clients first: SET GLOBAL read_only waits for the commits
	// in progress, and a commit waiting for a semi-sync acknowledgement
	// that never comes would hold it for ever. Then again after read_only,
	// for the clients that connected meanwhile.
	//
	// A killed commit that waited for a semi-sync acknowledgement is in
	// the binlog, so among the divergent transactions, but its client may
	// have been told OK (MariaDB races the killed thread's OK against the
	// closing of its socket; see semiSyncWaiting): the fence says how many
	// it ended, so that the operator knows reconcile is owed to clients
	// that may believe those writes done.
	killed, waiting, err := killConnections(ctx, conn, myID)
	if err != nil {
		return "", fmt.Errorf("fence diverged %s: kill client connections: %w", srv, err)
	}
	for _, q := range n.d.SetReadOnly(true) {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := conn.ExecContext(qctx, q)
		cancel()
		if err != nil {
			return "", fmt.Errorf("fence diverged %s: %s: %w (a commit in progress that does not end? check SHOW PROCESSLIST there)", srv, q, err)
		}
	}
	more, moreWaiting, err := killConnections(ctx, conn, myID)
	if err != nil {
		return "", fmt.Errorf("fence diverged %s: kill client connections: %w", srv, err)
	}
	killed += more
	waiting += moreWaiting
	what := "read_only=ON"
	if !n.d.V.IsMariaDB() {
		what = "read_only=ON, super_read_only=ON"
	}
	what = fmt.Sprintf("%s, %d client connection(s) killed", what, killed)
	if waiting > 0 {
		what += fmt.Sprintf(" (%d of them committing and waiting for a semi-sync acknowledgement: their transactions are among the divergent ones, and the server may have told those clients OK)", waiting)
	}
	return what, nil
}

// DivergenceResult is what the former master holds that the new master
// lacks.
type DivergenceResult struct {
	App    string `json:"app"`
	Server string `json:"server"`
	Epoch  uint64 `json:"epoch"`
	From   Coord  `json:"from"` // the failover point
	To     Coord  `json:"to"`   // end of the last transaction read
	// File is the reviewable SQL file, RawFile the raw events (a byte copy
	// of the old master's binlog from the failover point).
	File         string        `json:"file"`
	RawFile      string        `json:"raw_file"`
	Transactions []DivergentTx `json:"transactions"`
}

// GTIDs is the first and last GTID of the transactions ("" when none has one).
func (r *DivergenceResult) GTIDs() (first, last string) {
	for _, t := range r.Transactions {
		if t.GTID == "" {
			continue
		}
		if first == "" {
			first = t.GTID
		}
		last = t.GTID
	}
	return first, last
}

// ReadDivergence reads the former master's binlog from the failover point
// to its end over SSH into <manager_workdir>/divergence_<app>_<server>_
// epoch<N>.binlog (a byte copy, mode 0600), decodes it, looks the column
// names up in the old master's information_schema (read-only), and writes
// the reviewable <...>.sql (mode 0600). It changes nothing on any server.
func ReadDivergence(ctx context.Context, opts DivergenceOptions) (*DivergenceResult, error) {
	srv, err := opts.server()
	if err != nil {
		return nil, err
	}
	dir := opts.App.ManagerWorkdir
	if dir == "" {
		return nil, fmt.Errorf("%w: manager_workdir is not set for %s", ErrRefused, opts.App.Name)
	}
	if srv.MasterBinlogDir == "" {
		return nil, fmt.Errorf("%w: master_binlog_dir is not set for %s: its binlog cannot be read", ErrRefused, srv)
	}
	if err := secret.MkdirAll(dir); err != nil {
		return nil, err
	}
	rec := opts.Recovery
	if rec == nil {
		rec = DefaultRecovery()
		defer rec.Close()
	}
	name := DivergenceFileName(opts.App.Name, srv.Name, opts.Epoch)
	res := &DivergenceResult{App: opts.App.Name, Server: srv.Name, Epoch: opts.Epoch, From: DivergencePoint(opts.Plan),
		File: filepath.Join(dir, name), RawFile: filepath.Join(dir, strings.TrimSuffix(name, ".sql")+".binlog")}
	// Two reads may run at once (a leader's check and a reconcile): each
	// writes its own part file, renamed into place at its end.
	tmp := fmt.Sprintf("%s.%d-%d.part", res.RawFile, os.Getpid(), time.Now().UnixNano())
	defer os.Remove(tmp)
	tr, err := rec.SaveTail(ctx, srv, srv.MasterBinlogDir, res.From, tmp)
	if err != nil {
		return nil, fmt.Errorf("read the divergent transactions of %s: %w", srv, err)
	}
	if err := os.Rename(tmp, res.RawFile); err != nil {
		return nil, fmt.Errorf("read the divergent transactions of %s: %w", srv, err)
	}
	res.To = tr.End
	cols := newColumnLookup(ctx, srv, opts.timeout())
	defer cols.close()
	if res.Transactions, err = decodeDivergent(res.RawFile, res.From, cols); err != nil {
		return nil, fmt.Errorf("decode the divergent transactions of %s in %s: %w", srv, res.RawFile, err)
	}
	if err := writeDivergenceFile(res); err != nil {
		return nil, err
	}
	return res, nil
}

// columnLookup finds column names and types of tables in the old
// master's information_schema (read-only, unfenced), once per table.
type columnLookup struct {
	db    *sql.DB
	err   error
	cache map[string]*tableCols
}

type tableCols struct {
	names    []string
	unsigned []bool
	float    []bool // FLOAT/DOUBLE: left out of the before-image match
}

func newColumnLookup(ctx context.Context, srv *config.Server, timeout time.Duration) *columnLookup {
	c := &columnLookup{cache: map[string]*tableCols{}}
	db, err := sql.Open("mysql", driverConfig(srv, timeout).FormatDSN())
	if err != nil {
		c.err = err
		return c
	}
	c.db = db
	return c
}

func (c *columnLookup) close() {
	if c.db != nil {
		c.db.Close()
	}
}

// columns returns the table's columns by ordinal position, nil when they
// cannot be read.
func (c *columnLookup) columns(schema, table string) *tableCols {
	key := schema + "." + table
	if t, ok := c.cache[key]; ok {
		return t
	}
	c.cache[key] = nil
	if c.db == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := c.db.QueryContext(ctx, "SELECT COLUMN_NAME, COLUMN_TYPE, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", schema, table)
	if err != nil {
		return nil
	}
	defer rows.Close()
	t := &tableCols{}
	for rows.Next() {
		var name, ctype, dtype string
		if rows.Scan(&name, &ctype, &dtype) != nil {
			return nil
		}
		t.names = append(t.names, name)
		t.unsigned = append(t.unsigned, strings.Contains(strings.ToLower(ctype), "unsigned"))
		t.float = append(t.float, dtype == "float" || dtype == "double")
	}
	if rows.Err() != nil || len(t.names) == 0 {
		return nil
	}
	c.cache[key] = t
	return t
}

// decodeDivergent decodes the transactions of a saved binlog copy that
// starts at from.
func decodeDivergent(path string, from Coord, cols *columnLookup) ([]DivergentTx, error) {
	r, err := binlog.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	file := from.File
	lastEnd := int64(from.Pos)
	var out []DivergentTx
	var cur *DivergentTx
	tables := map[string]bool{}
	begin := func(ev *binlog.Event) {
		out = append(out, DivergentTx{Binlog: fmt.Sprintf("%s:%d", file, uint64(ev.LogPos)-uint64(ev.EventSize)),
			Time: time.Unix(int64(ev.Timestamp), 0).UTC()})
		cur = &out[len(out)-1]
		clear(tables)
	}
	end := func(ev *binlog.Event) {
		if cur == nil {
			return
		}
		cur.end = Coord{File: file, Pos: uint64(ev.LogPos)}
		for t := range tables {
			cur.Tables = append(cur.Tables, t)
		}
		sort.Strings(cur.Tables)
		cur = nil
	}
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		// A saved copy concatenates the files: a position that goes back
		// without a rotate or stop event before it starts the next file.
		fde := ev.Type == replication.FORMAT_DESCRIPTION_EVENT
		if start := int64(ev.LogPos) - int64(ev.EventSize); !fde && ev.LogPos > 0 && lastEnd > 0 && start < lastEnd {
			file = nextBinlogName(file)
		}
		if !fde && ev.LogPos > 0 {
			lastEnd = int64(ev.LogPos)
		}
		switch ev.Type {
		case replication.FORMAT_DESCRIPTION_EVENT, replication.MARIADB_GTID_LIST_EVENT, replication.MARIADB_BINLOG_CHECKPOINT_EVENT,
			replication.PREVIOUS_GTIDS_EVENT, replication.HEARTBEAT_EVENT, replication.MARIADB_ANNOTATE_ROWS_EVENT,
			replication.ROWS_QUERY_EVENT, replication.IGNORABLE_EVENT, replication.MARIADB_START_ENCRYPTION_EVENT:
			continue
		case replication.STOP_EVENT:
			// The server stopped: its next binlog file (no rotate event
			// names it) is the one numbered next.
			file, lastEnd = nextBinlogName(file), 0
			continue
		case replication.ROTATE_EVENT:
			e, err := r.Decode(ev)
			if err != nil {
				return nil, err
			}
			if re, ok := e.(*replication.RotateEvent); ok {
				file, lastEnd = string(re.NextLogName), 0
			}
			continue
		}
		e, err := r.Decode(ev)
		if err != nil {
			return nil, err
		}
		switch e := e.(type) {
		case *replication.MariadbGTIDEvent:
			end(ev)
			begin(ev)
			cur.GTID = fmt.Sprintf("%d-%d-%d", e.GTID.DomainID, e.GTID.ServerID, e.GTID.SequenceNumber)
			if e.Flags&replication.BINLOG_MARIADB_FL_STANDALONE != 0 {
				cur.notReplayable = "a statement outside any transaction (DDL): replay it by hand if it is wanted"
			}
		case *replication.GTIDEvent:
			end(ev)
			begin(ev)
			if g, err := e.GTIDNext(); err == nil {
				cur.GTID = g.String()
			}
		case *replication.QueryEvent:
			q := strings.TrimSpace(string(e.Query))
			switch {
			case strings.EqualFold(q, "BEGIN"):
				if cur == nil {
					begin(ev)
				}
				continue
			case strings.EqualFold(q, "COMMIT"):
				end(ev)
				continue
			}
			standalone := cur == nil || cur.notReplayable != ""
			if cur == nil {
				begin(ev)
			}
			db := string(e.Schema)
			stmt := q
			if db != "" {
				stmt = "USE " + quoteName(db) + "; " + q
			}
			cur.SQL = append(cur.SQL, stmt)
			cur.stmts = append(cur.stmts, replayStmt{db: db, sql: q, match: -1})
			cur.statements = true
			if standalone {
				if cur.notReplayable == "" {
					cur.notReplayable = "a statement outside any transaction (DDL): replay it by hand if it is wanted"
				}
				end(ev)
			}
		case *replication.RowsEvent:
			if cur == nil {
				begin(ev)
			}
			addRows(cur, ev.Type, e, cols, tables)
		case *replication.XIDEvent:
			end(ev)
		}
	}
	if cur != nil {
		// SaveTail cuts at transaction boundaries: a last transaction
		// without its end is not one the old master committed.
		out = out[:len(out)-1]
	}
	return out, nil
}

// nextBinlogName is the binlog file numbered after name (mysql-bin.000009
// -> mysql-bin.000010).
func nextBinlogName(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return name
	}
	n, err := strconv.ParseUint(name[i+1:], 10, 64)
	if err != nil {
		return name
	}
	return fmt.Sprintf("%s.%0*d", name[:i], len(name)-i-1, n+1)
}

func quoteName(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// addRows renders one rows event into the transaction: its rows, readable
// SQL and the statements a reconcile runs.
func addRows(tx *DivergentTx, t replication.EventType, e *replication.RowsEvent, cols *columnLookup, tables map[string]bool) {
	schema, table := string(e.Table.Schema), string(e.Table.Table)
	full := schema + "." + table
	tables[full] = true
	n := int(e.Table.ColumnCount)
	names := e.Table.ColumnNameString()
	tc := cols.columns(schema, table)
	unsigned := make([]bool, n)
	float := make([]bool, n)
	if tc != nil && len(tc.names) == n {
		if len(names) != n {
			names = tc.names
		}
		copy(unsigned, tc.unsigned)
		copy(float, tc.float)
	}
	for i, u := range e.Table.UnsignedMap() {
		if i < n {
			unsigned[i] = u
		}
	}
	known := len(names) == n
	if !known {
		names = make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("@%d", i+1)
		}
		if tx.notReplayable == "" {
			tx.notReplayable = fmt.Sprintf("the column names of %s are unknown (not in the binlog, and its information_schema on the old master has no such table with %d columns)", full, n)
		}
	}
	kind := ""
	switch t {
	case replication.WRITE_ROWS_EVENTv0, replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2, replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1:
		kind = "insert"
	case replication.UPDATE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1, replication.PARTIAL_UPDATE_ROWS_EVENT:
		kind = "update"
	default:
		kind = "delete"
	}
	qt := quoteName(schema) + "." + quoteName(table)
	colList := make([]string, n)
	for i, c := range names {
		colList[i] = quoteName(c)
	}
	step := 1
	if kind == "update" {
		step = 2
	}
	for i := 0; i+step-1 < len(e.Rows); i += step {
		row := DivergentRow{Table: full, Type: kind, Columns: names}
		var stmt string
		match := int64(-1)
		switch kind {
		case "insert":
			vals, lits := renderRow(e.Rows[i], e.Table, unsigned)
			row.Values = vals
			stmt = fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", qt, strings.Join(colList, ", "), strings.Join(lits, ", "))
		case "update":
			before, blits := renderRow(e.Rows[i], e.Table, unsigned)
			after, alits := renderRow(e.Rows[i+1], e.Table, unsigned)
			row.Before, row.Values = before, after
			var set []string
			for j := range alits {
				set = append(set, colList[j]+" = "+alits[j])
			}
			stmt = fmt.Sprintf("UPDATE %s SET %s WHERE %s LIMIT 1", qt, strings.Join(set, ", "), whereOf(colList, blits, float))
			match = 1
		default:
			before, blits := renderRow(e.Rows[i], e.Table, unsigned)
			row.Values, row.Before = before, before
			stmt = fmt.Sprintf("DELETE FROM %s WHERE %s LIMIT 1", qt, whereOf(colList, blits, float))
			match = 1
		}
		tx.Rows = append(tx.Rows, row)
		tx.SQL = append(tx.SQL, stmt)
		tx.stmts = append(tx.stmts, replayStmt{sql: stmt, match: match})
		tx.undo = append(tx.undo, undoOf(kind, qt, colList, e.Rows, i, e.Table, unsigned, float))
	}
}

// whereOf matches a before image: every column with <=> (NULL-safe),
// except FLOAT/DOUBLE columns, whose printed value may not compare equal.
func whereOf(cols, lits []string, float []bool) string {
	var w []string
	for i := range cols {
		if i < len(float) && float[i] {
			continue
		}
		w = append(w, cols[i]+" <=> "+lits[i])
	}
	if len(w) == 0 {
		return "1"
	}
	return strings.Join(w, " AND ")
}

// renderRow returns the row's values as text (nil for NULL) and as SQL
// literals.
func renderRow(row []any, tm *replication.TableMapEvent, unsigned []bool) ([]*string, []string) {
	vals := make([]*string, len(row))
	lits := make([]string, len(row))
	for i, v := range row {
		var typ byte
		if i < len(tm.ColumnType) {
			typ = tm.ColumnType[i]
		}
		u := i < len(unsigned) && unsigned[i]
		text, lit, null := renderValue(v, typ, u)
		if !null {
			vals[i] = &text
		}
		lits[i] = lit
	}
	return vals, lits
}

// renderValue is one decoded value as text and as a SQL literal.
func renderValue(v any, typ byte, unsigned bool) (text, lit string, null bool) {
	switch x := v.(type) {
	case nil:
		return "", "NULL", true
	case int8:
		if unsigned && x < 0 {
			s := strconv.FormatUint(uint64(uint8(x)), 10)
			return s, s, false
		}
		s := strconv.FormatInt(int64(x), 10)
		return s, s, false
	case int16:
		if unsigned && x < 0 {
			s := strconv.FormatUint(uint64(uint16(x)), 10)
			return s, s, false
		}
		s := strconv.FormatInt(int64(x), 10)
		return s, s, false
	case int32:
		if unsigned && x < 0 {
			if typ == 9 { // MYSQL_TYPE_INT24
				s := strconv.FormatUint(uint64(uint32(x)&0xffffff), 10)
				return s, s, false
			}
			s := strconv.FormatUint(uint64(uint32(x)), 10)
			return s, s, false
		}
		s := strconv.FormatInt(int64(x), 10)
		return s, s, false
	case int64:
		if unsigned && x < 0 {
			s := strconv.FormatUint(uint64(x), 10)
			return s, s, false
		}
		s := strconv.FormatInt(x, 10)
		return s, s, false
	case uint64:
		s := strconv.FormatUint(x, 10)
		return s, s, false
	case float32:
		s := strconv.FormatFloat(float64(x), 'g', -1, 32)
		return s, s, false
	case float64:
		s := strconv.FormatFloat(x, 'g', -1, 64)
		return s, s, false
	case string:
		if typ == 246 { // MYSQL_TYPE_NEWDECIMAL: a number
			return x, x, false
		}
		return x, stringLiteral([]byte(x)), false
	case []byte:
		return string(x), stringLiteral(x), false
	case time.Time:
		s := x.Format("2006-01-02 15:04:05.999999")
		return s, "'" + s + "'", false
	case fmt.Stringer: // decimal.Decimal
		s := x.String()
		return s, s, false
	}
	s := fmt.Sprint(v)
	return s, stringLiteral([]byte(s)), false
}

// stringLiteral quotes valid UTF-8 text; anything else (binary data,
// another character set's bytes) is a hex literal, so no byte is lost.
func stringLiteral(b []byte) string {
	if len(b) == 0 {
		return "''"
	}
	if !utf8.Valid(b) {
		return "X'" + hex.EncodeToString(b) + "'"
	}
	var sb strings.Builder
	sb.WriteByte('\'')
	for _, c := range string(b) {
		switch c {
		case '\'':
			sb.WriteString("''")
		case '\\':
			sb.WriteString(`\\`)
		case 0:
			sb.WriteString(`\0`)
		case '\n':
			sb.WriteString(`\n`)
		case '\r':
			sb.WriteString(`\r`)
		case 26:
			sb.WriteString(`\Z`)
		default:
			sb.WriteRune(c)
		}
	}
	sb.WriteByte('\'')
	return sb.String()
}

// writeDivergenceFile writes res.File (mode 0600): a header, then per
// transaction a comment block (GTID, binlog position, time, tables) and
// its readable SQL in a transaction of its own. It holds data, never
// credentials.
func writeDivergenceFile(res *DivergenceResult) error {
	part := fmt.Sprintf("%s.%d-%d.part", res.File, os.Getpid(), time.Now().UnixNano())
	f, err := secret.Create(part)
	if err != nil {
		return err
	}
	defer os.Remove(part)
	defer f.Close()
	w := bufio.NewWriter(f)
	first, last := res.GTIDs()
	fmt.Fprintf(w, "-- mharaft divergence file of application %s, server %s\n", res.App, res.Server)
	fmt.Fprintf(w, "-- %d transaction(s) in %s's binlog after the point the failover of epoch %d recovered (%s), up to %s,\n",
		len(res.Transactions), res.Server, res.Epoch, res.From, res.To)
	if first != "" {
		fmt.Fprintf(w, "-- GTIDs %s .. %s,\n", first, last)
	}
	fmt.Fprintf(w, "-- that the current master never got. Review them; `mhactl reconcile --app %s --server %s --apply`\n", res.App, res.Server)
	fmt.Fprintf(w, "-- replays them on the current master as ONE transaction (each UPDATE/DELETE must match its row's\n")
	fmt.Fprintf(w, "-- before image exactly, else nothing is applied). The old master's own events, byte for byte, are in\n")
	fmt.Fprintf(w, "-- %s (mariadb-binlog prints them).\n", filepath.Base(res.RawFile))
	fmt.Fprintf(w, "-- Written %s.\n\n", time.Now().UTC().Format(time.RFC3339))
	for i, t := range res.Transactions {
		fmt.Fprintf(w, "-- Transaction %d of %d\n", i+1, len(res.Transactions))
		if t.GTID != "" {
			fmt.Fprintf(w, "--   GTID:   %s\n", t.GTID)
		}
		fmt.Fprintf(w, "--   binlog: %s (ends at %s)\n", t.Binlog, t.end)
		fmt.Fprintf(w, "--   time:   %s\n", t.Time.Format(time.RFC3339))
		fmt.Fprintf(w, "--   tables: %s\n", strings.Join(t.Tables, ", "))
		if t.notReplayable != "" {
			fmt.Fprintf(w, "--   NOT REPLAYED by reconcile: %s\n", t.notReplayable)
		}
		fmt.Fprintln(w, "BEGIN;")
		for _, s := range t.SQL {
			fmt.Fprintf(w, "%s;\n", s)
		}
		fmt.Fprintf(w, "COMMIT;\n\n")
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", res.File, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", res.File, err)
	}
	return os.Rename(part, res.File)
}

// ReplayResult is what a replay of divergent transactions did on the
// current master. A conflict is not an error: Conflict names the
// transaction and the statement that stopped it, and nothing was applied.
type ReplayResult struct {
	Master   string `json:"master"`  // the current master (name)
	Applied  int    `json:"applied"` // transactions committed (all of them, or 0)
	Conflict string `json:"conflict,omitempty"`
	// The replay's one transaction on the master: its GTID and its range
	// in the master's binlog (the first event to just after the last).
	GTID  string `json:"gtid,omitempty"`
	Start Coord  `json:"start,omitzero"`
	End   Coord  `json:"end,omitzero"`
}

// ReplayDivergence replays txs (ReadDivergence's, in order) on the current
// master as ONE transaction over a fenced connection: all of them commit
// or none does. Each UPDATE and DELETE must match its row's before image
// (every column but FLOAT/DOUBLE ones, NULL-safe) exactly once, and an
// INSERT must not hit a duplicate key; the first statement that does not
// (or fails) rolls the whole replay back and is named in Conflict. A
// transaction that cannot be replayed (a DDL, unknown column names) is a
// conflict before anything runs. On success the replay's GTID and its
// range in the master's binlog are returned: a rejoin of the old master
// skips that range (it holds its own copies of those transactions).
// MariaDB only (the GTID of the commit is @@last_gtid).
func ReplayDivergence(ctx context.Context, opts DivergenceOptions, master string, txs []DivergentTx) (*ReplayResult, error) {
	srv := opts.App.Server(master)
	if srv == nil {
		return nil, fmt.Errorf("%w: the current master %s is not in the configuration of %s", ErrRefused, master, opts.App.Name)
	}
	res := &ReplayResult{Master: srv.Name}
	for i, t := range txs {
		if t.notReplayable != "" {
			res.Conflict = fmt.Sprintf("transaction %d of %d (%s): %s; nothing was applied", i+1, len(txs), t.describe(), t.notReplayable)
			return res, nil
		}
	}
	if len(txs) == 0 {
		return res, nil
	}
	fc := opts.fencing()
	n, err := connect(ctx, srv, opts.timeout(), fc)
	if err != nil {
		return nil, fmt.Errorf("replay on %s: %w", srv, err)
	}
	defer n.close()
	if n.replica != nil || n.readOnly {
		return nil, fmt.Errorf("%w: %s is not a writable master (replica: %v, read_only: %v)", ErrRefused, n, n.replica != nil, n.readOnly)
	}
	if !n.d.V.IsMariaDB() {
		return nil, fmt.Errorf("%w: replaying divergent transactions needs MariaDB (%s runs %s): apply the divergence file by hand", ErrRefused, n, n.version)
	}
	// A connection of its own that reports matched rows, not changed ones
	// (an UPDATE to the values a row already has still matches it).
	cfg := driverConfig(srv, opts.timeout())
	cfg.ClientFoundRows = true
	c, err := newConnector(srv, cfg, opts.timeout(), fc)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("replay on %s: connect: %w", srv, err)
	}
	defer conn.Close()
	before, err := n.masterStatus(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return nil, fmt.Errorf("replay on %s: BEGIN: %w", srv, err)
	}
	rollback := func() { conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") }
	for i, t := range txs {
		for _, s := range t.stmts {
			if s.db != "" {
				if _, err := conn.ExecContext(ctx, "USE "+quoteName(s.db)); err != nil {
					rollback()
					return nil, fmt.Errorf("replay on %s: USE %s: %w", srv, s.db, err)
				}
			}
			r, err := conn.ExecContext(ctx, s.sql)
			why := ""
			switch {
			case err != nil && ctx.Err() != nil:
				rollback()
				return nil, fmt.Errorf("replay on %s: %w", srv, ctx.Err())
			case err != nil:
				why = err.Error()
			case s.match >= 0:
				if got, _ := r.RowsAffected(); got != s.match {
					why = fmt.Sprintf("it matched %d row(s), want %d: the row is gone or was changed on %s since the failover", got, s.match, srv.Name)
				}
			}
			if why != "" {
				rollback()
				res.Conflict = fmt.Sprintf("transaction %d of %d (%s): %s: %s; nothing was applied", i+1, len(txs), t.describe(), s.sql, why)
				return res, nil
			}
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return nil, fmt.Errorf("replay on %s: COMMIT: %w (check with `mhactl reconcile` whether it committed)", srv, err)
	}
	res.Applied = len(txs)
	if err := conn.QueryRowContext(ctx, "SELECT @@last_gtid").Scan(&res.GTID); err != nil {
		return res, fmt.Errorf("replay on %s committed; reading its GTID: %w", srv, err)
	}
	if res.Start, res.End, err = findTransaction(ctx, n, Coord{File: before.File, Pos: before.Pos}, res.GTID); err != nil {
		return res, fmt.Errorf("replay on %s committed as %s; finding it in the binlog: %w", srv, res.GTID, err)
	}
	return res, nil
}

// describe names a transaction for people: its GTID and binlog position.
func (t DivergentTx) describe() string {
	if t.GTID != "" {
		return "GTID " + t.GTID + " at " + t.Binlog
	}
	return "at " + t.Binlog
}

// findTransaction finds the transaction with MariaDB GTID gtid in n's
// binlog from `from` on: the position of its GTID event and the end of its
// last event.
func findTransaction(ctx context.Context, n *node, from Coord, gtid string) (start, end Coord, err error) {
	logs, err := n.queryRows(ctx, n.d.ShowBinaryLogs())
	if err != nil {
		return start, end, err
	}
	for _, l := range logs {
		file := l["Log_name"]
		pos := uint64(4)
		switch c := (Coord{File: file}).Compare(Coord{File: from.File}); {
		case c < 0:
			continue
		case c == 0:
			pos = from.Pos
		}
		rows, err := n.queryRows(ctx, fmt.Sprintf("SHOW BINLOG EVENTS IN %s FROM %d", dialect.QuoteString(file), pos))
		if err != nil {
			return start, end, err
		}
		for _, e := range rows {
			switch {
			case start.IsZero() && e["Event_type"] == "Gtid" && strings.HasSuffix(e["Info"], " "+gtid):
				p, _ := strconv.ParseUint(e["Pos"], 10, 64)
				start = Coord{File: file, Pos: p}
			case !start.IsZero() && (e["Event_type"] == "Xid" || e["Event_type"] == "Query" && strings.HasPrefix(e["Info"], "COMMIT")):
				p, _ := strconv.ParseUint(e["End_log_pos"], 10, 64)
				return start, Coord{File: file, Pos: p}, nil
			}
		}
	}
	return start, end, fmt.Errorf("no complete transaction with GTID %s in the binlog after %s", gtid, from)
}

// undoOf is the statement that reverts one row change (rows[i], and
// rows[i+1] for an update's after image): an insert is deleted, an update
// set back to its before image, a deleted row inserted again. UPDATE and
// DELETE must match exactly one row in the state the change left.
func undoOf(kind, qt string, cols []string, rows [][]any, i int, tm *replication.TableMapEvent, unsigned, float []bool) replayStmt {
	switch kind {
	case "insert":
		_, lits := renderRow(rows[i], tm, unsigned)
		return replayStmt{sql: fmt.Sprintf("DELETE FROM %s WHERE %s LIMIT 1", qt, whereOf(cols, lits, float)), match: 1}
	case "update":
		_, before := renderRow(rows[i], tm, unsigned)
		_, after := renderRow(rows[i+1], tm, unsigned)
		set := make([]string, len(cols))
		for j := range cols {
			set[j] = cols[j] + " = " + before[j]
		}
		return replayStmt{sql: fmt.Sprintf("UPDATE %s SET %s WHERE %s LIMIT 1", qt, strings.Join(set, ", "), whereOf(cols, after, float)), match: 1}
	}
	_, lits := renderRow(rows[i], tm, unsigned)
	return replayStmt{sql: fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", qt, strings.Join(cols, ", "), strings.Join(lits, ", ")), match: -1}
}

// invertible tells whether every transaction can be reverted row by row.
func invertible(txs []DivergentTx) bool {
	for _, t := range txs {
		if t.statements || t.notReplayable != "" {
			return false
		}
	}
	return true
}

// rewind reverts txs on the old master n, newest row change first, as one
// transaction with sql_log_bin=0 (its binlog keeps what it logged; the
// rewind is not a transaction of its own), over a fenced connection that
// reports matched rows. Every revert must match its row exactly: a row
// changed since (by anything) stops it and nothing is reverted.
func rewind(ctx context.Context, n *node, fc *fencing, timeout time.Duration, txs []DivergentTx) error {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	cfg := driverConfig(n.srv, timeout)
	cfg.ClientFoundRows = true
	c, err := newConnector(n.srv, cfg, timeout, fc)
	if err != nil {
		return err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("rewind %s: connect: %w", n, err)
	}
	defer conn.Close()
	for _, q := range []string{"SET SESSION sql_log_bin = 0", "BEGIN"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("rewind %s: %s: %w", n, q, err)
		}
	}
	run := func(s replayStmt) string {
		r, err := conn.ExecContext(ctx, s.sql)
		if err != nil {
			return err.Error()
		}
		if got, _ := r.RowsAffected(); s.match >= 0 && got != s.match {
			return fmt.Sprintf("it matched %d row(s), want %d", got, s.match)
		}
		return ""
	}
	rollback := func() { conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") }
	for i := len(txs) - 1; i >= 0; i-- {
		for j := len(txs[i].undo) - 1; j >= 0; j-- {
			s := txs[i].undo[j]
			why := run(s)
			if why == "" {
				continue
			}
			rollback()
			// An earlier rejoin may have rewound it already (and failed
			// later): then the transactions apply again, exactly.
			if rewound(ctx, conn, txs, run) {
				fc.logf("%s: its divergent transactions were rewound already (they apply again exactly).", n)
				return nil
			}
			return fmt.Errorf("%w: rewinding transaction %d (%s) on %s: %s: %s: its rows changed since the divergence was read; rebuild %s from a backup of the current master",
				ErrRefused, i+1, txs[i].describe(), n, s.sql, why, n)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("rewind %s: COMMIT: %w", n, err)
	}
	return nil
}

// rewound tells whether the rows are where the transactions started: they
// all replay exactly (in a transaction rolled back afterwards).
func rewound(ctx context.Context, conn *sql.Conn, txs []DivergentTx, run func(replayStmt) string) bool {
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return false
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	for _, t := range txs {
		for _, s := range t.stmts {
			if run(s) != "" {
				return false
			}
		}
	}
	return true
}

// ParseCoord parses Coord.String's "file:pos".
func ParseCoord(s string) (Coord, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return Coord{}, fmt.Errorf("binlog coordinates %q: want file:pos", s)
	}
	p, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil {
		return Coord{}, fmt.Errorf("binlog coordinates %q: %w", s, err)
	}
	return Coord{File: s[:i], Pos: p}, nil
}
