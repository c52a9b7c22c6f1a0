package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultGlobalFile is MHA's default --global_conf. Load skips it quietly
// when it does not exist, as MHA does; any other global file named
// explicitly must exist.
const DefaultGlobalFile = "/etc/masterha_default.cnf"

// Defaults that are not obvious from MHA's documentation.
const (
	DefaultPort                = 3306
	DefaultUser                = "root"
	DefaultReplUser            = "repl"
	DefaultSSHPort             = 22
	DefaultSSHConnectTimeout   = 5 * time.Second
	DefaultRemoteWorkdir       = "/var/tmp"
	DefaultManagerWorkdirBase  = "/var/log/masterha" // manager_workdir defaults to DefaultManagerWorkdirBase/<app>
	DefaultPingInterval        = 3 * time.Second
	DefaultPingType            = "SELECT"
	DefaultConnectTimeout      = 1 * time.Second
	DefaultHookTimeout         = 60 * time.Second
	DefaultLastFailoverMinute  = 480
	DefaultRunningUpdatesLimit = 1 * time.Second
	DefaultMaxLagForSwitch     = 1 * time.Second
	DefaultFenceMode           = "read_only_ftwrl"
	DefaultLogLevel            = "info"
)

// lookupTimeout bounds one host name resolution.
const lookupTimeout = 5 * time.Second

// Load reads an application file (app1.conf) and, unless globalFile is "",
// a global file (masterha_default.conf), and returns the merged, validated
// configuration. On any problem it returns nil and every problem found,
// joined (each one an *Error).
func Load(appFile, globalFile string) (*App, error) {
	var errs []error
	appData, err := os.ReadFile(appFile)
	if err != nil {
		errs = append(errs, readError(appFile, err))
	}
	var global io.Reader
	if globalFile != "" {
		data, err := os.ReadFile(globalFile)
		switch {
		case err == nil:
			global = bytes.NewReader(data)
		case globalFile == DefaultGlobalFile && errors.Is(err, fs.ErrNotExist):
			globalFile = "" // MHA: "Global configuration file ... not found. Skipping."
		default:
			errs = append(errs, readError(globalFile, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	name := strings.TrimSuffix(filepath.Base(appFile), filepath.Ext(appFile))
	return Parse(name, bytes.NewReader(appData), appFile, global, globalFile)
}

func readError(path string, err error) error {
	reason := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		reason = pe.Err
	}
	return &Error{File: path, Problem: fmt.Sprintf("cannot read the file: %v", reason), Err: err}
}

// Parse is Load on readers: app is the application file (its name appPath
// is used in messages), global the global file or nil. appName names the
// application ("app1") and the default manager_workdir. Parse still checks
// the files that the configuration names (scripts, ssh_key) and resolves
// host names.
func Parse(appName string, app io.Reader, appPath string, global io.Reader, globalPath string) (*App, error) {
	return newLoader().parse(appName, app, appPath, global, globalPath)
}

// loader holds what parsing needs from the machine, so tests can replace it.
type loader struct {
	lookupHost  func(ctx context.Context, host string) ([]string, error)
	currentUser func() string
	homeDir     func() string
	errs        []error
	reported    map[string]bool // by failOnce
}

func newLoader() *loader {
	return &loader{
		lookupHost:  net.DefaultResolver.LookupHost,
		currentUser: currentUser,
		homeDir:     homeDir,
	}
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

func homeDir() string {
	if h, err := os.UserHomeDir(); err == nil {
		return h
	}
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return "/root"
}

func (l *loader) fail(e *Error) { l.errs = append(l.errs, e) }

// failOnce is fail for a problem of a [server default] line that every
// server using it would report again.
func (l *loader) failOnce(e *Error) {
	if l.reported == nil {
		l.reported = map[string]bool{}
	}
	if msg := e.Error(); !l.reported[msg] {
		l.reported[msg] = true
		l.fail(e)
	}
}

// ServerFromDefaults builds a server that is not in the application file
// (added at run time with `mhactl server add`) as if the file had a block
// [name] holding only settings (hostname, port, candidate_master, ...):
// everything else, credentials included, comes from [server default] of
// the application and global files, exactly as for a configured server.
func (a *App) ServerFromDefaults(name string, settings map[string]string) (*Server, error) {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sec := &iniSection{name: name}
	for i, k := range keys {
		sec.entries = append(sec.entries, iniEntry{key: k, value: settings[k], line: i + 1})
	}
	path := "(mhactl server add)"
	l := newLoader()
	own := layer{}
	l.fill(own, path, sec, inServer)
	s := l.server(path, sec, append(resolver{own}, a.defaults...), a)
	if len(l.errs) > 0 || s == nil {
		return nil, fmt.Errorf("server %s of %s: %w", name, a.Name, errors.Join(l.errs...))
	}
	return s, nil
}

// setting is one validated key = value and where it was written.
type setting struct {
	value   string // normalised
	file    string
	line    int
	section string
}

// layer is the settings of one section.
type layer map[string]setting

// resolver looks a key up in layers, the first (most specific) first.
type resolver []layer

func (r resolver) get(key string) (setting, bool) {
	for _, l := range r {
		if s, ok := l[key]; ok {
			return s, true
		}
	}
	return setting{}, false
}

// str returns the value of key, or def when it is unset or empty (MHA
// treats an empty user, ssh_user, remote_workdir, ... as unset).
func (r resolver) str(key, def string) string {
	if s, ok := r.get(key); ok && s.value != "" {
		return s.value
	}
	return def
}

func (r resolver) flag(key string, def bool) bool {
	if s, ok := r.get(key); ok {
		return s.value == "1"
	}
	return def
}

func (r resolver) num(key string, def int) int {
	if s, ok := r.get(key); ok {
		if n, err := strconv.Atoi(s.value); err == nil {
			return n
		}
	}
	return def
}

func (r resolver) seconds(key string, def time.Duration) time.Duration {
	if s, ok := r.get(key); ok {
		if n, err := strconv.Atoi(s.value); err == nil {
			return time.Duration(n) * time.Second
		}
	}
	return def
}

func (l *loader) parse(appName string, app io.Reader, appPath string, global io.Reader, globalPath string) (*App, error) {
	globalDefault, appDefault := layer{}, layer{}

	if global != nil {
		f, errs := readINI(globalPath, global)
		l.errs = append(l.errs, errs...)
		if f != nil {
			for _, sec := range f.sections {
				if sec.name != "server default" {
					l.fail(&Error{File: globalPath, Line: sec.line, Section: sec.name,
						Problem: "the global file may only hold [server default] (MHA ignores other sections there); move this block to the application file"})
					continue
				}
				l.fill(globalDefault, f.path, sec, inDefault)
			}
		}
	}

	f, errs := readINI(appPath, app)
	l.errs = append(l.errs, errs...)
	if f == nil {
		return nil, errors.Join(l.errs...)
	}
	if sec := f.section("server default"); sec != nil {
		l.fill(appDefault, f.path, sec, inDefault)
	}
	var servers, binlogServers []*iniSection
	seen := map[string]bool{}
	for _, sec := range f.sections {
		if seen[sec.name] { // reported by readINI
			continue
		}
		seen[sec.name] = true
		switch l.checkSectionName(f.path, sec) {
		case blockServer:
			servers = append(servers, sec)
		case blockBinlog:
			binlogServers = append(binlogServers, sec)
		}
	}
	sortServers(servers)
	sort.SliceStable(binlogServers, func(i, j int) bool { return binlogServers[i].name < binlogServers[j].name })

	scriptOutput := layer{}
	defaults := resolver{scriptOutput, appDefault, globalDefault}
	if script := defaults.str("init_conf_load_script", ""); script != "" {
		l.runInitConfLoadScript(script, defaults.seconds("hook_timeout", DefaultHookTimeout), scriptOutput)
	}

	a := appSettings(appName, defaults)
	a.defaults = defaults
	a.File, a.GlobalFile = appPath, globalPath
	if global == nil {
		a.GlobalFile = ""
	}

	if len(servers) == 0 {
		l.fail(&Error{File: appPath,
			Problem: "no server block: define each database server in a block such as [server1] with hostname = <host>"})
	}
	for _, sec := range servers {
		own := layer{}
		l.fill(own, f.path, sec, inServer)
		if s := l.server(f.path, sec, resolver{own, scriptOutput, appDefault, globalDefault}, a); s != nil {
			a.Servers = append(a.Servers, s)
		}
	}
	l.checkDuplicateAddrs(appPath, a.Servers, servers)
	for _, sec := range binlogServers {
		own := layer{}
		l.fill(own, f.path, sec, inServer)
		if b := l.binlogServer(f.path, sec, resolver{own, scriptOutput, appDefault, globalDefault}, a); b != nil {
			a.BinlogServers = append(a.BinlogServers, b)
		}
	}

	if len(l.errs) > 0 {
		sortErrors(l.errs, globalPath, appPath)
		return nil, errors.Join(l.errs...)
	}
	return a, nil
}

// sortErrors orders errors as an operator reads the files: the global
// file first, then the application file, then anything else (the output
// of init_conf_load_script), each by line.
func sortErrors(errs []error, globalPath, appPath string) {
	rank := func(err error) (int, int) {
		var e *Error
		if !errors.As(err, &e) {
			return 3, 0
		}
		switch e.File {
		case globalPath:
			return 0, e.Line
		case appPath:
			return 1, e.Line
		}
		return 2, e.Line
	}
	sort.SliceStable(errs, func(i, j int) bool {
		fi, li := rank(errs[i])
		fj, lj := rank(errs[j])
		return fi < fj || fi == fj && li < lj
	})
}

// fill validates the entries of sec and stores the good ones in dst.
// where is the scope of sec: inServer or inDefault.
func (l *loader) fill(dst layer, path string, sec *iniSection, where scope) {
	for _, e := range sec.entries {
		def, ok := keys[e.key]
		if !ok {
			problem := "unknown key (see config/REFERENCE.md)"
			if near := closestKey(e.key); near != "" {
				problem = fmt.Sprintf("unknown key (did you mean %q?)", near)
			}
			// The value of an unknown key is not shown: it may be a
			// misspelt password.
			l.fail(&Error{File: path, Line: e.line, Section: sec.name, Key: e.key, Problem: problem})
			continue
		}
		bad := &Error{File: path, Line: e.line, Section: sec.name, Key: e.key, Value: shownValue(e.key, e.value)}
		if def.scope&where == 0 {
			if where == inServer {
				bad.Problem = "an application-wide setting, not allowed in a server block: move it to [server default] of this file or of the global file (MHA reads it from one server only)"
			} else {
				bad.Problem = "a per-server setting, not allowed in [server default]: set it in each [serverN] block (MHA ignores it in [server default])"
			}
			l.fail(bad)
			continue
		}
		norm, problem := checkValue(def, e.value)
		if problem == "" && def.kind == kSSHOptions {
			_, problem = parseSSHOptions(norm, l.homeDir())
		}
		if problem != "" {
			bad.Problem = problem
			l.fail(bad)
			continue
		}
		dst[e.key] = setting{value: norm, file: path, line: e.line, section: sec.name}
	}
}

var (
	serverBlock = regexp.MustCompile(`^server\S+`)
	binlogBlock = regexp.MustCompile(`^binlog\S+`)
	serverNum   = regexp.MustCompile(`^server\D*(\d+)`)
)

// Kinds of sections (checkSectionName).
const (
	blockOther  = iota // [server default], or a bad name (reported)
	blockServer        // [serverN]: a database server
	blockBinlog        // [binlogN]: a binlog server
)

// checkSectionName says what kind of block sec is, and records an error
// when it is none of them. MHA accepts "server default" and names
// matching ^server\S+ (database servers) and ^binlog\S+ (binlog servers).
func (l *loader) checkSectionName(path string, sec *iniSection) int {
	bad := &Error{File: path, Line: sec.line, Section: sec.name}
	switch {
	case sec.name == "server default":
		return blockOther
	case sec.name == "server_default" || sec.name == "serverdefault":
		bad.Problem = `not a valid section name: did you mean [server default] (with a space)?`
	case serverBlock.MatchString(sec.name):
		return blockServer
	case binlogBlock.MatchString(sec.name):
		return blockBinlog
	default:
		bad.Problem = `not a valid section name (want [server default], a server block whose name starts with "server", such as [server1], or a binlog server block such as [binlog1])`
	}
	l.fail(bad)
	return blockOther
}

// binlogKeys are the keys a [binlogN] block uses: where the host is,
// how to reach it over SSH, and where the binlog copy is. Database
// settings (user, candidate_master, ...) mean nothing there; MHA ignores
// them in such a block, mharaft refuses them so that a misplaced block is
// noticed.
var binlogKeys = map[string]bool{
	"hostname": true, "ip": true, "port": true, "ssh_host": true, "ssh_ip": true, "ssh_user": true,
	"ssh_port": true, "ssh_options": true, "ssh_key": true, "ssh_known_hosts": true,
	"ssh_connection_timeout": true, "master_binlog_dir": true, "remote_workdir": true, "node_label": true,
	"client_bindir": true, "client_libdir": true, "skip_init_ssh_check": true, "handle_raw_binlog": true,
	"datacenter": true,
}

// binlogServer resolves one [binlogN] block: a host that keeps a copy of
// the master's binlog (MHA's binlog server), read over SSH when the dead
// master's host cannot be. hostname and master_binlog_dir are required;
// [server default] applies as for servers. It returns nil when the block
// is unusable.
func (l *loader) binlogServer(path string, sec *iniSection, r resolver, a *App) *Server {
	ok := true
	for _, e := range sec.entries {
		if _, known := keys[e.key]; known && !binlogKeys[e.key] {
			l.fail(&Error{File: path, Line: e.line, Section: sec.name, Key: e.key, Value: shownValue(e.key, e.value),
				Problem: "not a binlog server setting: a [binlogN] block says where a copy of the master's binlog is kept " +
					"(hostname, ssh_*, master_binlog_dir); move it to a [serverN] block or to [server default]"})
			ok = false
		}
	}
	// Required in the block itself: [server default]'s is the database
	// servers' directory.
	const need = "a binlog server block needs master_binlog_dir = <the directory that holds its copy of the master's binlog>"
	dir, set := r[0]["master_binlog_dir"]
	switch {
	case !set && !writes(sec, "master_binlog_dir"):
		l.fail(&Error{File: path, Line: sec.line, Section: sec.name, Problem: "no master_binlog_dir: " + need})
		ok = false
	case !set: // a bad value, reported by fill
		ok = false
	case dir.value == "":
		l.fail(&Error{File: path, Line: dir.line, Section: sec.name, Key: "master_binlog_dir", Problem: "empty: " + need})
		ok = false
	}
	s := l.server(path, sec, r, a)
	if s == nil || !ok {
		return nil
	}
	s.BinlogServer = true
	return s
}

// sortServers orders server blocks as MHA's Config.pm does: by name, and
// when every name holds a number after "server" (server1, server_10), by
// that number, so server2 comes before server10. The order matters: MHA
// prefers the first candidate_master in this order.
func sortServers(secs []*iniSection) {
	sort.SliceStable(secs, func(i, j int) bool { return secs[i].name < secs[j].name })
	nums := make(map[*iniSection]int, len(secs))
	for _, s := range secs {
		m := serverNum.FindStringSubmatch(s.name)
		if m == nil {
			return
		}
		n, err := strconv.Atoi(m[1])
		if err != nil {
			return
		}
		nums[s] = n
	}
	sort.SliceStable(secs, func(i, j int) bool { return nums[secs[i]] < nums[secs[j]] })
}

// appSettings resolves the application-wide values.
func appSettings(appName string, r resolver) *App {
	return &App{
		Name:                       appName,
		ManagerWorkdir:             r.str("manager_workdir", DefaultManagerWorkdirBase+"/"+appName),
		ManagerLog:                 r.str("manager_log", ""),
		PingInterval:               r.seconds("ping_interval", DefaultPingInterval),
		PingType:                   r.str("ping_type", DefaultPingType),
		ConnectTimeout:             r.seconds("connect_timeout", DefaultConnectTimeout),
		SecondaryCheckScript:       r.str("secondary_check_script", ""),
		MasterIPFailoverScript:     r.str("master_ip_failover_script", ""),
		MasterIPOnlineChangeScript: r.str("master_ip_online_change_script", ""),
		ShutdownScript:             r.str("shutdown_script", ""),
		ReportScript:               r.str("report_script", ""),
		InitConfLoadScript:         r.str("init_conf_load_script", ""),
		HookTimeout:                r.seconds("hook_timeout", DefaultHookTimeout),
		LastFailoverMinute:         r.num("last_failover_minute", DefaultLastFailoverMinute),
		MultiTierSlave:             r.flag("multi_tier_slave", false),
		IgnoreMultiMaster:          r.flag("ignore_multimaster", false),
		SkipInitSSHCheck:           r.flag("skip_init_ssh_check", false),
		PreventCrossDCFailover:     r.flag("prevent_cross_dc_failover", false),
		UseGTIDAutoPos:             r.flag("use_gtid_auto_pos", true),
		RunningUpdatesLimit:        r.seconds("running_updates_limit", DefaultRunningUpdatesLimit),
		MaxLagForSwitch:            r.seconds("switch_max_lag", DefaultMaxLagForSwitch),
		FenceMode:                  r.str("fence_mode", DefaultFenceMode),
		LogLevel:                   r.str("log_level", DefaultLogLevel),
		CheckReplFilter:            r.flag("check_repl_filter", true),
		WaitOnMonitorError:         r.seconds("wait_on_monitor_error", 0),
	}
}

// server resolves one server block; it returns nil when the block is
// unusable (no hostname, a host name that does not resolve).
func (l *loader) server(path string, sec *iniSection, r resolver, a *App) *Server {
	s := &Server{
		Name:              sec.name,
		Hostname:          r.str("hostname", ""),
		IP:                r.str("ip", ""),
		Port:              r.num("port", DefaultPort),
		User:              r.str("user", DefaultUser),
		Password:          r.str("password", ""),
		ReplUser:          r.str("repl_user", DefaultReplUser),
		ReplPassword:      r.str("repl_password", ""),
		SSHUser:           r.str("ssh_user", ""),
		SSHIP:             r.str("ssh_ip", ""),
		SSHPort:           r.num("ssh_port", DefaultSSHPort),
		SSHOptions:        r.str("ssh_options", ""),
		SSHKey:            r.str("ssh_key", ""),
		SSHKnownHosts:     r.str("ssh_known_hosts", ""),
		SSHConnectTimeout: r.seconds("ssh_connection_timeout", DefaultSSHConnectTimeout),
		CandidateMaster:   r.flag("candidate_master", false),
		NoMaster:          r.flag("no_master", false),
		IgnoreFail:        r.flag("ignore_fail", false),
		CheckReplDelay:    r.flag("check_repl_delay", true),
		LatestPriority:    r.flag("latest_priority", true),
		MasterBinlogDir:   r.str("master_binlog_dir", ""),
		RemoteWorkdir:     r.str("remote_workdir", DefaultRemoteWorkdir),
		ClientBinDir:      r.str("client_bindir", ""),
		ClientLibDir:      r.str("client_libdir", ""),
		DisableLogBin:     r.flag("disable_log_bin", false),
		ApplyMethod:       r.str("apply_method", "auto"),
		Datacenter:        r.str("datacenter", ""),
		MultiTierSlave:    r.flag("multi_tier_slave", false),
		NodeLabel:         r.str("node_label", ""),
		SkipInitSSHCheck:  r.flag("skip_init_ssh_check", false),
		SkipResetSlave:    r.flag("skip_reset_slave", false),
		HandleRawBinlog:   r.flag("handle_raw_binlog", true),
		MasterPIDFile:     r.str("master_pid_file", ""),
	}
	l.applySSHOptions(s, r)
	if s.SSHUser == "" {
		s.SSHUser = l.currentUser()
	}
	if s.SSHKnownHosts == "" {
		s.SSHKnownHosts = filepath.Join(l.homeDir(), ".ssh", "known_hosts")
	}

	if s.Hostname == "" {
		if !writes(sec, "hostname") { // else a bad hostname= was reported already
			l.fail(&Error{File: path, Line: sec.line, Section: sec.name,
				Problem: "no hostname: every server block needs hostname = <host name or IP address>"})
		}
		return nil
	}
	if s.CandidateMaster && s.NoMaster {
		set, _ := r.get("no_master")
		l.fail(&Error{File: set.file, Line: set.line, Section: set.section, Key: "no_master", Value: "1",
			Problem: "contradicts candidate_master = 1 of this server; keep one of them"})
	}
	if a.PreventCrossDCFailover && s.Datacenter == "" {
		l.fail(&Error{File: path, Line: sec.line, Section: sec.name,
			Problem: "no datacenter: prevent_cross_dc_failover = 1 needs datacenter = <name> on every server"})
	}

	ok := true
	if s.IP == "" {
		set, _ := r.get("hostname")
		s.IP, ok = l.resolve(set, "hostname", s.Hostname)
	}
	s.SSHHost = r.str("ssh_host", s.Hostname)
	if s.SSHIP == "" {
		if s.SSHHost == s.Hostname {
			s.SSHIP = s.IP
		} else {
			set, _ := r.get("ssh_host")
			var sshOK bool
			s.SSHIP, sshOK = l.resolve(set, "ssh_host", s.SSHHost)
			ok = ok && sshOK
		}
	}
	if !ok {
		return nil
	}
	return s
}

// writes reports whether sec has a line for key.
func writes(sec *iniSection, key string) bool {
	for _, e := range sec.entries {
		if e.key == key {
			return true
		}
	}
	return false
}

// resolve returns host's address: host itself when it is an address, else
// the first IPv4 address it resolves to (MHA uses gethostbyname, which is
// IPv4 only), else the first address. A failure is reported at set.
func (l *loader) resolve(set setting, key, host string) (string, bool) {
	if net.ParseIP(host) != nil {
		return host, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	addrs, err := l.lookupHost(ctx, host)
	if err == nil && len(addrs) == 0 {
		err = errors.New("no address")
	}
	if err != nil {
		l.fail(&Error{File: set.file, Line: set.line, Section: set.section, Key: key, Value: host, Err: err,
			Problem: fmt.Sprintf("cannot resolve the host name: %v (fix DNS or /etc/hosts, or set ip = <address>)", err)})
		return "", false
	}
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip != nil && ip.To4() != nil {
			return a, true
		}
	}
	return addrs[0], true
}

// checkDuplicateAddrs reports two servers with the same ip:port, as MHA does.
func (l *loader) checkDuplicateAddrs(path string, servers []*Server, secs []*iniSection) {
	lineOf := map[string]int{}
	for _, sec := range secs {
		lineOf[sec.name] = sec.line
	}
	first := map[string]*Server{}
	for _, s := range servers {
		if prev, ok := first[s.Addr()]; ok {
			l.fail(&Error{File: path, Line: lineOf[s.Name], Section: s.Name,
				Problem: fmt.Sprintf("ip:port %s is also used by [%s] (line %d); each server needs its own ip:port",
					s.Addr(), prev.Name, lineOf[prev.Name])})
			continue
		}
		first[s.Addr()] = s
	}
}

// runInitConfLoadScript runs init_conf_load_script as MHA does: through
// the shell, reading "key=value" lines from its output, which override the
// application's [server default]. MHA uses it to fetch passwords from
// elsewhere, so the output is never shown, and neither is the script's
// standard error.
func (l *loader) runInitConfLoadScript(script string, timeout time.Duration, dst layer) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	cmd.Stderr = io.Discard
	// On timeout kill the whole process group: a script's children (sleep,
	// curl) would otherwise outlive it and keep its output open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	label := "output of init_conf_load_script " + strings.Fields(script)[0]
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("timed out after %v (hook_timeout)", timeout)
		}
		l.fail(&Error{File: label, Problem: fmt.Sprintf("the script failed: %v", err), Err: err})
		return
	}
	sec := &iniSection{name: "server default"}
	for i, row := range strings.Split(string(out), "\n") {
		row = strings.TrimSpace(row)
		if row == "" {
			continue
		}
		key, value, found := strings.Cut(row, "=")
		if !found {
			l.fail(&Error{File: label, Line: i + 1, Problem: "not a key=value line"})
			continue
		}
		sec.entries = append(sec.entries, iniEntry{key: strings.TrimSpace(key), value: stripQuotes(strings.TrimSpace(value)), line: i + 1})
	}
	l.fill(dst, label, sec, inDefault)
}
