package binlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"
)

// FS reads files of a DB host. *remote.Client satisfies it (over SSH);
// LocalFS reads this machine's disk.
type FS interface {
	Stat(ctx context.Context, path string) (int64, error)
	ReadFrom(ctx context.Context, path string, offset int64, w io.Writer) (int64, error)
	ReadRange(ctx context.Context, path string, offset, length int64, w io.Writer) (int64, error)
	ReadFile(ctx context.Context, path string) ([]byte, error)
}

// LocalFS is an FS on the local disk.
type LocalFS struct{}

// Stat returns the file's size.
func (LocalFS) Stat(_ context.Context, p string) (int64, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// ReadFrom copies the file from offset to its end into w.
func (LocalFS) ReadFrom(ctx context.Context, p string, offset int64, w io.Writer) (int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, err
	}
	return io.Copy(w, ctxReader{ctx, f})
}

// ReadRange copies length bytes from offset (fewer at end of file).
func (LocalFS) ReadRange(ctx context.Context, p string, offset, length int64, w io.Writer) (int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.Copy(w, ctxReader{ctx, io.NewSectionReader(f, offset, length)})
}

// ReadFile reads a whole file.
func (LocalFS) ReadFile(_ context.Context, p string) ([]byte, error) { return os.ReadFile(p) }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// openStream returns a reader of p from offset through fs, fed by a
// goroutine; closing it stops the transfer.
func openStream(ctx context.Context, fs FS, p string, offset int64) io.ReadCloser {
	if _, ok := fs.(LocalFS); ok {
		f, err := os.Open(p)
		if err != nil {
			return errReadCloser{err}
		}
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return errReadCloser{err}
		}
		return f
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		_, err := fs.ReadFrom(ctx, p, offset, pw)
		pw.CloseWithError(err)
	}()
	return &pipeStream{pr, cancel}
}

type pipeStream struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (s *pipeStream) Close() error {
	s.cancel()
	return s.PipeReader.Close()
}

type errReadCloser struct{ err error }

func (e errReadCloser) Read([]byte) (int, error) { return 0, e.err }
func (e errReadCloser) Close() error             { return nil }

// Head is the start of a binlog file: its header events up to and
// including the last format description event.
type Head struct {
	// FDE is the raw format description event in effect after the head
	// (in a relay log, the master's, which follows the replica's own).
	FDE []byte
	// End is the offset just after that event.
	End int64
	// Checksum reports CRC32 checksums.
	Checksum bool
}

// headProbe is how much of a file ReadHead fetches (a variable for tests).
var headProbe int64 = 16 << 10

// ReadHead reads the header events of a file (magic, format description
// events, the rotate events of a relay log's start) through fs.
func ReadHead(ctx context.Context, fs FS, p string) (Head, error) {
	size, err := fs.Stat(ctx, p)
	if err != nil {
		return Head{}, fmt.Errorf("read head of %s: %w", p, err)
	}
	var buf bytes.Buffer
	// remote.Client.ReadRange refuses to read past the end of a file.
	if _, err := fs.ReadRange(ctx, p, 0, min(size, headProbe), &buf); err != nil {
		return Head{}, fmt.Errorf("read head of %s: %w", p, err)
	}
	return parseHead(buf.Bytes(), p)
}

func parseHead(b []byte, name string) (Head, error) {
	r, err := NewReader(bytes.NewReader(b), name)
	if err != nil {
		return Head{}, err
	}
	var h Head
	for {
		ev, err := r.Next()
		if err != nil {
			if h.FDE != nil && (errors.Is(err, io.EOF) || errors.Is(err, ErrTruncated)) {
				return h, nil
			}
			if errors.Is(err, io.EOF) {
				return Head{}, &Error{File: name, Offset: r.Offset(), Err: fmt.Errorf("%w: no format description event", ErrTruncated)}
			}
			return Head{}, err
		}
		switch ev.Type {
		case replication.FORMAT_DESCRIPTION_EVENT:
			h.FDE = append([]byte(nil), ev.Raw...)
			h.End = ev.End()
			h.Checksum = r.Checksum()
		case replication.ROTATE_EVENT, replication.PREVIOUS_GTIDS_EVENT, replication.MARIADB_GTID_LIST_EVENT,
			replication.MARIADB_BINLOG_CHECKPOINT_EVENT, replication.MARIADB_START_ENCRYPTION_EVENT:
		default:
			if h.FDE == nil {
				return Head{}, &Error{File: name, Offset: ev.Offset, Err: fmt.Errorf("%w: %s before any format description event", ErrCorrupt, ev.Type)}
			}
			return h, nil
		}
	}
}

// ReadIndex reads a binlog or relay-log index file (one file per line,
// often "./mysql-bin.000001") and returns the base names in order.
func ReadIndex(ctx context.Context, fs FS, indexFile string) ([]string, error) {
	b, err := fs.ReadFile(ctx, indexFile)
	if err != nil {
		return nil, fmt.Errorf("read index %s: %w", indexFile, err)
	}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" {
			names = append(names, path.Base(l))
		}
	}
	return names, nil
}

// filesFrom returns the names from start on.
func filesFrom(names []string, start string) ([]string, error) {
	for i, n := range names {
		if n == start {
			return names[i:], nil
		}
	}
	return nil, fmt.Errorf("%s is not listed in the index (%d files)", start, len(names))
}

// Runner runs a POSIX shell command on the DB host and returns its standard
// output. *remote.Client satisfies it. When an FS is also a Runner,
// SaveMasterTail and WriteRelayDiff read what they need (index, sizes,
// head and bytes) in ONE command, i.e. one SSH session instead of five to
// eight; the output is buffered in memory, so this is used only up to
// MaxBatchBytes.
type Runner interface {
	Run(ctx context.Context, cmd string) ([]byte, error)
}

// MaxBatchBytes bounds the bytes one batched read may bring into memory;
// beyond it the files are streamed one session per file.
const MaxBatchBytes = 64 << 20

// quote quotes s for a POSIX shell (as remote.Quote; binlog does not import
// remote).
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// batchOut is the parsed output of a batch script: the lines before the
// "DATA" (or "END") line and the raw bytes after it.
type batchOut struct {
	index   []string         // "I name" lines: the index, in order
	sizes   map[string]int64 // "F size name" and "S size name" lines
	order   []string         // names of the F lines, in order
	data    []byte           // nil when the script printed END
	hasData bool
}

func parseBatch(out []byte) (batchOut, error) {
	b := batchOut{sizes: map[string]int64{}}
	for len(out) > 0 {
		i := bytes.IndexByte(out, '\n')
		if i < 0 {
			return b, fmt.Errorf("batch read: output ends without DATA or END")
		}
		line := string(out[:i])
		out = out[i+1:]
		switch {
		case line == "DATA":
			b.data, b.hasData = out, true
			return b, nil
		case line == "END":
			return b, nil
		case strings.HasPrefix(line, "I "):
			b.index = append(b.index, line[2:])
		case strings.HasPrefix(line, "S "):
			f := strings.SplitN(line[2:], " ", 2)
			n, err := strconv.ParseInt(f[0], 10, 64)
			if len(f) != 2 || err != nil {
				return b, fmt.Errorf("batch read: bad line %q", line)
			}
			b.sizes[f[1]] = n
		case strings.HasPrefix(line, "F "):
			f := strings.SplitN(line[2:], " ", 2)
			if len(f) != 2 {
				return b, fmt.Errorf("batch read: bad line %q", line)
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return b, fmt.Errorf("batch read: bad size in %q", line)
			}
			b.sizes[f[1]] = n
			b.order = append(b.order, f[1])
		default:
			return b, fmt.Errorf("batch read: unexpected line %q", line)
		}
	}
	return b, fmt.Errorf("batch read: empty output")
}

// take cuts n bytes off the front of *data.
func take(data *[]byte, n int64, what string) ([]byte, error) {
	if n < 0 || int64(len(*data)) < n {
		return nil, fmt.Errorf("batch read: %s: want %d bytes, %d left (the file changed while read?)", what, n, len(*data))
	}
	b := (*data)[:n]
	*data = (*data)[n:]
	return b, nil
}

// readIndexScript prints "I name" for every line of the index file $idx
// ($cr must hold a carriage return). Scripts avoid command substitutions
// and external commands where they can: each costs a fork and an exec on
// the DB host, several milliseconds on a loaded one.
const readIndexScript = `last=
while IFS= read -r l || [ -n "$l" ]; do
  b=${l##*/}; b=${b%"$cr"}
  [ -n "$b" ] || continue
  echo "I $b"; last=$b
done < "$idx" || exit 3
`
