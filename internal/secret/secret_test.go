package secret_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mharaft/mharaft/internal/secret"
)

func TestToken(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // the exact message with FILE for the path; "" = accepted
	}{
		{"good", "  0123456789abcdef\n", 0o600, ""},
		{"read-only for the owner", "0123456789abcdef", 0o400, ""},
		{"world readable", "0123456789abcdef", 0o644,
			"token file FILE has mode 0644: group or others can access it and it holds a secret; run `chmod 600 FILE`"},
		{"group readable", "0123456789abcdef", 0o640,
			"token file FILE has mode 0640: group or others can access it and it holds a secret; run `chmod 600 FILE`"},
		{"short", "s3cret-token\n", 0o600,
			"token file FILE holds a 12-byte token, shorter than the 16 bytes required; make one with `head -c 32 /dev/urandom | base64 > FILE && chmod 600 FILE`"},
		{"empty", "\n", 0o600,
			"token file FILE is empty; make a token with `head -c 32 /dev/urandom | base64 > FILE && chmod 600 FILE`"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "token"+string(rune('a'+i)))
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			tok, err := secret.Token(path)
			if tc.want == "" {
				if err != nil || tok != strings.TrimSpace(tc.content) {
					t.Fatalf("Token = %q, %v; want %q", tok, err, strings.TrimSpace(tc.content))
				}
				return
			}
			want := strings.ReplaceAll(tc.want, "FILE", path)
			if err == nil || err.Error() != want {
				t.Fatalf("Token error\n got %v\nwant %s", err, want)
			}
		})
	}
}

func TestFileMissing(t *testing.T) {
	err := secret.File("TLS key", "/nonexistent/node.key")
	if err == nil || !strings.HasPrefix(err.Error(), "TLS key /nonexistent/node.key: ") || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("got %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// What the manager writes under manager_workdir is 0600 in a 0700
// directory, an existing world-readable file included.
func TestPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "masterha", "app1")
	if err := secret.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	tail := filepath.Join(dir, "saved_master_binlog.binlog")
	f, err := secret.Create(tail)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	old := filepath.Join(dir, "failover_report.json")
	os.WriteFile(old, []byte("{}"), 0o644)
	os.Chmod(old, 0o644)
	if err := secret.WriteFile(old, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Dir(dir): 0o700, tail: 0o600, old: 0o600} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %04o", path, fi.Mode().Perm(), err, want)
		}
	}
}
