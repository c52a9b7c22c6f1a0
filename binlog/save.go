package binlog

import (
	"bytes"
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

// SaveBinlogServerTail is SaveMasterTail for a binlog server's directory
// (MHA's [binlogN] master_binlog_dir, kept by e.g. `mariadb-binlog
// --read-from-remote-server --raw --stop-never`): such a copy has no index
// file, so the files after startFile are the directory's files named like
// it (<base>.<number>) in the order of their numbers (ListBinlogDir).
// --raw copies the master's bytes, so file names and positions are the
// master's.
func SaveBinlogServerTail(ctx context.Context, fs FS, dir, startFile string, startPos uint64, out io.Writer) (SaveResult, error) {
	names, err := ListBinlogDir(ctx, fs, dir, binlogBase(startFile))
	if err == nil && len(names) == 0 {
		err = fmt.Errorf("no binlog file named %s.<number> in %s", binlogBase(startFile), dir)
	}
	if err != nil {
		return SaveResult{}, fmt.Errorf("save binlog tail from %s:%d in %s: %w", startFile, startPos, dir, err)
	}
	res, err := saveTailOf(ctx, fs, dir, "", names, startFile, startPos, out)
	if err != nil {
		return res, fmt.Errorf("save binlog tail from %s:%d in %s: %w", startFile, startPos, dir, err)
	}
	return res, nil
}

// binlogBase is the name without its numeric extension: "mysql-bin" of
// "mysql-bin.000042".
func binlogBase(name string) string {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[:i]
	}
	return name
}

func saveMasterTail(ctx context.Context, fs FS, binlogDir, indexFile, startFile string, startPos uint64, out io.Writer) (SaveResult, error) {
	return saveTailOf(ctx, fs, binlogDir, indexFile, nil, startFile, startPos, out)
}

// saveTailOf saves the tail; the file names come from names when it is
// not nil, else from indexFile.
func saveTailOf(ctx context.Context, fs FS, binlogDir, indexFile string, names []string, startFile string, startPos uint64, out io.Writer) (SaveResult, error) {
	if indexFile == "" && names == nil {
		base := startFile
		if i := strings.LastIndexByte(base, '.'); i > 0 {
			base = base[:i]
		}
		indexFile = path.Join(binlogDir, base+".index")
	}
	if rn, ok := fs.(Runner); ok {
		res, done, err := saveBatched(ctx, rn, binlogDir, indexFile, names, startFile, startPos, out)
		if done || err != nil {
			return res, err
		}
		// Too big for one buffered read: stream file by file.
	}
	return saveStreamed(ctx, fs, binlogDir, indexFile, names, startFile, startPos, out)
}

// saveScript prints the index ("I name"), the size of every binlog from
// the start file on ("F size name"), then, unless the bytes to read exceed
// the limit, "DATA" followed by the start file's head (up to headProbe
// bytes), its bytes from the start position to its size, and every later
// file whole, each bounded by the size printed (a file that grows while it
// is read does not shift the stream). Otherwise it prints "END".
const saveScript = `found=; i=0
while IFS= read -r l || [ -n "$l" ]; do
  b=${l##*/}; b=${b%"$cr"}
  [ -n "$b" ] || continue
  echo "I $b"
  [ "$b" = "$start" ] && found=1
  [ -n "$found" ] || continue
  eval "n$i=\$b"; i=$((i+1))
  set -- "$@" "$d/$b"
done @INDEX@ || exit 3
[ -n "$found" ] || { echo END; exit 0; }
sizes=$(stat -L -c %s -- "$@") || exit 4
set -- $sizes
j=0; total=0
for s in "$@"; do
  eval "b=\$n$j; s$j=$s"; echo "F $s $b"
  if [ $j -eq 0 ]; then total=$((total + s - from)); else total=$((total + s)); fi
  j=$((j+1))
done
if [ "$from" -gt "$s0" ] || [ "$total" -gt "$limit" ]; then echo END; exit 0; fi
echo DATA
j=0
while [ $j -lt $i ]; do
  eval "b=\$n$j; s=\$s$j"
  if [ $j -gt 0 ]; then
    head -c $s -- "$d/$b" || exit 4
  elif [ "$from" -le $probe ]; then
    head -c $s -- "$d/$b" || exit 4
  else
    head -c $probe -- "$d/$b" || exit 4
    tail -c +$((from + 1)) -- "$d/$b" | head -c $((s - from)) || exit 4
  fi
  j=$((j+1))
done
`

// saveBatched reads everything in one command. done is false when the
// bytes exceed MaxBatchBytes (nothing was written to out then).
func saveBatched(ctx context.Context, rn Runner, binlogDir, indexFile string, names []string, startFile string, startPos uint64, out io.Writer) (SaveResult, bool, error) {
	var res SaveResult
	// The names are read from the index file, or from a here-document
	// (names listed by ListBinlogDir, checked to be plain file names).
	input, what := `< "$idx"`, "index "+indexFile
	if names != nil {
		input, what = "<<'MHARAFT_BINLOG_NAMES'", "binlogs of "+binlogDir
	}
	script := fmt.Sprintf("d=%s; idx=%s; start=%s; from=%d; limit=%d; probe=%d; cr='\r'\n%s",
		quote(binlogDir), quote(indexFile), quote(startFile), startPos, MaxBatchBytes, headProbe,
		strings.Replace(saveScript, "@INDEX@", input, 1))
	if names != nil {
		// The here-document's body follows the line of the loop's end.
		script = strings.Replace(script, "done <<'MHARAFT_BINLOG_NAMES' || exit 3\n",
			"done <<'MHARAFT_BINLOG_NAMES' || exit 3\n"+strings.Join(names, "\n")+"\nMHARAFT_BINLOG_NAMES\n", 1)
	}
	raw, err := rn.Run(ctx, script)
	if err != nil {
		return res, true, fmt.Errorf("read %s and binlogs: %w", what, err)
	}
	b, err := parseBatch(raw)
	if err != nil {
		return res, true, err
	}
	files, err := filesFrom(b.index, startFile)
	if err != nil {
		return res, true, fmt.Errorf("%s: %w", what, err)
	}
	res.Files = files
	size0, ok := b.sizes[startFile]
	if !ok {
		return res, true, fmt.Errorf("stat %s: no size reported", path.Join(binlogDir, startFile))
	}
	if int64(startPos) > size0 {
		return res, true, fmt.Errorf("start position %d is beyond the end of %s (%d bytes)", startPos, path.Join(binlogDir, startFile), size0)
	}
	if !b.hasData {
		return res, false, nil
	}
	// The start file comes whole when the start position lies within the
	// head probe, else as its head followed by its bytes from startPos.
	data := b.data
	partFrom := int64(startPos)
	var headBytes, part0 []byte
	if int64(startPos) <= headProbe {
		partFrom = 0
		if part0, err = take(&data, size0, startFile); err != nil {
			return res, true, err
		}
		headBytes = part0[:min(size0, headProbe)]
	} else {
		if headBytes, err = take(&data, headProbe, "head of "+startFile); err != nil {
			return res, true, err
		}
		if part0, err = take(&data, size0-int64(startPos), startFile); err != nil {
			return res, true, err
		}
	}
	head, err := parseHead(headBytes, path.Join(binlogDir, startFile))
	if err != nil {
		return res, true, err
	}
	var srcs []tailSource
	for i, name := range b.order {
		if i == 0 {
			from := max(int64(startPos), head.End)
			srcs = append(srcs, tailSource{name: name, from: from, open: bytesOpener(part0[from-partFrom:])})
			continue
		}
		part, err := take(&data, b.sizes[name], name)
		if err != nil {
			return res, true, err
		}
		srcs = append(srcs, tailSource{name: name, open: bytesOpener(part)})
	}
	res.HeadEnd = head.End
	cr, err := copySources(ctx, head, srcs, 0, out)
	res.CopyResult = cr
	return res, true, err
}

// saveStreamed reads the index, the head and the size of the start file,
// then streams each file in its own session.
func saveStreamed(ctx context.Context, fs FS, binlogDir, indexFile string, names []string, startFile string, startPos uint64, out io.Writer) (SaveResult, error) {
	var res SaveResult
	what := "binlogs of " + binlogDir
	if names == nil {
		var err error
		if names, err = ReadIndex(ctx, fs, indexFile); err != nil {
			return res, err
		}
		what = "index " + indexFile
	}
	files, err := filesFrom(names, startFile)
	if err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
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
	var srcs []tailSource
	for i, name := range files {
		p := path.Join(binlogDir, name)
		if i == 0 {
			from := max(int64(startPos), head.End)
			srcs = append(srcs, tailSource{name: name, from: from, open: func() io.ReadCloser { return openStream(ctx, fs, p, from) }})
			continue
		}
		srcs = append(srcs, tailSource{name: name, open: func() io.ReadCloser { return openStream(ctx, fs, p, 0) }})
	}
	cr, err := copySources(ctx, head, srcs, 0, out)
	res.CopyResult = cr
	return res, err
}

// tailSource is one file of a save or a diff: the first is read from
// `from` with the head's format description event, the others whole.
type tailSource struct {
	name string
	from int64
	open func() io.ReadCloser
}

func bytesOpener(b []byte) func() io.ReadCloser {
	return func() io.ReadCloser { return memFile{bytes.NewReader(b)} }
}

// memFile is a ReadCloser of bytes that keeps bytes.Reader's Len (the
// Reader sizes its buffer by it).
type memFile struct{ *bytes.Reader }

func (memFile) Close() error { return nil }

// copySources writes the header (magic and head's format description
// event) and the events of srcs to out, skipping skipServerID's events,
// ending at the last complete transaction. A truncated last file is an
// incomplete tail, not an error.
func copySources(ctx context.Context, head Head, srcs []tailSource, skipServerID uint32, out io.Writer) (CopyResult, error) {
	c := &txCopier{out: out}
	if err := c.writeHeader(head.FDE); err != nil {
		return c.res, err
	}
	if len(srcs) > 0 {
		c.res.EndFile, c.res.EndPos = srcs[0].name, max(srcs[0].from, head.End)
	}
	for i, src := range srcs {
		s := src.open()
		var r *Reader
		var err error
		if i == 0 {
			r, err = NewReaderAt(s, src.name, max(src.from, head.End), head.FDE)
		} else {
			r, err = NewReader(s, src.name)
		}
		if err != nil {
			s.Close()
			return c.res, err
		}
		last := i == len(srcs)-1
		err = copyEvents(ctx, c, r, skipServerID, head)
		s.Close()
		if err != nil && !errors.Is(err, io.EOF) && !(last && errors.Is(err, ErrTruncated)) {
			c.finish(err)
			return c.res, err
		}
		if last {
			c.finish(err)
		}
	}
	return c.res, nil
}
