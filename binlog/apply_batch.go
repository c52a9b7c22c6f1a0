package binlog

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// How Apply sends its statements (see doc.go for what they are).
//
// A batch is one multi-statement COM_QUERY packet, built in place: the
// buffer starts with packetHead bytes reserved for the packet header and
// the command byte, so it is written as it is.
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
//
// Fragments (MariaDB): the server lexes a BINLOG '<base64>' literal byte
// by byte, which costs it more than decoding the base64. So on MariaDB a
// big BINLOG statement (fragMin bytes of base64 or more) travels outside
// the query: its base64 text is sent as long data (COM_STMT_SEND_LONG_DATA,
// no reply) for one or two parameters of the prepared statement
//
//	SET @mharaft_apply_rows_0=?, ..., @mharaft_apply_rows_15=?, @mharaft_apply_params=?
//
// executed (COM_STMT_EXECUTE, one OK) just before the batch's query, which
// then says BINLOG @mharaft_apply_rows_j, @mharaft_apply_rows_j+1 (or
// @mharaft_apply_empty as the second fragment): MariaDB's fragmented
// BINLOG form, as mariadb-binlog writes for big events. The server
// concatenates the two variables (and empties them), decodes and applies
// the events exactly as for the literal. A parameter is a binary string,
// so no charset conversion either. The execute also sets
// @mharaft_apply_params=k, and the guard of batch k checks it: if the
// execute failed, nothing of batch k runs. Each fragment holds up to
// max_allowed_packet bytes (the server's limit on long data), so an event
// whose base64 text is larger than max_allowed_packet (the target's
// setting may be smaller than the master's) still applies: in two
// fragments, up to 1.5 times max_allowed_packet of event bytes.

// packetHead is the 4-byte packet header and the COM_QUERY byte.
const packetHead = 5

// stmtSep ends every statement of a batch.
const stmtSep = "\n;\n"

// batchVar holds the number of the last batch that ran to its end.
const batchVar = "@mharaft_apply_batch"

const (
	// ldHead is the head of a COM_STMT_SEND_LONG_DATA packet: packet
	// header, command, statement id, parameter number.
	ldHead = 4 + 1 + 4 + 2
	// fragSlots is the number of fragment parameters of one batch.
	fragSlots = 16
	// fragMin is the size of base64 text from which a BINLOG statement is
	// sent in fragments rather than as a literal.
	fragMin   = 16 << 10
	fragVar   = "@mharaft_apply_rows_"
	emptyVar  = "@mharaft_apply_empty"
	paramsVar = "@mharaft_apply_params"
	// errParse is ER_PARSE_ERROR: the server does not know a syntax.
	errParse = 1064
)

// sent is a batch whose results have not been read yet.
type sent struct {
	batch   []byte
	stmts   []stmtInfo
	frags   []fragments
	seq     uint8 // sequence number of its query's first result packet
	exec    bool  // a COM_STMT_EXECUTE was sent before the query
	execSeq uint8 // sequence number of its result
}

// fragments is a BINLOG statement of the batch whose base64 text is sent
// as long data for parameters slot (the first split bytes) and slot+1 (the
// rest, if any).
type fragments struct {
	buf   []byte // ldHead bytes reserved, then the base64 text
	slot  int
	split int
}

// rowsStmt is the open BINLOG statement: table map and row events are
// base64-encoded into applier.b64 as they come. Base64 works on 3-byte
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

// batchLen is the size of the batch: its statements, the fragments it
// sends and the open BINLOG statement.
func (a *applier) batchLen() int {
	return len(a.batch) - packetHead + a.fragBytes + len(a.b64) - ldHead
}

// startBatch begins the next batch with its guard.
func (a *applier) startBatch() {
	a.batchNo++
	if n := len(a.spare); n > 0 {
		a.batch, a.stmts, a.frags = a.spare[n-1].batch[:0], a.spare[n-1].stmts[:0], a.spare[n-1].frags[:0]
		a.spare = a.spare[:n-1]
	} else {
		a.batch, a.stmts, a.frags = make([]byte, 0, 64<<10), nil, nil
	}
	a.fragBytes, a.slotsUsed = 0, 0
	a.batch = append(a.batch, make([]byte, packetHead)...)
	st := stmtInfo{file: a.file, start: len(a.batch), internal: true}
	a.batch = append(a.batch, "SET @mharaft_apply_guard=(SELECT 1 UNION ALL SELECT 1 FROM DUAL WHERE NOT ("+batchVar+" <=> "...)
	a.batch = strconv.AppendInt(a.batch, int64(a.batchNo-1), 10)
	if a.stmtID != 0 {
		a.batch = append(a.batch, " AND "+paramsVar+" <=> "...)
		a.batch = strconv.AppendInt(a.batch, int64(a.batchNo), 10)
	}
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
			// The server lexes the base64 text of a literal byte by
			// byte; in a multi-byte client charset (utf8mb4) it checks
			// every byte for a multi-byte sequence, which costs more
			// than the rest of the parse. Base64 is ASCII: lex it as
			// latin1. Query events restore their own charset (see
			// event).
			a.addInternal(ev, "SET @@session.character_set_client=latin1")
			a.latin1 = true
		}
		*r = rowsStmt{open: true, st: stmtInfo{file: a.file, off: ev.Offset}}
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
		a.b64 = base64.StdEncoding.AppendEncode(a.b64, r.carry[:])
		r.nCarry = 0
	}
	whole := len(p) / 3 * 3
	a.b64 = base64.StdEncoding.AppendEncode(a.b64, p[:whole])
	r.nCarry = copy(r.carry[:], p[whole:])
}

// closeRows ends the open BINLOG statement, if any: in fragments if the
// server takes them and the statement is big, else as a literal.
func (a *applier) closeRows() {
	r := &a.rows
	if !r.open {
		return
	}
	a.b64 = base64.StdEncoding.AppendEncode(a.b64, r.carry[:r.nCarry])
	text := a.b64[ldHead:]
	n := 1
	if len(text) > a.maxFrag {
		n = 2
	}
	st := r.st
	st.start = len(a.batch)
	if a.stmtID != 0 && len(text) >= fragMin && a.slotsUsed+n <= fragSlots {
		f := fragments{buf: a.b64, slot: a.slotsUsed, split: len(text)}
		second := emptyVar
		if n == 2 {
			f.split = len(text) / 2
			second = fragVar + strconv.Itoa(f.slot+1)
		}
		a.batch = append(a.batch, "BINLOG "+fragVar...)
		a.batch = strconv.AppendInt(a.batch, int64(f.slot), 10)
		a.batch = append(a.batch, ", "+second...)
		a.frags = append(a.frags, f)
		a.slotsUsed += n
		a.fragBytes += len(text)
		st.frag = len(a.frags)
		a.b64 = a.newB64()
	} else {
		// (An event too big for a literal always gets a fresh batch, so
		// it finds free slots.)
		a.batch = append(a.batch, "BINLOG '"...)
		a.batch = append(a.batch, text...)
		a.batch = append(a.batch, '\'')
		a.b64 = a.b64[:ldHead]
	}
	a.endStmt(st)
	*r = rowsStmt{}
}

// newB64 returns an empty buffer for base64 text, ldHead bytes reserved.
func (a *applier) newB64() []byte {
	if n := len(a.b64Pool); n > 0 {
		b := a.b64Pool[n-1]
		a.b64Pool = a.b64Pool[:n-1]
		return b[:ldHead]
	}
	return make([]byte, ldHead, 64<<10)
}

// flush ends the batch with its marker and sends it (its fragments, the
// execute that sets them, the query), then reads the results of the batch
// sent before it (so the server executes this one while the next is
// built), and starts the next batch. The open BINLOG statement must be
// closed first.
func (a *applier) flush() error {
	if len(a.stmts) <= 1 { // only the guard
		return nil
	}
	st := stmtInfo{file: a.file, start: len(a.batch), internal: true}
	a.batch = append(a.batch, "SET "+batchVar+"="...)
	a.batch = strconv.AppendInt(a.batch, int64(a.batchNo), 10)
	a.endStmt(st)

	b := sent{batch: a.batch, stmts: a.stmts, frags: a.frags}
	sendErr := func(what string, err error) error {
		return &ApplyError{Server: a.target.Name, File: a.stmts[1].file, Offset: a.stmts[1].off, Statement: "(batch)",
			Err: fmt.Errorf("send %s: %w", what, err)}
	}
	if a.stmtID != 0 {
		for _, f := range a.frags {
			if err := a.sendFragments(f); err != nil {
				return sendErr("row events as long data", err)
			}
		}
		a.execBuf = a.appendExecute(a.execBuf[:0])
		a.conn.ResetSequence()
		if err := a.conn.WritePacket(a.execBuf); err != nil {
			return sendErr("the execute of the row event parameters", err)
		}
		b.exec, b.execSeq = true, a.conn.Sequence
	}
	a.conn.ResetSequence()
	a.batch[4] = mysql.COM_QUERY
	if err := a.conn.WritePacket(a.batch); err != nil {
		return sendErr(fmt.Sprintf("%d statements", len(a.stmts)), err)
	}
	b.seq = a.conn.Sequence
	a.inflight = append(a.inflight, b)
	a.batchTx = 0
	var err error
	if len(a.inflight) > 1 {
		err = a.waitOldest()
	}
	a.startBatch()
	return err
}

// sendFragments sends the base64 text of f as long data, in packets of at
// most maxBatch bytes. The head of each packet is written over the bytes
// just before its data (the reserved head, or the end of the data already
// sent).
func (a *applier) sendFragments(f fragments) error {
	text := len(f.buf) - ldHead
	for k, part := range [2][2]int{{0, f.split}, {f.split, text}} {
		for off := part[0]; off < part[1]; off += a.maxBatch {
			end := min(off+a.maxBatch, part[1])
			p := f.buf[off : ldHead+end]
			p[4] = mysql.COM_STMT_SEND_LONG_DATA
			binary.LittleEndian.PutUint32(p[5:], a.stmtID)
			binary.LittleEndian.PutUint16(p[9:], uint16(f.slot+k))
			a.conn.ResetSequence()
			if err := a.conn.WritePacket(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendExecute appends the COM_STMT_EXECUTE packet of the batch: the
// fragment parameters sent as long data, NULL for the others, and the
// batch number.
func (a *applier) appendExecute(p []byte) []byte {
	p = append(p, 0, 0, 0, 0, mysql.COM_STMT_EXECUTE)
	p = binary.LittleEndian.AppendUint32(p, a.stmtID)
	p = append(p, 0)                           // no cursor
	p = binary.LittleEndian.AppendUint32(p, 1) // iteration count
	var nulls [(fragSlots + 1 + 7) / 8]byte
	for i := a.slotsUsed; i < fragSlots; i++ {
		nulls[i/8] |= 1 << (i % 8)
	}
	p = append(p, nulls[:]...)
	p = append(p, 1) // the types follow
	for range fragSlots {
		p = append(p, mysql.MYSQL_TYPE_BLOB, 0)
	}
	p = append(p, mysql.MYSQL_TYPE_LONGLONG, 0)
	return binary.LittleEndian.AppendUint64(p, uint64(a.batchNo))
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
	defer func() {
		for _, f := range b.frags {
			a.b64Pool = append(a.b64Pool, f.buf)
		}
		a.spare = append(a.spare, b)
	}()
	var execErr error
	if b.exec {
		a.conn.Sequence = b.execSeq
		if _, err := a.results(1); err != nil {
			execErr = fmt.Errorf("set the row event parameters: %w", err)
		}
	}
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
	if execErr != nil {
		// The guard failed too: report why, naming the first statement
		// sent in fragments (or the first statement of the batch).
		err, n = execErr, 1
		for i, st := range b.stmts {
			if st.frag > 0 {
				n = i
				break
			}
		}
	}
	if err == nil || a.failed {
		return nil
	}
	a.failed = true
	if n >= len(b.stmts) {
		n = len(b.stmts) - 1
	}
	st := b.stmts[n]
	return &ApplyError{Server: a.target.Name, File: st.file, Offset: st.off, Statement: b.text(st), Err: err}
}

// text is the statement st of the batch, shortened, for errors.
func (b *sent) text(st stmtInfo) string {
	text := string(b.batch[st.start:st.stop])
	if st.frag > 0 {
		b64 := b.frags[st.frag-1].buf[ldHead:]
		return fmt.Sprintf("BINLOG '%s...' (%d bytes of base64, sent as %s)", b64[:min(len(b64), 300)], len(b64), text)
	}
	if st.internal {
		text = "(batch guard) " + text
	}
	if len(text) > 300 {
		text = text[:300] + "..."
	}
	return text
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

// prepareFragments prepares the statement that sets the fragment
// parameters, if the server knows the fragmented BINLOG form (MariaDB
// 10.2 on; preparing BINLOG @a, @b parses it without running it). It
// leaves stmtID 0 otherwise.
func (a *applier) prepareFragments() error {
	probe, err := a.prepare("BINLOG " + emptyVar + ", " + emptyVar)
	var me *mysql.MyError
	switch {
	case errors.As(err, &me) && me.Code == errParse:
		return nil
	case err == nil:
		a.closeStmt(probe)
	case !errors.As(err, &me): // not a server's refusal (BINLOG cannot be prepared)
		return err
	}
	if _, err := a.conn.Execute("SET " + emptyVar + "=''"); err != nil {
		return err
	}
	q := "SET "
	for i := range fragSlots {
		q += fragVar + strconv.Itoa(i) + "=?, "
	}
	id, err := a.prepare(q + paramsVar + "=?")
	if err != nil {
		return err
	}
	a.stmtID = id
	return nil
}

// prepare sends COM_STMT_PREPARE and returns the statement id.
// (go-mysql's Conn.Prepare does not tell the id.)
func (a *applier) prepare(q string) (uint32, error) {
	p := append([]byte{0, 0, 0, 0, mysql.COM_STMT_PREPARE}, q...)
	a.conn.ResetSequence()
	if err := a.conn.WritePacket(p); err != nil {
		return 0, err
	}
	p, err := a.conn.ReadPacket()
	if err != nil {
		return 0, err
	}
	if len(p) > 0 && p[0] == mysql.ERR_HEADER {
		return 0, parseErrPacket(p)
	}
	if len(p) < 9 || p[0] != mysql.OK_HEADER {
		return 0, fmt.Errorf("prepare: malformed reply")
	}
	id := binary.LittleEndian.Uint32(p[1:])
	cols, params := binary.LittleEndian.Uint16(p[5:]), binary.LittleEndian.Uint16(p[7:])
	// The definitions of the parameters, then of the columns, each list
	// ending with an EOF packet.
	for _, n := range []uint16{params, cols} {
		if n == 0 {
			continue
		}
		for {
			p, err := a.conn.ReadPacket()
			if err != nil {
				return 0, err
			}
			if len(p) > 0 && p[0] == mysql.EOF_HEADER && len(p) < 9 {
				break
			}
		}
	}
	return id, nil
}

// closeStmt sends COM_STMT_CLOSE (the server does not reply).
func (a *applier) closeStmt(id uint32) {
	p := binary.LittleEndian.AppendUint32([]byte{0, 0, 0, 0, mysql.COM_STMT_CLOSE}, id)
	a.conn.ResetSequence()
	a.conn.WritePacket(p)
}
