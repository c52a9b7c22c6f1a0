package binlog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/go-mysql-org/go-mysql/replication"
)

// HeaderSize is the size of a v4 binlog event header.
const HeaderSize = 19

// maxEventSize bounds the size an event header may claim; anything larger is
// treated as corruption (MySQL's own limit is 1 GiB for max_allowed_packet).
const maxEventSize = 1 << 30

// Magic starts every binlog and relay-log file.
var Magic = []byte{0xfe, 'b', 'i', 'n'}

// ErrTruncated means the input ended inside an event (a half-written last
// event after a crash is the usual cause).
var ErrTruncated = errors.New("truncated event")

// ErrCorrupt means an event header or body cannot be valid.
var ErrCorrupt = errors.New("corrupt event")

// Error names the file and offset where reading stopped.
type Error struct {
	File   string
	Offset int64
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("%s at offset %d: %v", e.File, e.Offset, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Header is the 19-byte header every event starts with.
type Header struct {
	Timestamp uint32
	Type      replication.EventType
	ServerID  uint32
	EventSize uint32
	// LogPos is the end position of the event in the binlog it was written
	// to first: in a relay log, the position in the MASTER's binlog.
	LogPos uint32
	Flags  uint16
}

func decodeHeader(b []byte) Header {
	return Header{
		Timestamp: binary.LittleEndian.Uint32(b[0:]),
		Type:      replication.EventType(b[4]),
		ServerID:  binary.LittleEndian.Uint32(b[5:]),
		EventSize: binary.LittleEndian.Uint32(b[9:]),
		LogPos:    binary.LittleEndian.Uint32(b[13:]),
		Flags:     binary.LittleEndian.Uint16(b[17:]),
	}
}

// Event is one event as it lies in the file.
type Event struct {
	Header
	// Offset is where the event starts in its file.
	Offset int64
	// Raw is the whole event (header, body, checksum). In header-only mode it
	// is nil except for the events the reader itself needs (format
	// description, rotate, query, GTID). It is only valid until the next call
	// of Next; copy it to keep it.
	Raw []byte
}

// End is the offset just after the event.
func (e *Event) End() int64 { return e.Offset + int64(e.EventSize) }

// Reader reads events one by one from a binlog or relay-log file.
type Reader struct {
	name       string
	br         *bufio.Reader
	closer     io.Closer
	off        int64
	headerOnly bool
	fde        *replication.FormatDescriptionEvent
	fdeRaw     []byte
	parser     *replication.BinlogParser
	hdr        [HeaderSize]byte
	buf        []byte
	ev         Event
	err        error
}

// Open opens a local binlog or relay-log file.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open binlog: %w", err)
	}
	r, err := NewReader(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// NewReader reads a binlog from its first byte (the magic number); name is
// used in errors.
func NewReader(r io.Reader, name string) (*Reader, error) {
	rd := newReader(r, name, 0)
	var m [4]byte
	if _, err := io.ReadFull(rd.br, m[:]); err != nil {
		return nil, &Error{File: name, Offset: 0, Err: fmt.Errorf("%w: reading magic number: %v", ErrTruncated, err)}
	}
	if !bytes.Equal(m[:], Magic) {
		return nil, &Error{File: name, Offset: 0, Err: fmt.Errorf("%w: not a binlog file (magic %x)", ErrCorrupt, m)}
	}
	rd.off = 4
	return rd, nil
}

// NewReaderAt reads events from a stream that starts at offset inside a
// binlog whose format description event is fde (the raw event, as
// returned by ReadHead); fde may be nil when the stream carries its own.
func NewReaderAt(r io.Reader, name string, offset int64, fde []byte) (*Reader, error) {
	rd := newReader(r, name, offset)
	if fde != nil {
		if err := rd.setFormat(fde); err != nil {
			return nil, &Error{File: name, Offset: offset, Err: err}
		}
	}
	return rd, nil
}

func newReader(r io.Reader, name string, offset int64) *Reader {
	p := replication.NewBinlogParser()
	p.SetVerifyChecksum(true)
	// A big buffer for files and streams; for input already in memory,
	// no bigger than it (many small relay logs: allocating 1 MiB for each
	// cost more than reading them).
	size := 1 << 20
	if l, ok := r.(interface{ Len() int }); ok {
		size = max(min(size, l.Len()), 4096)
	}
	return &Reader{name: name, br: bufio.NewReaderSize(r, size), off: offset, parser: p}
}

// SetHeaderOnly switches header-only mode: the reader then skips event
// bodies instead of reading them, except for the few event types it needs
// itself. Finding a position or scanning needs nothing more.
func (r *Reader) SetHeaderOnly(on bool) { r.headerOnly = on }

// Name is the file name used in errors.
func (r *Reader) Name() string { return r.name }

// Offset is the offset of the next event.
func (r *Reader) Offset() int64 { return r.off }

// Format is the raw format description event in effect (nil before one was
// read).
func (r *Reader) Format() []byte { return r.fdeRaw }

// Checksum reports whether events carry a CRC32 checksum.
func (r *Reader) Checksum() bool {
	return r.fde != nil && r.fde.ChecksumAlgorithm == replication.BINLOG_CHECKSUM_ALG_CRC32
}

// Close closes the file opened by Open.
func (r *Reader) Close() error {
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// needsBody lists the events whose body is read even in header-only mode.
func needsBody(t replication.EventType) bool {
	switch t {
	case replication.FORMAT_DESCRIPTION_EVENT, replication.ROTATE_EVENT, replication.QUERY_EVENT,
		replication.MARIADB_GTID_EVENT, replication.GTID_EVENT, replication.MARIADB_QUERY_COMPRESSED_EVENT:
		return true
	}
	return false
}

// Next returns the next event, valid until the next call (copy it to keep
// it). It returns io.EOF at a clean end of input
// and an *Error (wrapping ErrTruncated or ErrCorrupt) naming the file and
// offset when the input ends inside an event or an event is invalid; every
// event returned before stays valid.
func (r *Reader) Next() (*Event, error) {
	if r.err != nil {
		return nil, r.err
	}
	n, err := io.ReadFull(r.br, r.hdr[:])
	if err != nil {
		if err == io.EOF && n == 0 {
			r.err = io.EOF
			return nil, io.EOF
		}
		return nil, r.fail(fmt.Errorf("%w: %d of %d header bytes", ErrTruncated, n, HeaderSize))
	}
	h := decodeHeader(r.hdr[:])
	if h.EventSize < HeaderSize || h.EventSize > maxEventSize {
		return nil, r.fail(fmt.Errorf("%w: event size %d (type %d)", ErrCorrupt, h.EventSize, h.Type))
	}
	r.ev = Event{Header: h, Offset: r.off}
	ev := &r.ev
	bodyLen := int(h.EventSize) - HeaderSize
	if r.headerOnly && !needsBody(h.Type) {
		d, err := r.br.Discard(bodyLen)
		if err != nil {
			return nil, r.fail(fmt.Errorf("%w: %d of %d bytes of a %s event", ErrTruncated, HeaderSize+d, h.EventSize, h.Type))
		}
	} else {
		raw, err := r.readEvent(int(h.EventSize))
		if err != nil {
			return nil, r.fail(fmt.Errorf("%w: %s event of %d bytes: %v", ErrTruncated, h.Type, h.EventSize, err))
		}
		ev.Raw = raw
		if h.Type == replication.FORMAT_DESCRIPTION_EVENT {
			if err := r.setFormat(raw); err != nil {
				return nil, r.fail(err)
			}
		}
	}
	r.off += int64(h.EventSize)
	return ev, nil
}

// readEvent reads an event of size bytes whose header is in r.hdr. The
// buffer grows as bytes arrive, so a corrupt size cannot make it allocate
// far more than the input holds.
func (r *Reader) readEvent(size int) ([]byte, error) {
	buf := append(r.buf[:0], r.hdr[:]...)
	for len(buf) < size {
		n := min(size-len(buf), 1<<20)
		if cap(buf)-len(buf) < n {
			buf = append(buf, make([]byte, n)...)[:len(buf)]
		}
		m, err := io.ReadFull(r.br, buf[len(buf):len(buf)+n])
		buf = buf[:len(buf)+m]
		if err != nil {
			r.buf = buf
			return nil, fmt.Errorf("input ends after %d bytes", len(buf))
		}
	}
	r.buf = buf
	return buf, nil
}

func (r *Reader) fail(err error) error {
	r.err = &Error{File: r.name, Offset: r.off, Err: err}
	return r.err
}

// setFormat installs a format description event (raw, with header).
func (r *Reader) setFormat(raw []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: format description event: %v", ErrCorrupt, p)
		}
	}()
	if len(raw) < HeaderSize+2+50+4+1 {
		return fmt.Errorf("%w: format description event of %d bytes", ErrCorrupt, len(raw))
	}
	cp := append([]byte(nil), raw...)
	fde := &replication.FormatDescriptionEvent{}
	if err := fde.Decode(cp[HeaderSize:]); err != nil {
		return fmt.Errorf("%w: format description event: %v", ErrCorrupt, err)
	}
	if int(fde.EventHeaderLength) != HeaderSize {
		return fmt.Errorf("%w: format description event declares a %d-byte header", ErrCorrupt, fde.EventHeaderLength)
	}
	if _, err := r.parser.Parse(cp); err != nil {
		return fmt.Errorf("%w: format description event: %v", ErrCorrupt, err)
	}
	r.fde, r.fdeRaw = fde, cp
	return nil
}

// Body is the event's body without header and checksum (nil when the body
// was not read).
func (r *Reader) Body(ev *Event) []byte {
	if ev.Raw == nil {
		return nil
	}
	b := ev.Raw[HeaderSize:]
	if ev.Type != replication.FORMAT_DESCRIPTION_EVENT && r.Checksum() && len(b) >= 4 {
		b = b[:len(b)-4]
	}
	return b
}

// Decode fully decodes an event read by Next (not in header-only mode),
// verifying its checksum.
func (r *Reader) Decode(ev *Event) (e replication.Event, err error) {
	if ev.Raw == nil {
		return nil, &Error{File: r.name, Offset: ev.Offset, Err: fmt.Errorf("decode %s: body not read (header-only mode)", ev.Type)}
	}
	if r.fde == nil && ev.Type != replication.FORMAT_DESCRIPTION_EVENT {
		return nil, &Error{File: r.name, Offset: ev.Offset, Err: fmt.Errorf("%w: %s event before any format description event", ErrCorrupt, ev.Type)}
	}
	defer func() {
		if p := recover(); p != nil {
			err = &Error{File: r.name, Offset: ev.Offset, Err: fmt.Errorf("%w: decode %s: %v", ErrCorrupt, ev.Type, p)}
		}
	}()
	be, err := r.parser.Parse(append([]byte(nil), ev.Raw...))
	if err != nil {
		return nil, &Error{File: r.name, Offset: ev.Offset, Err: fmt.Errorf("%w: decode %s: %v", ErrCorrupt, ev.Type, err)}
	}
	return be.Event, nil
}

// VerifyChecksum checks the CRC32 of an event read with its body.
func (r *Reader) VerifyChecksum(ev *Event) error {
	if !r.Checksum() || ev.Raw == nil || len(ev.Raw) < HeaderSize+4 || ev.Type == replication.FORMAT_DESCRIPTION_EVENT {
		return nil
	}
	return verifyCRC(ev.Raw)
}
