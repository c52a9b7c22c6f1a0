package dialect

import (
	"fmt"
	"strconv"
	"strings"
)

// Pos is a binlog coordinate: a file name such as "mysql-bin.000008" and a
// byte offset in it.
type Pos struct {
	File string
	Pos  uint64
}

// FileSeq returns the numeric suffix of a binlog file name ("mysql-bin.000008"
// -> 8), and false when the name has none.
func FileSeq(file string) (uint64, bool) {
	i := strings.LastIndexByte(file, '.')
	if i < 0 || i == len(file)-1 {
		return 0, false
	}
	n, err := strconv.ParseUint(file[i+1:], 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// Compare returns -1, 0 or +1 as p is before, at or after o: by the files'
// sequence numbers first (names without a number compare as strings), then
// by the offset. The base names are not compared: a master writes one series.
func (p Pos) Compare(o Pos) int {
	if p.File != o.File {
		a, okA := FileSeq(p.File)
		b, okB := FileSeq(o.File)
		switch {
		case okA && okB && a != b:
			if a < b {
				return -1
			}
			return 1
		case !(okA && okB):
			if p.File < o.File {
				return -1
			}
			if p.File > o.File {
				return 1
			}
		}
	}
	switch {
	case p.Pos < o.Pos:
		return -1
	case p.Pos > o.Pos:
		return 1
	}
	return 0
}

// Less reports whether p is before o.
func (p Pos) Less(o Pos) bool { return p.Compare(o) < 0 }

// IsZero reports whether p is unset.
func (p Pos) IsZero() bool { return p.File == "" && p.Pos == 0 }

// String prints "file:pos".
func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Pos) }

// ParsePos parses "file:pos".
func ParsePos(s string) (Pos, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return Pos{}, fmt.Errorf("parse binlog position %q: want file:pos", s)
	}
	n, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil {
		return Pos{}, fmt.Errorf("parse binlog position %q: %w", s, err)
	}
	return Pos{File: s[:i], Pos: n}, nil
}
