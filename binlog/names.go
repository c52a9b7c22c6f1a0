package binlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Timestamp formats t like MHA's file names: YYYYMMDDhhmmss.
func Timestamp(t time.Time) string { return t.Format("20060102150405") }

// SavedMasterBinlogName is saved_master_binlog_from_HOST_PORT_TS.binlog, the
// dead master's saved tail.
func SavedMasterBinlogName(host string, port int, ts string) string {
	return fmt.Sprintf("saved_master_binlog_from_%s_%d_%s.binlog", host, port, ts)
}

// RelayDiffName is relay_from_read_to_latest_HOST_PORT_TS.binlog, the
// relay-log diff generated for the replica HOST:PORT.
func RelayDiffName(host string, port int, ts string) string {
	return fmt.Sprintf("relay_from_read_to_latest_%s_%d_%s.binlog", host, port, ts)
}

// TotalBinlogName is total_binlog_for_HOST_PORT.TS.binlog, everything
// applied to HOST:PORT concatenated.
func TotalBinlogName(host string, port int, ts string) string {
	return fmt.Sprintf("total_binlog_for_%s_%d.%s.binlog", host, port, ts)
}

// ConcatFiles writes the binlog files in order into out as one binlog (the
// total_binlog_for_... artifact): the first file whole, the others without
// their magic number and equivalent format description events.
func ConcatFiles(files []string, out string) (CopyResult, error) {
	// implemented in concat.go
	return concatFiles(files, filepath.Clean(out))
}

// binlogNumbered matches a binlog file name: <base>.<digits>.
var binlogNumbered = regexp.MustCompile(`^(.+)\.([0-9]+)$`)

// listDirScript prints the names of the regular files of $d, one a line;
// it fails (exit 3) when $d is not a directory that can be entered.
const listDirScript = `cd -- "$d" || exit 3
for f in *; do [ -f "$f" ] && printf '%s\n' "$f"; done
exit 0
`

// ListBinlogDir lists the binlog files of dir named <base>.<number> (any
// base when base is ""), in the order of their numbers (then names): what
// a binlog server's directory holds instead of an index. The FS must be
// LocalFS or a Runner (*remote.Client is). A directory that does not
// exist or cannot be read is an error; an empty list is not.
func ListBinlogDir(ctx context.Context, fs FS, dir, base string) ([]string, error) {
	var all []string
	switch f := fs.(type) {
	case Runner:
		out, err := f.Run(ctx, "d="+quote(dir)+"\n"+listDirScript)
		if err != nil {
			return nil, fmt.Errorf("list %s: not a readable directory: %w", dir, err)
		}
		all = strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	case LocalFS:
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		for _, e := range ents {
			if e.Type().IsRegular() {
				all = append(all, e.Name())
			}
		}
	default:
		return nil, fmt.Errorf("list %s: %T can neither run a command nor read a local directory", dir, fs)
	}
	type numbered struct {
		name string
		num  uint64
	}
	var got []numbered
	for _, n := range all {
		m := binlogNumbered.FindStringSubmatch(n)
		if m == nil || (base != "" && m[1] != base) || strings.ContainsAny(n, "\n\r") {
			continue
		}
		num, err := strconv.ParseUint(m[2], 10, 64)
		if err != nil {
			continue
		}
		got = append(got, numbered{n, num})
	}
	sort.Slice(got, func(i, j int) bool {
		if got[i].num != got[j].num {
			return got[i].num < got[j].num
		}
		return got[i].name < got[j].name
	})
	names := make([]string, 0, len(got))
	for _, g := range got {
		names = append(names, g.name)
	}
	return names, nil
}
