package manager_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/manager/managertest"
)

// TestStartupErrors: a bad data dir, a port in use and a bad configuration
// file each stop mhanode at once with exit code 2 and a message that names
// the problem; nothing keeps running.
func TestStartupErrors(t *testing.T) {
	mhanodeBin := mhanodeBinary(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "app1.conf")
	if err := os.WriteFile(good, []byte("[server default]\nuser=mha\npassword=secret-pw\n\n[server1]\nhostname=127.0.0.1\nport=3306\n\n[server2]\nhostname=127.0.0.1\nport=3307\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad", "app1.conf")
	os.MkdirAll(filepath.Dir(bad), 0o755)
	if err := os.WriteFile(bad, []byte("[server default]\nuser=mha\npassword=secret-pw\nping_intervall=3\n\n[server1]\nhostname=127.0.0.1\nport=abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	aFile := filepath.Join(dir, "a-file")
	os.WriteFile(aFile, []byte("x"), 0o600)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	mc, err := managertest.New(mhanodeBin, dir, 1, func(int) []string { return []string{good} })
	if err != nil {
		t.Fatal(err)
	}
	base := mc.Args(0)
	set := func(args []string, flag, value string) []string {
		out := append([]string(nil), args...)
		for i, a := range out {
			if a == flag {
				out[i+1] = value
			}
		}
		return out
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"data dir is a file", set(base, "--data-dir", aFile), []string{"data dir", "not a directory"}},
		{"http port in use", set(base, "--http-addr", busy.Addr().String()), []string{busy.Addr().String(), "in use"}},
		{"raft port in use", set(set(base, "--raft-addr", busy.Addr().String()), "--peers", "m1="+busy.Addr().String()), []string{busy.Addr().String(), "in use"}},
		{"bad config file", set(base, "--conf", bad), []string{bad, "ping_intervall", "nothing started"}},
		{"peers without this node", set(base, "--peers", "m2=127.0.0.1:1"), []string{"peers"}},
		{"no token", set(base, "--token-file", filepath.Join(dir, "missing-token")), []string{"token"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(mhanodeBin, tc.args...)
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("mhanode kept running; output:\n%s", out)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want code 2; output:\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(string(out), "secret-pw") {
				t.Errorf("output shows the password:\n%s", out)
			}
		})
	}
}
