package binlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sort"

	"github.com/go-mysql-org/go-mysql/replication"
)

// servedFile is the name of the one binlog file the event server serves;
// the target's replication status shows positions in it.
const servedFile = "mharaft-apply.000001"

// maxServed bounds the served file: event positions are 32-bit.
const maxServed = 1<<32 - 1<<20

// servedStream is what the event server serves: ONE synthetic binlog file
// made of the format description event of the first input file and, in
// order, every event of the input files a replica must apply. Rotate,
// stop, heartbeat, GTID-list, checkpoint and previous-GTIDs events are
// left out (they change nothing in the data, and a rotate would move the
// replica off the served file), and so are the later files' format
// description events (all files must agree on checksums). Each served
// event keeps its bytes except log_pos, rewritten to its end in the
// served file (and its CRC32, recomputed), so the target's
// Exec_Master_Log_Pos is a position in the served file that txs maps back
// to a file and offset of the input.
type servedStream struct {
	files    []string
	fde      []byte // the first file's format description event
	checksum bool
	end      uint32     // served size up to the last complete transaction
	txs      []servedTx // every complete transaction, in order
	bytes    int64      // bytes of the input files
	// incomplete is set when the input ends inside a transaction: that
	// part is not served.
	incomplete bool
	// serverIDs are the origins of the served events.
	serverIDs map[uint32]bool
	// onlyServer names an event that Apply's statements refuse but the
	// server's replication applies ("" if none).
	onlyServer string
}

// statementsRefuse reports the events Apply's statements cannot apply
// and the server's replication can: LOAD DATA in statement format, XA
// PREPARE, MariaDB's compressed query events.
func statementsRefuse(t replication.EventType) bool {
	switch t {
	case replication.BEGIN_LOAD_QUERY_EVENT, replication.EXECUTE_LOAD_QUERY_EVENT, replication.APPEND_BLOCK_EVENT,
		replication.DELETE_FILE_EVENT, replication.XA_PREPARE_LOG_EVENT, replication.MARIADB_QUERY_COMPRESSED_EVENT:
		return true
	}
	return false
}

// servedTx is one transaction of the served stream.
type servedTx struct {
	end      uint32 // served position just after it
	file     int    // index in files of its first event
	start    int64  // offset of its first event there
	stopFile int    // index in files of its last event
	stop     int64  // end of its last event there
	events   int
	gtid     string
}

// skipServed reports the events the event server leaves out.
func skipServed(t replication.EventType) bool {
	switch t {
	case replication.FORMAT_DESCRIPTION_EVENT, replication.ROTATE_EVENT, replication.STOP_EVENT,
		replication.HEARTBEAT_EVENT, replication.MARIADB_GTID_LIST_EVENT,
		replication.MARIADB_BINLOG_CHECKPOINT_EVENT, replication.PREVIOUS_GTIDS_EVENT:
		return true
	}
	return false
}

// buildServed reads the files once (checksums verified, so that nothing
// corrupt is served: the IO thread would refuse it and retry for ever)
// and lays out the served file.
func buildServed(files []string) (*servedStream, error) {
	s := &servedStream{files: files, serverIDs: map[uint32]bool{}}
	if len(files) == 0 {
		return nil, errors.New("no files")
	}
	r, err := Open(files[0])
	if err != nil {
		return nil, err
	}
	ev, err := r.Next()
	if err == nil && ev.Type != replication.FORMAT_DESCRIPTION_EVENT {
		err = &Error{File: files[0], Offset: ev.Offset, Err: fmt.Errorf("%w: a %s event before any format description event", ErrCorrupt, ev.Type)}
	}
	if err == nil {
		s.fde, s.checksum = append([]byte(nil), ev.Raw...), r.Checksum()
	}
	r.Close()
	if err != nil {
		return nil, err
	}
	s.end = uint32(4 + len(s.fde))
	var tr txTracker
	cur := servedTx{file: -1}
	err = s.walk(false, func(i int, r *Reader, ev *Event, _, end uint32) (bool, error) {
		name := r.Name()
		if err := r.VerifyChecksum(ev); err != nil {
			return false, &Error{File: name, Offset: ev.Offset, Err: err}
		}
		if ev.Type == replication.MARIADB_START_ENCRYPTION_EVENT {
			return false, &Error{File: name, Offset: ev.Offset, Err: fmt.Errorf("cannot apply an encrypted binlog (%s event)", ev.Type)}
		}
		ended, err := tr.step(ev.Header, r.Body(ev))
		if err != nil {
			return false, &Error{File: name, Offset: ev.Offset, Err: err}
		}
		if cur.file < 0 {
			cur.file, cur.start = i, ev.Offset
		}
		if g := ev.Type; g == replication.MARIADB_GTID_EVENT || g == replication.GTID_EVENT {
			if gt, err := parseGTID(ev.Header, r.Body(ev)); err == nil {
				cur.gtid = gt.String()
			}
		}
		cur.events++
		s.serverIDs[ev.ServerID] = true
		if s.onlyServer == "" && statementsRefuse(ev.Type) {
			s.onlyServer = fmt.Sprintf("a %s event at %s:%d", ev.Type, name, ev.Offset)
		}
		if ended {
			cur.end, cur.stopFile, cur.stop = end, i, ev.End()
			s.txs = append(s.txs, cur)
			s.end = end
			cur = servedTx{file: -1}
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		s.bytes += fi.Size()
	}
	s.incomplete = cur.file >= 0
	return s, nil
}

var (
	errMixedChecksums = errors.New("the files differ in binlog_checksum")
	errTooBigToServe  = errors.New("more than 4 GiB of events")
)

// walk calls fn for every served event of the input files, in order, with
// where it starts and ends in the served file, until fn returns false. It
// is the one place that lays the input out as the served file: the first
// file's format description event first, then the events that
// skipServed keeps. In header-only mode most event bodies are not read.
func (s *servedStream) walk(headerOnly bool, fn func(file int, r *Reader, ev *Event, start, end uint32) (bool, error)) error {
	pos := uint64(4 + len(s.fde))
	for i, name := range s.files {
		more, err := func() (bool, error) {
			r, err := Open(name)
			if err != nil {
				return false, err
			}
			defer r.Close()
			r.SetHeaderOnly(headerOnly)
			for {
				ev, err := r.Next()
				if errors.Is(err, io.EOF) {
					return true, nil
				}
				if err != nil {
					return false, err
				}
				if ev.Type == replication.FORMAT_DESCRIPTION_EVENT {
					if r.Checksum() != s.checksum {
						return false, &Error{File: name, Offset: ev.Offset, Err: errMixedChecksums}
					}
					continue
				}
				if r.Format() == nil {
					return false, &Error{File: name, Offset: ev.Offset, Err: fmt.Errorf("%w: %s event before any format description event", ErrCorrupt, ev.Type)}
				}
				if skipServed(ev.Type) {
					continue
				}
				start := pos
				pos += uint64(ev.EventSize)
				if pos > maxServed {
					return false, errTooBigToServe
				}
				if more, err := fn(i, r, ev, uint32(start), uint32(pos)); !more || err != nil {
					return false, err
				}
			}
		}()
		if !more || err != nil {
			return err
		}
	}
	return nil
}

// replay sends the served events that start at or after from (a position
// in the served file, at an event boundary), up to s.end, through send,
// each with its log_pos and checksum rewritten. The slice given to send is
// reused for the next event.
func (s *servedStream) replay(from uint32, send func(ev []byte) error) error {
	var buf []byte
	return s.walk(false, func(_ int, _ *Reader, ev *Event, start, end uint32) (bool, error) {
		switch {
		case end > s.end:
			return false, nil
		case start < from && end > from:
			return false, fmt.Errorf("position %d of %s is not at an event boundary", from, servedFile)
		case start < from:
			return true, nil
		}
		buf = append(buf[:0], ev.Raw...)
		s.rewrite(buf, end)
		return true, send(buf)
	})
}

// locate returns the input file and offset of the served event that ends
// at pos (ok false if none does).
func (s *servedStream) locate(pos uint32) (file string, off int64, ok bool) {
	s.walk(true, func(_ int, r *Reader, ev *Event, _, end uint32) (bool, error) {
		if end == pos {
			file, off, ok = r.Name(), ev.Offset, true
		}
		return end < pos, nil
	})
	return file, off, ok
}

// rewrite sets an event's log_pos and recomputes its checksum.
func (s *servedStream) rewrite(ev []byte, logPos uint32) {
	binary.LittleEndian.PutUint32(ev[13:], logPos)
	if s.checksum && len(ev) >= HeaderSize+4 {
		binary.LittleEndian.PutUint32(ev[len(ev)-4:], crc32.ChecksumIEEE(ev[:len(ev)-4]))
	}
}

// fdeEvent is the served format description event, at position 4 (log_pos
// 0 when the dump starts later, as a master sends it then).
func (s *servedStream) fdeEvent(from uint32) []byte {
	ev := append([]byte(nil), s.fde...)
	// LOG_EVENT_BINLOG_IN_USE_F says the source file was open; servers
	// compute the checksum of this event without it, and the served file
	// is not open: cleared.
	binary.LittleEndian.PutUint16(ev[17:], binary.LittleEndian.Uint16(ev[17:])&^1)
	if from > 4 {
		binary.LittleEndian.PutUint32(ev[13:], 0)
		return ev
	}
	// The format description event's checksum covers it too (its
	// algorithm byte is part of it), so it is rewritten the same way.
	binary.LittleEndian.PutUint32(ev[13:], uint32(4+len(ev)))
	if s.checksum {
		binary.LittleEndian.PutUint32(ev[len(ev)-4:], crc32.ChecksumIEEE(ev[:len(ev)-4]))
	}
	return ev
}

// artificial builds an event the server makes up (rotate, heartbeat):
// timestamp 0, LOG_EVENT_ARTIFICIAL_F, the given body, and a checksum when
// the stream has them.
func (s *servedStream) artificial(t replication.EventType, serverID, logPos uint32, body []byte) []byte {
	size := HeaderSize + len(body)
	if s.checksum {
		size += 4
	}
	ev := make([]byte, HeaderSize, size)
	ev[4] = byte(t)
	binary.LittleEndian.PutUint32(ev[5:], serverID)
	binary.LittleEndian.PutUint32(ev[9:], uint32(size))
	binary.LittleEndian.PutUint32(ev[13:], logPos)
	binary.LittleEndian.PutUint16(ev[17:], 0x20) // LOG_EVENT_ARTIFICIAL_F
	ev = append(ev, body...)
	if s.checksum {
		ev = binary.LittleEndian.AppendUint32(ev, crc32.ChecksumIEEE(ev))
	}
	return ev
}

// rotateEvent is the fake rotate event a dump starts with: it names the
// served file and the position the dump starts at.
func (s *servedStream) rotateEvent(serverID, from uint32) []byte {
	body := binary.LittleEndian.AppendUint64(nil, uint64(from))
	return s.artificial(replication.ROTATE_EVENT, serverID, 0, append(body, servedFile...))
}

// heartbeatEvent tells an idle replica that the master is alive and at pos.
func (s *servedStream) heartbeatEvent(serverID, pos uint32) []byte {
	return s.artificial(replication.HEARTBEAT_EVENT, serverID, pos, []byte(servedFile))
}

// txAt returns how many transactions end at or before pos.
func (s *servedStream) txAt(pos uint32) int {
	return sort.Search(len(s.txs), func(i int) bool { return s.txs[i].end > pos })
}
