package config

import (
	"fmt"
	"io"
	"regexp"
	"strings"
)

// The INI dialect is the one MHA reads through Perl's Config::Tiny:
//
//   - a line whose first non-blank character is '#' or ';' is a comment,
//     and so is a blank line;
//   - " ; " (white space, semicolon, white space) starts an inline comment;
//     '#' inside a value is kept, so "password = ab#c" is "ab#c";
//   - "[ name ]" starts a section; the name is trimmed;
//   - "key = value": the key and the value are trimmed;
//   - anything else is a syntax error.
//
// Where Config::Tiny is lax we are strict, because each of these hides a
// mistake: a key outside any section (MHA then fails with `Block name "_"
// is invalid`), a section written twice (Config::Tiny merges them) and a key
// written twice in a section (Config::Tiny keeps the last one) are errors.
var (
	inlineComment = regexp.MustCompile(`\s;\s.+$`)
	sectionLine   = regexp.MustCompile(`^\s*\[\s*(.+?)\s*\]\s*$`)
	propertyLine  = regexp.MustCompile(`^\s*([^=]+?)\s*=\s*(.*?)\s*$`)
)

type iniEntry struct {
	key, value string // value with MHA's quote removal applied
	line       int
}

type iniSection struct {
	name    string
	line    int
	entries []iniEntry
}

type iniFile struct {
	path     string
	sections []*iniSection
}

// section returns the section called name, or nil.
func (f *iniFile) section(name string) *iniSection {
	for _, s := range f.sections {
		if s.name == name {
			return s
		}
	}
	return nil
}

// readINI reads one file. It returns what it could read and every syntax
// problem found.
func readINI(path string, r io.Reader) (*iniFile, []error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, []error{&Error{File: path, Problem: fmt.Sprintf("cannot read the file: %v", err), Err: err}}
	}
	text := strings.TrimPrefix(string(data), "\uFEFF")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")

	f := &iniFile{path: path}
	var errs []error
	var cur *iniSection
	seenSection := map[string]int{}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';' {
			continue
		}
		line = inlineComment.ReplaceAllString(line, "")
		if m := sectionLine.FindStringSubmatch(line); m != nil {
			name := m[1]
			if first, ok := seenSection[name]; ok {
				errs = append(errs, &Error{File: path, Line: n, Section: name,
					Problem: fmt.Sprintf("section written twice (first at line %d); write each section once", first)})
			}
			seenSection[name] = n
			cur = &iniSection{name: name, line: n}
			f.sections = append(f.sections, cur)
			continue
		}
		m := propertyLine.FindStringSubmatch(line)
		if m == nil {
			errs = append(errs, &Error{File: path, Line: n,
				Problem: "not a [section], a key = value line or a comment"})
			continue
		}
		key, value := m[1], stripQuotes(m[2])
		if cur == nil {
			errs = append(errs, &Error{File: path, Line: n, Key: key, Value: shownValue(key, value),
				Problem: "outside any section: put it under [server default] or a [serverN] block"})
			continue
		}
		dup := false
		for _, e := range cur.entries {
			if e.key == key {
				errs = append(errs, &Error{File: path, Line: n, Section: cur.name, Key: key, Value: shownValue(key, value),
					Problem: fmt.Sprintf("set twice in this section (first at line %d); keep one", e.line)})
				dup = true
				break
			}
		}
		if !dup {
			cur.entries = append(cur.entries, iniEntry{key: key, value: value, line: n})
		}
	}
	return f, errs
}

// stripQuotes removes quotes the way MHA's Config.pm does with
// s/^['"]?(.*)['"]$/$1/: when the value ends with a quote, that quote goes,
// and then one leading quote if there is one. A value that only starts
// with a quote is kept as written.
func stripQuotes(v string) string {
	if v == "" || (v[len(v)-1] != '"' && v[len(v)-1] != '\'') {
		return v
	}
	v = v[:len(v)-1]
	if v != "" && (v[0] == '"' || v[0] == '\'') {
		v = v[1:]
	}
	return v
}
