package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mharaft/mharaft/config"
)

func TestManagerLogChoice(t *testing.T) {
	a := func(file, log string) *config.App { return &config.App{File: file, ManagerLog: log} }
	tests := []struct {
		name string
		apps []*config.App
		want string // path
		err  string // exact message
	}{
		{"none", []*config.App{a("app1.conf", ""), a("app2.conf", "")}, "", ""},
		{"one", []*config.App{a("app1.conf", ""), a("app2.conf", "/var/log/mha/m.log")}, "/var/log/mha/m.log", ""},
		{"same in every file", []*config.App{a("app1.conf", "/l"), a("app2.conf", "/l")}, "/l", ""},
		{"conflict", []*config.App{a("app1.conf", "/a.log"), a("app2.conf", "/a.log"), a("app3.conf", "/b.log")}, "",
			"manager_log: app1.conf sets /a.log but app3.conf sets /b.log; one mhanode writes one log: set the same manager_log in every application file (or once in --global-conf)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := managerLog(tc.apps)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("managerLog = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// The log file is 0600 in a 0700 directory (an existing file is made
// 0600 too) and Reopen follows logrotate's rename.
func TestLogFileReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "masterha", "app1", "manager.log")
	l, err := openLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Write([]byte("before rotation\n"))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("after rotation\n"))
	for file, want := range map[string]string{path + ".1": "before rotation\n", path: "after rotation\n"} {
		b, err := os.ReadFile(file)
		if err != nil || string(b) != want {
			t.Errorf("%s holds %q (%v), want %q", file, b, err, want)
		}
	}
	fi, _ := os.Stat(path)
	di, _ := os.Stat(filepath.Dir(path))
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Errorf("log mode %04o in a %04o directory, want 0600 in 0700", fi.Mode().Perm(), di.Mode().Perm())
	}

	// An existing world-readable log is made 0600.
	old := filepath.Join(dir, "old.log")
	os.WriteFile(old, []byte("x\n"), 0o644)
	l2, err := openLogFile(old)
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
	if fi, _ := os.Stat(old); fi.Mode().Perm() != 0o600 {
		t.Errorf("existing log left %04o, want 0600", fi.Mode().Perm())
	}
}

// Secret files that others can read stop mhanode before anything starts,
// with the message an operator sees.
func TestSecretFilesRefused(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "app1.conf")
	os.WriteFile(conf, []byte("[server default]\nuser=mha\npassword=pw\n[server1]\nhostname=127.0.0.1\nport=3306\n[server2]\nhostname=127.0.0.1\nport=3307\n"), 0o600)
	good := filepath.Join(dir, "token")
	os.WriteFile(good, []byte("0123456789abcdef0123\n"), 0o600)
	open := filepath.Join(dir, "open-token")
	os.WriteFile(open, []byte("0123456789abcdef0123\n"), 0o644)
	os.Chmod(open, 0o644)
	short := filepath.Join(dir, "short-token")
	os.WriteFile(short, []byte("s3cret\n"), 0o600)
	key := filepath.Join(dir, "node.key")
	os.WriteFile(key, []byte("-----BEGIN EC PRIVATE KEY-----\n"), 0o600)
	os.Chmod(key, 0o640)
	base := []string{"--id", "m1", "--data-dir", dir, "--raft-addr", "127.0.0.1:1", "--http-addr", "127.0.0.1:2",
		"--peers", "m1=127.0.0.1:1", "--conf", conf}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"world-readable token", []string{"--token-file", open},
			"mhanode: --token-file: token file " + open + " has mode 0644: group or others can access it and it holds a secret; run `chmod 600 " + open + "`\n"},
		{"short token", []string{"--token-file", short},
			"mhanode: --token-file: token file " + short + " holds a 6-byte token, shorter than the 16 bytes required; make one with `head -c 32 /dev/urandom | base64 > " + short + " && chmod 600 " + short + "`\n"},
		{"group-readable TLS key", []string{"--token-file", good, "--tls-cert", key, "--tls-key", key},
			"mhanode: --tls-key: TLS key " + key + " has mode 0640: group or others can access it and it holds a secret; run `chmod 600 " + key + "`\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stderr := captureStderr(t, func() {
				if code := run(append(append([]string(nil), base...), tc.args...)); code != exitUsage {
					t.Errorf("exit %d, want %d", code, exitUsage)
				}
			})
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q, want %q", stderr, tc.want)
			}
		})
	}
}
