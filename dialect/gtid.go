package dialect

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// GTIDSet is what MariaDB GTID positions and MySQL GTID sets have in common.
type GTIDSet interface {
	String() string
	IsEmpty() bool
	// Contains reports whether every transaction of other is in the
	// receiver. A set of the other flavor is never contained.
	Contains(other GTIDSet) bool
	// Missing lists, human readable, what other has and the receiver lacks
	// ("domain 0: seq 6-9", "3e11fa47-...:6-9"); nil when Contains(other).
	Missing(other GTIDSet) []string
}

// ParseGTIDSet parses s in the form of the flavor.
func ParseGTIDSet(f Flavor, s string) (GTIDSet, error) {
	if f == MariaDB {
		return ParseMariaDBPos(s)
	}
	return ParseMySQLGTIDSet(s)
}

// MariaDBGTID is one MariaDB GTID, domain-server-seq.
type MariaDBGTID struct {
	Domain   uint32
	ServerID uint32
	Seq      uint64
}

func (g MariaDBGTID) String() string { return fmt.Sprintf("%d-%d-%d", g.Domain, g.ServerID, g.Seq) }

// MariaDBPos is a MariaDB GTID position such as @@gtid_binlog_pos: the last
// GTID of each replication domain, sorted by domain.
type MariaDBPos []MariaDBGTID

// ParseMariaDBPos parses "0-1-5,1-2-7" (spaces and newlines are ignored; ""
// is the empty position). A domain given twice is an error.
func ParseMariaDBPos(s string) (MariaDBPos, error) {
	var out MariaDBPos
	seen := map[uint32]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		f := strings.Split(part, "-")
		if len(f) != 3 {
			return nil, fmt.Errorf("parse MariaDB GTID %q in %q: want domain-server-seq", part, s)
		}
		d, err1 := strconv.ParseUint(f[0], 10, 32)
		srv, err2 := strconv.ParseUint(f[1], 10, 32)
		seq, err3 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("parse MariaDB GTID %q in %q: not three numbers", part, s)
		}
		if seen[uint32(d)] {
			return nil, fmt.Errorf("parse MariaDB GTID position %q: domain %d given twice", s, d)
		}
		seen[uint32(d)] = true
		out = append(out, MariaDBGTID{Domain: uint32(d), ServerID: uint32(srv), Seq: seq})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Domain < out[j].Domain })
	return out, nil
}

func (p MariaDBPos) String() string {
	parts := make([]string, len(p))
	for i, g := range p {
		parts[i] = g.String()
	}
	return strings.Join(parts, ",")
}

// IsEmpty reports whether the position has no domain.
func (p MariaDBPos) IsEmpty() bool { return len(p) == 0 }

// Seq returns the sequence number of domain, 0 and false when absent.
func (p MariaDBPos) Seq(domain uint32) (uint64, bool) {
	for _, g := range p {
		if g.Domain == domain {
			return g.Seq, true
		}
	}
	return 0, false
}

// CompareDomain compares the sequence numbers of one domain (absent = 0).
func (p MariaDBPos) CompareDomain(o MariaDBPos, domain uint32) int {
	a, _ := p.Seq(domain)
	b, _ := o.Seq(domain)
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Covers reports whether p is at or after o in every domain of o (server ids
// are not compared: in a domain, sequence numbers order the transactions).
func (p MariaDBPos) Covers(o MariaDBPos) bool {
	for _, g := range o {
		if s, _ := p.Seq(g.Domain); s < g.Seq {
			return false
		}
	}
	return true
}

// Contains is Covers for a GTIDSet.
func (p MariaDBPos) Contains(other GTIDSet) bool {
	o, ok := other.(MariaDBPos)
	return ok && p.Covers(o)
}

// MariaDBRange is the transactions of one domain after After up to and
// including Upto.
type MariaDBRange struct {
	Domain      uint32
	After, Upto uint64
}

func (r MariaDBRange) String() string {
	return fmt.Sprintf("domain %d: seq %d-%d", r.Domain, r.After+1, r.Upto)
}

// Subtract returns, per domain, the transactions p has and o lacks.
func (p MariaDBPos) Subtract(o MariaDBPos) []MariaDBRange {
	var out []MariaDBRange
	for _, g := range p {
		if s, _ := o.Seq(g.Domain); s < g.Seq {
			out = append(out, MariaDBRange{Domain: g.Domain, After: s, Upto: g.Seq})
		}
	}
	return out
}

// Missing lists what other has and p lacks.
func (p MariaDBPos) Missing(other GTIDSet) []string {
	o, ok := other.(MariaDBPos)
	if !ok {
		return []string{"not a MariaDB GTID position: " + other.String()}
	}
	var out []string
	for _, r := range o.Subtract(p) {
		out = append(out, r.String())
	}
	return out
}

// Interval is a closed range of MySQL transaction numbers.
type Interval struct{ Start, End uint64 }

// MySQLGTIDSet is a MySQL GTID set: source uuid (or "uuid:tag" on 8.4) ->
// sorted, merged intervals.
type MySQLGTIDSet map[string][]Interval

// ParseMySQLGTIDSet parses "uuid:1-5:7-9,uuid2:1" as found in gtid_executed
// or Executed_Gtid_Set (whitespace and newlines ignored). MySQL 8.4 tags
// ("uuid:tag:1-5") are kept in the key as "uuid:tag".
func ParseMySQLGTIDSet(s string) (MySQLGTIDSet, error) {
	set := MySQLGTIDSet{}
	s = strings.Join(strings.Fields(s), "")
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			continue
		}
		f := strings.Split(part, ":")
		uuid := strings.ToLower(f[0])
		if len(uuid) != 36 || strings.Count(uuid, "-") != 4 {
			return nil, fmt.Errorf("parse MySQL GTID set %q: %q is not a uuid", s, f[0])
		}
		key := uuid
		if len(f) < 2 {
			return nil, fmt.Errorf("parse MySQL GTID set %q: %q has no interval", s, part)
		}
		for _, iv := range f[1:] {
			if iv == "" || !isDigit(iv[0]) {
				if !isTag(iv) {
					return nil, fmt.Errorf("parse MySQL GTID set %q: %q is neither an interval nor a tag", s, iv)
				}
				key = uuid + ":" + strings.ToLower(iv) // a tag (MySQL 8.4)
				continue
			}
			a, b, found := strings.Cut(iv, "-")
			start, err := strconv.ParseUint(a, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parse MySQL GTID set %q: interval %q: %w", s, iv, err)
			}
			end := start
			if found {
				if end, err = strconv.ParseUint(b, 10, 64); err != nil {
					return nil, fmt.Errorf("parse MySQL GTID set %q: interval %q: %w", s, iv, err)
				}
			}
			if start == 0 || end < start {
				return nil, fmt.Errorf("parse MySQL GTID set %q: bad interval %q", s, iv)
			}
			set[key] = append(set[key], Interval{start, end})
		}
	}
	for k := range set {
		set[k] = normalize(set[k])
	}
	return set, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isTag reports whether s is a MySQL 8.4 GTID tag: a letter or underscore,
// then up to 31 letters, digits or underscores.
func isTag(s string) bool {
	if s == "" || len(s) > 32 || isDigit(s[0]) {
		return false
	}
	for _, c := range []byte(strings.ToLower(s)) {
		if !(c == '_' || isDigit(c) || (c >= 'a' && c <= 'z')) {
			return false
		}
	}
	return true
}

func normalize(ivs []Interval) []Interval {
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].Start < ivs[j].Start })
	var out []Interval
	for _, iv := range ivs {
		if n := len(out); n > 0 && iv.Start <= out[n-1].End+1 {
			if iv.End > out[n-1].End {
				out[n-1].End = iv.End
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

func (s MySQLGTIDSet) keys() []string {
	keys := make([]string, 0, len(s))
	for k, ivs := range s {
		if len(ivs) > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// String prints the set the way MySQL does, sources sorted.
func (s MySQLGTIDSet) String() string {
	var parts []string
	for _, k := range s.keys() {
		parts = append(parts, k+":"+intervalsString(s[k]))
	}
	return strings.Join(parts, ",")
}

func intervalsString(ivs []Interval) string {
	var b strings.Builder
	for i, iv := range ivs {
		if i > 0 {
			b.WriteByte(':')
		}
		if iv.Start == iv.End {
			fmt.Fprintf(&b, "%d", iv.Start)
		} else {
			fmt.Fprintf(&b, "%d-%d", iv.Start, iv.End)
		}
	}
	return b.String()
}

// IsEmpty reports whether the set has no transaction.
func (s MySQLGTIDSet) IsEmpty() bool { return len(s.keys()) == 0 }

// Subtract returns the transactions of s that are not in o.
func (s MySQLGTIDSet) Subtract(o MySQLGTIDSet) MySQLGTIDSet {
	out := MySQLGTIDSet{}
	for _, k := range s.keys() {
		rest := subtractIntervals(s[k], o[k])
		if len(rest) > 0 {
			out[k] = rest
		}
	}
	return out
}

// subtractIntervals removes b from a; both sorted and merged.
func subtractIntervals(a, b []Interval) []Interval {
	var out []Interval
	for _, iv := range a {
		cur := iv
		keep := true
		for _, cut := range b {
			if cut.End < cur.Start || cut.Start > cur.End {
				continue
			}
			if cut.Start > cur.Start {
				out = append(out, Interval{cur.Start, cut.Start - 1})
			}
			if cut.End >= cur.End {
				keep = false
				break
			}
			cur.Start = cut.End + 1
		}
		if keep {
			out = append(out, cur)
		}
	}
	return out
}

// ContainsSet reports whether every transaction of o is in s.
func (s MySQLGTIDSet) ContainsSet(o MySQLGTIDSet) bool { return o.Subtract(s).IsEmpty() }

// Contains is ContainsSet for a GTIDSet.
func (s MySQLGTIDSet) Contains(other GTIDSet) bool {
	o, ok := other.(MySQLGTIDSet)
	return ok && s.ContainsSet(o)
}

// Missing lists what other has and s lacks, one "uuid:intervals" per source.
func (s MySQLGTIDSet) Missing(other GTIDSet) []string {
	o, ok := other.(MySQLGTIDSet)
	if !ok {
		return []string{"not a MySQL GTID set: " + other.String()}
	}
	diff := o.Subtract(s)
	var out []string
	for _, k := range diff.keys() {
		out = append(out, k+":"+intervalsString(diff[k]))
	}
	return out
}

func sortStrings(s []string) { sort.Strings(s) }
