package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeDNS resolves the names the tests use without touching the network.
var fakeDNS = map[string][]string{
	"db1.example":  {"10.0.0.1"},
	"db2.example":  {"2001:db8::2", "10.0.0.2"},
	"db3.example":  {"10.0.0.3"},
	"jump.example": {"10.0.9.9"},
}

func testLoader() *loader {
	l := newLoader()
	l.lookupHost = func(_ context.Context, host string) ([]string, error) {
		if a, ok := fakeDNS[host]; ok {
			return a, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	l.currentUser = func() string { return "alice" }
	l.homeDir = func() string { return "/home/alice" }
	return l
}

// parseTest parses app (as app1.conf) and global (as masterha_default.conf,
// none when "") with testLoader.
func parseTest(t *testing.T, app, global string) (*App, error) {
	t.Helper()
	var g io.Reader
	if global != "" {
		g = strings.NewReader(global)
	}
	return testLoader().parse("app1", strings.NewReader(app), "app1.conf", g, "masterha_default.conf")
}

func mustParse(t *testing.T, app, global string) *App {
	t.Helper()
	a, err := parseTest(t, app, global)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return a
}

// scriptFile writes an executable (or not) shell script and returns its path.
func scriptFile(t *testing.T, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	notExec := scriptFile(t, dir, "not_exec", "exit 0", 0o644)
	okScript := scriptFile(t, dir, "ok", "exit 0", 0o755)
	unreadable := filepath.Join(dir, "missing_key")
	const two = "[server1]\nhostname=10.0.0.1\n[server2]\nhostname=10.0.0.2\n"

	tests := []struct {
		name    string
		global  string
		app     string
		want    []string // lines that must be in the error, exactly
		notWant []string // text that must not appear anywhere in the error
	}{
		{name: "unknown key with a suggestion",
			app:  "[server default]\nping_intervall=3\n" + two,
			want: []string{`app1.conf:2: [server default] ping_intervall: unknown key (did you mean "ping_interval"?)`}},
		{name: "unknown key far from any",
			app:  "[server default]\nfrobnicate=3\n" + two,
			want: []string{`app1.conf:2: [server default] frobnicate: unknown key (see config/REFERENCE.md)`}},
		{name: "unknown key does not show a misspelt password",
			app:     "[server default]\npasword=hunter2\n" + two,
			want:    []string{`app1.conf:2: [server default] pasword: unknown key (did you mean "password"?)`},
			notWant: []string{"hunter2"}},
		{name: "bad integer",
			app:  two + "port = abc\n",
			want: []string{`app1.conf:5: [server2] port = "abc": not a number (want 1-65535)`}},
		{name: "bad boolean",
			app:  "[server1]\nhostname=10.0.0.1\ncandidate_master=yes\n",
			want: []string{`app1.conf:3: [server1] candidate_master = "yes": not a boolean (want 0 or 1; MHA would read any other text by Perl's rules, so write 0 or 1)`}},
		{name: "port out of range",
			app:  "[server1]\nhostname=10.0.0.1\nport=70000\n",
			want: []string{`app1.conf:3: [server1] port = "70000": out of range (want 1-65535)`}},
		{name: "ssh_port out of range in the global file",
			global: "[server default]\nssh_port=0\n",
			app:    two,
			want:   []string{`masterha_default.conf:2: [server default] ssh_port = "0": out of range (want 1-65535)`}},
		{name: "interval out of range",
			app:  "[server default]\nping_interval=0\n" + two,
			want: []string{`app1.conf:2: [server default] ping_interval = "0": out of range (want 1-3600)`}},
		{name: "bad ping_type",
			app:  "[server default]\nping_type=PING\n" + two,
			want: []string{`app1.conf:2: [server default] ping_type = "PING": not allowed (want one of CONNECT, SELECT, INSERT)`}},
		{name: "bad fence_mode",
			app:  "[server default]\nfence_mode=stonith\n" + two,
			want: []string{`app1.conf:2: [server default] fence_mode = "stonith": not allowed (want one of read_only_ftwrl, read_only, shutdown)`}},
		{name: "bad log_level",
			app:  "[server default]\nlog_level=verbose\n" + two,
			want: []string{`app1.conf:2: [server default] log_level = "verbose": not allowed (want one of debug, info, notice, warning, error, critical, alert, emergency)`}},
		{name: "bad ip",
			app:  "[server1]\nhostname=db1.example\nip=10.0.0.300\n",
			want: []string{`app1.conf:3: [server1] ip = "10.0.0.300": not an IP address (want e.g. 192.168.0.101, or leave it out to resolve the host name)`}},
		{name: "relative workdir",
			app:  "[server default]\nmanager_workdir=masterha/app1\n" + two,
			want: []string{`app1.conf:2: [server default] manager_workdir = "masterha/app1": not an absolute path (want a path that starts with /)`}},
		{name: "relative binlog dir in a list",
			app:  "[server1]\nhostname=10.0.0.1\nmaster_binlog_dir=/var/lib/mysql, data\n",
			want: []string{`app1.conf:3: [server1] master_binlog_dir = "/var/lib/mysql, data": not a list of absolute paths (want /dir or /dir1,/dir2)`}},
		{name: "duplicate key, password redacted",
			app:     "[server1]\nhostname=10.0.0.1\npassword=first-secret\npassword=second-secret\n",
			want:    []string{`app1.conf:4: [server1] password = <redacted>: set twice in this section (first at line 3); keep one`},
			notWant: []string{"first-secret", "second-secret"}},
		{name: "duplicate section",
			app:  two + "[server1]\nport=3307\n",
			want: []string{`app1.conf:5: [server1]: section written twice (first at line 1); write each section once`}},
		{name: "line outside any section, password redacted",
			app:     "password=hunter2\n" + two,
			want:    []string{`app1.conf:1: password = <redacted>: outside any section: put it under [server default] or a [serverN] block`},
			notWant: []string{"hunter2"}},
		{name: "line that is not key=value",
			app:  "[server default]\nping_interval 3\n" + two,
			want: []string{`app1.conf:2: not a [section], a key = value line or a comment`}},
		{name: "server without hostname",
			app:  "[server1]\nhostname=10.0.0.1\n\n[server2]\nport=3307\n",
			want: []string{`app1.conf:4: [server2]: no hostname: every server block needs hostname = <host name or IP address>`}},
		{name: "empty hostname",
			app:  "[server1]\nhostname=\n",
			want: []string{`app1.conf:2: [server1] hostname: not a host name (want a host name or an IP address)`}},
		{name: "same ip:port twice",
			app:  "[server1]\nhostname=10.0.0.1\n[server2]\nhostname=db1.example\n",
			want: []string{`app1.conf:3: [server2]: ip:port 10.0.0.1:3306 is also used by [server1] (line 1); each server needs its own ip:port`}},
		{name: "no server block",
			app:  "[server default]\nuser=mha\n",
			want: []string{`app1.conf: no server block: define each database server in a block such as [server1] with hostname = <host>`}},
		{name: "empty file",
			app:  "# nothing\n",
			want: []string{`app1.conf: no server block: define each database server in a block such as [server1] with hostname = <host>`}},
		{name: "application key in a server block",
			app:  two + "manager_workdir=/var/log/masterha/app1\n",
			want: []string{`app1.conf:5: [server2] manager_workdir = "/var/log/masterha/app1": an application-wide setting, not allowed in a server block: move it to [server default] of this file or of the global file (MHA reads it from one server only)`}},
		{name: "per-server key in server default",
			app:  "[server default]\ncandidate_master=1\n" + two,
			want: []string{`app1.conf:2: [server default] candidate_master = "1": a per-server setting, not allowed in [server default]: set it in each [serverN] block (MHA ignores it in [server default])`}},
		{name: "script does not exist",
			app:  "[server default]\nmaster_ip_failover_script=" + dir + "/nope --flag\n" + two,
			want: []string{`app1.conf:2: [server default] master_ip_failover_script = "` + dir + `/nope --flag": script ` + dir + `/nope: stat ` + dir + `/nope: no such file or directory (want an executable file)`}},
		{name: "script not executable",
			app:  "[server default]\nshutdown_script=" + notExec + "\n" + two,
			want: []string{`app1.conf:2: [server default] shutdown_script = "` + notExec + `": script ` + notExec + ` is not executable (mode -rw-r--r--; chmod +x it)`}},
		{name: "script is a directory",
			app:  "[server default]\nreport_script=" + dir + "\n" + two,
			want: []string{`app1.conf:2: [server default] report_script = "` + dir + `": script ` + dir + ` is a directory (want an executable file)`}},
		{name: "ssh_key not readable",
			app:  "[server default]\nssh_key=" + unreadable + "\n" + two,
			want: []string{`app1.conf:2: [server default] ssh_key = "` + unreadable + `": cannot read the file: open ` + unreadable + `: no such file or directory`}},
		{name: "ssh_known_hosts not readable",
			app:  two + "ssh_known_hosts=" + unreadable + "\n",
			want: []string{`app1.conf:5: [server2] ssh_known_hosts = "` + unreadable + `": cannot read the file: open ` + unreadable + `: no such file or directory`}},
		{name: "host name that does not resolve",
			app:  "[server1]\nport=3306\nhostname=nosuch.example\n",
			want: []string{`app1.conf:3: [server1] hostname = "nosuch.example": cannot resolve the host name: lookup nosuch.example: no such host (fix DNS or /etc/hosts, or set ip = <address>)`}},
		{name: "ssh_host that does not resolve",
			app:  "[server1]\nhostname=10.0.0.1\nssh_host=nosuch.example\n",
			want: []string{`app1.conf:3: [server1] ssh_host = "nosuch.example": cannot resolve the host name: lookup nosuch.example: no such host (fix DNS or /etc/hosts, or set ip = <address>)`}},
		{name: "bad section name",
			app:  two + "[db3]\nhostname=10.0.0.3\n",
			want: []string{`app1.conf:5: [db3]: not a valid section name (want [server default], a server block whose name starts with "server", such as [server1], or a binlog server block such as [binlog1])`}},
		{name: "server_default typo",
			app:  "[server_default]\nuser=mha\n" + two,
			want: []string{`app1.conf:1: [server_default]: not a valid section name: did you mean [server default] (with a space)?`}},
		{name: "binlog server block without master_binlog_dir",
			app:  two + "[binlog1]\nhostname=10.0.0.9\n",
			want: []string{`app1.conf:5: [binlog1]: no master_binlog_dir: a binlog server block needs master_binlog_dir = <the directory that holds its copy of the master's binlog>`}},
		{name: "binlog server block with a relative master_binlog_dir",
			app:  two + "[binlog1]\nhostname=10.0.0.9\nmaster_binlog_dir=binlogs\n",
			want: []string{`app1.conf:7: [binlog1] master_binlog_dir = "binlogs": not a list of absolute paths (want /dir or /dir1,/dir2)`}},
		{name: "binlog server block with an empty master_binlog_dir",
			app:  two + "[server default]\nmaster_binlog_dir=/var/lib/mysql\n[binlog1]\nhostname=10.0.0.9\nmaster_binlog_dir=\n",
			want: []string{`app1.conf:9: [binlog1] master_binlog_dir: empty: a binlog server block needs master_binlog_dir = <the directory that holds its copy of the master's binlog>`}},
		{name: "binlog server block with a database setting",
			app:  two + "[binlog1]\nhostname=10.0.0.9\nmaster_binlog_dir=/binlog\ncandidate_master=1\n",
			want: []string{`app1.conf:8: [binlog1] candidate_master = "1": not a binlog server setting: a [binlogN] block says where a copy of the master's binlog is kept (hostname, ssh_*, master_binlog_dir); move it to a [serverN] block or to [server default]`}},
		{name: "binlog server block without hostname",
			app:  two + "[binlog1]\nmaster_binlog_dir=/binlog\n",
			want: []string{`app1.conf:5: [binlog1]: no hostname: every server block needs hostname = <host name or IP address>`}},
		{name: "server block in the global file",
			global: "[server default]\nuser=mha\n[server9]\nhostname=10.0.0.9\n",
			app:    two,
			want:   []string{`masterha_default.conf:3: [server9]: the global file may only hold [server default] (MHA ignores other sections there); move this block to the application file`}},
		{name: "candidate_master and no_master",
			app:  "[server1]\nhostname=10.0.0.1\ncandidate_master=1\nno_master=1\n",
			want: []string{`app1.conf:4: [server1] no_master = "1": contradicts candidate_master = 1 of this server; keep one of them`}},
		{name: "cross-DC guard without datacenters",
			app:  "[server default]\nprevent_cross_dc_failover=1\n[server1]\nhostname=10.0.0.1\ndatacenter=dc1\n[server2]\nhostname=10.0.0.2\n",
			want: []string{`app1.conf:6: [server2]: no datacenter: prevent_cross_dc_failover = 1 needs datacenter = <name> on every server`}},
		{name: "every problem of a file at once",
			global: "[server default]\nping_type=ICMP\n",
			app:    "[server default]\nuser=mha\nping_interval=-1\n[server1]\nhostname=10.0.0.1\nport=x\n[server2]\nhostname=10.0.0.1\nmanager_log=/tmp/m.log\n",
			want: []string{
				`masterha_default.conf:2: [server default] ping_type = "ICMP": not allowed (want one of CONNECT, SELECT, INSERT)`,
				`app1.conf:3: [server default] ping_interval = "-1": out of range (want 1-3600)`,
				`app1.conf:6: [server1] port = "x": not a number (want 1-65535)`,
				`app1.conf:7: [server2]: ip:port 10.0.0.1:3306 is also used by [server1] (line 4); each server needs its own ip:port`,
				`app1.conf:9: [server2] manager_log = "/tmp/m.log": an application-wide setting, not allowed in a server block: move it to [server default] of this file or of the global file (MHA reads it from one server only)`,
			}},
		{name: "misspelt passwords are never shown",
			app: "passwd=hunter2\n[server default]\nuser=mha\nPassword=hunter3\nrepl_passwd=hunter4\nrepl_passwd=hunter5\n" + two,
			want: []string{
				`app1.conf:1: passwd = <redacted>: outside any section: put it under [server default] or a [serverN] block`,
				`app1.conf:4: [server default] Password: unknown key (did you mean "password"?)`,
				`app1.conf:5: [server default] repl_passwd: unknown key (did you mean "repl_password"?)`,
				`app1.conf:6: [server default] repl_passwd = <redacted>: set twice in this section (first at line 5); keep one`,
			},
			notWant: []string{"hunter"}},
		{name: "a secret-looking key in a server block is redacted",
			app: "[server1]\nhostname=10.0.0.1\n[server2]\nhostname=10.0.0.2\nAPI_TOKEN=s3\nAPI_TOKEN=s4\n",
			want: []string{
				`app1.conf:5: [server2] API_TOKEN: unknown key (see config/REFERENCE.md)`,
				`app1.conf:6: [server2] API_TOKEN = <redacted>: set twice in this section (first at line 5); keep one`,
			},
			notWant: []string{"s3", "s4"}},
		{name: "control characters are escaped",
			app: "[server1]\nhostname=10.0.0.1\nport=3\x1b[2J\n[server2]\nhostname=10.0.0.2\nping\x07type=x\n",
			want: []string{
				`app1.conf:3: [server1] port = "3\x1b[2J": not a number (want 1-65535)`,
				`app1.conf:6: [server2] ping\atype: unknown key (did you mean "ping_type"?)`,
			}},
		{name: "script given by name with arguments is not checked",
			app:  "[server default]\nsecondary_check_script=masterha_secondary_check -s remote1\nmaster_ip_failover_script=" + okScript + " --x\nping_interval=0\n" + two,
			want: []string{`app1.conf:4: [server default] ping_interval = "0": out of range (want 1-3600)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := parseTest(t, tc.app, tc.global)
			if err == nil {
				t.Fatalf("parse succeeded, want errors %q", tc.want)
			}
			if a != nil {
				t.Errorf("parse returned an App along with errors")
			}
			// Every problem, one a line, in file and line order.
			if lines := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(lines, tc.want) {
				t.Errorf("errors\n got: %s\nwant: %s", strings.Join(lines, "\n      "), strings.Join(tc.want, "\n      "))
			}
			for _, nw := range tc.notWant {
				if strings.Contains(err.Error(), nw) {
					t.Errorf("error shows %q: %v", nw, err)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("errors.As(*Error) failed on %v", err)
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app1.conf")
	if err := os.WriteFile(app, []byte("[server1]\nhostname=127.0.0.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missingApp := filepath.Join(dir, "nope.conf")
	missingGlobal := filepath.Join(dir, "masterha_default.conf")

	_, err := Load(missingApp, missingGlobal)
	for _, w := range []string{
		missingApp + ": cannot read the file: no such file or directory",
		missingGlobal + ": cannot read the file: no such file or directory",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Load error lacks %q:\n%v", w, err)
		}
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("errors.Is(err, os.ErrNotExist) = false for %v", err)
	}

	// A directory given as the file.
	if _, err := Load(dir, ""); err == nil || !strings.Contains(err.Error(), dir+": cannot read the file: is a directory") {
		t.Errorf("Load(dir) = %v, want a read error naming %s", err, dir)
	}

	// MHA's default global file is skipped when absent, as MHA does.
	if _, statErr := os.Stat(DefaultGlobalFile); statErr == nil {
		t.Logf("%s exists on this machine; not testing its absence", DefaultGlobalFile)
	} else {
		a, err := Load(app, DefaultGlobalFile)
		if err != nil {
			t.Fatalf("Load with absent %s: %v", DefaultGlobalFile, err)
		}
		if a.GlobalFile != "" || a.Name != "app1" {
			t.Errorf("GlobalFile = %q, Name = %q; want \"\" and app1", a.GlobalFile, a.Name)
		}
	}
}

// TestWalkthrough loads the walkthrough's two files and checks every merged
// value, the overrides and the defaults.
func TestWalkthrough(t *testing.T) {
	dir := t.TempDir()
	scripts := filepath.Join(dir, "masterha")
	if err := os.Mkdir(scripts, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"master_ip_failover", "master_ip_online_change", "send_report"} {
		scriptFile(t, scripts, s, "exit 0", 0o755)
	}
	// The files name their scripts under /etc/masterha/ as the walkthrough
	// does; point them at the copies made above.
	copyConf := func(name string) string {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		text := strings.ReplaceAll(string(data), "/etc/masterha/", scripts+"/")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	appPath, globalPath := copyConf("app1.conf"), copyConf("masterha_default.conf")

	a, err := Load(appPath, globalPath)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	wantApp := App{
		Name:                       "app1",
		File:                       appPath,
		GlobalFile:                 globalPath,
		ManagerWorkdir:             "/var/log/masterha/app1",
		ManagerLog:                 "/var/log/masterha/app1/manager.log",
		PingInterval:               1 * time.Second, // app overrides the global 3
		PingType:                   "SELECT",
		ConnectTimeout:             1 * time.Second,
		SecondaryCheckScript:       "masterha_secondary_check -s 192.168.0.102 -s 192.168.0.103",
		MasterIPFailoverScript:     scripts + "/master_ip_failover",
		MasterIPOnlineChangeScript: scripts + "/master_ip_online_change",
		ReportScript:               scripts + "/send_report",
		HookTimeout:                60 * time.Second,
		LastFailoverMinute:         480,
		UseGTIDAutoPos:             true,
		RunningUpdatesLimit:        1 * time.Second,
		MaxLagForSwitch:            1 * time.Second,
		FenceMode:                  "read_only_ftwrl",
		LogLevel:                   "info",
		CheckReplFilter:            true,
	}
	gotApp := *a
	gotApp.Servers = nil
	gotApp.defaults = nil // the raw [server default] layers, for ServerFromDefaults
	if !reflect.DeepEqual(gotApp, wantApp) {
		t.Errorf("application settings\n got: %+v\nwant: %+v", gotApp, wantApp)
	}

	if len(a.Servers) != 3 {
		t.Fatalf("got %d servers, want 3", len(a.Servers))
	}
	for i, s := range a.Servers {
		host := []string{"192.168.0.101", "192.168.0.102", "192.168.0.103"}[i]
		want := Server{
			Name:              []string{"server1", "server2", "server3"}[i],
			Hostname:          host,
			IP:                host,
			Port:              3306,
			User:              "root",
			Password:          "123456",
			ReplUser:          "mharpl",
			ReplPassword:      "123456abc",
			SSHUser:           "root",
			SSHHost:           host,
			SSHIP:             host,
			SSHPort:           22,
			SSHKnownHosts:     filepath.Join(home, ".ssh", "known_hosts"),
			SSHConnectTimeout: 5 * time.Second,
			CandidateMaster:   true,
			CheckReplDelay:    i != 1, // server2 sets check_repl_delay=0
			LatestPriority:    true,
			MasterBinlogDir:   "/data/mysql/mysql3306/data", // app overrides the global /var/lib/mysql
			RemoteWorkdir:     "/var/log/masterha/app1",     // app overrides the global /var/tmp
			ApplyMethod:       "auto",
			HandleRawBinlog:   true,
		}
		if !reflect.DeepEqual(*s, want) {
			t.Errorf("server %d\n got: %+v\nwant: %+v", i+1, *s, want)
		}
	}
	if got := a.Server("192.168.0.102:3306"); got == nil || got.Name != "server2" {
		t.Errorf(`Server("192.168.0.102:3306") = %v, want server2`, got)
	}
	if got := a.Servers[0].String(); got != "192.168.0.101(192.168.0.101:3306)" {
		t.Errorf("String() = %q, want MHA's host(ip:port)", got)
	}
}

// TestOverrideOrder checks that a server block overrides the application's
// [server default], which overrides the global file's, which overrides the
// built-in default.
func TestOverrideOrder(t *testing.T) {
	tests := []struct {
		key                 string
		global, app, server string // "" means not written there
		want                string // the resolved value, as String prints it
	}{
		{key: "port", want: "3306"},
		{key: "port", global: "3307", want: "3307"},
		{key: "port", global: "3307", app: "3308", want: "3308"},
		{key: "port", global: "3307", app: "3308", server: "3309", want: "3309"},
		{key: "port", app: "3308", server: "3309", want: "3309"},
		{key: "user", want: "root"},
		{key: "user", global: "g", app: "a", want: "a"},
		{key: "user", global: "g", server: "s", want: "s"},
		{key: "ssh_user", want: "alice"},
		{key: "ssh_user", global: "mha", want: "mha"},
		{key: "check_repl_delay", want: "1"},
		{key: "check_repl_delay", global: "0", want: "0"},
		{key: "check_repl_delay", global: "0", app: "1", server: "0", want: "0"},
		{key: "ssh_connection_timeout", want: "5"},
		{key: "ssh_connection_timeout", global: "10", server: "20", want: "20"},
		{key: "remote_workdir", want: "/var/tmp"},
		{key: "remote_workdir", global: "/g", app: "/a", want: "/a"},
		{key: "ssh_known_hosts", want: "/home/alice/.ssh/known_hosts"},
		{key: "ping_interval", want: "3"},
		{key: "ping_interval", global: "5", want: "5"},
		{key: "ping_interval", global: "5", app: "1", want: "1"},
		{key: "ping_type", global: "connect", want: "CONNECT"},
		{key: "ping_type", global: "connect", app: "insert", want: "INSERT"},
		{key: "manager_workdir", want: "/var/log/masterha/app1"},
		{key: "manager_workdir", global: "/g", app: "/a", want: "/a"},
		{key: "fence_mode", global: "shutdown", want: "shutdown"},
		{key: "last_failover_minute", want: "480"},
		{key: "last_failover_minute", app: "60", want: "60"},
	}
	for _, tc := range tests {
		name := tc.key + "/" + tc.global + "/" + tc.app + "/" + tc.server
		t.Run(name, func(t *testing.T) {
			var global, app strings.Builder
			if tc.global != "" {
				global.WriteString("[server default]\n" + tc.key + " = " + tc.global + "\n")
			}
			app.WriteString("[server default]\n")
			if tc.app != "" {
				app.WriteString(tc.key + " = " + tc.app + "\n")
			}
			app.WriteString("[server1]\nhostname = db1.example\n")
			if tc.server != "" {
				app.WriteString(tc.key + " = " + tc.server + "\n")
			}
			a := mustParse(t, app.String(), global.String())
			pairs := append(a.pairs(), a.Servers[0].pairs()...)
			for _, p := range pairs {
				if p[0] == tc.key {
					if p[1] != tc.want {
						t.Errorf("%s = %q, want %q", tc.key, p[1], tc.want)
					}
					return
				}
			}
			t.Fatalf("key %s not printed", tc.key)
		})
	}
}

func TestServerOrderAndResolution(t *testing.T) {
	a := mustParse(t, `
[server10]
hostname=db3.example
[server2]
hostname=db2.example
ssh_host=jump.example
[server1]
hostname=db1.example
ip=10.1.1.1
ssh_ip=10.2.2.2
`, "")
	var got []string
	for _, s := range a.Servers {
		got = append(got, s.Name+" "+s.IP+" "+s.SSHHost+" "+s.SSHIP)
	}
	want := []string{
		"server1 10.1.1.1 db1.example 10.2.2.2",  // ip and ssh_ip as written
		"server2 10.0.0.2 jump.example 10.0.9.9", // first IPv4 address; ssh_host resolved on its own
		"server10 10.0.0.3 db3.example 10.0.0.3", // numeric order, not server10 < server2
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("servers\n got: %q\nwant: %q", got, want)
	}

	// When one name has no number, MHA keeps the plain name order.
	a = mustParse(t, "[serverB]\nhostname=10.0.0.2\n[server2]\nhostname=10.0.0.1\n[serverA]\nhostname=10.0.0.3\n", "")
	got = nil
	for _, s := range a.Servers {
		got = append(got, s.Name)
	}
	if want := []string{"server2", "serverA", "serverB"}; !reflect.DeepEqual(got, want) {
		t.Errorf("servers = %q, want %q", got, want)
	}
}

func TestSyntax(t *testing.T) {
	a := mustParse(t, "\uFEFF; a comment\r\n"+
		"  # another one\r\n"+
		"[ server default ]\r\n"+
		"user = mha ; inline comment\r\n"+
		"password = \"ab#c d\"\r\n"+
		"repl_password='x'\r\n"+
		"ssh_options = \"-o StrictHostKeyChecking='yes'\"\r\n"+
		"master_binlog_dir = /data/a, /data/b\r\n"+
		"ping_type = connect\r\n"+
		"\r\n"+
		"[server1]\r\n"+
		"hostname = 10.0.0.1\r\n"+
		"node_label = \"rack 1\r\n", "")
	s := a.Servers[0]
	checks := []struct{ name, got, want string }{
		{"user", s.User, "mha"},
		{"password", s.Password, "ab#c d"},
		{"repl_password", s.ReplPassword, "x"},
		{"ssh_options", s.SSHOptions, "-o StrictHostKeyChecking=yes"},
		{"master_binlog_dir", s.MasterBinlogDir, "/data/a,/data/b"},
		{"ping_type", a.PingType, "CONNECT"},
		{"node_label", s.NodeLabel, `"rack 1`}, // only a leading quote: kept, as MHA does
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestStripQuotes(t *testing.T) {
	for in, want := range map[string]string{
		`abc`: `abc`, `"abc"`: `abc`, `'abc'`: `abc`, `'abc"`: `abc`, `abc"`: `abc`,
		`"abc`: `"abc`, `"`: ``, `""`: ``, `"a"b"`: `a"b`, ``: ``,
	} {
		if got := stripQuotes(in); got != want {
			t.Errorf("stripQuotes(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestInitConfLoadScript(t *testing.T) {
	dir := t.TempDir()
	script := scriptFile(t, dir, "load_conf", `echo "password=from-vault"; echo "ping_interval=2"; echo`, 0o755)
	a := mustParse(t, "[server default]\npassword=in-file\nping_interval=9\ninit_conf_load_script="+script+"\n[server1]\nhostname=10.0.0.1\n[server2]\nhostname=10.0.0.2\npassword=own\n", "")
	if a.PingInterval != 2*time.Second || a.Servers[0].Password != "from-vault" || a.Servers[1].Password != "own" {
		t.Errorf("script output not applied over [server default] and under server blocks: interval %v, passwords %q %q",
			a.PingInterval, a.Servers[0].Password, a.Servers[1].Password)
	}

	bad := scriptFile(t, dir, "bad_conf", `echo "pasword=s3cret"; echo "candidate_master=1"; echo "garbage"`, 0o755)
	_, err := parseTest(t, "[server default]\ninit_conf_load_script="+bad+"\n[server1]\nhostname=10.0.0.1\n", "")
	label := "output of init_conf_load_script " + bad
	for _, w := range []string{
		label + `:1: [server default] pasword: unknown key (did you mean "password"?)`,
		label + `:2: [server default] candidate_master = "1": a per-server setting`,
		label + `:3: not a key=value line`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the script's output: %v", err)
	}

	failing := scriptFile(t, dir, "fail_conf", `echo secret-on-stderr >&2; exit 3`, 0o755)
	_, err = parseTest(t, "[server default]\ninit_conf_load_script="+failing+"\n[server1]\nhostname=10.0.0.1\n", "")
	want := "output of init_conf_load_script " + failing + ": the script failed: exit status 3"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestRedactedAndString(t *testing.T) {
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a := mustParse(t, "[server default]\npassword=topsecret\nrepl_password=replsecret\nssh_known_hosts="+kh+
		"\nmulti_tier_slave=1\nfence_mode=read_only\nping_interval=2\n"+
		"[server1]\nhostname=db1.example\ndatacenter=dc1\ncandidate_master=1\n[server2]\nhostname=10.0.0.2\npassword=\n", "")

	r := a.Redacted()
	if r.Servers[0].Password != "xxx" || r.Servers[0].ReplPassword != "xxx" || r.Servers[1].Password != "" {
		t.Errorf("Redacted passwords: %q %q %q", r.Servers[0].Password, r.Servers[0].ReplPassword, r.Servers[1].Password)
	}
	if a.Servers[0].Password != "topsecret" {
		t.Errorf("Redacted changed the original: %q", a.Servers[0].Password)
	}

	text := a.String()
	for _, secret := range []string{"topsecret", "replsecret"} {
		if strings.Contains(text, secret) {
			t.Errorf("String shows %q:\n%s", secret, text)
		}
	}
	for _, w := range []string{"\npassword=xxx\n", "\nrepl_password=xxx\n", "\n[server2]\n", "\nip=10.0.0.1\n", "\nfence_mode=read_only\n"} {
		if !strings.Contains(text, w) {
			t.Errorf("String lacks %q:\n%s", w, text)
		}
	}

	// String is an application file: read back, it gives the same App but
	// for the passwords.
	back := mustParse(t, text, "")
	back.File, back.GlobalFile = r.File, r.GlobalFile
	back.defaults = r.defaults // the raw layers differ (files, lines); the settings they give are compared
	if !reflect.DeepEqual(back, r) {
		t.Errorf("String does not read back:\n got: %s\nwant: %s", back, r)
	}
}

// TestBinlogServers: [binlogN] blocks (MHA's binlog servers) are read
// into App.BinlogServers by block name, with [server default]'s SSH
// settings and their own master_binlog_dir; they are not database
// servers, and String prints them so that they read back.
func TestBinlogServers(t *testing.T) {
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a := mustParse(t, "[server default]\nssh_user=mha\nssh_port=2222\nmaster_binlog_dir=/var/lib/mysql\nssh_known_hosts="+kh+"\n"+
		"[server1]\nhostname=10.0.0.1\n[server2]\nhostname=10.0.0.2\n"+
		"[binlog2]\nhostname=10.0.0.12\nmaster_binlog_dir=/data/binlog2\nssh_port=22\n"+
		"[binlog1]\nhostname=10.0.0.11\nmaster_binlog_dir = /data/binlog1\n", "")
	if len(a.Servers) != 2 {
		t.Fatalf("servers: %d, want 2", len(a.Servers))
	}
	var got []string
	for _, b := range a.BinlogServers {
		got = append(got, fmt.Sprintf("%s %s %s %s %d %v", b.Name, b.IP, b.MasterBinlogDir, b.SSHUser, b.SSHPort, b.BinlogServer))
	}
	want := []string{"binlog1 10.0.0.11 /data/binlog1 mha 2222 true", "binlog2 10.0.0.12 /data/binlog2 mha 22 true"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("binlog servers:\n got %q\nwant %q", got, want)
	}
	if a.Servers[0].BinlogServer {
		t.Errorf("server1 marked as a binlog server")
	}
	back := mustParse(t, a.String(), "")
	if !reflect.DeepEqual(back.BinlogServers, a.Redacted().BinlogServers) {
		t.Errorf("String does not read the binlog servers back:\n%s", a.String())
	}
}

// TestReferenceListsEveryKey keeps REFERENCE.md in step with the keys.
func TestReferenceListsEveryKey(t *testing.T) {
	data, err := os.ReadFile("REFERENCE.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range knownKeys() {
		if !strings.Contains(string(data), "| `"+k+"` |") {
			t.Errorf("REFERENCE.md has no table row for `%s`", k)
		}
	}
}

func TestClosestKey(t *testing.T) {
	for in, want := range map[string]string{
		"ping_intervall": "ping_interval", "hostnmae": "hostname", "candidate-master": "candidate_master",
		"ssh_knownhosts": "ssh_known_hosts", "zzz": "", "manager_work_dir": "manager_workdir",
	} {
		if got := closestKey(in); got != want {
			t.Errorf("closestKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRealResolver resolves through the machine's resolver (localhost comes
// from /etc/hosts, no network needed).
func TestRealResolver(t *testing.T) {
	a, err := Parse("app9", strings.NewReader("[server1]\nhostname=localhost\nport=3307\n"), "app9.conf", nil, "")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if s := a.Servers[0]; s.IP != "127.0.0.1" || s.SSHIP != "127.0.0.1" || a.ManagerWorkdir != "/var/log/masterha/app9" {
		t.Errorf("ip %q, ssh_ip %q, manager_workdir %q; want 127.0.0.1, 127.0.0.1, /var/log/masterha/app9", s.IP, s.SSHIP, a.ManagerWorkdir)
	}
}

func TestInitConfLoadScriptTimeout(t *testing.T) {
	script := scriptFile(t, t.TempDir(), "slow_conf", "sleep 30", 0o755)
	start := time.Now()
	_, err := parseTest(t, "[server default]\nhook_timeout=1\ninit_conf_load_script="+script+"\n[server1]\nhostname=10.0.0.1\n", "")
	want := "output of init_conf_load_script " + script + ": the script failed: timed out after 1s (hook_timeout)"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a script over hook_timeout held Parse for %v", d)
	}
}

// TestServerFromDefaults: a server added at run time gets its credentials
// and settings from [server default] of both files, its own settings win,
// and a bad setting is an error naming it (values are not shown).
func TestServerFromDefaults(t *testing.T) {
	app, err := parseTest(t, `
[server default]
user=mha
password=s3cret
repl_user=repl
repl_password=r3pl
ssh_user=ops
[server1]
hostname=10.0.0.1
`, "[server default]\nmaster_binlog_dir=/data/binlog\n")
	if err != nil {
		t.Fatal(err)
	}
	s, err := app.ServerFromDefaults("server9", map[string]string{"hostname": "10.0.0.9", "port": "3307", "candidate_master": "1"})
	if err != nil {
		t.Fatal(err)
	}
	got := []any{s.Name, s.IP, s.Port, s.User, s.Password, s.ReplUser, s.ReplPassword, s.SSHUser, s.MasterBinlogDir, s.CandidateMaster}
	want := []any{"server9", "10.0.0.9", 3307, "mha", "s3cret", "repl", "r3pl", "ops", "/data/binlog", true}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("server from defaults = %v, want %v", got, want)
	}
	for _, bad := range []map[string]string{{"port": "3307"}, {"hostname": "10.0.0.9", "pasword": "x"}} {
		if _, err := app.ServerFromDefaults("server8", bad); err == nil {
			t.Errorf("ServerFromDefaults(%v) = nil error, want one", bad)
		} else if strings.Contains(err.Error(), "pasword\"") && strings.Contains(err.Error(), "x\"") {
			t.Errorf("error shows a value that may be a secret: %v", err)
		}
	}
}
