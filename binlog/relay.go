package binlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/go-mysql-org/go-mysql/replication"
)

// ErrNotFound means the master position is not in the relay logs.
var ErrNotFound = errors.New("master position not found in relay logs")

// RelayLogs are a replica's relay-log files, read through FS.
type RelayLogs struct {
	FS  FS
	Dir string
	// Files are the relay-log base names, oldest first; the last is the
	// one the IO thread wrote to. ReadIndex on relay-bin.index gives them.
	Files []string
	// ServerID is the replica's own server_id: the events it wrote itself
	// (its format description and rotate events) are skipped.
	ServerID uint32
	// ReadMasterFile and ReadMasterPos are the replica's Master_Log_File and
	// Read_Master_Log_Pos (its IO thread stopped): with them, a position in
	// the same master file is found without reading the relay logs (MHA's
	// "fast relay log position search"). Leave empty to always walk.
	ReadMasterFile string
	ReadMasterPos  uint64
}

func (rl RelayLogs) path(name string) string { return path.Join(rl.Dir, name) }

// RelayPos is a position in a replica's relay logs.
type RelayPos struct {
	File string
	Pos  int64
	// Fast tells that the fast path found it.
	Fast bool
}

func (p RelayPos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Pos) }

// FindRelayPosition locates the relay-log position of the event that
// follows master position (masterFile, masterPos): the start of what a
// replica that read up to that position lacks. It tries the fast path
// (same master file as ReadMasterFile: the distance from the end of the
// last relay log, verified on the event header found there) and falls back
// to walking the relay logs' headers and rotate events
// (apply_diff_relay_logs --command=find).
func FindRelayPosition(ctx context.Context, rl RelayLogs, masterFile string, masterPos uint64) (RelayPos, error) {
	if len(rl.Files) == 0 {
		return RelayPos{}, fmt.Errorf("find %s:%d in relay logs of %s: no relay-log files", masterFile, masterPos, rl.Dir)
	}
	if p, ok := fastFind(ctx, rl, masterFile, masterPos); ok {
		return p, nil
	}
	p, err := walkFind(ctx, rl, masterFile, masterPos)
	if err != nil {
		return RelayPos{}, fmt.Errorf("find %s:%d in relay logs of %s: %w", masterFile, masterPos, rl.Dir, err)
	}
	return p, nil
}

func fastFind(ctx context.Context, rl RelayLogs, masterFile string, masterPos uint64) (RelayPos, bool) {
	if rl.ReadMasterFile != masterFile || rl.ReadMasterPos < masterPos {
		return RelayPos{}, false
	}
	last := rl.Files[len(rl.Files)-1]
	size, err := rl.FS.Stat(ctx, rl.path(last))
	if err != nil {
		return RelayPos{}, false
	}
	start := size - int64(rl.ReadMasterPos-masterPos)
	if start < 4 {
		return RelayPos{}, false
	}
	head, err := ReadHead(ctx, rl.FS, rl.path(last))
	if err != nil || start < head.End {
		return RelayPos{}, false
	}
	if start == size {
		// Nothing is missing; the last event of the file must end at
		// masterPos, which the walk would confirm: trust the IO thread's
		// position only when the file's last event says so.
		return RelayPos{}, false
	}
	var hb = &limitedBuffer{}
	if _, err := rl.FS.ReadRange(ctx, rl.path(last), start, HeaderSize, hb); err != nil || len(hb.b) != HeaderSize {
		return RelayPos{}, false
	}
	h := decodeHeader(hb.b)
	if h.ServerID == rl.ServerID || h.EventSize < HeaderSize || uint64(h.LogPos) != masterPos+uint64(h.EventSize) {
		return RelayPos{}, false
	}
	return RelayPos{File: last, Pos: start, Fast: true}, true
}

type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) { l.b = append(l.b, p...); return len(p), nil }

func walkFind(ctx context.Context, rl RelayLogs, masterFile string, masterPos uint64) (RelayPos, error) {
	cur := ""
	var seen bool
	var firstStart uint64
	for _, name := range rl.Files {
		s := openStream(ctx, rl.FS, rl.path(name), 0)
		r, err := NewReader(s, name)
		if err != nil {
			s.Close()
			return RelayPos{}, err
		}
		r.SetHeaderOnly(true)
		for i := 0; ; i++ {
			if i%4096 == 0 && ctx.Err() != nil {
				s.Close()
				return RelayPos{}, ctx.Err()
			}
			ev, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				s.Close()
				return RelayPos{}, err
			}
			if ev.ServerID == rl.ServerID || ev.Type == replication.FORMAT_DESCRIPTION_EVENT {
				continue
			}
			if ev.Type == replication.ROTATE_EVENT {
				// A real rotate at the end of a master file ends at LogPos
				// in the old file; check it before switching.
				if cur == masterFile && ev.LogPos != 0 && uint64(ev.LogPos) == masterPos {
					s.Close()
					return RelayPos{File: name, Pos: ev.End()}, nil
				}
				pos, next, err := rotateTarget(r.Body(ev))
				if err != nil {
					s.Close()
					return RelayPos{}, &Error{File: name, Offset: ev.Offset, Err: err}
				}
				cur = next
				if cur == masterFile && pos == masterPos {
					s.Close()
					return RelayPos{File: name, Pos: ev.End()}, nil
				}
				continue
			}
			if cur != masterFile || ev.LogPos == 0 {
				continue
			}
			if !seen {
				seen, firstStart = true, uint64(ev.LogPos)-uint64(ev.EventSize)
			}
			if uint64(ev.LogPos) == masterPos {
				s.Close()
				return RelayPos{File: name, Pos: ev.End()}, nil
			}
		}
		s.Close()
	}
	if seen && firstStart > masterPos {
		return RelayPos{}, fmt.Errorf("%w: the relay logs hold %s only from position %d (purged?)", ErrNotFound, masterFile, firstStart)
	}
	return RelayPos{}, ErrNotFound
}

// WriteDiff writes the relay-log events from start to the end of the relay
// logs to w as a binlog file: the magic number and the format description
// event of start's file, then the events, cut at the last complete
// transaction. The replica's own events and repeated format description
// events of later files are left out. A dropped incomplete tail is
// reported in the result's Incomplete.
func WriteDiff(ctx context.Context, rl RelayLogs, start RelayPos, w io.Writer) (CopyResult, error) {
	res, err := writeDiff(ctx, rl, start, w)
	if err != nil {
		return res, fmt.Errorf("write relay diff from %s in %s: %w", start, rl.Dir, err)
	}
	return res, nil
}

func writeDiff(ctx context.Context, rl RelayLogs, start RelayPos, w io.Writer) (CopyResult, error) {
	files, err := filesFrom(rl.Files, start.File)
	if err != nil {
		return CopyResult{}, err
	}
	head, err := ReadHead(ctx, rl.FS, rl.path(start.File))
	if err != nil {
		return CopyResult{}, err
	}
	var srcs []tailSource
	for i, name := range files {
		p := rl.path(name)
		if i == 0 {
			from := max(start.Pos, head.End)
			srcs = append(srcs, tailSource{name: name, from: from, open: func() io.ReadCloser { return openStream(ctx, rl.FS, p, from) }})
			continue
		}
		srcs = append(srcs, tailSource{name: name, open: func() io.ReadCloser { return openStream(ctx, rl.FS, p, 0) }})
	}
	return copySources(ctx, head, srcs, rl.ServerID, w)
}

// WriteRelayDiff finds master position (masterFile, masterPos) in the
// relay logs and writes the events after it to w (FindRelayPosition then
// WriteDiff). rl.Files may be empty: the index file is read then. When
// rl.FS is a Runner and the position is in the master file the replica
// read last (the fast path), everything is read in ONE command: the index,
// the last relay log's size and head, and the bytes from the position to
// its end; the event header found at the position is verified as
// fastFind does. Otherwise it falls back to the walk. Nothing is written
// to w before the position is established. When the fast path does not
// apply, the relay logs are read newest first, many files per command,
// until the position is found (relay_search.go), then copied from it.
func WriteRelayDiff(ctx context.Context, rl RelayLogs, indexFile, masterFile string, masterPos uint64, w io.Writer) (RelayPos, CopyResult, error) {
	if rn, ok := rl.FS.(Runner); ok {
		pos, res, sizes, done, err := relayDiffBatched(ctx, rn, &rl, indexFile, masterFile, masterPos, w)
		if done || err != nil {
			return pos, res, err
		}
		return relayDiffSearch(ctx, rn, rl, sizes, masterFile, masterPos, w)
	}
	if len(rl.Files) == 0 {
		files, err := ReadIndex(ctx, rl.FS, indexFile)
		if err != nil {
			return RelayPos{}, CopyResult{}, err
		}
		rl.Files = files
	}
	start, err := FindRelayPosition(ctx, rl, masterFile, masterPos)
	if err != nil {
		return RelayPos{}, CopyResult{}, err
	}
	res, err := WriteDiff(ctx, rl, start, w)
	return start, res, err
}

// relayScript prints the index ("I name"), the last relay log's size ("F
// size name"), the sizes of the others ("S size name"; a missing file is
// left out) and, when dist bytes fit in the last one, "DATA" and either
// the whole file (when the position lies within the head probe) or its
// head (headProbe bytes) and its last dist bytes; otherwise "END".
const relayScript = readIndexScript + `[ -n "$last" ] || { echo END; exit 0; }
s=$(stat -L -c %s -- "$d/$last") || exit 4
echo "F $s $last"
while IFS= read -r l || [ -n "$l" ]; do
  b=${l##*/}; b=${b%"$cr"}
  [ -n "$b" ] && [ "$b" != "$last" ] && printf '%s\n' "$b"
done < "$idx" | (cd -- "$d" && xargs -d '\n' -r stat -L -c 'S %s %n' -- 2>/dev/null)
if [ "$dist" -le 0 ] || [ "$dist" -gt "$limit" ] || [ $((s - dist)) -lt 4 ]; then echo END; exit 0; fi
echo DATA
if [ $((s - dist)) -le $probe ]; then head -c $s -- "$d/$last" || exit 4; exit 0; fi
head -c $probe -- "$d/$last" || exit 4
tail -c +$((s - dist + 1)) -- "$d/$last" | head -c $dist || exit 4
`

// relayDiffBatched is WriteRelayDiff's one-command fast path. done is
// false when the search is needed (rl.Files is then filled from the index,
// and sizes holds the sizes of the relay logs found).
func relayDiffBatched(ctx context.Context, rn Runner, rl *RelayLogs, indexFile, masterFile string, masterPos uint64, w io.Writer) (RelayPos, CopyResult, map[string]int64, bool, error) {
	dist := int64(-1)
	if rl.ReadMasterFile == masterFile && rl.ReadMasterPos > masterPos {
		dist = int64(rl.ReadMasterPos - masterPos)
	}
	script := fmt.Sprintf("d=%s; idx=%s; dist=%d; limit=%d; probe=%d; cr='\r'\n%s",
		quote(rl.Dir), quote(indexFile), dist, MaxBatchBytes, headProbe, relayScript)
	raw, err := rn.Run(ctx, script)
	if err != nil {
		return RelayPos{}, CopyResult{}, nil, true, fmt.Errorf("read relay-log index %s and the last relay log: %w", indexFile, err)
	}
	b, err := parseBatch(raw)
	if err != nil {
		return RelayPos{}, CopyResult{}, nil, true, err
	}
	if len(rl.Files) == 0 {
		rl.Files = b.index
	}
	if !b.hasData || len(b.order) != 1 {
		return RelayPos{}, CopyResult{}, b.sizes, false, nil
	}
	last := b.order[0]
	size := b.sizes[last]
	// The file comes whole when the position lies within the head probe,
	// else as its head followed by its last dist bytes.
	data := b.data
	start := size - dist
	var headBytes []byte
	var err2 error
	if start <= headProbe {
		if int64(len(data)) != size {
			return RelayPos{}, CopyResult{}, nil, true, fmt.Errorf("batch read: %s: want %d bytes, got %d", last, size, len(data))
		}
		headBytes, data = data[:min(size, headProbe)], data[start:]
	} else if headBytes, err2 = take(&data, headProbe, "head of "+last); err2 != nil {
		return RelayPos{}, CopyResult{}, nil, true, err2
	}
	head, err := parseHead(headBytes, rl.path(last))
	if err != nil || start < head.End || int64(len(data)) != dist || len(data) < HeaderSize {
		return RelayPos{}, CopyResult{}, b.sizes, false, nil
	}
	h := decodeHeader(data[:HeaderSize])
	if h.ServerID == rl.ServerID || h.EventSize < HeaderSize || uint64(h.LogPos) != masterPos+uint64(h.EventSize) {
		return RelayPos{}, CopyResult{}, b.sizes, false, nil
	}
	pos := RelayPos{File: last, Pos: start, Fast: true}
	res, err := copySources(ctx, head, []tailSource{{name: last, from: start, open: bytesOpener(data)}}, rl.ServerID, w)
	if err != nil {
		err = fmt.Errorf("write relay diff from %s in %s: %w", pos, rl.Dir, err)
	}
	return pos, res, nil, true, err
}

// copyEvents copies r's events into c until r ends (the returned error is
// io.EOF at a clean end), skipping events of skipServerID (0: none) and
// format description events equivalent to first's.
func copyEvents(ctx context.Context, c *txCopier, r *Reader, skipServerID uint32, first Head) error {
	for i := 0; ; i++ {
		if i%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		ev, err := r.Next()
		if err != nil {
			return err
		}
		if skipServerID != 0 && ev.ServerID == skipServerID {
			continue
		}
		if ev.Type == replication.FORMAT_DESCRIPTION_EVENT && r.Checksum() == first.Checksum {
			continue
		}
		if err := c.add(r, ev); err != nil {
			return err
		}
	}
}
