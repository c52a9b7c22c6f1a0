package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestParseFlagsFile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Setting
		wantErr string // substring of the error; "" for none
	}{
		{"empty", "", nil, ""},
		{"comments and blanks", "# a comment\n\n   # indented comment\n\t\n", nil, ""},
		{"one setting", "id = m1\n", []Setting{{"id", "m1", 1}}, ""},
		{"no spaces, no final newline", "id=m1", []Setting{{"id", "m1", 1}}, ""},
		{"spaces trimmed, inner kept", "  data-dir   =   /var/lib/my dir  \n", []Setting{{"data-dir", "/var/lib/my dir", 1}}, ""},
		{"value holds = and #", "peers = m1=a:1,m2=b:2\nx = a#b\n", []Setting{{"peers", "m1=a:1,m2=b:2", 1}, {"x", "a#b", 2}}, ""},
		{"repeated names kept in order", "conf = a.conf\n# c\nconf = b.conf\n", []Setting{{"conf", "a.conf", 1}, {"conf", "b.conf", 3}}, ""},
		{"CRLF", "id = m1\r\nlog-level = debug\r\n", []Setting{{"id", "m1", 1}, {"log-level", "debug", 2}}, ""},
		{"BOM", "\ufeffid = m1\n", []Setting{{"id", "m1", 1}}, ""},
		{"no =", "id m1\n", nil, "line 1: \"id m1\" is not `name = value`"},
		{"no name", "\n = m1\n", nil, "line 2: \"= m1\" has no flag name"},
		{"dashes", "--id = m1\n", nil, "line 1: write the flag name without dashes (id = ..., not --id = ...)"},
		{"space in name", "log level = info\n", nil, "line 1: flag name \"log level\" contains a space"},
		{"no value", "id = m1\ngossip-addr =\n", nil, "line 2: gossip-addr has no value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFlagsFile(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// testFlags is a small mhanode-like flag set.
type testFlags struct {
	fs      *pflag.FlagSet
	id      string
	dataDir string
	confs   []string
	json    bool
	offset  time.Duration
}

func newTestFlags() *testFlags {
	f := &testFlags{fs: pflag.NewFlagSet("test", pflag.ContinueOnError)}
	f.fs.StringVar(&f.id, "id", "", "")
	f.fs.StringVar(&f.dataDir, "data-dir", "", "")
	f.fs.StringArrayVar(&f.confs, "conf", nil, "")
	f.fs.BoolVar(&f.json, "log-json", false, "")
	f.fs.DurationVar(&f.offset, "test-clock-offset", 0, "")
	f.fs.String(FlagsFileFlag, "", "")
	f.fs.BoolP("help", "h", false, "")
	return f
}

func TestApplyFlagsFile(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		file    string
		wantErr string
		id      string
		dataDir string
		confs   []string
		json    bool
		offset  time.Duration
	}{
		{
			name:    "file only",
			file:    "id = m1\ndata-dir = /var/lib/mharaft/raft\nconf = /etc/a.conf\nconf = /etc/b.conf\nlog-json = true\ntest-clock-offset = -45s\n",
			id:      "m1",
			dataDir: "/var/lib/mharaft/raft",
			confs:   []string{"/etc/a.conf", "/etc/b.conf"},
			json:    true,
			offset:  -45 * time.Second,
		},
		{
			name:    "command line wins, file fills the rest",
			args:    []string{"--id", "m2", "--conf", "/tmp/x.conf"},
			file:    "id = m1\ndata-dir = /d\nconf = /etc/a.conf\nconf = /etc/b.conf\n",
			id:      "m2",
			dataDir: "/d",
			confs:   []string{"/tmp/x.conf"},
		},
		{
			name:    "command line false beats file true",
			args:    []string{"--log-json=false"},
			file:    "log-json = true\n",
			json:    false,
			confs:   nil,
			dataDir: "",
		},
		{name: "unknown flag", file: "id = m1\nraft-adr = x\n", wantErr: "line 2: unknown flag \"raft-adr\""},
		{name: "twice", file: "id = m1\n\nid = m2\n", wantErr: "line 3: id is already set on line 1 and takes one value"},
		{name: "nested", file: "flags-file = /etc/other\n", wantErr: "line 1: a flags file cannot name another flags file"},
		{name: "help", file: "help = true\n", wantErr: "line 1: unknown flag \"help\""},
		{name: "bad duration", file: "test-clock-offset = soon\n", wantErr: "line 1: test-clock-offset = soon: invalid argument"},
		{name: "bad bool", file: "log-json = yes\n", wantErr: "line 1: log-json = yes"},
		{name: "syntax", file: "id m1\n", wantErr: "line 1: \"id m1\" is not `name = value`"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "node.flags")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			f := newTestFlags()
			if err := f.fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := ApplyFlagsFile(f.fs, path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %v, want one naming %s and containing %q", err, path, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.id != tc.id || f.dataDir != tc.dataDir || !reflect.DeepEqual(f.confs, tc.confs) || f.json != tc.json || f.offset != tc.offset {
				t.Fatalf("got id=%q data-dir=%q conf=%q log-json=%v offset=%v, want %q %q %q %v %v",
					f.id, f.dataDir, f.confs, f.json, f.offset, tc.id, tc.dataDir, tc.confs, tc.json, tc.offset)
			}
		})
	}
}

func TestApplyFlagsFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.flags")
	err := ApplyFlagsFile(newTestFlags().fs, path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("error %v, want one naming %s and the missing file", err, path)
	}
}

func TestNormalizeArgs(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{nil, []string{}},
		{[]string{"-id", "m1", "-data-dir=/d"}, []string{"--id", "m1", "--data-dir=/d"}},
		{[]string{"--id", "m1"}, []string{"--id", "m1"}},
		// A value that looks like a flag stays a value.
		{[]string{"-test-clock-offset", "-45s", "--id", "-conf"}, []string{"--test-clock-offset", "-45s", "--id", "-conf"}},
		// Bool flags take no separate value.
		{[]string{"-log-json", "-id", "m1"}, []string{"--log-json", "--id", "m1"}},
		// Shorthands, unknown names, positional arguments and "--" onwards unchanged.
		{[]string{"-h", "-nope", "version", "--", "-id"}, []string{"-h", "-nope", "version", "--", "-id"}},
		{[]string{"-"}, []string{"-"}},
	}
	for _, tc := range tests {
		got := NormalizeArgs(newTestFlags().fs, tc.in)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("NormalizeArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWriteVersion(t *testing.T) {
	var b bytes.Buffer
	WriteVersion(&b, "mhanode")
	out := b.String()
	if !strings.HasPrefix(out, "mhanode "+Version()+"\n") || !strings.Contains(out, "go: go1.") {
		t.Fatalf("version output %q: want `mhanode VERSION` then a go: line", out)
	}
}
