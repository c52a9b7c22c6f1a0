package bench

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/mharaft/mharaft/binlog"
)

// events reads the events of a binlog file (their bytes), and the log
// positions of its XID events.
func events(t *testing.T, path string) (raws [][]byte, types []replication.EventType, xidPos []uint64) {
	t.Helper()
	r, err := binlog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return raws, types, xidPos
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		raws = append(raws, bytes.Clone(ev.Raw))
		types = append(types, ev.Type)
		if ev.Type == replication.XID_EVENT {
			xidPos = append(xidPos, uint64(ev.LogPos))
		}
	}
}

// TestCutSegments: the segments of a binlog (recorded from MariaDB 10.11)
// each start with its format description event, end at transaction ends,
// and together hold exactly its events.
func TestCutSegments(t *testing.T) {
	const src = "../binlog/testdata/mariadb/mariadb-10.11-mixed.binlog"
	raws, _, xids := events(t, src)
	if len(xids) < 3 {
		t.Fatalf("%s has %d transactions; the test needs 3", src, len(xids))
	}
	for _, n := range []int{1, 2, 3} {
		segs, err := cutSegments(src, t.TempDir(), n)
		if err != nil {
			t.Fatalf("%d segments: %v", n, err)
		}
		if len(segs) != n {
			t.Fatalf("%d segments: got %d", n, len(segs))
		}
		var joined [][]byte
		txs := 0
		for i, s := range segs {
			sr, st, sx := events(t, s.file)
			if len(st) == 0 || st[0] != replication.FORMAT_DESCRIPTION_EVENT || !bytes.Equal(sr[0], raws[0]) {
				t.Fatalf("segment %d of %d does not start with the format description event: %v", i+1, n, st)
			}
			if len(sx) != s.txs || s.txs == 0 || s.masterPos != sx[len(sx)-1] {
				t.Errorf("segment %d of %d: %d transactions ending at %d, the file has %v", i+1, n, s.txs, s.masterPos, sx)
			}
			if i < n-1 && st[len(st)-1] != replication.XID_EVENT {
				t.Errorf("segment %d of %d ends with %v, not a transaction end", i+1, n, st[len(st)-1])
			}
			joined = append(joined, sr[1:]...)
			txs += s.txs
		}
		if txs != len(xids) || segs[n-1].masterPos != xids[len(xids)-1] {
			t.Errorf("%d segments hold %d transactions ending at %d; the file has %d ending at %d", n, txs, segs[n-1].masterPos, len(xids), xids[len(xids)-1])
		}
		if len(joined) != len(raws)-1 {
			t.Fatalf("%d segments hold %d events after the header; the file has %d", n, len(joined), len(raws)-1)
		}
		for i := range joined {
			if !bytes.Equal(joined[i], raws[i+1]) {
				t.Fatalf("%d segments: event %d differs from the file's", n, i+1)
			}
		}
	}
	if _, err := cutSegments(src, t.TempDir(), len(xids)+1); err == nil {
		t.Errorf("cutting %d segments from %d transactions succeeded", len(xids)+1, len(xids))
	}
}
