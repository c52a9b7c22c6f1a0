package cli

import (
	"strings"

	"github.com/spf13/pflag"
)

// NormalizeArgs rewrites Go's single-dash spelling of fs's long flags
// (-id m1, -out=DIR) to cobra's (--id m1, --out=DIR), so that scripts
// written when the commands used package flag keep working. Only
// arguments in flag position change: the value after a flag that takes
// one, anything that names no flag of fs, one-letter shorthands (-h) and
// everything after "--" pass through unchanged.
func NormalizeArgs(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) < 2 || a[0] != '-' {
			out = append(out, a)
			continue
		}
		body := strings.TrimPrefix(a[1:], "-")
		name, _, hasValue := strings.Cut(body, "=")
		fl := fs.Lookup(name)
		if fl == nil || len(name) < 2 {
			out = append(out, a)
			continue
		}
		out = append(out, "--"+body)
		// A flag that takes a value, written without =, takes the next
		// argument as it is, even when it starts with a dash (-45s).
		if !hasValue && fl.NoOptDefVal == "" && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}
