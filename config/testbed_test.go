package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/testbed"
)

// TestTestbedAppConfig loads the app1.conf that the test bed writes for the
// other packages' integration tests, so a change on either side that breaks
// the pair shows up here. No server is started: only the writer is used.
func TestTestbedAppConfig(t *testing.T) {
	dir := t.TempDir()
	key, known := filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "known_hosts")
	for _, f := range []string{key, known} {
		if err := os.WriteFile(f, []byte("test\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := &testbed.Cluster{
		SSH: &testbed.SSHD{Host: "127.0.0.1", Port: 2222, User: "root", ClientKey: key, KnownHosts: known},
	}
	for i := 1; i <= 3; i++ {
		c.Servers = append(c.Servers, &testbed.Server{Index: i, Host: "127.0.0.1", Port: 33060 + i,
			DataDir: filepath.Join(dir, "data", "s"+string(rune('0'+i)))})
	}
	path, err := c.WriteAppConfig(dir, "ping_interval=1", "fence_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	a, err := config.Load(path, "")
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	if a.Name != "app1" || a.PingInterval.Seconds() != 1 || a.FenceMode != "read_only" || len(a.Servers) != 3 {
		t.Fatalf("app: name %q, interval %v, fence %q, %d servers", a.Name, a.PingInterval, a.FenceMode, len(a.Servers))
	}
	for i, s := range a.Servers {
		tb := c.Servers[i]
		if s.Name != tb.Name() || s.Addr() != tb.Addr() || s.MasterBinlogDir != tb.DataDir ||
			s.User != testbed.MHAUser || s.Password != testbed.MHAPassword ||
			s.ReplUser != testbed.ReplUser || s.ReplPassword != testbed.ReplPassword ||
			s.SSHAddr() != c.SSH.Addr() || s.SSHUser != "root" || s.SSHKey != key || s.SSHKnownHosts != known ||
			!s.CandidateMaster {
			t.Errorf("server %d does not match the test bed: %+v", i+1, *a.Redacted().Servers[i])
		}
	}
}
