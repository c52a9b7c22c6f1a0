package binlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/replication"
)

// manyRelayLogs splits the events of the real relay log, twice (as if the
// master had written the same events to mysql-bin.000001, rotated, and
// again to mysql-bin.000002: the same positions in two master files), into
// relay logs of about chunk bytes of events each, the way a replica
// rotating its relay log for size writes them: its own format description
// event, the master's, then the events, without a master rotate event.
// The master's rotate event lies inside a relay log. It returns the
// directory, the relay-log names and the master events of one copy.
func manyRelayLogs(t *testing.T, chunk int) (string, []string, []Event) {
	t.Helper()
	b, err := os.ReadFile(realFiles[1])
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(b), realFiles[1])
	if err != nil {
		t.Fatal(err)
	}
	all, err := readAll(t, r, false)
	if err != nil {
		t.Fatal(err)
	}
	// The real file: replica FDE, the IO thread's rotate, master FDE, events.
	var ownFDE, masterFDE []byte
	var evs []Event
	headEnd := int64(0)
	for _, e := range all {
		switch {
		case e.Type == replication.FORMAT_DESCRIPTION_EVENT && e.ServerID == 102:
			ownFDE = b[e.Offset:e.End()]
		case e.Type == replication.FORMAT_DESCRIPTION_EVENT:
			masterFDE, headEnd = b[e.Offset:e.End()], e.End()
		case e.Type != replication.ROTATE_EVENT:
			evs = append(evs, e)
		}
	}
	last := evs[len(evs)-1]
	rot := rotateEvent(101, last.LogPos, 4, "mysql-bin.000002")
	var stream [][]byte
	for _, e := range evs {
		stream = append(stream, b[e.Offset:e.End()])
	}
	stream = append(stream, rot, masterFDE)
	for _, e := range evs {
		stream = append(stream, b[e.Offset:e.End()])
	}
	dir := t.TempDir()
	var names []string
	var idx strings.Builder
	cur := bytes.NewBuffer(append([]byte(nil), b[:headEnd]...)) // the first: as the IO thread wrote it
	body := 0
	flush := func() {
		name := fmt.Sprintf("relay-bin.%06d", len(names)+1)
		if err := os.WriteFile(filepath.Join(dir, name), cur.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		idx.WriteString("./" + name + "\n")
		cur = bytes.NewBuffer(append(append(append([]byte(nil), Magic...), ownFDE...), masterFDE...))
		body = 0
	}
	for _, ev := range stream {
		cur.Write(ev)
		body += len(ev)
		if body >= chunk {
			flush()
		}
	}
	if body > 0 {
		flush()
	}
	if err := os.WriteFile(filepath.Join(dir, "relay-bin.index"), []byte(idx.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, names, evs
}

// rotateEvent builds a master rotate event (CRC32 checksum) ending at logPos.
func rotateEvent(serverID, prevEnd uint32, pos uint64, next string) []byte {
	size := HeaderSize + 8 + len(next) + 4
	ev := make([]byte, HeaderSize, size)
	ev[4] = byte(replication.ROTATE_EVENT)
	binary.LittleEndian.PutUint32(ev[5:], serverID)
	binary.LittleEndian.PutUint32(ev[9:], uint32(size))
	binary.LittleEndian.PutUint32(ev[13:], prevEnd+uint32(size))
	ev = binary.LittleEndian.AppendUint64(ev, pos)
	ev = append(ev, next...)
	return binary.LittleEndian.AppendUint32(ev, crc32.ChecksumIEEE(ev))
}

// TestRelayDiffSearch: over many small relay logs, WriteRelayDiff through
// a Runner finds every position the file-by-file walk finds (in the right
// master file, though both hold the same positions) and writes the same
// diff, in two commands when the files fit in one read, in more when
// they do not (reads of a few files, big files streamed); whatever the
// replica's read position says, right, unknown or contradicted by the
// relay logs' last rotate event. Absent and purged positions give the
// walk's errors.
func TestRelayDiffSearch(t *testing.T) {
	ctx := context.Background()
	dir, names, evs := manyRelayLogs(t, 300)
	if len(names) < 12 {
		t.Fatalf("only %d relay logs", len(names))
	}
	idx := filepath.Join(dir, "relay-bin.index")
	lastPos := uint64(evs[len(evs)-1].LogPos)
	type target struct {
		file string
		pos  uint64
	}
	var xids []uint64
	for _, e := range evs {
		if e.Type == replication.XID_EVENT && uint64(e.LogPos) != lastPos {
			xids = append(xids, uint64(e.LogPos))
		}
	}
	if len(xids) < 3 {
		t.Fatalf("only %d transactions", len(xids))
	}
	// The first, a middle and the last-but-one transaction of each copy.
	var targets []target
	for _, f := range []string{"mysql-bin.000001", "mysql-bin.000002"} {
		for _, p := range []uint64{xids[0], xids[len(xids)/2], xids[len(xids)-1]} {
			targets = append(targets, target{f, p})
		}
	}
	// The start of mysql-bin.000002 (the rotate names it), the end of
	// mysql-bin.000001 (the rotate ends there).
	targets = append(targets, target{"mysql-bin.000002", 4}, target{"mysql-bin.000001", lastPos + uint64(len(rotateEvent(101, 0, 4, "mysql-bin.000002")))})
	defer func(l int64) { searchLimit = l }(searchLimit)
	for _, limit := range []int64{searchLimit, 4000, 600} {
		for _, read := range []struct {
			name string
			file string
			pos  uint64
		}{
			{"read position right", "mysql-bin.000002", lastPos},
			{"read position unknown", "", 0},
			{"read position contradicted", "mysql-bin.000009", lastPos},
		} {
			if limit != MaxBatchBytes && read.file == "" {
				continue // the right and the contradicted one cover reading in parts
			}
			t.Run(fmt.Sprintf("limit %d/%s", limit, read.name), func(t *testing.T) {
				searchLimit = limit
				for _, tg := range targets {
					ref := RelayLogs{FS: LocalFS{}, Dir: dir, Files: names, ServerID: 102, ReadMasterFile: read.file, ReadMasterPos: read.pos}
					ref.ReadMasterFile = "" // the walk
					wantPos, err := FindRelayPosition(ctx, ref, tg.file, tg.pos)
					if err != nil {
						t.Fatalf("%s:%d: walk: %v", tg.file, tg.pos, err)
					}
					var want bytes.Buffer
					wantRes, err := WriteDiff(ctx, ref, wantPos, &want)
					if err != nil {
						t.Fatal(err)
					}
					sh := &shellFS{}
					rl := RelayLogs{FS: sh, Dir: dir, ServerID: 102, ReadMasterFile: read.file, ReadMasterPos: read.pos}
					var got bytes.Buffer
					pos, res, err := WriteRelayDiff(ctx, rl, idx, tg.file, tg.pos, &got)
					if err != nil {
						t.Fatalf("%s:%d: %v", tg.file, tg.pos, err)
					}
					if pos.File != wantPos.File || pos.Pos != wantPos.Pos || !bytes.Equal(got.Bytes(), want.Bytes()) || res != wantRes {
						t.Errorf("%s:%d: found %v and wrote %d bytes %+v; the walk %v and %d bytes %+v", tg.file, tg.pos, pos, got.Len(), res, wantPos, want.Len(), wantRes)
					}
					if limit == MaxBatchBytes && sh.runs > 2 {
						t.Errorf("%s:%d: %d commands, want at most 2 (index and sizes, then the relay logs)", tg.file, tg.pos, sh.runs)
					}
				}
			})
		}
	}
	// The walk's errors.
	searchLimit = MaxBatchBytes
	for _, tc := range []struct {
		file string
		pos  uint64
		want string
	}{
		{"mysql-bin.000002", 999999, "not found"},
		{"mysql-bin.000003", 4, "not found"},
		{"mysql-bin.000002", 100, "only from position"},
	} {
		ref := RelayLogs{FS: LocalFS{}, Dir: dir, Files: names, ServerID: 102}
		_, werr := FindRelayPosition(ctx, ref, tc.file, tc.pos)
		rl := RelayLogs{FS: &shellFS{}, Dir: dir, ServerID: 102, ReadMasterFile: "mysql-bin.000002", ReadMasterPos: lastPos}
		_, _, err := WriteRelayDiff(ctx, rl, idx, tc.file, tc.pos, &bytes.Buffer{})
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(werr.Error(), tc.want) {
			t.Errorf("%s:%d: got %v, the walk %v; want ErrNotFound saying %q", tc.file, tc.pos, err, werr, tc.want)
		}
	}
	// A relay log that changed since its size was read.
	rl := RelayLogs{FS: &shellFS{}, Dir: dir, ServerID: 102}
	s := &relaySearch{rn: rl.FS.(Runner), rl: rl, files: []relayFile{{name: names[0], size: 1}}}
	if err := s.read(ctx, 0, 1); err == nil || !strings.Contains(err.Error(), "changed while read") {
		t.Errorf("a file longer than its size: %v", err)
	}
}

// TestRelayBytesAfter: the bytes of the master's binlog after a position,
// in the same master file as the end of the relay logs (the difference of
// the positions) and across the master's rotation (the rest of the old
// file, the rotate event, the new file's events), through a Runner (two
// commands) and through a plain FS; past the limit the reading stops with
// a lower bound; an absent position is ErrNotFound.
func TestRelayBytesAfter(t *testing.T) {
	ctx := context.Background()
	dir, _, evs := manyRelayLogs(t, 300)
	idx := filepath.Join(dir, "relay-bin.index")
	lastPos := uint64(evs[len(evs)-1].LogPos)
	firstStart := uint64(evs[0].LogPos - evs[0].EventSize) // where the events of mysql-bin.000002 start
	rotate := uint64(len(rotateEvent(101, 0, 4, "mysql-bin.000002")))
	var xids []uint64
	for _, e := range evs {
		if e.Type == replication.XID_EVENT {
			xids = append(xids, uint64(e.LogPos))
		}
	}
	for _, fs := range []FS{&shellFS{}, LocalFS{}} {
		for _, p := range xids {
			for _, tc := range []struct {
				file string
				want uint64
			}{
				{"mysql-bin.000002", lastPos - p},
				{"mysql-bin.000001", lastPos - p + rotate + lastPos - firstStart},
			} {
				if sh, ok := fs.(*shellFS); ok {
					sh.runs = 0
				}
				rl := RelayLogs{FS: fs, Dir: dir, ServerID: 102, ReadMasterFile: "mysql-bin.000002", ReadMasterPos: lastPos}
				got, err := RelayBytesAfter(ctx, rl, idx, tc.file, p, 1<<30)
				if err != nil || uint64(got) != tc.want {
					t.Errorf("%T: after %s:%d: %d bytes (%v), want %d", fs, tc.file, p, got, err, tc.want)
				}
				if sh, ok := fs.(*shellFS); ok && sh.runs > 2 {
					t.Errorf("%d commands, want at most 2", sh.runs)
				}
				if tc.want > 600 {
					// Reads of a few files: the search stops before the position.
					searchLimit = 2000
					got, err := RelayBytesAfter(ctx, rl, idx, tc.file, p, 100)
					searchLimit = MaxBatchBytes
					if err != nil || got <= 100 || uint64(got) >= tc.want {
						t.Errorf("%T: after %s:%d with a limit of 100: %d (%v), want more than 100 and less than %d", fs, tc.file, p, got, err, tc.want)
					}
				}
			}
		}
		rl := RelayLogs{FS: fs, Dir: dir, ServerID: 102}
		if _, err := RelayBytesAfter(ctx, rl, idx, "mysql-bin.000003", 4, 1<<30); !errors.Is(err, ErrNotFound) {
			t.Errorf("%T: absent position: %v, want ErrNotFound", fs, err)
		}
	}
}
