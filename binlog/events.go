package binlog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"

	"github.com/go-mysql-org/go-mysql/replication"
)

func verifyCRC(raw []byte) error {
	n := len(raw) - 4
	if crc32.ChecksumIEEE(raw[:n]) != binary.LittleEndian.Uint32(raw[n:]) {
		return fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return nil
}

// rotateTarget decodes a rotate event body: position and next file name.
func rotateTarget(body []byte) (uint64, string, error) {
	if len(body) < 8 {
		return 0, "", fmt.Errorf("%w: rotate event of %d bytes", ErrCorrupt, len(body))
	}
	return binary.LittleEndian.Uint64(body), string(body[8:]), nil
}

// GTID is a transaction's global id in the source's own form:
// MariaDB "domain-server-seq", MySQL "uuid:n".
type GTID struct {
	MariaDB  bool
	Domain   uint32
	ServerID uint32
	Seq      uint64
	UUID     string
	// Standalone: a MariaDB GTID of a statement outside BEGIN/COMMIT (DDL).
	Standalone bool
	// XA: a MariaDB GTID of an XA transaction's PREPARE or of its
	// COMMIT/ROLLBACK.
	XA bool
}

func (g GTID) String() string {
	if g.MariaDB {
		return fmt.Sprintf("%d-%d-%d", g.Domain, g.ServerID, g.Seq)
	}
	return fmt.Sprintf("%s:%d", g.UUID, g.Seq)
}

const (
	mariaFlStandalone = 1
	mariaFlPreparedXA = 64
	mariaFlCompleteXA = 128
)

// parseGTID decodes a MariaDB GTID event or a MySQL GTID event body.
func parseGTID(h Header, body []byte) (GTID, error) {
	switch h.Type {
	case replication.MARIADB_GTID_EVENT:
		if len(body) < 13 {
			return GTID{}, fmt.Errorf("%w: GTID event of %d bytes", ErrCorrupt, len(body))
		}
		flags := body[12]
		return GTID{MariaDB: true, Seq: binary.LittleEndian.Uint64(body), Domain: binary.LittleEndian.Uint32(body[8:]),
			ServerID: h.ServerID, Standalone: flags&mariaFlStandalone != 0,
			XA: flags&(mariaFlPreparedXA|mariaFlCompleteXA) != 0}, nil
	case replication.GTID_EVENT:
		if len(body) < 25 {
			return GTID{}, fmt.Errorf("%w: GTID event of %d bytes", ErrCorrupt, len(body))
		}
		u := hex.EncodeToString(body[1:17])
		u = u[0:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:]
		return GTID{UUID: u, Seq: binary.LittleEndian.Uint64(body[17:])}, nil
	}
	return GTID{}, fmt.Errorf("not a GTID event: %s", h.Type)
}

// query is a decoded query event: the statement and its session context.
type query struct {
	threadID uint32
	errCode  uint16
	db       string
	text     []byte
	ctx      sessionContext
}

// sessionContext is what a query event's status variables carry.
type sessionContext struct {
	hasFlags2    bool
	flags2       uint32
	hasSQLMode   bool
	sqlMode      uint64
	hasAutoInc   bool
	autoIncInc   uint16
	autoIncOff   uint16
	hasCharset   bool
	csClient     uint16
	collConn     uint16
	collServer   uint16
	timeZone     string
	hasLCTime    bool
	lcTimeNames  uint16
	hasCollDB    bool
	collDatabase uint16
	hasExplicit  bool
	explicitDefs uint8
	micros       int64 // -1 when absent
}

// parseQuery decodes a query event body (without checksum).
func parseQuery(body []byte) (q query, err error) {
	if len(body) < 13 {
		return q, fmt.Errorf("%w: query event of %d bytes", ErrCorrupt, len(body))
	}
	q.threadID = binary.LittleEndian.Uint32(body)
	dbLen := int(body[8])
	q.errCode = binary.LittleEndian.Uint16(body[9:])
	svLen := int(binary.LittleEndian.Uint16(body[11:]))
	pos := 13
	if pos+svLen+dbLen+1 > len(body) {
		return q, fmt.Errorf("%w: query event lengths exceed its size", ErrCorrupt)
	}
	q.ctx = parseStatusVars(body[pos : pos+svLen])
	pos += svLen
	q.db = string(body[pos : pos+dbLen])
	pos += dbLen + 1
	q.text = body[pos:]
	return q, nil
}

// parseStatusVars decodes the status variables we need; it stops at the
// first code it does not know (codes are written in increasing order and
// the ones we need come first).
func parseStatusVars(b []byte) (c sessionContext) {
	c.micros = -1
	need := func(n int) bool { return len(b) >= n }
	for len(b) > 0 {
		code := b[0]
		b = b[1:]
		switch code {
		case 0: // Q_FLAGS2_CODE
			if !need(4) {
				return
			}
			c.hasFlags2, c.flags2 = true, binary.LittleEndian.Uint32(b)
			b = b[4:]
		case 1: // Q_SQL_MODE_CODE
			if !need(8) {
				return
			}
			c.hasSQLMode, c.sqlMode = true, binary.LittleEndian.Uint64(b)
			b = b[8:]
		case 2: // Q_CATALOG_CODE: len, str, NUL
			if !need(1) || !need(int(b[0])+2) {
				return
			}
			b = b[int(b[0])+2:]
		case 3: // Q_AUTO_INCREMENT
			if !need(4) {
				return
			}
			c.hasAutoInc, c.autoIncInc, c.autoIncOff = true, binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:])
			b = b[4:]
		case 4: // Q_CHARSET_CODE
			if !need(6) {
				return
			}
			c.hasCharset = true
			c.csClient, c.collConn, c.collServer = binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:]), binary.LittleEndian.Uint16(b[4:])
			b = b[6:]
		case 5: // Q_TIME_ZONE_CODE
			if !need(1) || !need(int(b[0])+1) {
				return
			}
			c.timeZone = string(b[1 : 1+int(b[0])])
			b = b[1+int(b[0]):]
		case 6: // Q_CATALOG_NZ_CODE
			if !need(1) || !need(int(b[0])+1) {
				return
			}
			b = b[1+int(b[0]):]
		case 7: // Q_LC_TIME_NAMES_CODE
			if !need(2) {
				return
			}
			c.hasLCTime, c.lcTimeNames = true, binary.LittleEndian.Uint16(b)
			b = b[2:]
		case 8: // Q_CHARSET_DATABASE_CODE
			if !need(2) {
				return
			}
			c.hasCollDB, c.collDatabase = true, binary.LittleEndian.Uint16(b)
			b = b[2:]
		case 9: // Q_TABLE_MAP_FOR_UPDATE_CODE
			if !need(8) {
				return
			}
			b = b[8:]
		case 10: // Q_MASTER_DATA_WRITTEN_CODE
			if !need(4) {
				return
			}
			b = b[4:]
		case 11: // Q_INVOKER: user len, user, host len, host
			if !need(1) || !need(1+int(b[0])+1) {
				return
			}
			b = b[1+int(b[0]):]
			if !need(1) || !need(1+int(b[0])) {
				return
			}
			b = b[1+int(b[0]):]
		case 12: // Q_UPDATED_DB_NAMES
			if !need(1) {
				return
			}
			n := int(b[0])
			b = b[1:]
			if n == 254 { // OVER_MAX_DBS_IN_EVENT_MTS
				continue
			}
			for i := 0; i < n; i++ {
				j := bytes.IndexByte(b, 0)
				if j < 0 {
					return
				}
				b = b[j+1:]
			}
		case 13, 128: // Q_MICROSECONDS, MariaDB Q_HRNOW
			if !need(3) {
				return
			}
			c.micros = int64(b[0]) | int64(b[1])<<8 | int64(b[2])<<16
			b = b[3:]
		case 16: // Q_EXPLICIT_DEFAULTS_FOR_TIMESTAMP
			if !need(1) {
				return
			}
			c.hasExplicit, c.explicitDefs = true, b[0]
			b = b[1:]
		case 17, 129: // Q_DDL_LOGGED_WITH_XID, MariaDB Q_XID
			if !need(8) {
				return
			}
			b = b[8:]
		case 18: // Q_DEFAULT_COLLATION_FOR_UTF8MB4
			if !need(2) {
				return
			}
			b = b[2:]
		case 19, 20, 130: // Q_SQL_REQUIRE_PRIMARY_KEY, Q_DEFAULT_TABLE_ENCRYPTION, MariaDB Q_GTID_FLAGS3
			if !need(1) {
				return
			}
			b = b[1:]
		default:
			return
		}
	}
	return
}

// txTracker follows transaction boundaries through a stream of events.
// Idle means the last event closed a transaction (or none was open): a
// stream may be cut there.
type txTracker struct {
	inTx    bool // inside BEGIN ... COMMIT
	pending bool // a group was opened (GTID, table map, intvar...) and not closed
}

func (t *txTracker) idle() bool { return !t.inTx && !t.pending }

// step feeds one event; body is its body without checksum (may be nil for
// events read header-only). It reports whether the event ended a
// transaction.
func (t *txTracker) step(h Header, body []byte) (ended bool, err error) {
	switch h.Type {
	case replication.MARIADB_GTID_EVENT:
		g, err := parseGTID(h, body)
		if err != nil {
			return false, err
		}
		if g.Standalone {
			t.pending = true
		} else {
			t.inTx = true
		}
	case replication.GTID_EVENT, replication.ANONYMOUS_GTID_EVENT,
		replication.INTVAR_EVENT, replication.RAND_EVENT, replication.USER_VAR_EVENT,
		replication.MARIADB_ANNOTATE_ROWS_EVENT, replication.TABLE_MAP_EVENT, replication.ROWS_QUERY_EVENT:
		t.pending = true
	case replication.QUERY_EVENT, replication.MARIADB_QUERY_COMPRESSED_EVENT:
		var text []byte
		if h.Type == replication.QUERY_EVENT {
			q, err := parseQuery(body)
			if err != nil {
				return false, err
			}
			text = q.text
		}
		switch {
		case isStmt(text, "BEGIN") || isStmt(text, "START TRANSACTION") || isStmt(text, "XA START"):
			t.inTx = true
		case isStmt(text, "COMMIT") || isStmt(text, "ROLLBACK") || isStmt(text, "XA COMMIT") || isStmt(text, "XA ROLLBACK"):
			t.inTx, t.pending = false, false
			return true, nil
		case !t.inTx:
			t.pending = false
			return true, nil
		}
	case replication.XID_EVENT, replication.XA_PREPARE_LOG_EVENT:
		t.inTx, t.pending = false, false
		return true, nil
	case replication.BEGIN_LOAD_QUERY_EVENT, replication.APPEND_BLOCK_EVENT:
		t.pending = true
	case replication.EXECUTE_LOAD_QUERY_EVENT:
		// LOAD DATA logged as a statement: like a query event, it ends
		// the transaction when none is open.
		if !t.inTx {
			t.pending = false
			return true, nil
		}
	case replication.WRITE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv0,
		replication.WRITE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv1,
		replication.WRITE_ROWS_EVENTv2, replication.UPDATE_ROWS_EVENTv2, replication.DELETE_ROWS_EVENTv2,
		replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1,
		replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1, replication.PARTIAL_UPDATE_ROWS_EVENT:
		// Rows outside BEGIN/COMMIT (non-transactional tables without
		// GTID) end with the statement-end flag, which we cannot see
		// without the body; they stay pending until the next boundary.
		t.pending = true
	case replication.TRANSACTION_PAYLOAD_EVENT:
		t.inTx, t.pending = false, false
		return true, nil
	}
	return false, nil
}

// isRowsEvent reports the row events (which BINLOG statements carry).
func isRowsEvent(t replication.EventType) bool {
	switch t {
	case replication.WRITE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv0,
		replication.WRITE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv1,
		replication.WRITE_ROWS_EVENTv2, replication.UPDATE_ROWS_EVENTv2, replication.DELETE_ROWS_EVENTv2,
		replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1,
		replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1, replication.PARTIAL_UPDATE_ROWS_EVENT:
		return true
	}
	return false
}

// isStmt reports whether text is the keyword kw (case-insensitive,
// surrounding blanks ignored, followed by nothing or a blank).
func isStmt(text []byte, kw string) bool {
	t := bytes.TrimSpace(text)
	if len(t) < len(kw) || !bytes.EqualFold(t[:len(kw)], []byte(kw)) {
		return false
	}
	return len(t) == len(kw) || t[len(kw)] == ' ' || t[len(kw)] == '\t' || t[len(kw)] == '\n'
}
