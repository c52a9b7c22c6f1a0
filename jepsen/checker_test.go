package jepsen

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mharaft/mharaft/api"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func op(id int64, srv string, start, end int, o Outcome) Op {
	return Op{ID: id, Server: srv, Start: at(start), End: at(end), Outcome: o}
}

func TestLostWrites(t *testing.T) {
	for _, tc := range []struct {
		name           string
		writes         []Op
		present        []int64
		lost, present2 []int64
	}{
		{"all present", []Op{op(1, "a", 0, 1, Ack), op(2, "a", 1, 2, Ack)}, []int64{1, 2}, nil, nil},
		{"one acked lost", []Op{op(1, "a", 0, 1, Ack), op(2, "a", 1, 2, Ack)}, []int64{1}, []int64{2}, nil},
		{"unknown may be missing", []Op{op(1, "a", 0, 1, Unknown)}, nil, nil, nil},
		{"unknown may be present", []Op{op(1, "a", 0, 1, Unknown)}, []int64{1}, nil, nil},
		{"refused but present", []Op{op(3, "a", 0, 1, Fail)}, []int64{3}, nil, []int64{3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := map[int64]bool{}
			for _, id := range tc.present {
				p[id] = true
			}
			lost, fp := LostWrites(tc.writes, p)
			if !reflect.DeepEqual(lost, tc.lost) || !reflect.DeepEqual(fp, tc.present2) {
				t.Fatalf("LostWrites = %v, %v; want %v, %v", lost, fp, tc.lost, tc.present2)
			}
		})
	}
}

func TestCheckSplitBrain(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ops   []Op
		pairs []string
	}{
		{"one server", []Op{op(1, "s1", 0, 5, Ack), op(2, "s1", 10, 15, Ack)}, nil},
		{"clean handover", []Op{op(1, "s1", 0, 5, Ack), op(2, "s1", 10, 15, Ack), op(3, "s2", 3000, 3005, Ack), op(4, "s2", 3100, 3105, Ack)}, nil},
		// A write that was in flight on the old master when the new one
		// acknowledged its first: started before, so not a split brain.
		{"in-flight write at handover", []Op{op(1, "s1", 0, 3010, Ack), op(2, "s2", 3000, 3005, Ack)}, nil},
		{"both writable", []Op{op(1, "s1", 0, 5, Ack), op(2, "s2", 50, 55, Ack), op(3, "s1", 100, 105, Ack), op(4, "s2", 150, 155, Ack)}, []string{"s1/s2"}},
		{"old master writable again later", []Op{op(1, "s1", 0, 5, Ack), op(2, "s2", 3000, 3005, Ack), op(3, "s1", 9000, 9005, Ack)}, []string{"s1/s2"}},
		{"failed writes do not count", []Op{op(1, "s1", 0, 5, Ack), op(2, "s2", 50, 55, Ack), op(3, "s1", 100, 105, Fail)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, sb := range CheckSplitBrain(tc.ops) {
				got = append(got, sb.A+"/"+sb.B)
			}
			if !reflect.DeepEqual(got, tc.pairs) {
				t.Fatalf("split brains %v, want %v", got, tc.pairs)
			}
		})
	}
}

func TestCheckEpochs(t *testing.T) {
	h := func(epochs ...uint64) []api.HistoryEntry {
		var out []api.HistoryEntry
		for _, e := range epochs {
			out = append(out, api.HistoryEntry{Epoch: e, NewMaster: "x"})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		h    []api.HistoryEntry
		ok   bool
	}{
		{"empty", nil, true},
		{"increasing", h(1, 2, 5), true},
		{"duplicate", h(1, 2, 2), false},
		{"decreasing", h(3, 2), false},
		{"zero", h(0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckEpochs(tc.h); (err == nil) != tc.ok {
				t.Fatalf("CheckEpochs(%v) = %v, want ok=%v", tc.h, err, tc.ok)
			}
		})
	}
}

func TestFailoverVerdict(t *testing.T) {
	for _, tc := range []struct {
		expect         bool
		n              int
		falseF, missed bool
	}{
		{false, 0, false, false},
		{false, 1, true, false},
		{true, 1, false, false},
		{true, 0, false, true},
	} {
		f, m := FailoverVerdict(tc.expect, tc.n)
		if f != tc.falseF || m != tc.missed {
			t.Errorf("FailoverVerdict(%v,%d) = %v,%v; want %v,%v", tc.expect, tc.n, f, m, tc.falseF, tc.missed)
		}
	}
}

func TestAutoFailovers(t *testing.T) {
	h := []api.HistoryEntry{{Kind: "failover (auto)"}, {Kind: "switch"}, {Kind: "failover (manual)"}, {Kind: "failover (auto)"}, {Kind: "divergence"}, {Kind: "reconcile"}, {Kind: "rejoin"}}
	if n := AutoFailovers(h); n != 2 {
		t.Fatalf("AutoFailovers = %d, want 2", n)
	}
}

func TestMaxAckGapAndFirstAck(t *testing.T) {
	ops := []Op{op(1, "s1", 0, 100, Ack), op(2, "s1", 100, 200, Ack), op(3, "s1", 200, 900, Unknown),
		op(4, "s2", 2000, 2500, Ack), op(5, "s2", 2500, 2600, Ack)}
	for _, tc := range []struct {
		from, to int
		want     time.Duration
	}{
		{150, 3000, 2300 * time.Millisecond}, // last ack 200 -> next 2500
		{0, 100, 100 * time.Millisecond},
		{2600, 4000, 1400 * time.Millisecond}, // nothing after 2600 until the end
	} {
		if got := MaxAckGap(ops, at(tc.from), at(tc.to)); got != tc.want {
			t.Errorf("MaxAckGap(%d,%d) = %s, want %s", tc.from, tc.to, got, tc.want)
		}
	}
	if got := FirstAckOn(ops, "s2", at(150)); !got.Equal(at(2500)) {
		t.Errorf("FirstAckOn = %s", got)
	}
	if got := FirstAckOn(ops, "s3", at(0)); !got.IsZero() {
		t.Errorf("FirstAckOn(s3) = %s, want zero", got)
	}
}

func TestQuantile(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{[]float64{3, 1, 2}, 0.5, 2},
		{[]float64{1, 2, 3, 4}, 0.5, 2},
		{[]float64{1, 2, 3, 4}, 0.99, 4},
		{[]float64{5}, 0.99, 5},
	} {
		if got := Quantile(tc.xs, tc.q); got != tc.want {
			t.Errorf("Quantile(%v,%v) = %v, want %v", tc.xs, tc.q, got, tc.want)
		}
	}
	if !math.IsNaN(Quantile(nil, 0.5)) {
		t.Error("Quantile(nil) is not NaN")
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want Outcome
	}{
		{"ok", nil, Ack},
		{"read only", fmt.Errorf("exec: %w", &mysql.MySQLError{Number: 1290, Message: "read-only"}), Fail},
		{"refused dial", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, Fail},
		{"reset after send", &net.OpError{Op: "read", Err: errors.New("connection reset")}, Unknown},
		{"invalid conn", mysql.ErrInvalidConn, Unknown},
		{"timeout", errors.New("context deadline exceeded"), Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err); got != tc.want {
				t.Fatalf("classify(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

func TestScheduleCoversEveryNemesisAndRepeats(t *testing.T) {
	var names []string
	for _, n := range Nemeses() {
		names = append(names, n.Name)
	}
	a, b := Schedule(42, 50, names), Schedule(42, 50, names)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different schedules")
	}
	if reflect.DeepEqual(a, Schedule(43, 50, names)) {
		t.Fatal("different seeds gave the same schedule")
	}
	seen := map[string]bool{}
	for _, n := range a[:len(names)] {
		seen[n] = true
	}
	if len(seen) != len(names) {
		t.Fatalf("first %d rounds cover %d nemeses: %v", len(names), len(seen), a[:len(names)])
	}
}

func TestReportTotalsAndFiles(t *testing.T) {
	f := 2.5
	rep := &Report{Seed: 9, Started: t0, RoundList: []*Round{
		{Index: 1, Nemesis: "kill-master", MasterSSHReachable: true, Converged: true, Passed: true, FailoverSecs: &f,
			Start: at(0), FaultAt: at(1000), End: at(5000), AckBuckets: []int{1, 2, 0, 3}, Acked: 6, Failovers: 1,
			Events: []Event{{At: at(1000), Kind: "fault", Detail: "kill <x>"}}},
		{Index: 2, Nemesis: "isolate-master", Lost: []int64{7, 8}, Converged: true, Passed: true, Start: at(0), End: at(3000)},
		{Index: 3, Nemesis: "cut-manager-from-master", MasterSSHReachable: true, FalseFailover: true, Failovers: 1,
			SplitBrain: []SplitBrain{{A: "server1", B: "server2", Detail: "both"}}, Start: at(0), End: at(3000)},
	}}
	rep.finish()
	if rep.LostAcknowledgedWrites != (LostSplit{ReachableOldMaster: 0, UnreachableOldMaster: 2}) {
		t.Errorf("lost = %+v", rep.LostAcknowledgedWrites)
	}
	if rep.FalseFailovers != 1 || rep.SplitBrain != 1 || rep.UnconvergedRounds != 1 || rep.Passed {
		t.Errorf("totals: false=%d split=%d unconverged=%d passed=%v", rep.FalseFailovers, rep.SplitBrain, rep.UnconvergedRounds, rep.Passed)
	}
	if !reflect.DeepEqual(rep.FailedRounds, []int{3}) {
		t.Errorf("failed rounds %v", rep.FailedRounds)
	}
	if s := rep.PerNemesis["kill-master"]; s.FailoverMedianSecs != 2.5 || s.FailoverP99Secs != 2.5 {
		t.Errorf("kill-master stats %+v", s)
	}
	if s := rep.PerNemesis["isolate-master"]; s.FailoverMedianSecs != -1 {
		t.Errorf("no data must print as -1: %+v", s)
	}
	dir := t.TempDir()
	if err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}
	var txt bytes.Buffer
	rep.WriteText(&txt)
	for _, want := range []string{"FAILED", "seed 9", "failed rounds: [3]", "split brain: server1"[:11]} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, txt.String())
		}
	}
	var h bytes.Buffer
	rep.WriteHTML(&h)
	if !strings.Contains(h.String(), "<svg") || !strings.Contains(h.String(), "kill &lt;x&gt;") {
		t.Errorf("html lacks the svg or the escaped event")
	}
}

func TestStonithEvent(t *testing.T) {
	e := stonithEvent("1795609730.953727804 10.213.64.11 stopssh")
	if e.At.Unix() != 1795609730 || e.At.Nanosecond() != 953727804 || e.Detail != "power off 10.213.64.11" {
		t.Fatalf("stonithEvent = %+v", e)
	}
}
