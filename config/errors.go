package config

import (
	"fmt"
	"strconv"
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
	Value   string // the value as written; "<redacted>" for secrets (see Error); "" when not shown
	Problem string // what is wrong and what is allowed
	Err     error  // the underlying error (an OS or DNS error), if any
}

// Unwrap returns the underlying error, so errors.Is(err, fs.ErrNotExist) works.
func (e *Error) Unwrap() error { return e.Err }

// redacted replaces the values of secret keys in errors and in String.
const redacted = "<redacted>"

// Error formats the problem as `app1.conf:12: [server2] port = "abc": not a number (want 1-65535)`.
// The value of a key that is or looks like a secret (password, or an
// unknown name containing pass, pwd, secret, token or key, in any case: a
// misspelt passwd, Password, repl_passwd) is printed as <redacted>, whatever the
// Error was built with; control characters anywhere in the file name,
// section, key or value are escaped as Go's strconv.Quote does.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(escape(e.File))
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(":")
	if e.Section != "" {
		fmt.Fprintf(&b, " [%s]", escape(e.Section))
	}
	if e.Key != "" {
		b.WriteString(" " + escape(e.Key))
		if e.Value == redacted || (e.Value != "" && looksSecret(e.Key)) {
			b.WriteString(" = " + redacted)
		} else if e.Value != "" {
			b.WriteString(" = " + strconv.Quote(e.Value))
		}
	}
	if e.Section != "" || e.Key != "" {
		b.WriteString(":")
	}
	b.WriteString(" " + escape(e.Problem))
	return b.String()
}

// escape returns s with its control and non-printable characters escaped
// as strconv.Quote does (without the quotes); s itself when it has none.
func escape(s string) string {
	for _, r := range s {
		if !strconv.IsPrint(r) {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

// secretWords are the parts of a key name that make its value secret.
var secretWords = []string{"pass", "pwd", "secret", "token", "key"}

// looksSecret reports whether key is, or looks like, a key whose value is
// a secret: a known secret key (password, repl_password), or an unknown
// name containing one of secretWords in any case (passwd, Password,
// repl_passwd, api_token). A known key that is not secret (ssh_key, a
// path) is shown.
func looksSecret(key string) bool {
	if def, ok := keys[key]; ok {
		return def.secret
	}
	k := strings.ToLower(key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// shownValue is the value of key as an error message may show it.
func shownValue(key, value string) string {
	if looksSecret(key) {
		return redacted
	}
	return value
}
