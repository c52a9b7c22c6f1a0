package binlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// SaveResult is what SaveMasterTail wrote.
type SaveResult struct {
	CopyResult
	// Files are the master's binlog files the tail was read from.
	Files []string
	// HeadEnd is the end of the format description event copied from the
	// first file ("Dumping binlog format description event, from position
	// 0 to HeadEnd").
	HeadEnd int64
}

// SaveMasterTail copies the dead master's binlog from (startFile,
// startPos), the latest replica's Master_Log_File and Read_Master_Log_Pos,
// to the end of its last binlog into out, reading through fs (over SSH:
// nothing of ours runs on the DB host). The files after startFile come
// from indexFile (binlogDir/<base>.index when empty).
//
// The output is one binlog: the magic number and the format description
// event of startFile, then the events from startPos on, then those of each
// later file without its magic number and format description event (kept
// only when its checksum setting differs), cut at the last complete
// transaction (a crash can leave a half-written event; it is reported in
// Incomplete).
func SaveMasterTail(ctx context.Context, fs FS, binlogDir, indexFile, startFile string, startPos uint64, out io.Writer) (SaveResult, error) {
	res, err := saveMasterTail(ctx, fs, binlogDir, indexFile, startFile, startPos, out)
	if err != nil {
		return res, fmt.Errorf("save master binlog tail from %s:%d in %s: %w", startFile, startPos, binlogDir, err)
	}
	return res, nil
}

func saveMasterTail(ctx context.Context, fs FS, binlogDir, indexFile, startFile string, startPos uint64, out io.Writer) (SaveResult, error) {
	var res SaveResult
	if indexFile == "" {
		base := startFile
		if i := strings.LastIndexByte(base, '.'); i > 0 {
			base = base[:i]
		}
		indexFile = path.Join(binlogDir, base+".index")
	}
	names, err := ReadIndex(ctx, fs, indexFile)
	if err != nil {
		return res, err
	}
	files, err := filesFrom(names, startFile)
	if err != nil {
		return res, fmt.Errorf("index %s: %w", indexFile, err)
	}
	res.Files = files
	p0 := path.Join(binlogDir, startFile)
	head, err := ReadHead(ctx, fs, p0)
	if err != nil {
		return res, err
	}
	res.HeadEnd = head.End
	size, err := fs.Stat(ctx, p0)
	if err != nil {
		return res, fmt.Errorf("stat %s: %w", p0, err)
	}
	if int64(startPos) > size {
		return res, fmt.Errorf("start position %d is beyond the end of %s (%d bytes)", startPos, p0, size)
	}
	c := &txCopier{out: out}
	if err := c.writeHeader(head.FDE); err != nil {
		return res, err
	}
	from := max(int64(startPos), head.End)
	c.res.EndFile, c.res.EndPos = startFile, from
	for i, name := range files {
		p := path.Join(binlogDir, name)
		var r *Reader
		var s io.ReadCloser
		if i == 0 {
			s = openStream(ctx, fs, p, from)
			r, err = NewReaderAt(s, name, from, head.FDE)
		} else {
			s = openStream(ctx, fs, p, 0)
			r, err = NewReader(s, name)
		}
		if err != nil {
			s.Close()
			res.CopyResult = c.res
			return res, err
		}
		last := i == len(files)-1
		err = copyEvents(ctx, c, r, 0, head)
		s.Close()
		if err != nil && !errors.Is(err, io.EOF) && !(last && errors.Is(err, ErrTruncated)) {
			c.finish(err)
			res.CopyResult = c.res
			return res, err
		}
		if last {
			c.finish(err)
		}
	}
	res.CopyResult = c.res
	return res, nil
}
