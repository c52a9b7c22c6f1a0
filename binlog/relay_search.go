package binlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"
)

// The batched relay diff (WriteRelayDiff over a Runner, when the fast path
// does not apply): the relay logs are read newest first, in a few commands
// of many files each, until the position is found, so the cost follows the
// bytes from the position to the end, not the number of relay logs (one
// SSH session per file took 17-37 s for 94 relay logs of 8 KB).
//
// Each file is scanned once from its start, without knowing which master
// file its first events belong to (a relay log rotated for its size does
// not repeat the master's rotate event). Its summary says where masterPos
// matches, before its first master rotate event (valid if the master file
// at its start is masterFile) and after it (certain). The master file at
// the start of a file is the one named by the last rotate event before it,
// or, when no rotate event follows it, the replica's ReadMasterFile: the
// IO thread writes every master rotate event to the relay log, and the
// master file at the end of the relay logs is the one it read last.

// maxChunkFiles bounds the files of one read command: its names are in the
// command line, which sshd passes to the shell as one argument (at most
// 128 KiB on Linux).
const maxChunkFiles = 1000

// searchLimit bounds the bytes of one read command and those held in
// memory (a variable for tests); a file bigger than it is streamed in a
// session of its own.
var searchLimit int64 = MaxBatchBytes

// firstChunkBytes is the first backward read when the distance to the end
// is unknown (the position is in an older master file).
const firstChunkBytes = 1 << 20

// relayFile is one relay log of a batched search.
type relayFile struct {
	name string
	size int64
	// bounded: the file may still grow (the index's last): read exactly
	// size bytes of it.
	bounded bool
	data    []byte // its bytes while held in memory
	scan    *fileScan
}

// fileScan summarizes one relay log for masterFile:masterPos.
type fileScan struct {
	rotated bool   // holds a master rotate event
	curEnd  string // the master file after its last one
	// prefix is the match before its first master rotate event (valid if
	// the master file at its start is masterFile); known the first match
	// after it.
	prefix, known *RelayPos
	// prefixFirst and knownFirst are the master start positions of the
	// first events of masterFile in these two parts (-1: none).
	prefixFirst, knownFirst int64
	// master is the size of the master's events in it (those with a
	// master position).
	master int64
	err    error // the read error that ended the scan
}

// scanRelay scans one relay log (header-only) for masterFile:masterPos.
func scanRelay(ctx context.Context, src io.Reader, name string, serverID uint32, masterFile string, masterPos uint64) (*fileScan, error) {
	s := &fileScan{prefixFirst: -1, knownFirst: -1}
	r, err := NewReader(src, name)
	if err != nil {
		s.err = err
		return s, nil
	}
	r.SetHeaderOnly(true)
	cur := ""
	for i := 0; ; i++ {
		if i%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return s, nil
		}
		if err != nil {
			s.err = err
			return s, nil
		}
		if ev.ServerID == serverID || ev.Type == replication.FORMAT_DESCRIPTION_EVENT {
			continue
		}
		if ev.LogPos != 0 {
			s.master += int64(ev.EventSize)
		}
		at := &RelayPos{File: name, Pos: ev.End()}
		if ev.Type == replication.ROTATE_EVENT {
			// A real rotate at the end of a master file ends at LogPos
			// in the old file; check it before switching.
			if ev.LogPos != 0 && uint64(ev.LogPos) == masterPos {
				if !s.rotated && s.prefix == nil {
					s.prefix = at
				} else if s.rotated && cur == masterFile && s.known == nil {
					s.known = at
				}
			}
			pos, next, err := rotateTarget(r.Body(ev))
			if err != nil {
				s.err = &Error{File: name, Offset: ev.Offset, Err: err}
				return s, nil
			}
			cur, s.rotated, s.curEnd = next, true, next
			if cur == masterFile && pos == masterPos && s.known == nil {
				s.known = at
			}
			continue
		}
		if ev.LogPos == 0 {
			continue
		}
		start := int64(ev.LogPos) - int64(ev.EventSize)
		switch {
		case !s.rotated:
			if s.prefixFirst < 0 {
				s.prefixFirst = start
			}
			if uint64(ev.LogPos) == masterPos && s.prefix == nil {
				s.prefix = at
			}
		case cur == masterFile:
			if s.knownFirst < 0 {
				s.knownFirst = start
			}
			if uint64(ev.LogPos) == masterPos && s.known == nil {
				s.known = at
			}
		}
	}
}

// relaySearch finds a master position in relay logs read through a Runner.
type relaySearch struct {
	rn         Runner
	rl         RelayLogs
	files      []relayFile
	masterFile string
	masterPos  uint64
	held       int64 // bytes of files held in memory
	// beyond, when positive, ends the search once the files scanned hold
	// more than that many bytes of master events (RelayBytesAfter).
	beyond int64
}

// errBeyond: more than relaySearch.beyond bytes lie after the position.
var errBeyond = errors.New("position further back than the limit")

// resolve says where the position is among the scanned files from k on
// (k == 0: all files). done is false when older files must be scanned.
func (s *relaySearch) resolve(k int) (pos RelayPos, done bool, err error) {
	n := len(s.files)
	// The master file at the start of each file: forward from the rotate
	// events, backward from the end.
	cur0 := make([]string, n)
	known := make([]bool, n)
	c, ck := "", k == 0 // before the first file: no master file (as the walk)
	for i := k; i < n; i++ {
		cur0[i], known[i] = c, ck
		switch sc := s.files[i].scan; {
		case sc.err != nil: // its end is unread
			c, ck = "", false
		case sc.rotated:
			c, ck = sc.curEnd, true
		}
	}
	// The end: the master file read last, unless the last rotate event
	// contradicts it (then it is not trusted).
	if s.rl.ReadMasterFile != "" && (!ck || c == s.rl.ReadMasterFile) {
		for i := n - 1; i >= k && !s.files[i].scan.rotated && s.files[i].scan.err == nil; i-- {
			cur0[i], known[i] = s.rl.ReadMasterFile, true
		}
	}
	for i := k; i < n; i++ {
		sc := s.files[i].scan
		if known[i] && cur0[i] == s.masterFile && sc.prefix != nil {
			return *sc.prefix, true, nil
		}
		if sc.known != nil {
			return *sc.known, true, nil
		}
		if sc.err != nil && k == 0 {
			// The walk from the first file stops here too.
			return RelayPos{}, true, sc.err
		}
	}
	if k > 0 {
		return RelayPos{}, false, nil
	}
	for i := range s.files {
		sc := s.files[i].scan
		first := sc.knownFirst
		if known[i] && cur0[i] == s.masterFile && sc.prefixFirst >= 0 {
			first = sc.prefixFirst
		}
		if first >= 0 {
			if uint64(first) > s.masterPos {
				return RelayPos{}, true, fmt.Errorf("%w: the relay logs hold %s only from position %d (purged?)", ErrNotFound, s.masterFile, first)
			}
			break
		}
	}
	return RelayPos{}, true, ErrNotFound
}

// chunkBefore returns the first index of the files read with those before
// k: up to budget bytes and maxChunkFiles files, at least one file.
func (s *relaySearch) chunkBefore(k int, budget int64) int {
	j, sum := k-1, s.files[k-1].size
	for j > 0 && k-j < maxChunkFiles && sum+s.files[j-1].size <= budget {
		j--
		sum += s.files[j].size
	}
	return j
}

// read brings files [i, j) into memory in one command. Files bigger than
// searchLimit are never read this way (see open).
func (s *relaySearch) read(ctx context.Context, i, j int) error {
	if s.rn == nil {
		for x := i; x < j; x++ {
			f := &s.files[x]
			var b bytes.Buffer
			if _, err := s.rl.FS.ReadRange(ctx, s.rl.path(f.name), 0, f.size, &b); err != nil {
				return fmt.Errorf("read relay log %s: %w", s.rl.path(f.name), err)
			}
			if int64(b.Len()) != f.size {
				return fmt.Errorf("read relay log %s: got %d bytes, want %d (it changed while read: stop the replica's IO thread)", s.rl.path(f.name), b.Len(), f.size)
			}
			f.data = b.Bytes()
		}
		return nil
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "cd -- %s || exit 4\n", quote(s.rl.Dir))
	var want int64
	var plain []string
	flush := func() {
		if len(plain) > 0 {
			fmt.Fprintf(&sb, "cat -- %s || exit 4\n", strings.Join(plain, " "))
			plain = plain[:0]
		}
	}
	for x := i; x < j; x++ {
		f := &s.files[x]
		want += f.size
		if f.bounded {
			flush()
			fmt.Fprintf(&sb, "head -c %d -- %s || exit 4\n", f.size, quote(f.name))
			continue
		}
		plain = append(plain, quote(f.name))
	}
	flush()
	out, err := s.rn.Run(ctx, sb.String())
	if err != nil {
		return fmt.Errorf("read relay logs %s..%s: %w", s.files[i].name, s.files[j-1].name, err)
	}
	if int64(len(out)) != want {
		return fmt.Errorf("read relay logs %s..%s: got %d bytes, their sizes add up to %d (they changed while read: stop the replica's IO thread)",
			s.files[i].name, s.files[j-1].name, len(out), want)
	}
	for x := i; x < j; x++ {
		f := &s.files[x]
		f.data, out = out[:f.size:f.size], out[f.size:]
	}
	return nil
}

// big reports whether file x is streamed rather than read in a batch.
func (s *relaySearch) big(x int) bool { return s.files[x].size > searchLimit }

// open returns a reader of file x from offset: its bytes when held, else
// a batched read of it and the files after it (up to searchLimit), or,
// for a big file, a stream of its own.
func (s *relaySearch) open(ctx context.Context, x int, offset int64) io.ReadCloser {
	f := &s.files[x]
	if f.data == nil && s.big(x) {
		return openStream(ctx, s.rl.FS, s.rl.path(f.name), offset)
	}
	if err := s.load(ctx, x); err != nil {
		return errReadCloser{err}
	}
	return memFile{bytes.NewReader(f.data[min(offset, int64(len(f.data))):])}
}

// load brings file x (not a big one) into memory unless it is held: the
// files before it are forgotten, and the files after it are read in the
// same command, up to searchLimit bytes.
func (s *relaySearch) load(ctx context.Context, x int) error {
	if s.files[x].data != nil {
		return nil
	}
	for y := range x {
		s.drop(y)
	}
	j, sum := x+1, s.files[x].size
	for j < len(s.files) && j-x < maxChunkFiles && !s.big(j) && s.files[j].data == nil && sum+s.files[j].size <= searchLimit {
		sum += s.files[j].size
		j++
	}
	if err := s.read(ctx, x, j); err != nil {
		return err
	}
	s.held += sum
	return nil
}

func (s *relaySearch) drop(x int) {
	if s.files[x].data != nil {
		s.held -= s.files[x].size
		s.files[x].data = nil
	}
}

// relayDiffSearch is WriteRelayDiff over a Runner when the fast path does
// not apply: find the position scanning the relay logs newest first, then
// copy from it to the end. sizes are the files' sizes from the index read
// (the last one's is bounded: it may still grow).
func relayDiffSearch(ctx context.Context, rn Runner, rl RelayLogs, sizes map[string]int64, masterFile string, masterPos uint64, w io.Writer) (RelayPos, CopyResult, error) {
	s, err := newRelaySearch(rn, rl, sizes, masterFile, masterPos)
	if err != nil {
		return RelayPos{}, CopyResult{}, err
	}
	pos, err := s.find(ctx)
	if err != nil {
		return RelayPos{}, CopyResult{}, fmt.Errorf("find %s:%d in relay logs of %s: %w", masterFile, masterPos, rl.Dir, err)
	}
	res, err := s.copy(ctx, pos, w)
	if err != nil {
		return pos, res, fmt.Errorf("write relay diff from %s in %s: %w", pos, rl.Dir, err)
	}
	return pos, res, nil
}

func newRelaySearch(rn Runner, rl RelayLogs, sizes map[string]int64, masterFile string, masterPos uint64) (*relaySearch, error) {
	s := &relaySearch{rn: rn, rl: rl, masterFile: masterFile, masterPos: masterPos}
	for i, name := range rl.Files {
		size, ok := sizes[name]
		if !ok {
			return nil, fmt.Errorf("relay log %s is listed in the index but was not found in %s", name, rl.Dir)
		}
		s.files = append(s.files, relayFile{name: name, size: size, bounded: i == len(rl.Files)-1})
	}
	return s, nil
}

// RelayBytesAfter returns how many bytes of the master's binlog the relay
// logs hold after master position (masterFile, masterPos): the sizes of
// the master's events from there to the end of the relay logs (the
// replica's ReadMasterFile:ReadMasterPos), across rotations of the
// master's binlog, which a comparison of positions cannot measure. rl.Files
// may be empty: the index file is read then. The relay logs are read
// newest first (over a Runner, a few commands in all) and the reading
// stops once more than limit bytes are known to lie after the position:
// the result is then more than limit, a lower bound. ErrNotFound: the
// relay logs do not hold the position (purged, or not yet received).
func RelayBytesAfter(ctx context.Context, rl RelayLogs, indexFile, masterFile string, masterPos uint64, limit int64) (int64, error) {
	n, err := relayBytesAfter(ctx, rl, indexFile, masterFile, masterPos, limit)
	if err != nil {
		return 0, fmt.Errorf("measure the relay logs of %s after %s:%d: %w", rl.Dir, masterFile, masterPos, err)
	}
	return n, nil
}

func relayBytesAfter(ctx context.Context, rl RelayLogs, indexFile, masterFile string, masterPos uint64, limit int64) (int64, error) {
	rn, _ := rl.FS.(Runner)
	sizes := map[string]int64{}
	if rn != nil {
		script := fmt.Sprintf("d=%s; idx=%s; dist=-1; limit=0; probe=0; cr='\r'\n%s", quote(rl.Dir), quote(indexFile), relayScript)
		raw, err := rn.Run(ctx, script)
		if err != nil {
			return 0, fmt.Errorf("read relay-log index %s and sizes: %w", indexFile, err)
		}
		b, err := parseBatch(raw)
		if err != nil {
			return 0, err
		}
		if len(rl.Files) == 0 {
			rl.Files = b.index
		}
		sizes = b.sizes
	} else {
		if len(rl.Files) == 0 {
			files, err := ReadIndex(ctx, rl.FS, indexFile)
			if err != nil {
				return 0, err
			}
			rl.Files = files
		}
		for _, f := range rl.Files {
			n, err := rl.FS.Stat(ctx, rl.path(f))
			if err != nil {
				return 0, fmt.Errorf("stat %s: %w", rl.path(f), err)
			}
			sizes[f] = n
		}
	}
	if len(rl.Files) == 0 {
		return 0, fmt.Errorf("%w: no relay-log files", ErrNotFound)
	}
	s, err := newRelaySearch(rn, rl, sizes, masterFile, masterPos)
	if err != nil {
		return 0, err
	}
	s.beyond = max(limit, 1)
	pos, err := s.find(ctx)
	if errors.Is(err, errBeyond) {
		return s.masterFrom(len(s.files) - 1), nil // k files scanned, all after the position
	}
	if err != nil {
		return 0, err
	}
	return s.masterAfter(ctx, pos)
}

// masterFrom sums the master bytes of file x and of the scanned files
// before it, back to the first one not scanned.
func (s *relaySearch) masterFrom(x int) int64 {
	var n int64
	for y := x; y >= 0 && s.files[y].scan != nil; y-- {
		n += s.files[y].scan.master
	}
	return n
}

// masterAfter sums the master bytes after pos: those of the files after
// its file, and those after it in its file.
func (s *relaySearch) masterAfter(ctx context.Context, pos RelayPos) (int64, error) {
	first := -1
	for i := range s.files {
		if s.files[i].name == pos.File {
			first = i
		}
	}
	if first < 0 {
		return 0, fmt.Errorf("%s is not listed in the index", pos.File)
	}
	var n int64
	for x := first + 1; x < len(s.files); x++ {
		n += s.files[x].scan.master
	}
	f := &s.files[first]
	var head Head
	var err error
	if s.big(first) && f.data == nil {
		head, err = ReadHead(ctx, s.rl.FS, s.rl.path(f.name))
	} else if err = s.load(ctx, first); err == nil {
		head, err = parseHead(f.data[:min(f.size, headProbe)], s.rl.path(f.name))
	}
	if err != nil {
		return 0, err
	}
	from := max(pos.Pos, head.End)
	rc := s.open(ctx, first, from)
	defer rc.Close()
	r, err := NewReaderAt(rc, f.name, from, head.FDE)
	if err != nil {
		return 0, err
	}
	r.SetHeaderOnly(true)
	for i := 0; ; i++ {
		if i%4096 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		ev, err := r.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, ErrTruncated) {
			return n, nil // a half-written last event is not counted
		}
		if err != nil {
			return 0, err
		}
		if ev.ServerID != s.rl.ServerID && ev.Type != replication.FORMAT_DESCRIPTION_EVENT && ev.LogPos != 0 {
			n += int64(ev.EventSize)
		}
	}
}

// find scans the files newest first, reading them in chunks that grow
// (the first sized for the distance to the end when it is known), until
// the position is certain.
func (s *relaySearch) find(ctx context.Context) (RelayPos, error) {
	budget := int64(firstChunkBytes)
	if s.rl.ReadMasterFile == s.masterFile && s.rl.ReadMasterPos >= s.masterPos {
		d := int64(s.rl.ReadMasterPos - s.masterPos)
		budget = d + d/4 + 64<<10
	}
	k := len(s.files)
	for k > 0 {
		budget = min(budget, searchLimit)
		if s.big(k - 1) {
			k--
			st := openStream(ctx, s.rl.FS, s.rl.path(s.files[k].name), 0)
			sc, err := scanRelay(ctx, st, s.files[k].name, s.rl.ServerID, s.masterFile, s.masterPos)
			st.Close()
			if err != nil {
				return RelayPos{}, err
			}
			s.files[k].scan = sc
		} else {
			j := s.chunkBefore(k, budget)
			if err := s.read(ctx, j, k); err != nil {
				return RelayPos{}, err
			}
			for x := j; x < k; x++ {
				f := &s.files[x]
				sc, err := scanRelay(ctx, bytes.NewReader(f.data), f.name, s.rl.ServerID, s.masterFile, s.masterPos)
				if err != nil {
					return RelayPos{}, err
				}
				f.scan = sc
				// Keep what the copy may need, within bounds.
				if s.held+f.size <= searchLimit {
					s.held += f.size
				} else {
					f.data = nil
				}
			}
			k = j
		}
		pos, done, err := s.resolve(k)
		if done {
			return pos, err
		}
		if s.beyond > 0 && s.masterFrom(len(s.files)-1) > s.beyond {
			return RelayPos{}, errBeyond
		}
		budget *= 2
	}
	return RelayPos{}, ErrNotFound // not reached: resolve(0) is done
}

// copy writes the diff from pos to the end of the relay logs.
func (s *relaySearch) copy(ctx context.Context, pos RelayPos, w io.Writer) (CopyResult, error) {
	first := -1
	for i := range s.files {
		if s.files[i].name == pos.File {
			first = i
		}
	}
	if first < 0 {
		return CopyResult{}, fmt.Errorf("%s is not listed in the index (%d files)", pos.File, len(s.files))
	}
	for y := range first {
		s.drop(y)
	}
	var head Head
	var err error
	if f := &s.files[first]; s.big(first) && f.data == nil {
		head, err = ReadHead(ctx, s.rl.FS, s.rl.path(f.name))
	} else if err = s.load(ctx, first); err == nil {
		head, err = parseHead(f.data[:min(f.size, headProbe)], s.rl.path(f.name))
	}
	if err != nil {
		return CopyResult{}, err
	}
	var srcs []tailSource
	for x := first; x < len(s.files); x++ {
		from := int64(0)
		if x == first {
			from = max(pos.Pos, head.End)
		}
		srcs = append(srcs, tailSource{name: s.files[x].name, from: from, open: func() io.ReadCloser {
			rc := s.open(ctx, x, from)
			if x > first {
				s.drop(x - 1)
			}
			return rc
		}})
	}
	return copySources(ctx, head, srcs, s.rl.ServerID, w)
}
