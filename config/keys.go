package config

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
)

// scope says where a key may be written.
type scope uint8

const (
	inServer  scope = 1 << iota // in a [serverN] block of the application file
	inDefault                   // in [server default] of the global or the application file
)

// kind says how a value is checked and normalised.
type kind uint8

const (
	kString     kind = iota // any text, may be empty
	kHost                   // a host name or an address, not empty
	kIP                     // an IP address, or empty for "resolve it"
	kPort                   // 1-65535
	kBool                   // 0 or 1
	kInt                    // an integer in [min, max]
	kSeconds                // whole seconds in [min, max]
	kEnum                   // one of enum, case-insensitive
	kScript                 // a command line; its first word must be an executable file when it holds a '/'
	kFile                   // a readable file, or empty for none
	kAbsPath                // an absolute path, or empty for the default
	kPathList               // comma-separated absolute paths, white space removed (as MHA does)
	kSSHOptions             // ssh options; quotes removed (as MHA does)
)

// keyDef describes one configuration key.
type keyDef struct {
	scope    scope
	kind     kind
	min, max int      // for kInt and kSeconds
	enum     []string // for kEnum, in canonical case
	secret   bool     // never shown in errors or in String
}

var (
	perServer = keyDef{scope: inServer}
	anywhere  = keyDef{scope: inServer | inDefault}
	appWide   = keyDef{scope: inDefault}
)

func (d keyDef) is(k kind) keyDef { d.kind = k; return d }

func (d keyDef) between(k kind, min, max int) keyDef { d.kind, d.min, d.max = k, min, max; return d }

func (d keyDef) oneOf(values ...string) keyDef { d.kind, d.enum = kEnum, values; return d }

func (d keyDef) hidden() keyDef { d.secret = true; return d }

// keys is every key Load accepts: MHA's Config.pm @PARAM_ARRAY, MHA's
// command-line options that mharaft also takes from the file
// (last_failover_minute, wait_on_monitor_error, running_updates_limit), and
// the keys mharaft adds. REFERENCE.md documents each one; a test checks
// that it lists them all.
//
// Scopes follow MHA's Parameters documentation: "Local Only" keys are
// per-server (MHA silently ignores them in [server default]; we refuse
// them there), "App/Global" keys are per-application (MHA reads most of
// them from the first server or from the current master, so a value in
// one server block changes the whole application by accident; we refuse
// them there), "Local/App/Global" keys may be anywhere.
var keys = map[string]keyDef{
	// Per server only.
	"hostname":         perServer.is(kHost),
	"ip":               perServer.is(kIP),
	"ssh_host":         perServer.is(kHost),
	"ssh_ip":           perServer.is(kIP),
	"candidate_master": perServer.is(kBool),
	"no_master":        perServer.is(kBool),
	"ignore_fail":      perServer.is(kBool),
	"node_label":       perServer.is(kString),

	// Per server, with defaults from [server default].
	"port":                   anywhere.is(kPort),
	"user":                   anywhere.is(kString),
	"password":               anywhere.is(kString).hidden(),
	"repl_user":              anywhere.is(kString),
	"repl_password":          anywhere.is(kString).hidden(),
	"ssh_user":               anywhere.is(kString),
	"ssh_port":               anywhere.is(kPort),
	"ssh_options":            anywhere.is(kSSHOptions),
	"ssh_connection_timeout": anywhere.between(kSeconds, 1, 3600),
	"ssh_key":                anywhere.is(kFile),
	"ssh_known_hosts":        anywhere.is(kFile),
	"check_repl_delay":       anywhere.is(kBool),
	"latest_priority":        anywhere.is(kBool),
	"master_binlog_dir":      anywhere.is(kPathList),
	"remote_workdir":         anywhere.is(kAbsPath),
	"client_bindir":          anywhere.is(kString),
	"client_libdir":          anywhere.is(kString),
	"disable_log_bin":        anywhere.is(kBool),
	"apply_method":           anywhere.oneOf("auto", "statements", "replication"),
	"handle_raw_binlog":      anywhere.is(kBool),
	"skip_reset_slave":       anywhere.is(kBool),
	"master_pid_file":        anywhere.is(kString),
	"multi_tier_slave":       anywhere.is(kBool),
	"skip_init_ssh_check":    anywhere.is(kBool),
	"datacenter":             anywhere.is(kString),

	// Per application only.
	"manager_workdir":                appWide.is(kAbsPath),
	"manager_log":                    appWide.is(kAbsPath),
	"log_level":                      appWide.oneOf("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"),
	"check_repl_filter":              appWide.is(kBool),
	"use_gtid_auto_pos":              appWide.is(kBool),
	"ping_interval":                  appWide.between(kSeconds, 1, 3600),
	"ping_type":                      appWide.oneOf("CONNECT", "SELECT", "INSERT"),
	"connect_timeout":                appWide.between(kSeconds, 1, 3600),
	"secondary_check_script":         appWide.is(kScript),
	"master_ip_failover_script":      appWide.is(kScript),
	"master_ip_online_change_script": appWide.is(kScript),
	"shutdown_script":                appWide.is(kScript),
	"report_script":                  appWide.is(kScript),
	"init_conf_load_script":          appWide.is(kScript),
	"hook_timeout":                   appWide.between(kSeconds, 1, 86400),
	"last_failover_minute":           appWide.between(kInt, 0, 525600),
	"wait_on_monitor_error":          appWide.between(kSeconds, 0, 86400),
	"running_updates_limit":          appWide.between(kSeconds, 0, 86400),
	"switch_max_lag":                 appWide.between(kSeconds, 0, 86400),
	"ignore_multimaster":             appWide.is(kBool),
	"prevent_cross_dc_failover":      appWide.is(kBool),
	"fence_mode":                     appWide.oneOf("read_only_ftwrl", "read_only", "shutdown"),
}

// knownKeys returns every key name, sorted.
func knownKeys() []string {
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// checkValue checks value against def and returns it normalised (quotes
// removed as MHA does, ping_type upper-cased, ...), or a problem that says
// what is allowed.
func checkValue(def keyDef, value string) (string, string) {
	switch def.kind {
	case kString:
		return value, ""
	case kHost:
		if value == "" || strings.ContainsAny(value, " \t/") {
			return "", "not a host name (want a host name or an IP address)"
		}
		return value, ""
	case kIP:
		if value != "" && net.ParseIP(value) == nil {
			return "", "not an IP address (want e.g. 192.168.0.101, or leave it out to resolve the host name)"
		}
		return value, ""
	case kPort:
		return checkInt(value, 1, 65535)
	case kBool:
		if value != "0" && value != "1" {
			return "", "not a boolean (want 0 or 1; MHA would read any other text by Perl's rules, so write 0 or 1)"
		}
		return value, ""
	case kInt, kSeconds:
		return checkInt(value, def.min, def.max)
	case kEnum:
		for _, e := range def.enum {
			if strings.EqualFold(value, e) {
				return e, ""
			}
		}
		return "", "not allowed (want one of " + strings.Join(def.enum, ", ") + ")"
	case kScript:
		return value, checkScript(value)
	case kFile:
		if value == "" {
			return "", ""
		}
		f, err := os.Open(value)
		if err != nil {
			return "", fmt.Sprintf("cannot read the file: %v", err)
		}
		info, err := f.Stat()
		f.Close()
		if err == nil && info.IsDir() {
			return "", "is a directory (want a readable file)"
		}
		return value, ""
	case kAbsPath:
		if value != "" && !strings.HasPrefix(value, "/") {
			return "", "not an absolute path (want a path that starts with /)"
		}
		return value, ""
	case kPathList:
		value = strings.Join(strings.Fields(value), "")
		for _, p := range strings.Split(value, ",") {
			if value != "" && !strings.HasPrefix(p, "/") {
				return "", "not a list of absolute paths (want /dir or /dir1,/dir2)"
			}
		}
		return value, ""
	case kSSHOptions:
		return strings.NewReplacer(`"`, "", `'`, "").Replace(value), ""
	}
	panic(fmt.Sprintf("config: key kind %d has no check", def.kind))
}

func checkInt(value string, min, max int) (string, string) {
	want := fmt.Sprintf("want %d-%d", min, max)
	n, err := strconv.Atoi(value)
	if err != nil {
		return "", "not a number (" + want + ")"
	}
	if n < min || n > max {
		return "", "out of range (" + want + ")"
	}
	return strconv.Itoa(n), ""
}

// checkScript checks the command line of a *_script key. MHA runs it
// through the shell with arguments appended, and the value may carry its
// own arguments ("masterha_secondary_check -s remote1"), so only the first
// word is checked, and only when it is a path (holds a '/'): a bare name is
// looked up in PATH when the script runs.
func checkScript(value string) string {
	fields := strings.Fields(value)
	if len(fields) == 0 || !strings.Contains(fields[0], "/") {
		return ""
	}
	info, err := os.Stat(fields[0])
	switch {
	case err != nil:
		return fmt.Sprintf("script %s: %v (want an executable file)", fields[0], err)
	case info.IsDir():
		return fmt.Sprintf("script %s is a directory (want an executable file)", fields[0])
	case info.Mode().Perm()&0o111 == 0:
		return fmt.Sprintf("script %s is not executable (mode %v; chmod +x it)", fields[0], info.Mode().Perm())
	}
	return ""
}

// closestKey returns the known key nearest to name by edit distance, or ""
// when none is near enough to be a likely typo.
func closestKey(name string) string {
	best, bestDist := "", len(name)/2+1
	if bestDist < 3 {
		bestDist = 3
	}
	for _, k := range knownKeys() {
		if d := editDistance(name, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
