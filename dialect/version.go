package dialect

import (
	"fmt"
	"strconv"
	"strings"
)

// Flavor is the server family.
type Flavor int

// The flavors we know.
const (
	MySQL Flavor = iota
	MariaDB
)

func (f Flavor) String() string {
	if f == MariaDB {
		return "MariaDB"
	}
	return "MySQL"
}

// Version is a server version as reported by SELECT VERSION().
type Version struct {
	Major, Minor, Patch int
	Flavor              Flavor
	Raw                 string // the string it was parsed from
}

// ParseVersion parses the value of @@version (e.g. "10.11.19-MariaDB-0+deb12u1",
// "8.0.36", "8.4.2-log", "5.7.44-log"). comment is @@version_comment and may be
// empty; it is consulted for the flavor only. The handshake form
// "5.5.5-10.11.6-MariaDB" is understood too.
func ParseVersion(version, comment string) (Version, error) {
	v := Version{Raw: version}
	s := strings.TrimSpace(version)
	if strings.Contains(strings.ToLower(s), "mariadb") || strings.Contains(strings.ToLower(comment), "mariadb") {
		v.Flavor = MariaDB
		s = strings.TrimPrefix(s, "5.5.5-")
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return v, fmt.Errorf("parse server version %q: want major.minor[.patch]", version)
	}
	nums := make([]int, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return v, fmt.Errorf("parse server version %q: %w", version, err)
		}
		nums[i] = n
	}
	v.Major, v.Minor, v.Patch = nums[0], nums[1], nums[2]
	return v, nil
}

// MustParseVersion is ParseVersion for constants in tests and tables; it panics on error.
func MustParseVersion(version string) Version {
	v, err := ParseVersion(version, "")
	if err != nil {
		panic(err)
	}
	return v
}

// Less reports whether v is older than o (the flavor is ignored).
func (v Version) Less(o Version) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// AtLeast reports whether v is major.minor.patch or newer.
func (v Version) AtLeast(major, minor, patch int) bool {
	return !v.Less(Version{Major: major, Minor: minor, Patch: patch})
}

// IsMariaDB reports whether the server is MariaDB.
func (v Version) IsMariaDB() bool { return v.Flavor == MariaDB }

// IsZero reports whether v was never parsed.
func (v Version) IsZero() bool { return v.Major == 0 && v.Minor == 0 && v.Patch == 0 }

// String prints "MariaDB 10.11.6" / "MySQL 8.0.36".
func (v Version) String() string {
	return fmt.Sprintf("%s %d.%d.%d", v.Flavor, v.Major, v.Minor, v.Patch)
}
