package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// FlagsFileFlag is the name of the flag that names a flags file.
const FlagsFileFlag = "flags-file"

// A Setting is one `name = value` line of a flags file.
type Setting struct {
	Name  string
	Value string
	Line  int // 1-based
}

// ParseFlagsFile reads a flags file: one `name = value` per line, where
// name is a long flag's name without its dashes and value is the rest of
// the line after the first "=", surrounding spaces trimmed (no quoting:
// the value is taken as it is written). Blank lines and lines whose first
// non-space character is # are ignored; # elsewhere is part of the value.
// A repeatable flag (mhanode's conf) takes one line per value. Syntax
// errors name the line; names are checked against the command's flags by
// ApplyFlagsFile.
func ParseFlagsFile(r io.Reader) ([]Setting, error) {
	var out []Setting
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		switch {
		case !ok:
			return nil, fmt.Errorf("line %d: %q is not `name = value`", n, line)
		case name == "":
			return nil, fmt.Errorf("line %d: %q has no flag name before =", n, line)
		case strings.HasPrefix(name, "-"):
			return nil, fmt.Errorf("line %d: write the flag name without dashes (%s = ..., not %s = ...)", n, strings.TrimLeft(name, "-"), name)
		case strings.ContainsAny(name, " \t"):
			return nil, fmt.Errorf("line %d: flag name %q contains a space", n, name)
		case value == "":
			return nil, fmt.Errorf("line %d: %s has no value (write `%s = VALUE`, or remove the line to keep the default)", n, name, name)
		}
		out = append(out, Setting{Name: name, Value: value, Line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ApplyFlagsFile sets, from the flags file at path, every flag of fs that
// the command line did not set (fs.Changed).
// Call it after fs was parsed. Every line's name is checked before any
// flag is set: an unknown flag, a non-repeatable flag written twice, or
// the flags-file or help flag in the file set nothing. A value the flag
// refuses (a bad duration) is reported with its line after the lines
// before it were set: the command must stop on any error.
func ApplyFlagsFile(fs *pflag.FlagSet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("flags file: %w (--flags-file names it)", err)
	}
	defer f.Close()
	settings, err := ParseFlagsFile(f)
	if err != nil {
		return fmt.Errorf("flags file %s %w", path, err)
	}
	return applySettings(fs, path, settings)
}

func applySettings(fs *pflag.FlagSet, path string, settings []Setting) error {
	// Check every line before setting anything.
	seen := map[string]int{}
	for _, s := range settings {
		fl := fs.Lookup(s.Name)
		if fl == nil || s.Name == "help" {
			return fmt.Errorf("flags file %s line %d: unknown flag %q (--help lists the flags)", path, s.Line, s.Name)
		}
		if s.Name == FlagsFileFlag {
			return fmt.Errorf("flags file %s line %d: a flags file cannot name another flags file", path, s.Line)
		}
		if first, dup := seen[s.Name]; dup && !repeatable(fl) {
			return fmt.Errorf("flags file %s line %d: %s is already set on line %d and takes one value", path, s.Line, s.Name, first)
		}
		if _, dup := seen[s.Name]; !dup {
			seen[s.Name] = s.Line
		}
	}
	// The command line wins: remember what it set before the file sets more.
	fromArgs := map[string]bool{}
	fs.Visit(func(fl *pflag.Flag) { fromArgs[fl.Name] = true })
	for _, s := range settings {
		if fromArgs[s.Name] {
			continue
		}
		if err := fs.Set(s.Name, s.Value); err != nil {
			return fmt.Errorf("flags file %s line %d: %s = %s: %w", path, s.Line, s.Name, s.Value, err)
		}
	}
	return nil
}

// repeatable reports whether a flag takes several values (a pflag
// stringArray or a slice), one per occurrence.
func repeatable(fl *pflag.Flag) bool {
	t := fl.Value.Type()
	return strings.HasSuffix(t, "Array") || strings.HasSuffix(t, "Slice")
}
