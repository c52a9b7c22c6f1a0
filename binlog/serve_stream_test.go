package binlog

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/go-mysql-org/go-mysql/replication"
)

// TestServedStream checks the layout of the served file on a binlog
// written by MariaDB 10.11 (given twice, as a diff and a saved tail are):
// log_pos chains from the format description event to the end, every
// checksum verifies, the transactions' ends are where the stream says,
// a dump from any transaction boundary sends exactly the rest, a position
// inside an event is refused, and locate maps a served position back to
// the input.
func TestServedStream(t *testing.T) {
	in := filepath.Join("testdata", "mariadb", "mariadb-10.11-mixed.binlog")
	files := []string{in, in}
	st, err := buildServed(files)
	if err != nil {
		t.Fatal(err)
	}
	if !st.checksum || len(st.txs) < 4 || st.incomplete {
		t.Fatalf("stream: checksum %v, %d transactions, incomplete %v", st.checksum, len(st.txs), st.incomplete)
	}
	if len(st.txs)%2 != 0 || st.txs[len(st.txs)/2].file != 1 {
		t.Errorf("the second copy's transactions do not start at the middle: %d transactions, %+v", len(st.txs), st.txs[len(st.txs)/2])
	}

	fde := st.fdeEvent(4)
	if fde[4] != byte(replication.FORMAT_DESCRIPTION_EVENT) || binary.LittleEndian.Uint16(fde[17:])&1 != 0 {
		t.Errorf("format description event: type %d flags %#x", fde[4], binary.LittleEndian.Uint16(fde[17:]))
	}
	for name, ev := range map[string][]byte{"format description": fde, "rotate": st.rotateEvent(ServedServerID, 4),
		"heartbeat": st.heartbeatEvent(ServedServerID, st.end)} {
		if err := verifyCRC(ev); err != nil {
			t.Errorf("%s event: %v", name, err)
		}
		if got := binary.LittleEndian.Uint32(ev[9:]); int(got) != len(ev) {
			t.Errorf("%s event: size %d in the header, %d bytes", name, got, len(ev))
		}
	}

	type sent struct {
		pos uint32
		raw []byte
	}
	replay := func(from uint32) ([]sent, error) {
		var out []sent
		err := st.replay(from, func(ev []byte) error {
			out = append(out, sent{binary.LittleEndian.Uint32(ev[13:]), bytes.Clone(ev)})
			return nil
		})
		return out, err
	}
	all, err := replay(4)
	if err != nil {
		t.Fatal(err)
	}
	pos := binary.LittleEndian.Uint32(fde[13:])
	ends := map[uint32]bool{}
	for i, ev := range all {
		pos += uint32(len(ev.raw))
		if ev.pos != pos {
			t.Fatalf("event %d: log_pos %d, want %d", i, ev.pos, pos)
		}
		if err := verifyCRC(ev.raw); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if skipServed(replication.EventType(ev.raw[4])) {
			t.Errorf("event %d: a %s event is served", i, replication.EventType(ev.raw[4]))
		}
		ends[pos] = true
	}
	if pos != st.end {
		t.Errorf("the events end at %d, the stream at %d", pos, st.end)
	}
	for i, tx := range st.txs {
		if !ends[tx.end] {
			t.Errorf("transaction %d ends at %d, where no event ends", i, tx.end)
		}
	}

	k := len(st.txs) / 2
	from := st.txs[k-1].end
	rest, err := replay(from)
	if err != nil {
		t.Fatal(err)
	}
	var want []sent
	for _, ev := range all {
		if ev.pos > from {
			want = append(want, ev)
		}
	}
	if len(rest) != len(want) || len(rest) == 0 || !bytes.Equal(rest[0].raw, want[0].raw) {
		t.Errorf("a dump from %d sent %d events, want the last %d", from, len(rest), len(want))
	}
	if st.txAt(from) != k || st.txAt(st.end) != len(st.txs) || st.txAt(4) != 0 {
		t.Errorf("txAt: %d at %d (want %d), %d at the end", st.txAt(from), from, k, st.txAt(st.end))
	}
	if _, err := replay(from + 1); err == nil {
		t.Errorf("a dump from inside an event was accepted")
	}

	file, off, ok := st.locate(from)
	if !ok || file != in || off <= 4 {
		t.Errorf("locate(%d) = %s:%d %v", from, file, off, ok)
	}
	if res := st.result(k, st.bytes); res.Transactions != k || res.LastFile != in || res.LastPos <= off {
		t.Errorf("result of %d transactions: %+v", k, res)
	}
}
