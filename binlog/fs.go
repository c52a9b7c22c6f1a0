package binlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
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

// headProbe is how much of a file ReadHead fetches.
const headProbe = 16 << 10

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
