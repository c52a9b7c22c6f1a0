package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestParsePeers(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"", nil, false},
		{"m1=127.0.0.1:7000", map[string]string{"m1": "127.0.0.1:7000"}, false},
		{"m1=a:1, m2=b:2,m3=c:3", map[string]string{"m1": "a:1", "m2": "b:2", "m3": "c:3"}, false},
		{"m1", nil, true},
		{"=a:1", nil, true},
		{"m1=a:1,m1=b:2", nil, true},
	}
	for _, tc := range tests {
		got, err := parsePeers(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("parsePeers(%q) error %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("parsePeers(%q) = %v, want %v", tc.in, got, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("parsePeers(%q)[%s] = %q, want %q", tc.in, k, got[k], v)
			}
		}
	}
}

// TestDetectionFlag checks that --detection accepts fast and mha and that
// any other value stops mhanode with a usage error naming the flag.
func TestDetectionFlag(t *testing.T) {
	tests := []struct {
		value   string
		wantErr bool // the --detection message is printed
	}{
		{"fast", false},
		{"mha", false},
		{"slow", true},
		{"MHA", true},
	}
	for _, tc := range tests {
		stderr := captureStderr(t, func() {
			// No --conf: a valid mode gets past the flag and stops at the
			// missing configuration, still with a usage error.
			if code := run([]string{"--detection", tc.value}); code != exitUsage {
				t.Errorf("--detection %s: exit %d, want %d", tc.value, code, exitUsage)
			}
		})
		if got := strings.Contains(stderr, "--detection"); got != tc.wantErr {
			t.Errorf("--detection %s: stderr %q, want the --detection error %v", tc.value, stderr, tc.wantErr)
		}
	}
}

// captureStderr runs f with os.Stderr redirected to a file and returns
// what f wrote there.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	file, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	saved := os.Stderr
	os.Stderr = file
	f()
	os.Stderr = saved
	b, err := os.ReadFile(file.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFlagsFile checks mhanode's --flags-file: the file's flags are used,
// the command line wins over them, and a bad file stops mhanode with a
// usage error naming the file and line. No run gets past the missing
// application configuration, so nothing starts.
func TestFlagsFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		return p
	}
	slow := write("slow.flags", "# a comment\nid = m1\ndetection = slow\n")
	fast := write("fast.flags", "detection = fast\nlog-level = debug\n")
	unknown := write("unknown.flags", "id = m1\nraft-adr = 127.0.0.1:7000\n")
	badPeers := write("peers.flags", "detection = mha\npeers = m1\n")
	tests := []struct {
		name       string
		args       []string
		wantStderr []string
	}{
		{"file value used", []string{"--flags-file", slow}, []string{"--detection", "slow"}},
		{"command line wins", []string{"--flags-file", slow, "--detection", "fast"}, []string{"at least one --conf"}},
		{"good file", []string{"--flags-file", fast}, []string{"at least one --conf"}},
		{"unknown flag in file", []string{"--flags-file", unknown}, []string{unknown, "line 2", `unknown flag "raft-adr"`}},
		{"file value checked like a flag", []string{"--flags-file", badPeers}, []string{"--peers", `"m1" is not ID=HOST:PORT`}},
		{"missing file", []string{"--flags-file", filepath.Join(dir, "none.flags")}, []string{"none.flags", "no such file"}},
		{"go-style single dash", []string{"-flags-file", fast, "-detection=slow"}, []string{"--detection", "slow"}},
		{"unknown flag", []string{"--detektion", "fast"}, []string{"unknown flag: --detektion", "--help"}},
		{"argument", []string{"extra"}, []string{`unknown command "extra"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stderr := captureStderr(t, func() {
				if code := run(tc.args); code != exitUsage {
					t.Errorf("exit %d, want %d", code, exitUsage)
				}
			})
			for _, w := range tc.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not contain %q", stderr, w)
				}
			}
		})
	}
}

// TestVersionAndHelp checks that `mhanode version` and --help exit 0, and
// that --help lists every flag the tests and the chaos harness pass (the
// harness greps it for --test-clock-offset).
func TestVersionAndHelp(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--help"}, {"-help"}} {
		if code := run(args); code != exitOK {
			t.Errorf("mhanode %q: exit %d, want %d", args, code, exitOK)
		}
	}
	var o options
	fs := pflag.NewFlagSet("mhanode", pflag.ContinueOnError)
	o.register(fs)
	for _, name := range []string{"id", "data-dir", "raft-addr", "http-addr", "gossip-addr", "peers", "token-file", "accept-token-file",
		"log-level", "log-json", "conf", "global-conf", "datacenter", "tls-cert", "tls-key", "tls-ca", "metrics-open", "detection",
		"test-clock-offset", "test-verdict-delay", "rejoin", "flags-file"} {
		if fs.Lookup(name) == nil {
			t.Errorf("flag --%s is missing", name)
		}
	}
}
