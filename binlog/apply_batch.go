package binlog

import (
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// How Apply sends its statements (see doc.go for what they are).
//
// A batch is one multi-statement COM_QUERY packet, built in place: the
// buffer starts with packetHead bytes reserved for the packet header and
// the command byte, and the base64 text of BINLOG statements is encoded
// straight into it, so event bytes are copied once (file buffer to packet)
// and the packet is written as it is.
//
// Two batches are in flight: batch k+1 is written before the results of
// batch k are read, so the server finds its next batch waiting when it
// finishes one. After a failing statement the server skips the rest of
// that packet but would execute the next one, so every batch starts with
// a guard that fails unless the batch before it ran to its end:
//
//	SET @mharaft_apply_guard=(SELECT 1 UNION ALL SELECT 1 FROM DUAL WHERE NOT (@mharaft_apply_batch <=> k-1))
//	... the statements of batch k ...
//	SET @mharaft_apply_batch=k
//
// (the subquery returns two rows, an error, unless batch k-1 set its
// number). User variable assignments are not written to the binlog. So
// Apply still stops at the first failing statement: nothing after it is
// executed.

// packetHead is the 4-byte packet header and the COM_QUERY byte.
const packetHead = 5

// stmtSep ends every statement of a batch.
const stmtSep = "\n;\n"

// batchVar holds the number of the last batch that ran to its end.
const batchVar = "@mharaft_apply_batch"

// sent is a batch whose results have not been read yet.
type sent struct {
	batch []byte
	stmts []stmtInfo
	seq   uint8 // sequence number of its first result packet
}

// rowsStmt is the open BINLOG statement: table map and row events are
// base64-encoded into the batch as they come. Base64 works on 3-byte
// groups, so up to 2 bytes wait in carry for the next event.
type rowsStmt struct {
	open   bool
	st     stmtInfo
	carry  [3]byte
	nCarry int
}

// binlogStmtLen is the size of a BINLOG statement carrying n event bytes.
func binlogStmtLen(n int) int {
	return len("BINLOG ''") + base64.StdEncoding.EncodedLen(n) + len(stmtSep)
}

// batchLen is the size of the statements queued in the batch.
func (a *applier) batchLen() int { return len(a.batch) - packetHead }

// startBatch begins the next batch with its guard.
func (a *applier) startBatch() {
	a.batchNo++
	if n := len(a.spare); n > 0 {
		a.batch, a.stmts = a.spare[n-1].batch[:0], a.spare[n-1].stmts[:0]
		a.spare = a.spare[:n-1]
	} else {
		a.batch, a.stmts = make([]byte, 0, 64<<10), nil
	}
	a.batch = append(a.batch, make([]byte, packetHead)...)
	st := stmtInfo{file: a.file, start: len(a.batch), internal: true}
	a.batch = append(a.batch, "SET @mharaft_apply_guard=(SELECT 1 UNION ALL SELECT 1 FROM DUAL WHERE NOT ("+batchVar+" <=> "...)
	a.batch = strconv.AppendInt(a.batch, int64(a.batchNo-1), 10)
	a.batch = append(a.batch, "))"...)
	a.endStmt(st)
}

// addBinlog appends a BINLOG statement carrying raw (a format description
// event).
func (a *applier) addBinlog(ev *Event, raw []byte) {
	st := stmtInfo{file: a.file, off: ev.Offset, end: ev.End(), start: len(a.batch)}
	a.batch = append(a.batch, "BINLOG '"...)
	a.batch = base64.StdEncoding.AppendEncode(a.batch, raw)
	a.batch = append(a.batch, '\'')
	a.endStmt(st)
}

// addRows appends a table map or row event to the open BINLOG statement,
// opening one if needed.
//
// A group (the table maps of a statement, then its row events) may be
// split across BINLOG statements (a batch ends inside it). The server
// forgets the table maps at the end of each BINLOG statement and silently
// skips row events whose table id is not mapped, so a statement that
// starts inside a group first repeats the group's table maps.
func (a *applier) addRows(ev *Event) {
	isMap := ev.Type == replication.TABLE_MAP_EVENT
	if isMap && a.afterRows { // a table map after row events starts a new group
		a.endRowsGroup()
	}
	r := &a.rows
	if !r.open {
		if !a.latin1 {
			// The server lexes the base64 text byte by byte; in a
			// multi-byte client charset (utf8mb4) it checks every byte
			// for a multi-byte sequence, which costs more than the rest
			// of the parse. Base64 is ASCII: lex it as latin1. Query
			// events restore their own charset (see event).
			a.addInternal(ev, "SET @@session.character_set_client=latin1")
			a.latin1 = true
		}
		*r = rowsStmt{open: true, st: stmtInfo{file: a.file, off: ev.Offset, start: len(a.batch)}}
		a.batch = append(a.batch, "BINLOG '"...)
		if !isMap {
			a.appendBase64(a.maps)
		}
	}
	r.st.end = ev.End()
	a.appendBase64(ev.Raw)
	if isMap {
		a.maps = append(a.maps, ev.Raw...)
	} else {
		a.afterRows = true
	}
}

// endRowsGroup is called when a group of table map and row events ends.
func (a *applier) endRowsGroup() {
	a.maps, a.afterRows = a.maps[:0], false
}

// appendBase64 encodes p into the open BINLOG statement.
func (a *applier) appendBase64(p []byte) {
	r := &a.rows
	if r.nCarry > 0 {
		n := copy(r.carry[r.nCarry:], p)
		r.nCarry += n
		p = p[n:]
		if r.nCarry < 3 {
			return
		}
		a.batch = base64.StdEncoding.AppendEncode(a.batch, r.carry[:])
		r.nCarry = 0
	}
	whole := len(p) / 3 * 3
	a.batch = base64.StdEncoding.AppendEncode(a.batch, p[:whole])
	r.nCarry = copy(r.carry[:], p[whole:])
}

// closeRows ends the open BINLOG statement, if any.
func (a *applier) closeRows() {
	r := &a.rows
	if !r.open {
		return
	}
	a.batch = base64.StdEncoding.AppendEncode(a.batch, r.carry[:r.nCarry])
	a.batch = append(a.batch, '\'')
	a.endStmt(r.st)
	*r = rowsStmt{}
}

// flush ends the batch with its marker and sends it, then reads the
// results of the batch sent before it (so the server executes this one
// while the next is built), and starts the next batch. The open BINLOG
// statement must be closed first.
func (a *applier) flush() error {
	if len(a.stmts) <= 1 { // only the guard
		return nil
	}
	st := stmtInfo{file: a.file, start: len(a.batch), internal: true}
	a.batch = append(a.batch, "SET "+batchVar+"="...)
	a.batch = strconv.AppendInt(a.batch, int64(a.batchNo), 10)
	a.endStmt(st)

	a.conn.ResetSequence()
	a.batch[4] = mysql.COM_QUERY
	if err := a.conn.WritePacket(a.batch); err != nil {
		return &ApplyError{Server: a.target.Name, File: a.stmts[1].file, Offset: a.stmts[1].off, Statement: "(batch)",
			Err: fmt.Errorf("send %d statements: %w", len(a.stmts), err)}
	}
	a.inflight = append(a.inflight, sent{batch: a.batch, stmts: a.stmts, seq: a.conn.Sequence})
	a.batchTx = 0
	var err error
	if len(a.inflight) > 1 {
		err = a.waitOldest()
	}
	a.startBatch()
	return err
}

// waitAll reads the results of every batch in flight.
func (a *applier) waitAll() error {
	var first error
	for len(a.inflight) > 0 {
		if err := a.waitOldest(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// waitOldest reads the results of the oldest batch in flight and accounts
// for it. Once a batch failed, the guard failures of the batches sent after
// it are expected and not reported.
func (a *applier) waitOldest() error {
	b := a.inflight[0]
	a.inflight = append(a.inflight[:0], a.inflight[1:]...)
	defer func() { a.spare = append(a.spare, b) }()
	a.conn.Sequence = b.seq // another packet may have been written since
	ok, err := a.results(len(b.stmts))
	n := min(ok, len(b.stmts))
	for _, st := range b.stmts[:n] {
		if st.internal {
			continue
		}
		a.res.Statements++
		if st.commit {
			a.res.Transactions++
			a.res.Events += st.events
			a.res.LastFile, a.res.LastPos = st.file, st.end
			if st.gtid != "" {
				a.res.LastGTID = st.gtid
			}
		}
	}
	if err == nil {
		return nil
	}
	if a.failed {
		return nil
	}
	a.failed = true
	if n >= len(b.stmts) {
		n = len(b.stmts) - 1
	}
	st := b.stmts[n]
	text := string(b.batch[st.start:st.stop])
	if st.internal {
		text = "(batch guard) " + text
	}
	if len(text) > 300 {
		text = text[:300] + "..."
	}
	return &ApplyError{Server: a.target.Name, File: st.file, Offset: st.off, Statement: text, Err: err}
}

// results reads the results of n statements sent in one batch, stopping at
// the first error, and returns how many succeeded. (go-mysql's
// ExecuteMultiple relies on SERVER_MORE_RESULTS_EXISTS, which MariaDB does
// not set after a BINLOG statement.)
func (a *applier) results(n int) (int, error) {
	ok := 0
	for ok < n {
		p, err := a.conn.ReadPacket()
		if err != nil {
			return ok, fmt.Errorf("read result %d of %d: %w", ok+1, n, err)
		}
		switch {
		case len(p) > 0 && p[0] == mysql.OK_HEADER:
			ok++
		case len(p) > 0 && p[0] == mysql.ERR_HEADER:
			return ok, parseErrPacket(p)
		default:
			return ok, fmt.Errorf("unexpected result set for statement %d of %d", ok+1, n)
		}
	}
	return ok, nil
}
