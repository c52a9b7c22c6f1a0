package jepsen

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/mharaft/mharaft/api"
)

// LostWrites returns the acknowledged writes whose id is not in present,
// and the writes the server refused (Fail) that are present anyway.
func LostWrites(writes []Op, present map[int64]bool) (lost, failedPresent []int64) {
	for _, w := range writes {
		switch {
		case w.Outcome == Ack && !present[w.ID]:
			lost = append(lost, w.ID)
		case w.Outcome == Fail && present[w.ID]:
			failedPresent = append(failedPresent, w.ID)
		}
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i] < lost[j] })
	sort.Slice(failedPresent, func(i, j int) bool { return failedPresent[i] < failedPresent[j] })
	return lost, failedPresent
}

// SplitBrain is a pair of servers that both accepted writes, each one
// after the other had already acknowledged one: they were writable at the
// same time.
type SplitBrain struct {
	A      string    `json:"a"`
	B      string    `json:"b"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Detail string    `json:"detail"`
}

// CheckSplitBrain looks at successful writes (workload acks and probes)
// per server. A handover A -> B (A fenced before B is writable) leaves
// every A write started before the first B write was acknowledged. Two
// servers are a split brain when each has a write that started after the
// other had acknowledged one.
func CheckSplitBrain(ops []Op) []SplitBrain {
	type span struct {
		minEnd, maxStart time.Time
		n                int
	}
	spans := map[string]*span{}
	var names []string
	for _, o := range ops {
		if o.Outcome != Ack {
			continue
		}
		s := spans[o.Server]
		if s == nil {
			s = &span{minEnd: o.End, maxStart: o.Start}
			spans[o.Server] = s
			names = append(names, o.Server)
		}
		if o.End.Before(s.minEnd) {
			s.minEnd = o.End
		}
		if o.Start.After(s.maxStart) {
			s.maxStart = o.Start
		}
		s.n++
	}
	sort.Strings(names)
	var out []SplitBrain
	for i := range names {
		for j := i + 1; j < len(names); j++ {
			a, b := spans[names[i]], spans[names[j]]
			if a.maxStart.After(b.minEnd) && b.maxStart.After(a.minEnd) {
				from := a.minEnd
				if b.minEnd.After(from) {
					from = b.minEnd
				}
				to := a.maxStart
				if b.maxStart.Before(to) {
					to = b.maxStart
				}
				out = append(out, SplitBrain{A: names[i], B: names[j], From: from, To: to,
					Detail: fmt.Sprintf("%s (%d writes) and %s (%d writes) both accepted writes between %s and %s",
						names[i], a.n, names[j], b.n, from.Format("15:04:05.000"), to.Format("15:04:05.000"))})
			}
		}
	}
	return out
}

// CheckEpochs verifies that every history entry has its own epoch and
// that epochs increase in history order.
func CheckEpochs(h []api.HistoryEntry) error {
	var last uint64
	for i, e := range h {
		if e.Epoch == 0 {
			return fmt.Errorf("history entry %d (%s -> %s) has no epoch", i, e.OldMaster+e.DeadMaster, e.NewMaster)
		}
		if i > 0 && e.Epoch <= last {
			return fmt.Errorf("history entry %d has epoch %d after epoch %d: epochs must be unique and increasing", i, e.Epoch, last)
		}
		last = e.Epoch
	}
	return nil
}

// IsAutoFailover reports whether a history entry is an automatic
// failover (not a switch, a manual failover, a rejoin, a divergence
// detection or a reconcile).
func IsAutoFailover(e api.HistoryEntry) bool {
	return e.Kind == "failover (auto)" || e.Kind == "auto"
}

// AutoFailovers counts the history entries that are automatic failovers.
func AutoFailovers(h []api.HistoryEntry) int {
	n := 0
	for _, e := range h {
		if IsAutoFailover(e) {
			n++
		}
	}
	return n
}

// SuccessfulFailovers counts the history entries that are automatic
// failovers that succeeded.
func SuccessfulFailovers(h []api.HistoryEntry) int {
	n := 0
	for _, e := range h {
		if IsAutoFailover(e) && e.Result == "success" {
			n++
		}
	}
	return n
}

// splitExpected moves the split-brain pairs that involve the old master
// out of sb: in a datacenter partition without semi-sync and without a
// reachable power switch, the old master keeps taking its datacenter's
// writes while the new one takes the others' (issue 16's GitHub day).
func splitExpected(sb []SplitBrain, oldMaster string) (rest, expected []SplitBrain) {
	for _, s := range sb {
		if s.A == oldMaster || s.B == oldMaster {
			expected = append(expected, s)
		} else {
			rest = append(rest, s)
		}
	}
	return rest, expected
}

// lostByDC counts lost ids per client datacenter.
func lostByDC(writes []Op, lost []int64) map[string]int {
	if len(lost) == 0 {
		return nil
	}
	dc := map[int64]string{}
	for _, w := range writes {
		dc[w.ID] = w.DC
	}
	out := map[string]int{}
	for _, id := range lost {
		out[dc[id]]++
	}
	return out
}

// ok reports whether the divergence check passed: nil (not run) and
// skipped pass; otherwise no error, every lost acknowledged write listed
// (without semi-sync; with it none may be lost at all, checked apart),
// and none missing after --apply.
func (d *DivergenceCheck) ok(semiSync bool) bool {
	if d == nil || d.Skipped != "" {
		return true
	}
	return len(d.Errors) == 0 && (semiSync || len(d.Unlisted) == 0) && len(d.MissingAfterApply) == 0
}

// FailoverVerdict judges a round's failovers against its nemesis: a
// failover where none was justified is false; none where one was
// expected is missed (a liveness problem, reported apart).
func FailoverVerdict(expect bool, failovers int) (falseFailover, missed bool) {
	if !expect {
		return failovers > 0, false
	}
	return false, failovers == 0
}

// FirstAckOn is the end of the first acknowledged write on server that
// started after t, or the zero time.
func FirstAckOn(ops []Op, server string, t time.Time) time.Time {
	var first time.Time
	for _, o := range ops {
		if o.Outcome == Ack && o.Server == server && o.Start.After(t) && (first.IsZero() || o.End.Before(first)) {
			first = o.End
		}
	}
	return first
}

// MaxAckGap is the longest time without an acknowledged write that
// overlaps [from, to], counting from the last ack before from (or from)
// to the first ack after (or to).
func MaxAckGap(ops []Op, from, to time.Time) time.Duration {
	var ends []time.Time
	for _, o := range ops {
		if o.Outcome == Ack {
			ends = append(ends, o.End)
		}
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i].Before(ends[j]) })
	prev := from
	for _, e := range ends {
		if !e.After(from) {
			prev = e
		}
	}
	var max time.Duration
	for _, e := range ends {
		if !e.After(prev) {
			continue
		}
		if prev.After(to) {
			break
		}
		if g := e.Sub(prev); g > max {
			max = g
		}
		prev = e
	}
	if prev.Before(to) {
		if g := to.Sub(prev); g > max {
			max = g
		}
	}
	return max
}

// Quantile returns the q-quantile (0..1) of xs by the nearest-rank
// method, or NaN for no data.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(math.Ceil(q*float64(len(s)))) - 1
	if rank < 0 {
		rank = 0
	}
	if rank >= len(s) {
		rank = len(s) - 1
	}
	return s[rank]
}
