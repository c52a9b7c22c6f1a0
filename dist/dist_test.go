package dist_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// The version the test builds with: api.BuildVersion of the binaries, and
// the package's version as Debian writes it.
const (
	testVersion    = "v1.2.3-disttest"
	testDebVersion = "1.2.3+disttest"
)

// TestPackage is `make dist` and a first install: it builds the .deb and
// the tarball, checks that both hold the same tree with the right modes,
// installs the .deb with dpkg into a scratch root, checks the user, the
// directories and their modes, the unit, then runs the unit's ExecStart
// there as the service user: unconfigured it must stop with exit status 2
// naming what is missing; configured (token, application file, flags) it
// must answer /healthz with the built version and stop cleanly on SIGTERM.
// It reinstalls (postinst again: edits of the flags file kept, modes put
// back), then removes and purges.
//
// The scratch root: this machine has no network, so no debootstrap. The
// root R holds a copy of the host's /etc, a dpkg database that knows only
// adduser (the package's one dependency, so dpkg checks it for real), and
// an overlay of the host's /usr (lower, read-only) with a scratch upper
// dir, mounted in a private mount namespace (unshare) for each command.
// dpkg --root=R unpacks into R and runs the maintainer scripts chrooted
// into R, so postinst runs Debian's real adduser against R's /etc/passwd;
// the host's /usr and /etc are never written.
func TestPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the packages and installs the .deb into a scratch root")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: dpkg --root, overlay mounts, chroot")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "dpkg-query", "unshare", "chroot", "adduser", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: the packaging test needs dpkg, adduser, util-linux and coreutils (Debian)", tool)
		}
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("package built for %s: the test checks amd64 and arm64 builds only", runtime.GOARCH)
	}

	out := t.TempDir()
	start := time.Now()
	cmd := exec.Command("bash", "../scripts/dist.sh")
	cmd.Env = append(os.Environ(), "OUT="+out, "VERSION="+testVersion)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/dist.sh: %v\n%s", err, b)
	}
	t.Logf("scripts/dist.sh took %s", time.Since(start).Round(time.Second))
	debArch := map[string]string{"amd64": "amd64", "arm64": "arm64"}[runtime.GOARCH]
	deb := filepath.Join(out, fmt.Sprintf("mharaft_%s_%s.deb", testDebVersion, debArch))
	tarball := filepath.Join(out, fmt.Sprintf("mharaft-%s-linux-%s.tar.gz", strings.TrimPrefix(testVersion, "v"), runtime.GOARCH))

	t.Run("contents", func(t *testing.T) { checkContents(t, deb, tarball) })

	r := newRoot(t)
	if b, err := r.command("dpkg", "--root="+r.dir, "-i", deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, b)
	}
	if !t.Run("installed", func(t *testing.T) { checkInstalled(t, r) }) {
		t.FailNow()
	}
	unit := parseUnit(t, r.usr("lib/systemd/system/mhanode.service"))
	t.Run("unit", func(t *testing.T) { checkUnit(t, r, unit) })
	execStart := strings.Fields(unit["Service.ExecStart"][0])

	t.Run("unconfigured", func(t *testing.T) {
		code, stderr := r.runService(t, execStart, 30*time.Second)
		if code != 2 {
			t.Fatalf("exit status %d, want 2 (bad configuration); stderr:\n%s", code, stderr)
		}
		for _, want := range []string{"at least one --conf", "/etc/mharaft/mhanode.flags"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr does not name %q:\n%s", want, stderr)
			}
		}
	})

	httpAddr := configure(t, r)
	// Reinstall: postinst again, the edited conffile kept, modes put back.
	os.Chmod(r.path("etc/mharaft/mhanode.flags"), 0o644)
	if b, err := r.command("dpkg", "--root="+r.dir, "-i", deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i again: %v\n%s", err, b)
	}
	t.Run("reinstalled", func(t *testing.T) {
		b, err := os.ReadFile(r.path("etc/mharaft/mhanode.flags"))
		if err != nil || !strings.Contains(string(b), "\nid = m1\n") {
			t.Errorf("the reinstall lost the edits of /etc/mharaft/mhanode.flags (err %v):\n%s", err, b)
		}
		checkInstalled(t, r)
		if n := strings.Count(readFile(t, r.path("etc/passwd")), "\nmharaft:"); n != 1 {
			t.Errorf("/etc/passwd has %d mharaft users after a reinstall, want 1", n)
		}
	})

	t.Run("runs", func(t *testing.T) { runConfigured(t, r, execStart, httpAddr) })

	t.Run("remove", func(t *testing.T) {
		if b, err := r.command("dpkg", "--root="+r.dir, "-r", "mharaft").CombinedOutput(); err != nil {
			t.Fatalf("dpkg -r: %v\n%s", err, b)
		}
		for _, p := range []string{"usr/bin/mhanode", "usr/bin/mhactl", "usr/lib/systemd/system/mhanode.service"} {
			if _, err := os.Lstat(r.usr(strings.TrimPrefix(p, "usr/"))); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("/%s after dpkg -r: %v, want it gone", p, err)
			}
		}
		for _, p := range []string{"etc/mharaft/mhanode.flags", "var/lib/mharaft/raft", "var/log/mharaft"} {
			if _, err := os.Stat(r.path(p)); err != nil {
				t.Errorf("/%s after dpkg -r: %v, want it kept", p, err)
			}
		}
		if b, err := r.command("dpkg", "--root="+r.dir, "-P", "mharaft").CombinedOutput(); err != nil {
			t.Fatalf("dpkg -P: %v\n%s", err, b)
		}
		for _, p := range []string{"etc/mharaft/mhanode.flags", "var/log/mharaft"} {
			if _, err := os.Stat(r.path(p)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("/%s after dpkg -P: %v, want it gone", p, err)
			}
		}
		for _, p := range []string{"var/lib/mharaft/raft", "etc/mharaft/token"} {
			if _, err := os.Stat(r.path(p)); err != nil {
				t.Errorf("/%s after dpkg -P: %v, want it kept (the Raft log, the token)", p, err)
			}
		}
	})
}

// entry is one file of a package: its mode (permission and type bits)
// and owner.
type entry struct {
	mode     fs.FileMode
	uid, gid int
}

// tarEntries reads a tar stream into path (without "./" or prefix) -> entry.
func tarEntries(t *testing.T, rd io.Reader, prefix string) map[string]entry {
	t.Helper()
	m := map[string]entry{}
	tr := tar.NewReader(rd)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return m
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), prefix), "/")
		if name == "" {
			continue
		}
		m[name] = entry{mode: h.FileInfo().Mode(), uid: h.Uid, gid: h.Gid}
	}
}

func checkContents(t *testing.T, deb, tarball string) {
	info, err := exec.Command("dpkg-deb", "--field", deb, "Package", "Version", "Architecture", "Depends").Output()
	if err != nil {
		t.Fatalf("dpkg-deb --field %s: %v", deb, err)
	}
	for _, want := range []string{"Package: mharaft", "Version: " + testDebVersion, "Depends: adduser"} {
		if !strings.Contains(string(info), want) {
			t.Errorf("control of %s lacks %q:\n%s", deb, want, info)
		}
	}
	conffiles, err := exec.Command("dpkg-deb", "--ctrl-tarfile", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	ctrl := tarEntries(t, bytes.NewReader(conffiles), "")
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if e, ok := ctrl[s]; !ok || e.mode.Perm() != 0o755 {
			t.Errorf("maintainer script %s: %v (present %v), want mode 0755", s, e.mode, ok)
		}
	}

	fsys, err := exec.Command("dpkg-deb", "--fsys-tarfile", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --fsys-tarfile %s: %v", deb, err)
	}
	debFiles := tarEntries(t, bytes.NewReader(fsys), "")
	want := map[string]fs.FileMode{
		"usr/bin/mhanode":                                 0o755,
		"usr/bin/mhactl":                                  0o755,
		"usr/lib/systemd/system/mhanode.service":          0o644,
		"etc/mharaft":                                     fs.ModeDir | 0o750,
		"etc/mharaft/mhanode.flags":                       0o640,
		"usr/share/doc/mharaft/INSTALL.md":                0o644,
		"usr/share/doc/mharaft/README.md":                 0o644,
		"usr/share/doc/mharaft/REFERENCE.md":              0o644,
		"usr/share/doc/mharaft/examples/app1.conf":        0o644,
		"usr/share/bash-completion/completions/mhactl":    0o644,
		"usr/share/zsh/vendor-completions/_mhactl":        0o644,
		"usr/share/fish/vendor_completions.d/mhactl.fish": 0o644,
	}
	for p, mode := range want {
		e, ok := debFiles[p]
		if !ok {
			t.Errorf("the .deb has no %s", p)
			continue
		}
		if e.mode != mode {
			t.Errorf("%s in the .deb: mode %v, want %v", p, e.mode, mode)
		}
	}
	for p, e := range debFiles {
		if e.uid != 0 || e.gid != 0 {
			t.Errorf("%s in the .deb is owned by %d:%d, want root (postinst gives the group)", p, e.uid, e.gid)
		}
	}

	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	top := strings.TrimSuffix(filepath.Base(tarball), ".tar.gz") + "/"
	tarFiles := tarEntries(t, zr, top)
	for p, e := range debFiles {
		if te, ok := tarFiles[p]; !ok || te.mode != e.mode {
			t.Errorf("%s: the .deb has it with mode %v, the tarball %v (present %v)", p, e.mode, te.mode, ok)
		}
	}
	for p := range tarFiles {
		if _, ok := debFiles[p]; !ok && p != "setup.sh" && p != "INSTALL.md" {
			t.Errorf("the tarball has %s, the .deb does not", p)
		}
	}
	if e := tarFiles["setup.sh"]; e.mode != 0o755 {
		t.Errorf("setup.sh in the tarball: mode %v, want 0755", e.mode)
	}
}

// root is the scratch root the .deb is installed into.
type root struct {
	dir        string // R
	upper      string // the overlay's upper dir: what was written to R/usr
	work       string
	uid, gid   int // of the mharaft user, once installed
	homeOfUser string
}

func newRoot(t *testing.T) *root {
	t.Helper()
	base := t.TempDir()
	r := &root{dir: filepath.Join(base, "root"), upper: filepath.Join(base, "usr-upper"), work: filepath.Join(base, "usr-work")}
	for _, d := range []string{r.dir, r.upper, r.work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// bin, sbin, lib, lib64 as on the host (merged /usr).
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		target, err := os.Readlink("/" + l)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Skipf("/%s is not a symbolic link (no merged /usr): the scratch root overlays /usr only", l)
		}
		if err := os.Symlink(target, r.path(l)); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"usr", "dev", "proc", "run", "tmp", "var/tmp", "var/log", "var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(r.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"tmp", "var/tmp"} {
		if err := os.Chmod(r.path(d), 0o1777); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := exec.Command("cp", "-a", "/etc", r.path("etc")).CombinedOutput(); err != nil {
		t.Fatalf("copy /etc: %v\n%s", err, b)
	}
	for _, p := range []string{"etc/mharaft", "etc/systemd/system/mhanode.service"} {
		os.RemoveAll(r.path(p)) // the host's own install, if any
	}
	// A dpkg database that knows only adduser, installed.
	status, err := exec.Command("dpkg-query", "--status", "adduser").Output()
	if err != nil {
		t.Fatalf("dpkg-query --status adduser: %v", err)
	}
	writeFile(t, r.path("var/lib/dpkg/status"), string(status), 0o644)
	writeFile(t, r.path("var/lib/dpkg/available"), "", 0o644)
	writeFile(t, r.path("var/lib/dpkg/info/adduser.list"), "", 0o644)
	return r
}

func (r *root) path(p string) string { return filepath.Join(r.dir, p) }

// usr is p (relative to /usr) as installed: in the overlay's upper dir.
func (r *root) usr(p string) string { return filepath.Join(r.upper, p) }

// command runs args in a private mount namespace where R/usr is the
// overlay of /usr and R/dev, R/proc are mounted: dpkg --root=R chroots
// into R for the maintainer scripts.
func (r *root) command(args ...string) *exec.Cmd {
	script := `mount -t overlay overlay -o "lowerdir=/usr,upperdir=$2,workdir=$3" "$1/usr"
mount --bind /dev "$1/dev"
mount -t proc proc "$1/proc"
shift 3
exec "$@"`
	return exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-euc", script, "sh", r.dir, r.upper, r.work}, args...)...)
}

// service is the unit's command line run as systemd would: chrooted into
// R, as the mharaft user, with its HOME.
func (r *root) service(args []string) *exec.Cmd {
	cmd := r.command(append([]string{"chroot", "--userspec=mharaft:mharaft", r.dir}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + r.homeOfUser, "USER=mharaft", "LOGNAME=mharaft", "LANG=C.UTF-8"}
	return cmd
}

// runService runs args as the service and waits up to timeout for it to
// exit; it returns the exit status and the standard error.
func (r *root) runService(t *testing.T, args []string, timeout time.Duration) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := r.service(args)
	cmd.Stderr = &stderr
	p, err := testbed.StartProc(cmd)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Wait(timeout)
	if errors.Is(err, testbed.ErrStillRunning) {
		p.Kill()
		t.Fatalf("%q still runs after %s; stderr:\n%s", args, timeout, stderr.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

func checkInstalled(t *testing.T, r *root) {
	st, err := exec.Command("dpkg-query", "--admindir="+r.path("var/lib/dpkg"), "-W", "-f", "${Status}|${Version}|${Conffiles}", "mharaft").Output()
	if err != nil {
		t.Fatalf("dpkg-query mharaft: %v", err)
	}
	if !strings.HasPrefix(string(st), "install ok installed|"+testDebVersion+"|") || !strings.Contains(string(st), "/etc/mharaft/mhanode.flags") {
		t.Errorf("dpkg's record of mharaft: %q, want installed, version %s, conffile /etc/mharaft/mhanode.flags", st, testDebVersion)
	}

	var found bool
	for _, line := range strings.Split(readFile(t, r.path("etc/passwd")), "\n") {
		f := strings.Split(line, ":")
		if len(f) != 7 || f[0] != "mharaft" {
			continue
		}
		found = true
		r.uid, _ = strconv.Atoi(f[2])
		r.gid, _ = strconv.Atoi(f[3])
		r.homeOfUser = f[5]
		if r.uid == 0 || r.uid >= 1000 || f[5] != "/var/lib/mharaft" || f[6] != "/usr/sbin/nologin" {
			t.Errorf("/etc/passwd: %q, want a system user (uid 1-999) with home /var/lib/mharaft and shell /usr/sbin/nologin", line)
		}
	}
	if !found {
		t.Fatal("postinst made no mharaft user in /etc/passwd")
	}
	if !regexp.MustCompile(`(?m)^mharaft:x:` + strconv.Itoa(r.gid) + `:`).MatchString(readFile(t, r.path("etc/group"))) {
		t.Errorf("/etc/group has no mharaft group with gid %d", r.gid)
	}
	if strings.Contains(readFile(t, "/etc/passwd"), "\nmharaft:") {
		t.Errorf("the host's /etc/passwd has a mharaft user: the install left the scratch root")
	}

	for _, c := range []struct {
		path     string
		mode     fs.FileMode
		uid, gid int
	}{
		{r.path("etc/mharaft"), fs.ModeDir | 0o750, 0, r.gid},
		{r.path("etc/mharaft/mhanode.flags"), 0o640, 0, r.gid},
		{r.path("var/lib/mharaft"), fs.ModeDir | 0o750, r.uid, r.gid},
		{r.path("var/log/mharaft"), fs.ModeDir | 0o750, r.uid, r.gid},
		{r.usr("bin/mhanode"), 0o755, 0, 0},
		{r.usr("bin/mhactl"), 0o755, 0, 0},
		{r.usr("lib/systemd/system/mhanode.service"), 0o644, 0, 0},
		{r.usr("share/doc/mharaft/INSTALL.md"), 0o644, 0, 0},
	} {
		fi, err := os.Lstat(c.path)
		if err != nil {
			t.Errorf("installed: %v", err)
			continue
		}
		sys := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != c.mode || int(sys.Uid) != c.uid || int(sys.Gid) != c.gid {
			t.Errorf("%s: %v %d:%d, want %v %d:%d", strings.TrimPrefix(c.path, filepath.Dir(r.dir)), fi.Mode(), sys.Uid, sys.Gid, c.mode, c.uid, c.gid)
		}
	}
}

// parseUnit reads a unit file into "Section.Key" -> values (a key may
// repeat).
func parseUnit(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: line %q is not key=value", path, line)
			}
			u[section+"."+strings.TrimSpace(k)] = append(u[section+"."+strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func checkUnit(t *testing.T, r *root, u map[string][]string) {
	for key, want := range map[string]string{
		"Service.ExecStart":                "/usr/bin/mhanode --flags-file /etc/mharaft/mhanode.flags",
		"Service.User":                     "mharaft",
		"Service.Group":                    "mharaft",
		"Service.Restart":                  "on-failure",
		"Service.RestartPreventExitStatus": "2",
		"Service.StateDirectory":           "mharaft",
		"Service.LogsDirectory":            "mharaft",
		"Service.UMask":                    "0077",
		"Service.NoNewPrivileges":          "yes",
		"Service.ProtectSystem":            "strict",
		"Service.ProtectHome":              "yes",
		"Service.PrivateTmp":               "yes",
		"Service.CapabilityBoundingSet":    "",
		"Install.WantedBy":                 "multi-user.target",
	} {
		if got := u[key]; len(got) != 1 || got[0] != want {
			t.Errorf("unit %s = %q, want %q", key, got, want)
		}
	}
	// systemd's own checks, where systemd-analyze is installed: the unit
	// parses without a warning, its ExecStart exists in R, and its
	// exposure score (systemd-analyze security) is low.
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("no systemd-analyze: the unit is checked by the fields above only")
		return
	}
	b, err := r.command("systemd-analyze", "--root="+r.dir, "verify", "/usr/lib/systemd/system/mhanode.service").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(b)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, b)
	}
	b, err = r.command("systemd-analyze", "--root="+r.dir, "security", "--offline=yes", "/usr/lib/systemd/system/mhanode.service").CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for mhanode.service: ([0-9.]+)`).FindSubmatch(b)
	if err != nil || m == nil {
		t.Logf("systemd-analyze security --offline: %v (this systemd may not have it)\n%s", err, b)
		return
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security: exposure %.1f", score)
	if score > 2.0 {
		t.Errorf("systemd-analyze security: exposure %.1f, want 2.0 or less (hardening lost?)\n%s", score, b)
	}
}

// configure writes what INSTALL.md asks for: the token (0600 mharaft), an
// application file (0640 root:mharaft) whose servers are closed loopback
// ports (nothing listens: mhanode starts and finds them down), and this
// manager's flags, a one-manager group on loopback. It returns the API's
// address.
func configure(t *testing.T, r *root) string {
	t.Helper()
	raft, err := testbed.FreePortPair("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	httpPort, err := testbed.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	db1, err := testbed.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	db2, err := testbed.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	token := r.path("etc/mharaft/token")
	writeFile(t, token, "disttest-token-0123456789abcdef\n", 0o600)
	if err := os.Chown(token, r.uid, r.gid); err != nil {
		t.Fatal(err)
	}
	app := r.path("etc/mharaft/app1.conf")
	writeFile(t, app, fmt.Sprintf(`[server default]
user=mharaft
password=secret
repl_user=repl
repl_password=secret
ssh_user=mharaft
manager_workdir=/var/lib/mharaft/app1
ping_interval=1

[server1]
hostname=127.0.0.1
port=%d
candidate_master=1

[server2]
hostname=127.0.0.1
port=%d
candidate_master=1
`, db1, db2), 0o640)
	if err := os.Chown(app, 0, r.gid); err != nil {
		t.Fatal(err)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	flags := r.path("etc/mharaft/mhanode.flags")
	f, err := os.OpenFile(flags, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\n# set by the packaging test\nid = m1\nraft-addr = 127.0.0.1:%d\nhttp-addr = %s\ngossip-addr = 127.0.0.1:%d\npeers = m1=127.0.0.1:%d\nconf = /etc/mharaft/app1.conf\n",
		raft, httpAddr, raft+1, raft)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return httpAddr
}

// runConfigured starts the unit's command on the configured root, waits
// for /healthz to answer with the built version, and stops it with
// SIGTERM (exit status 0). It also runs the installed mhactl.
func runConfigured(t *testing.T, r *root, execStart []string, httpAddr string) {
	var stderr testbed.SyncBuffer
	cmd := r.service(execStart)
	cmd.Stderr = &stderr
	p, err := testbed.StartProc(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()

	var h struct {
		OK      bool   `json:"ok"`
		Version string `json:"version"`
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if !p.Running() {
			t.Fatalf("mhanode exited before answering /healthz: %v; stderr:\n%s", p.Wait(0), stderr.String())
		}
		if ok := getHealth(httpAddr, &h); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz on %s did not answer within 90 s; stderr:\n%s", httpAddr, stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !h.OK || h.Version != testVersion {
		t.Errorf("/healthz: ok %v version %q, want ok and %q (the version of make dist's -ldflags)", h.OK, h.Version, testVersion)
	}
	if err := p.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("stop mhanode: %v", err)
	} else if err := p.Wait(0); err != nil {
		t.Errorf("mhanode after SIGTERM: %v, want exit status 0; stderr:\n%s", err, stderr.String())
	}
	fi, err := os.Stat(r.path("var/lib/mharaft/raft"))
	if err != nil {
		t.Fatalf("the data dir: %v", err)
	}
	if sys := fi.Sys().(*syscall.Stat_t); fi.Mode() != fs.ModeDir|0o700 || int(sys.Uid) != r.uid {
		t.Errorf("/var/lib/mharaft/raft: %v owner %d, want drwx------ owned by mharaft (%d)", fi.Mode(), sys.Uid, r.uid)
	}

	b, err := r.service([]string{"/usr/bin/mhactl", "version"}).CombinedOutput()
	if err != nil || !strings.Contains(string(b), testVersion) {
		t.Errorf("installed mhactl version: %v\n%s\nwant %s", err, b, testVersion)
	}
	b, err = r.service([]string{"/usr/bin/mhanode", "version"}).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(b), "mhanode "+testVersion+"\n") {
		t.Errorf("installed mhanode version: %v\n%s\nwant mhanode %s", err, b, testVersion)
	}
	// The installed bash completion loads and completes mhactl.
	b, err = exec.Command("bash", "-c", `source "$1" && complete -p mhactl`, "bash", r.usr("share/bash-completion/completions/mhactl")).CombinedOutput()
	if err != nil || !strings.Contains(string(b), "mhactl") {
		t.Errorf("bash completion of mhactl: %v\n%s", err, b)
	}
}

func getHealth(addr string, h any) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(h) == nil
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
