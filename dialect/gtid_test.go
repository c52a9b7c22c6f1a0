package dialect

import (
	"reflect"
	"testing"
)

func TestMariaDBPos(t *testing.T) {
	tests := []struct {
		have, want string
		covers     bool
		missing    []string
	}{
		{"0-101-3", "0-101-3", true, nil},
		{"0-101-3", "0-101-2", true, nil},
		{"0-101-1", "0-101-3", false, []string{"domain 0: seq 2-3"}},
		{"0-101-5,1-102-7", "1-102-9,0-101-5", false, []string{"domain 1: seq 8-9"}},
		{"0-101-5", "0-101-5,2-103-4", false, []string{"domain 2: seq 1-4"}},
		{"", "", true, nil},
		{"0-101-5", "", true, nil},
		// Sequence numbers order a domain; the server id of the last event does not matter.
		{"0-102-6", "0-101-5", true, nil},
	}
	for _, tt := range tests {
		have, err := ParseMariaDBPos(tt.have)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ParseMariaDBPos(tt.want)
		if err != nil {
			t.Fatal(err)
		}
		if got := have.Contains(want); got != tt.covers {
			t.Errorf("%q covers %q = %v, want %v", tt.have, tt.want, got, tt.covers)
		}
		if got := have.Missing(want); !reflect.DeepEqual(got, tt.missing) {
			t.Errorf("%q missing of %q = %q, want %q", tt.have, tt.want, got, tt.missing)
		}
	}
	p, err := ParseMariaDBPos(" 1-102-7,\n0-101-5")
	if err != nil || p.String() != "0-101-5,1-102-7" {
		t.Errorf("ParseMariaDBPos sorted = %q, %v", p, err)
	}
	for _, bad := range []string{"0-1", "a-b-c", "0-1-2,0-1-3", "0-1-2-3"} {
		if _, err := ParseMariaDBPos(bad); err == nil {
			t.Errorf("ParseMariaDBPos(%q) succeeded", bad)
		}
	}
}

const (
	uuidA = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	uuidB = "6c27ed6d-7ee1-11e3-be39-6c626d957cff"
)

func TestMySQLGTIDSet(t *testing.T) {
	tests := []struct {
		have, want string
		contains   bool
		missing    []string
	}{
		{uuidA + ":1-5", uuidA + ":1-5", true, nil},
		{uuidA + ":1-5", uuidA + ":2-3", true, nil},
		{uuidA + ":1-5", uuidA + ":1-7", false, []string{uuidA + ":6-7"}},
		{uuidA + ":1-3:7-9", uuidA + ":1-9", false, []string{uuidA + ":4-6"}},
		{uuidA + ":1-9", uuidA + ":1-9," + uuidB + ":1-2", false, []string{uuidB + ":1-2"}},
		{uuidA + ":1-4:5-9", uuidA + ":1-9", true, nil},
		{"", uuidA + ":3", false, []string{uuidA + ":3"}},
		{uuidA + ":1-9", "", true, nil},
		// MySQL 8.4 tags are distinct from the untagged GTIDs of the same uuid.
		{uuidA + ":1-9", uuidA + ":tag1:1-2", false, []string{uuidA + ":tag1:1-2"}},
		{uuidA + ":1-9:tag1:1-3", uuidA + ":tag1:1-2:3", true, nil},
	}
	for _, tt := range tests {
		have, err := ParseGTIDSet(MySQL, tt.have)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ParseGTIDSet(MySQL, tt.want)
		if err != nil {
			t.Fatal(err)
		}
		if got := have.Contains(want); got != tt.contains {
			t.Errorf("%q contains %q = %v, want %v", tt.have, tt.want, got, tt.contains)
		}
		if got := have.Missing(want); !reflect.DeepEqual(got, tt.missing) {
			t.Errorf("%q missing of %q = %q, want %q", tt.have, tt.want, got, tt.missing)
		}
	}
	s, err := ParseMySQLGTIDSet(uuidB + ":5-7:1-3:4,\n" + uuidA + ":1")
	if err != nil || s.String() != uuidA+":1,"+uuidB+":1-7" {
		t.Errorf("normalised = %q, %v", s, err)
	}
	for _, bad := range []string{"abc:1-3", uuidA, uuidA + ":5-3", uuidA + ":0", uuidA + ":x-3"} {
		if _, err := ParseMySQLGTIDSet(bad); err == nil {
			t.Errorf("ParseMySQLGTIDSet(%q) succeeded", bad)
		}
	}
	// Sets of different flavors never contain each other.
	m, _ := ParseGTIDSet(MariaDB, "0-1-1")
	if s.Contains(m) || m.Contains(s) {
		t.Error("a MariaDB position and a MySQL set contain each other")
	}
}

func TestMySQLSubtract(t *testing.T) {
	a, _ := ParseMySQLGTIDSet(uuidA + ":1-10:20-30")
	b, _ := ParseMySQLGTIDSet(uuidA + ":3-5:9-22:30")
	if got, want := a.Subtract(b).String(), uuidA+":1-2:6-8:23-29"; got != want {
		t.Errorf("Subtract = %s, want %s", got, want)
	}
}
