package main

import (
	"os"
	"strings"
	"testing"
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
