package failover

import (
	"os"
	"path/filepath"
	"testing"
)

// A failover report (it names servers, users' hosts and positions) is
// written 0600 in a 0700 manager_workdir.
func TestReportFileIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "app1")
	r := &Report{Kind: "failover", App: "app1"}
	path, err := r.WriteJSON(dir)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %04o", p, fi.Mode().Perm(), err, want)
		}
	}
}
