package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Figure is one measured number.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Note  string  `json:"note,omitempty"`
}

// Result is what a suite measured.
type Result struct {
	Suite   string    `json:"suite"`
	Started time.Time `json:"started"`
	Figures []Figure  `json:"figures"`
	Extra   any       `json:"extra,omitempty"`
}

// Add appends a figure.
func (r *Result) Add(name string, value float64, unit, note string) {
	r.Figures = append(r.Figures, Figure{Name: name, Value: value, Unit: unit, Note: note})
}

// Suite measures something. Dir is a scratch directory it owns; quick asks
// for a smaller run (used by tests of the suite itself).
type Suite func(ctx context.Context, dir string, quick bool, log io.Writer) (*Result, error)

var suites = map[string]Suite{}

// Register adds a suite under name; call it from an init function.
func Register(name string, s Suite) { suites[name] = s }

// Names lists the registered suites in order.
func Names() []string {
	var n []string
	for k := range suites {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Run runs the named suite, prints its table to w and writes
// outDir/<name>.json.
func Run(ctx context.Context, name, outDir string, quick bool, w io.Writer) (*Result, error) {
	s, ok := suites[name]
	if !ok {
		return nil, fmt.Errorf("no benchmark suite %q; have %s", name, strings.Join(Names(), ", "))
	}
	dir, err := os.MkdirTemp("", "mharaft-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	res, err := s(ctx, dir, quick, w)
	if err != nil {
		return nil, fmt.Errorf("benchmark %s: %w", name, err)
	}
	res.Suite = name
	PrintTable(w, res)
	if outDir != "" {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return res, err
		}
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(filepath.Join(outDir, name+".json"), append(b, '\n'), 0o644); err != nil {
			return res, err
		}
	}
	return res, nil
}

// PrintTable prints a result as an aligned table.
func PrintTable(w io.Writer, r *Result) {
	fmt.Fprintf(w, "\n== %s ==\n", r.Suite)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range r.Figures {
		fmt.Fprintf(tw, "%s\t%.3f %s\t%s\n", f.Name, f.Value, f.Unit, f.Note)
	}
	tw.Flush()
}
