package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mharaft/mharaft/testbed"
	"github.com/mharaft/mharaft/topology"
)

// mhactlBinary builds mhactl into a temporary directory (or uses
// $MHACTL_BIN when set) and returns its path.
func mhactlBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("MHACTL_BIN"); bin != "" {
		return bin
	}
	dir := t.TempDir()
	if err := testbed.BuildBinaries(context.Background(), dir, "./cmd/mhactl"); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "mhactl")
}

// runMhactl runs the binary and returns its stdout, stderr and exit code.
func runMhactl(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run mhactl %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

// check-repl and check-ssh through the built command: exit codes and output.
func TestCheckCommands(t *testing.T) {
	bin := mhactlBinary(t)
	c := testbed.Start(t, testbed.Options{N: 3})
	conf, err := c.WriteAppConfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("healthy", func(t *testing.T) {
		out, errOut, code := runMhactl(t, bin, "check-repl", "--conf", conf)
		if code != exitOK {
			t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
		}
		for _, want := range []string{"127.0.0.1(" + c.Servers[0].Addr() + ") (current master)",
			" +--127.0.0.1(" + c.Servers[1].Addr() + ")", "MySQL Replication Health is OK."} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out+errOut, testbed.MHAPassword) || strings.Contains(out+errOut, testbed.ReplPassword) {
			t.Errorf("a password is in the output:\n%s%s", out, errOut)
		}
		out, errOut, code = runMhactl(t, bin, "check-ssh", "--conf", conf)
		if code != exitOK || !strings.Contains(out, "SSH connection tests is OK.") {
			t.Fatalf("check-ssh exit %d, want 0\n%s%s", code, out, errOut)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		_, errOut, code := runMhactl(t, bin, "check-repl", "--conf", filepath.Join(t.TempDir(), "missing.conf"))
		if code != exitInternal || !strings.Contains(errOut, "missing.conf") {
			t.Fatalf("exit %d (want %d), stderr %q", code, exitInternal, errOut)
		}
	})
	t.Run("problem", func(t *testing.T) {
		if err := c.Servers[2].Exec(t.Context(), "SET GLOBAL read_only=0"); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runMhactl(t, bin, "check-repl", "--conf", conf)
		if code != exitProblem {
			t.Fatalf("exit %d, want %d\n%s%s", code, exitProblem, out, errOut)
		}
		for _, want := range []string{"[error] server3 127.0.0.1(" + c.Servers[2].Addr() + "): read_only is off on a replica",
			"fix: SET GLOBAL read_only=1", "MySQL Replication Health is NOT OK!"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		out, _, code = runMhactl(t, bin, "check-repl", "--conf", conf, "-o", "json")
		if code != exitProblem {
			t.Fatalf("json: exit %d, want %d", code, exitProblem)
		}
		var rep topology.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("json output: %v\n%s", err, out)
		}
		if rep.Healthy || rep.Master != "server1" || len(rep.Servers) != 3 {
			t.Errorf("report = healthy %v master %q servers %d", rep.Healthy, rep.Master, len(rep.Servers))
		}
		found := false
		for _, p := range rep.Problems {
			found = found || (p.Code == topology.CodeReadOnlyOff && p.Server == "server3")
		}
		if !found {
			t.Errorf("json problems lack read-only-off on server3: %+v", rep.Problems)
		}
	})
}

// An MHA configuration whose SSH settings are only in ssh_options (sshd on
// a port other than 22, its key and known_hosts file) passes check-ssh;
// the same with StrictHostKeyChecking=no is refused at load with the
// reason; check-repl refuses the application: its only server is the
// master.
func TestCheckSSHOptionsAndSingleServer(t *testing.T) {
	bin := mhactlBinary(t)
	c := testbed.Start(t, testbed.Options{N: 1})
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	options := "-i " + c.SSH.ClientKey + " -p " + strconv.Itoa(c.SSH.Port) + " -l " + c.SSH.User +
		" -o UserKnownHostsFile=" + c.SSH.KnownHosts + " -o ConnectTimeout=3"
	write := func(options string) string {
		var b strings.Builder
		for _, l := range strings.SplitAfter(c.AppConfig(filepath.Join(dir, "work")), "\n") {
			if !strings.HasPrefix(l, "ssh_") { // the test bed's own SSH keys: only ssh_options names them here
				b.WriteString(l)
			}
			if l == "[server default]\n" {
				b.WriteString("ssh_options=\"" + options + "\"\n")
			}
		}
		path := filepath.Join(dir, "app1.conf")
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	conf := write(options)

	out, errOut, code := runMhactl(t, bin, "check-ssh", "--conf", conf)
	want := "server1 127.0.0.1(" + c.Servers[0].Addr() + ") ssh " + c.SSH.User + "@" + c.SSH.Addr() + ": ok"
	if code != exitOK || !strings.Contains(out, want) {
		t.Fatalf("check-ssh: exit %d (want 0), output lacks %q:\n%s%s", code, want, out, errOut)
	}

	out, errOut, code = runMhactl(t, bin, "check-repl", "--conf", conf)
	if code != exitProblem {
		t.Fatalf("check-repl of a single-server application: exit %d, want %d\n%s%s", code, exitProblem, out, errOut)
	}
	for _, want := range []string{
		"[error] server1 127.0.0.1(" + c.Servers[0].Addr() + "): the application's only server is its master",
		"there is no replica to promote", "fix: add a block per replica to " + conf,
		"MySQL Replication Health is NOT OK!"} {
		if !strings.Contains(out, want) {
			t.Errorf("check-repl output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("check-repl:\n%s", out)

	strict := write(options + " -o StrictHostKeyChecking=no")
	out, errOut, code = runMhactl(t, bin, "check-ssh", "--conf", strict)
	if code != exitInternal {
		t.Fatalf("StrictHostKeyChecking=no: exit %d, want %d\n%s%s", code, exitInternal, out, errOut)
	}
	for _, want := range []string{strict + ":2: [server default] ssh_options = ",
		"-o StrictHostKeyChecking=no is refused: mharaft always verifies the host key", "ssh-keyscan -p SSH_PORT HOST >> FILE"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	t.Logf("StrictHostKeyChecking=no:\n%s", errOut)
}
