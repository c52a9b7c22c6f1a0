package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sshFiles writes a key and a known_hosts file under a fake home and
// returns a loader whose home it is, with the two paths.
func sshFiles(t *testing.T) (*loader, string, string) {
	t.Helper()
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	key, known := filepath.Join(home, ".ssh", "mha_key"), filepath.Join(home, "kh")
	// ~/.ssh/known_hosts exists too: String() prints it as ssh_known_hosts, which must be readable.
	for _, f := range []string{key, known, filepath.Join(home, ".ssh", "known_hosts")} {
		if err := os.WriteFile(f, []byte("test\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l := testLoader()
	l.homeDir = func() string { return home }
	return l, key, known
}

// parseWith parses app with a fresh copy of l (a loader collects errors).
func parseWith(l *loader, app string) (*App, error) {
	c := *l
	return c.parse("app1", strings.NewReader(app), "app1.conf", nil, "")
}

// What ssh_options sets, alone or beside the keys it must agree with.
func TestSSHOptionsHonoured(t *testing.T) {
	l, key, known := sshFiles(t)
	type want struct {
		port           int
		user, key, kh  string
		timeout, alive time.Duration
		aliveMax       int
	}
	tests := []struct {
		name    string
		options string
		extra   string // more [server default] lines
		want    want
	}{
		{name: "none", want: want{22, "alice", "", "HOME/.ssh/known_hosts", 5 * time.Second, 0, 0}},
		{name: "MHA's usual: key, port, known_hosts, timeout",
			options: `"-i ` + key + ` -p 2222 -o UserKnownHostsFile=` + known + ` -o ConnectTimeout=9"`,
			want:    want{2222, "alice", key, known, 9 * time.Second, 0, 0}},
		{name: "joined values, -o forms, any case, ~ expanded",
			options: "-p2201 -i~/.ssh/mha_key -oUser=mha -o userknownhostsfile=~/kh -o SERVERALIVEINTERVAL=15 -o ServerAliveCountMax=4",
			want:    want{2201, "mha", key, known, 5 * time.Second, 15 * time.Second, 4}},
		{name: "-l and -o Port, the same value twice",
			options: "-l mha -o Port=2202 -p 2202",
			want:    want{2202, "mha", "", "HOME/.ssh/known_hosts", 5 * time.Second, 0, 0}},
		{name: "what mharaft does anyway",
			options: "-q -o StrictHostKeyChecking=yes -o BatchMode=yes -o PasswordAuthentication=no -o IdentitiesOnly=yes -o LogLevel=ERROR -o GlobalKnownHostsFile=/dev/null",
			want:    want{22, "alice", "", "HOME/.ssh/known_hosts", 5 * time.Second, 0, 0}},
		{name: "agrees with the keys",
			options: "-p 2222 -l mha -i " + key + " -o UserKnownHostsFile=" + known + " -o ConnectTimeout=7",
			extra:   "ssh_port=2222\nssh_user=mha\nssh_key=" + key + "\nssh_known_hosts=" + known + "\nssh_connection_timeout=7\n",
			want:    want{2222, "mha", key, known, 7 * time.Second, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app := "[server default]\n" + tc.extra
			if tc.options != "" {
				app += "ssh_options=" + tc.options + "\n"
			}
			a, err := parseWith(l, app+"[server1]\nhostname=10.0.0.1\n[server2]\nhostname=10.0.0.2\n")
			if err != nil {
				t.Fatal(err)
			}
			w := tc.want
			w.kh = strings.Replace(w.kh, "HOME", l.homeDir(), 1)
			for _, s := range a.Servers {
				got := want{s.SSHPort, s.SSHUser, s.SSHKey, s.SSHKnownHosts, s.SSHConnectTimeout, s.SSHAliveInterval, s.SSHAliveCountMax}
				if got != w {
					t.Errorf("%s: got %+v, want %+v", s.Name, got, w)
				}
			}
			// The printed configuration reads back to the same settings.
			b, err := parseWith(l, a.String())
			if err != nil {
				t.Fatalf("String() does not read back: %v\n%s", err, a)
			}
			if s, r := a.Servers[0], b.Servers[0]; s.SSHPort != r.SSHPort || s.SSHKey != r.SSHKey || s.SSHKnownHosts != r.SSHKnownHosts {
				t.Errorf("read back: %+v, want %+v", *r, *s)
			}
		})
	}
}

// Every refusal names the file, the line, the option and the reason; a
// [server default] line is reported once, however many servers use it.
func TestSSHOptionsRefused(t *testing.T) {
	l, key, known := sshFiles(t)
	const servers = "[server1]\nhostname=10.0.0.1\n[server2]\nhostname=10.0.0.2\n"
	hostKey := []string{"mharaft always verifies the host key", "never adds a key itself", "ssh-keyscan -p SSH_PORT HOST >> FILE", "remove the option"}
	tests := []struct {
		name string
		app  string
		want []string // fragments of the only error line
	}{
		{name: "StrictHostKeyChecking=no",
			app:  "[server default]\nssh_options=\"-o StrictHostKeyChecking=no -i " + key + "\"\n" + servers,
			want: append([]string{`app1.conf:2: [server default] ssh_options = "-o StrictHostKeyChecking=no -i ` + key + `": -o StrictHostKeyChecking=no is refused: `}, hostKey...)},
		{name: "StrictHostKeyChecking=accept-new in a server block",
			app:  servers + "ssh_options=-o StrictHostKeyChecking=accept-new\n",
			want: append([]string{`app1.conf:5: [server2] ssh_options = "-o StrictHostKeyChecking=accept-new": -o StrictHostKeyChecking=accept-new is refused`}, hostKey...)},
		{name: "UserKnownHostsFile=/dev/null",
			app:  "[server default]\nssh_options=-o UserKnownHostsFile=/dev/null\n" + servers,
			want: append([]string{"-o UserKnownHostsFile=/dev/null is refused: it would make every host key unknown"}, hostKey...)},
		{name: "unsupported option",
			app:  "[server default]\nssh_options=-o ProxyCommand=nc\n" + servers,
			want: []string{"-o ProxyCommand=nc is not supported by mharaft's SSH client; remove it (supported: -i FILE, -p PORT"}},
		{name: "unsupported flag",
			app:  "[server default]\nssh_options=-C\n" + servers,
			want: []string{"-C is not supported by mharaft's SSH client"}},
		{name: "the opposite of what mharaft does",
			app:  "[server default]\nssh_options=-o PasswordAuthentication=yes\n" + servers,
			want: []string{"-o PasswordAuthentication=yes is not supported: mharaft authenticates with a key only (PasswordAuthentication=no); remove it"}},
		{name: "ssh_config file",
			app:  "[server default]\nssh_options=-F /root/.ssh/config\n" + servers,
			want: []string{"-F: mharaft reads no ssh_config file"}},
		{name: "not an option",
			app:  "[server default]\nssh_options=2222\n" + servers,
			want: []string{`"2222" is not an ssh option`}},
		{name: "missing value",
			app:  "[server default]\nssh_options=-i\n" + servers,
			want: []string{"-i needs a value"}},
		{name: "Name value form",
			app:  "[server default]\nssh_options=\"-o Port 2222\"\n" + servers,
			want: []string{"-o Port: want -o Name=value"}},
		{name: "bad port",
			app:  "[server default]\nssh_options=-p 0\n" + servers,
			want: []string{"-p 0: not a port (want 1-65535)"}},
		{name: "bad timeout",
			app:  "[server default]\nssh_options=-o ConnectTimeout=0\n" + servers,
			want: []string{"-o ConnectTimeout=0: want whole seconds, 1-3600"}},
		{name: "missing key file",
			app:  "[server default]\nssh_options=-i /nonexistent/key\n" + servers,
			want: []string{"-i /nonexistent/key: cannot read the identity file: open /nonexistent/key: no such file or directory"}},
		{name: "relative path",
			app:  "[server default]\nssh_options=-o UserKnownHostsFile=kh\n" + servers,
			want: []string{"-o UserKnownHostsFile=kh: not an absolute path"}},
		{name: "token",
			app:  "[server default]\nssh_options=-i /root/.ssh/%h\n" + servers,
			want: []string{"-i /root/.ssh/%h: tokens and variables"}},
		{name: "two ports",
			app:  "[server default]\nssh_options=-p 22 -o Port=2222\n" + servers,
			want: []string{"the port is given twice (-p 22 and -o Port=2222); keep one"}},
		{name: "contradicts ssh_port of a server, reported once",
			app:  "[server default]\nssh_options=-p 2222 -o UserKnownHostsFile=" + known + "\n" + servers + "ssh_port=22\n",
			want: []string{"app1.conf:2: [server default] ssh_options = ", "-p 2222 contradicts ssh_port = 22 (app1.conf:7 [server2]); keep one of them"}},
		{name: "contradicts ssh_key of the global default, reported once",
			app:  "[server default]\nssh_options=-i " + key + "\nssh_key=" + known + "\n" + servers,
			want: []string{"-i " + key + " contradicts ssh_key = " + known + " (app1.conf:3 [server default]); keep one of them"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := parseWith(l, tc.app)
			if err == nil {
				t.Fatalf("parse succeeded: %+v", *a.Servers[0])
			}
			if lines := strings.Split(err.Error(), "\n"); len(lines) != 1 {
				t.Errorf("want one error, got %d:\n%v", len(lines), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
