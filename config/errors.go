package config

import (
	"fmt"
	"strings"
)

// Error is one problem found in a configuration file. Load and Parse
// collect every problem of the files they read and return them together
// with errors.Join, so an operator can fix everything in one go; use
// errors.As to get at the first one.
type Error struct {
	File    string // path of the file, as given to Load or Parse
	Line    int    // 1-based line number; 0 when the problem is not tied to one line
	Section string // "server default", "server2"; "" outside any section
	Key     string // the key concerned; "" when the problem is about a section or the file
	Value   string // the value as written; "<redacted>" for passwords; "" when not shown
	Problem string // what is wrong and what is allowed
	Err     error  // the underlying error (an OS or DNS error), if any
}

// Unwrap returns the underlying error, so errors.Is(err, fs.ErrNotExist) works.
func (e *Error) Unwrap() error { return e.Err }

// redacted replaces the values of secret keys in errors and in String.
const redacted = "<redacted>"

// Error formats the problem as `app1.conf:12: [server2] port = "abc": not a number (want 1-65535)`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(":")
	if e.Section != "" {
		fmt.Fprintf(&b, " [%s]", e.Section)
	}
	if e.Key != "" {
		b.WriteString(" " + e.Key)
		if e.Value == redacted {
			b.WriteString(" = " + redacted)
		} else if e.Value != "" {
			fmt.Fprintf(&b, " = %q", e.Value)
		}
	}
	if e.Section != "" || e.Key != "" {
		b.WriteString(":")
	}
	b.WriteString(" " + e.Problem)
	return b.String()
}

// shownValue is the value of key as an error message may show it.
func shownValue(key, value string) string {
	if def, ok := keys[key]; ok && def.secret {
		return redacted
	}
	return value
}
