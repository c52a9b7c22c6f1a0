package binlog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/replication"
)

// shellFS is LocalFS plus a Runner that runs commands with the local sh:
// it drives the batched (one command) paths exactly as a DB host's shell
// would, and counts the commands.
type shellFS struct {
	LocalFS
	runs int
}

func (s *shellFS) Run(ctx context.Context, cmd string) ([]byte, error) {
	s.runs++
	return exec.CommandContext(ctx, "sh", "-c", cmd).Output()
}

// rotatedCopy writes three copies of the real binlog as mysql-bin.000001..3
// plus an index with "./" prefixes and a CRLF line, and returns the dir.
func rotatedCopy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(realFiles[0])
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var idx strings.Builder
	for _, n := range []string{"mysql-bin.000001", "mysql-bin.000002", "mysql-bin.000003"} {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
		idx.WriteString("./" + n + "\r\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "mysql-bin.index"), []byte(idx.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSaveBatchedMatchesStreamed: the one-command save writes exactly what
// the file-by-file save writes, from positions before, inside and after
// the head probe, across rotated files, in one command.
func TestSaveBatchedMatchesStreamed(t *testing.T) {
	ctx := context.Background()
	dir := rotatedCopy(t)
	r, err := Open(filepath.Join(dir, "mysql-bin.000002"))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := readAll(t, r, false)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	var starts []uint64
	for _, e := range evs {
		if e.Type == replication.XID_EVENT {
			starts = append(starts, uint64(e.End()))
		}
	}
	if len(starts) < 2 {
		t.Fatalf("want 2+ transactions in %s", realFiles[0])
	}
	cases := []struct {
		name  string
		file  string
		start uint64
	}{
		{"from the first transaction end", "mysql-bin.000002", starts[0]},
		{"from the last transaction end", "mysql-bin.000002", starts[len(starts)-1]},
		{"from the start of a file", "mysql-bin.000002", 4},
		{"last file only", "mysql-bin.000003", starts[0]},
	}
	for _, probe := range []int64{headProbe, 700} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/probe %d", tc.name, probe), func(t *testing.T) {
				defer func(p int64) { headProbe = p }(headProbe)
				headProbe = probe
				var want, got bytes.Buffer
				wres, err := SaveMasterTail(ctx, LocalFS{}, dir, "", tc.file, tc.start, &want)
				if err != nil {
					t.Fatal(err)
				}
				sh := &shellFS{}
				gres, err := SaveMasterTail(ctx, sh, dir, "", tc.file, tc.start, &got)
				if err != nil {
					t.Fatal(err)
				}
				if sh.runs != 1 {
					t.Errorf("batched save ran %d commands, want 1", sh.runs)
				}
				if !bytes.Equal(want.Bytes(), got.Bytes()) {
					t.Errorf("batched save wrote %d bytes, streamed %d; they differ", got.Len(), want.Len())
				}
				if gres.Transactions != wres.Transactions || gres.EndFile != wres.EndFile || gres.EndPos != wres.EndPos ||
					gres.LastGTID != wres.LastGTID || gres.HeadEnd != wres.HeadEnd || strings.Join(gres.Files, ",") != strings.Join(wres.Files, ",") {
					t.Errorf("results differ:\nbatched  %+v\nstreamed %+v", gres, wres)
				}
			})
		}
	}
	// Errors are the streamed path's.
	sh := &shellFS{}
	if _, err := SaveMasterTail(ctx, sh, dir, "", "mysql-bin.000009", 4, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "not listed in the index") {
		t.Errorf("unknown start file: %v", err)
	}
	if _, err := SaveMasterTail(ctx, sh, dir, "", "mysql-bin.000003", 1<<30, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "beyond the end") {
		t.Errorf("start beyond the end: %v", err)
	}
}

// TestRelayDiffBatched: WriteRelayDiff finds every position of the relay
// log in one command (fast path) and writes what FindRelayPosition +
// WriteDiff write; a position it cannot verify falls back to the walk.
func TestRelayDiffBatched(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := os.ReadFile(realFiles[1])
	if err != nil {
		t.Fatal(err)
	}
	name := "relay-bin.000002"
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "relay-bin.index"), []byte("./"+name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := readAll(t, r, false)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	var lastPos uint32
	for _, e := range evs {
		if e.ServerID != 102 && e.LogPos > lastPos {
			lastPos = e.LogPos
		}
	}
	tested := 0
	defer func(p int64) { headProbe = p }(headProbe)
	for i, e := range evs {
		headProbe = []int64{16 << 10, 700}[i%2] // whole file, or head + tail
		if e.Type != replication.XID_EVENT || e.LogPos == 0 || e.LogPos == lastPos {
			continue
		}
		rl := RelayLogs{FS: LocalFS{}, Dir: dir, Files: []string{name}, ServerID: 102,
			ReadMasterFile: "mysql-bin.000001", ReadMasterPos: uint64(lastPos)}
		wantPos, err := FindRelayPosition(ctx, rl, "mysql-bin.000001", uint64(e.LogPos))
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if _, err := WriteDiff(ctx, rl, wantPos, &want); err != nil {
			t.Fatal(err)
		}
		sh := &shellFS{}
		rl.FS, rl.Files = sh, nil
		var got bytes.Buffer
		pos, res, err := WriteRelayDiff(ctx, rl, filepath.Join(dir, "relay-bin.index"), "mysql-bin.000001", uint64(e.LogPos), &got)
		if err != nil {
			t.Fatal(err)
		}
		if pos != wantPos || !pos.Fast || sh.runs != 1 {
			t.Errorf("master pos %d: found %+v in %d command(s), want %+v by the fast path in 1", e.LogPos, pos, sh.runs, wantPos)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) || res.Bytes != int64(got.Len()) {
			t.Errorf("master pos %d: batched diff differs from WriteDiff's", e.LogPos)
		}
		tested++
	}
	if tested < 2 {
		t.Fatalf("only %d positions tested", tested)
	}
	// A wrong read position defeats the header check: the walk finds it.
	rl := RelayLogs{FS: &shellFS{}, Dir: dir, ServerID: 102, ReadMasterFile: "mysql-bin.000001", ReadMasterPos: uint64(lastPos) + 7}
	for _, e := range evs {
		if e.Type == replication.XID_EVENT && e.LogPos != 0 && e.LogPos != lastPos {
			pos, _, err := WriteRelayDiff(ctx, rl, filepath.Join(dir, "relay-bin.index"), "mysql-bin.000001", uint64(e.LogPos), &bytes.Buffer{})
			if err != nil || pos.Fast || pos.Pos != e.End() {
				t.Errorf("fallback: %+v %v, want the walk's %s:%d", pos, err, name, e.End())
			}
			break
		}
	}
}

// TestSkipTransactions: TransactionGTIDs lists one GTID per transaction and
// SkipTransactions drops exactly the first n.
func TestSkipTransactions(t *testing.T) {
	gtids, err := TransactionGTIDs(realFiles[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(gtids) < 2 || gtids[0] == "" {
		t.Fatalf("GTIDs of %s: %v", realFiles[0], gtids)
	}
	for _, n := range []int{0, 1, len(gtids)} {
		out := filepath.Join(t.TempDir(), "rest.binlog")
		res, err := SkipTransactions(realFiles[0], n, out)
		if err != nil {
			t.Fatal(err)
		}
		rest, err := TransactionGTIDs(out)
		if err != nil {
			t.Fatal(err)
		}
		if res.Transactions != len(gtids)-n || strings.Join(rest, ",") != strings.Join(gtids[n:], ",") {
			t.Errorf("skip %d: kept %v (%d), want %v", n, rest, res.Transactions, gtids[n:])
		}
	}
}
