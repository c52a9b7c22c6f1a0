package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sshOptions are the settings of an ssh_options value that mharaft honours
// (MHA passes ssh_options to its ssh command line). A zero field was not
// given.
type sshOptions struct {
	Port           int           // -p PORT, -o Port=PORT
	User           string        // -l USER, -o User=USER
	IdentityFile   string        // -i FILE, -o IdentityFile=FILE (~ expanded)
	KnownHostsFile string        // -o UserKnownHostsFile=FILE (~ expanded)
	ConnectTimeout time.Duration // -o ConnectTimeout=SECONDS
	AliveInterval  time.Duration // -o ServerAliveInterval=SECONDS; 0 also when 0 was given
	AliveCountMax  int           // -o ServerAliveCountMax=N

	// from maps each setting given ("the port") to the option that gave it ("-p 2222").
	from map[string]string
}

// sshAlready maps the ssh_config options that only ask for what mharaft's
// SSH client always does (lower-case name) to that value: the option is
// accepted with this value (any case) and refused with another one.
var sshAlready = map[string]struct{ name, value, why string }{
	"batchmode":                       {"BatchMode", "yes", "mharaft never prompts"},
	"passwordauthentication":          {"PasswordAuthentication", "no", "mharaft authenticates with a key only"},
	"kbdinteractiveauthentication":    {"KbdInteractiveAuthentication", "no", "mharaft authenticates with a key only"},
	"challengeresponseauthentication": {"ChallengeResponseAuthentication", "no", "mharaft authenticates with a key only"},
	"identitiesonly":                  {"IdentitiesOnly", "yes", "mharaft uses no ssh-agent, only the key named by ssh_key or -i (else ~/.ssh/id_ed25519, id_ecdsa, id_rsa)"},
	"forwardagent":                    {"ForwardAgent", "no", "mharaft forwards nothing"},
	"forwardx11":                      {"ForwardX11", "no", "mharaft forwards nothing"},
	"requesttty":                      {"RequestTTY", "no", "mharaft never asks for a terminal"},
}

// sshSupported lists what ssh_options may hold, for error messages.
const sshSupported = "-i FILE, -p PORT, -l USER, -q, -o IdentityFile=, Port=, User=, UserKnownHostsFile=, " +
	"ConnectTimeout=, ServerAliveInterval=, ServerAliveCountMax=, StrictHostKeyChecking=yes, LogLevel=, " +
	"GlobalKnownHostsFile=/dev/null, BatchMode=yes, PasswordAuthentication=no, IdentitiesOnly=yes"

// sshHostKeyFix says why host-key checking cannot be turned off and how to
// do without it.
const sshHostKeyFix = "mharaft always verifies the host key of every DB host against a known_hosts file " +
	"(ssh_known_hosts or -o UserKnownHostsFile=FILE; default ~/.ssh/known_hosts of the user running mharaft) " +
	"and never adds a key itself, so a spoofed host cannot receive a binlog or a command: remove the option, " +
	"then on each manager host add each DB host's key to that file " +
	"(ssh-keyscan -p SSH_PORT HOST >> FILE, and compare its fingerprint, ssh-keygen -lf FILE, " +
	"with ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub run on the host)"

// parseSSHOptions reads an ssh_options value (quotes already removed, as
// MHA does) as ssh(1) command-line options. It honours the options that
// say how to reach and authenticate to a host, accepts those that ask for
// what mharaft does anyway, and refuses everything else with a message
// naming the option and the reason, in particular any option that would
// weaken host-key checking. home expands a leading ~/ in file names.
func parseSSHOptions(value, home string) (sshOptions, string) {
	o := sshOptions{from: map[string]string{}}
	values := map[string]string{} // setting -> its value, to refuse a second, different one
	set := func(setting, opt, val string, apply func()) string {
		if prev, ok := values[setting]; ok {
			if prev != val {
				return fmt.Sprintf("%s is given twice (%s and %s); keep one", setting, o.from[setting], opt)
			}
			return ""
		}
		values[setting], o.from[setting] = val, opt
		apply()
		return ""
	}
	fields := strings.Fields(value)
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if len(f) < 2 || f[0] != '-' {
			return o, fmt.Sprintf("%q is not an ssh option (ssh_options holds ssh command-line options; supported: %s)", f, sshSupported)
		}
		flag, arg := f[:2], f[2:]
		switch flag {
		case "-q":
			if arg != "" {
				return o, fmt.Sprintf("%s: combined flags are not supported; write each option on its own (supported: %s)", f, sshSupported)
			}
			continue // only quiets ssh's own messages
		case "-i", "-p", "-l", "-o":
		case "-F":
			return o, fmt.Sprintf("%s: mharaft reads no ssh_config file; write the options it holds in ssh_options (supported: %s)", f, sshSupported)
		default:
			return o, fmt.Sprintf("%s is not supported by mharaft's SSH client; remove it (supported: %s)", f, sshSupported)
		}
		if arg == "" {
			if i+1 >= len(fields) {
				return o, fmt.Sprintf("%s needs a value", flag)
			}
			i++
			arg = fields[i]
		}
		opt := flag + " " + arg
		var problem string
		switch flag {
		case "-i":
			problem = sshFile(opt, "identity", arg, home, func(p string) string {
				return set("the identity file", opt, p, func() { o.IdentityFile = p })
			})
		case "-p":
			problem = sshPort(opt, arg, func(n int) string {
				return set("the port", opt, strconv.Itoa(n), func() { o.Port = n })
			})
		case "-l":
			problem = set("the user", opt, arg, func() { o.User = arg })
		case "-o":
			problem = parseSSHOption(arg, home, &o, set)
		}
		if problem != "" {
			return o, problem
		}
	}
	return o, ""
}

// parseSSHOption reads the argument of one -o: Name=value.
func parseSSHOption(arg, home string, o *sshOptions, set func(setting, opt, val string, apply func()) string) string {
	name, val, ok := strings.Cut(arg, "=")
	opt := "-o " + arg
	if !ok || name == "" {
		return fmt.Sprintf("%s: want -o Name=value (ssh_options loses its quotes, as in MHA, so -o \"Name value\" cannot work)", opt)
	}
	if val == "" {
		return fmt.Sprintf("%s has no value", opt)
	}
	switch lower := strings.ToLower(name); lower {
	case "port":
		return sshPort(opt, val, func(n int) string {
			return set("the port", opt, strconv.Itoa(n), func() { o.Port = n })
		})
	case "user":
		return set("the user", opt, val, func() { o.User = val })
	case "identityfile":
		return sshFile(opt, "identity", val, home, func(p string) string {
			return set("the identity file", opt, p, func() { o.IdentityFile = p })
		})
	case "userknownhostsfile":
		if val == "/dev/null" || strings.EqualFold(val, "none") {
			return fmt.Sprintf("%s is refused: it would make every host key unknown. %s", opt, sshHostKeyFix)
		}
		return sshFile(opt, "known_hosts", val, home, func(p string) string {
			return set("the known_hosts file", opt, p, func() { o.KnownHostsFile = p })
		})
	case "globalknownhostsfile":
		if val != "/dev/null" && !strings.EqualFold(val, "none") {
			return fmt.Sprintf("%s is not supported: mharaft reads one known_hosts file; put the host keys in the one named by ssh_known_hosts or -o UserKnownHostsFile=FILE", opt)
		}
		return "" // mharaft reads no global known_hosts file anyway
	case "stricthostkeychecking":
		if strings.EqualFold(val, "yes") {
			return ""
		}
		return fmt.Sprintf("%s is refused: %s", opt, sshHostKeyFix)
	case "connecttimeout":
		n, problem := sshSeconds(opt, val, 1, 3600)
		if problem != "" {
			return problem
		}
		return set("the connect timeout", opt, strconv.Itoa(n), func() { o.ConnectTimeout = time.Duration(n) * time.Second })
	case "serveraliveinterval":
		n, problem := sshSeconds(opt, val, 0, 3600)
		if problem != "" {
			return problem
		}
		return set("ServerAliveInterval", opt, strconv.Itoa(n), func() { o.AliveInterval = time.Duration(n) * time.Second })
	case "serveralivecountmax":
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Sprintf("%s: want a number of messages, 1-1000", opt)
		}
		return set("ServerAliveCountMax", opt, strconv.Itoa(n), func() { o.AliveCountMax = n })
	case "loglevel":
		return "" // only changes ssh's own messages
	default:
		if a, ok := sshAlready[lower]; ok {
			if strings.EqualFold(val, a.value) {
				return ""
			}
			return fmt.Sprintf("%s is not supported: %s (%s=%s); remove it", opt, a.why, a.name, a.value)
		}
		return fmt.Sprintf("%s is not supported by mharaft's SSH client; remove it (supported: %s)", opt, sshSupported)
	}
}

func sshPort(opt, val string, apply func(int) string) string {
	n, err := strconv.Atoi(val)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("%s: not a port (want 1-65535)", opt)
	}
	return apply(n)
}

func sshSeconds(opt, val string, min, max int) (int, string) {
	n, err := strconv.Atoi(val)
	if err != nil || n < min || n > max {
		return 0, fmt.Sprintf("%s: want whole seconds, %d-%d", opt, min, max)
	}
	return n, ""
}

// sshFile expands a leading ~/ of path with home, as ssh does, checks that
// the result is an absolute path of a readable file, and applies it.
func sshFile(opt, what, path, home string, apply func(string) string) string {
	switch {
	case strings.Contains(path, "%") || strings.Contains(path, "$"):
		return fmt.Sprintf("%s: tokens and variables (%%d, %%h, $HOME) are not expanded; write the full path of the %s file", opt, what)
	case path == "~" || strings.HasPrefix(path, "~/"):
		path = filepath.Join(home, strings.TrimPrefix(path, "~"))
	case strings.HasPrefix(path, "~"):
		return fmt.Sprintf("%s: ~user is not expanded; write the full path of the %s file", opt, what)
	case !filepath.IsAbs(path):
		return fmt.Sprintf("%s: not an absolute path (want /path or ~/path of the %s file)", opt, what)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("%s: cannot read the %s file: %v", opt, what, err)
	}
	info, err := f.Stat()
	f.Close()
	if err == nil && info.IsDir() {
		return fmt.Sprintf("%s: %s is a directory (want the %s file)", opt, path, what)
	}
	return apply(filepath.Clean(path))
}

// applySSHOptions sets the SSH settings of s that its ssh_options give.
// Each one may also be written as its own key (ssh_port, ssh_user,
// ssh_key, ssh_known_hosts, ssh_connection_timeout); written both ways
// with different values, the server is refused rather than one silently
// winning (MHA's ssh took ssh_options' port and user, but ssh_connection_timeout
// over ConnectTimeout in its checks). A value given only one way replaces
// the default.
func (l *loader) applySSHOptions(s *Server, r resolver) {
	where, ok := r.get("ssh_options")
	if !ok || where.value == "" {
		return
	}
	o, problem := parseSSHOptions(where.value, l.homeDir())
	if problem != "" { // reported by fill
		return
	}
	agree := func(setting, key, want string, apply func()) {
		opt, given := o.from[setting]
		if !given {
			return
		}
		k, written := r.get(key)
		have := k.value
		if key == "ssh_key" || key == "ssh_known_hosts" {
			have = filepath.Clean(have)
		}
		if written && k.value != "" && have != want {
			l.failOnce(&Error{File: where.file, Line: where.line, Section: where.section, Key: "ssh_options", Value: where.value,
				Problem: fmt.Sprintf("%s contradicts %s = %s (%s:%d [%s]); keep one of them", opt, key, k.value, k.file, k.line, k.section)})
			return
		}
		apply()
	}
	agree("the port", "ssh_port", strconv.Itoa(o.Port), func() { s.SSHPort = o.Port })
	agree("the user", "ssh_user", o.User, func() { s.SSHUser = o.User })
	agree("the identity file", "ssh_key", o.IdentityFile, func() { s.SSHKey = o.IdentityFile })
	agree("the known_hosts file", "ssh_known_hosts", o.KnownHostsFile, func() { s.SSHKnownHosts = o.KnownHostsFile })
	agree("the connect timeout", "ssh_connection_timeout", strconv.Itoa(int(o.ConnectTimeout/time.Second)),
		func() { s.SSHConnectTimeout = o.ConnectTimeout })
	s.SSHAliveInterval, s.SSHAliveCountMax = o.AliveInterval, o.AliveCountMax
}
