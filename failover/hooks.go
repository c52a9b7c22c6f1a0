package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mharaft/mharaft/config"
)

// Arg is one --name=value argument of a hook. Secret values (passwords)
// are passed to the script but print as xxx.
type Arg struct {
	Name   string
	Value  string
	Secret bool
	Flag   bool // a bare --name (e.g. --orig_master_is_new_slave)
}

// HookResult is what running a hook gave.
type HookResult struct {
	Script   string        `json:"script"`
	Command  string        `json:"command"` // printable, passwords as xxx
	ExitCode int           `json:"exit_code"`
	Output   string        `json:"output,omitempty"`
	Took     time.Duration `json:"took_ns"`
}

// ErrHookTimeout is returned when a hook ran longer than App.HookTimeout.
var ErrHookTimeout = errors.New("hook timed out")

// Hooks runs the MHA hook scripts of an application.
type Hooks struct {
	App *config.App
	Log func(format string, args ...any)
}

func (h *Hooks) logf(format string, args ...any) {
	if h.Log != nil {
		h.Log(format, args...)
	}
}

// Printable renders a command line with secrets as xxx, the way MHA logs it.
func Printable(script string, args []Arg) string {
	var b strings.Builder
	b.WriteString(script)
	for _, a := range args {
		b.WriteString(" --" + a.Name)
		if a.Flag {
			continue
		}
		if a.Secret {
			b.WriteString("=xxx")
		} else {
			b.WriteString("=" + a.Value)
		}
	}
	return b.String()
}

// Run runs script with args and waits at most App.HookTimeout. The script
// string is run by /bin/sh like MHA's system() (so a configured value may
// carry its own arguments); our arguments are appended as separate words and
// never re-parsed by the shell. A non-zero exit is not an error: the caller
// interprets the code.
func (h *Hooks) Run(ctx context.Context, script string, args []Arg) (HookResult, error) {
	res := HookResult{Script: script, Command: Printable(script, args)}
	timeout := h.App.HookTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	argv := []string{"-c", script + ` "$@"`, "mha-hook"}
	for _, a := range args {
		if a.Flag {
			argv = append(argv, "--"+a.Name)
		} else {
			argv = append(argv, "--"+a.Name+"="+a.Value)
		}
	}
	cmd := exec.Command("/bin/sh", argv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	h.logf("executing hook: %s", res.Command)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start hook %s: %w", script, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		res.Took = time.Since(start)
		res.Output = out.String()
		res.ExitCode = -1
		return res, fmt.Errorf("hook %s after %s: %w", res.Command, timeout, ErrHookTimeout)
	}
	res.Took = time.Since(start)
	res.Output = out.String()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return res, fmt.Errorf("run hook %s: %w", res.Command, err)
		}
		res.ExitCode = ee.ExitCode()
	}
	h.logf("hook %s exited %d after %s", script, res.ExitCode, res.Took.Round(time.Millisecond))
	return res, nil
}

// sshArgs is MHA's get_ssh_args_if: ssh_host/ssh_ip when they differ from
// hostname/ip, ssh_port when not 22. prefix is "orig_master_", "new_master_"
// or "" (shutdown_script).
func sshArgs(s *config.Server, prefix string) []Arg {
	var out []Arg
	if s.SSHHost != "" && (s.SSHHost != s.Hostname || (s.SSHIP != "" && s.SSHIP != s.IP)) {
		out = append(out, Arg{Name: prefix + "ssh_host", Value: s.SSHHost}, Arg{Name: prefix + "ssh_ip", Value: s.SSHIP})
	}
	if s.SSHPort != 0 && s.SSHPort != 22 {
		out = append(out, Arg{Name: prefix + "ssh_port", Value: strconv.Itoa(s.SSHPort)})
	}
	return out
}

func origArgs(s *config.Server) []Arg {
	return []Arg{
		{Name: "orig_master_host", Value: s.Hostname},
		{Name: "orig_master_ip", Value: s.IP},
		{Name: "orig_master_port", Value: strconv.Itoa(s.Port)},
	}
}

func newArgs(s *config.Server) []Arg {
	return []Arg{
		{Name: "new_master_host", Value: s.Hostname},
		{Name: "new_master_ip", Value: s.IP},
		{Name: "new_master_port", Value: strconv.Itoa(s.Port)},
	}
}

// FailoverStopArgs are master_ip_failover_script's arguments for
// --command=stop (dead master's SSH unreachable) or stopssh.
func FailoverStopArgs(dead *config.Server, sshReachable bool) []Arg {
	args := origArgs(dead)
	if sshReachable {
		args = append(args, Arg{Name: "command", Value: "stopssh"}, Arg{Name: "ssh_user", Value: dead.SSHUser})
	} else {
		args = append(args, Arg{Name: "command", Value: "stop"})
	}
	return append(args, sshArgs(dead, "orig_master_")...)
}

// FailoverStartArgs are master_ip_failover_script's arguments for
// --command=start.
func FailoverStartArgs(dead, newMaster *config.Server, deadSSHReachable bool) []Arg {
	args := []Arg{{Name: "command", Value: "start"}, {Name: "ssh_user", Value: newMaster.SSHUser}}
	args = append(args, origArgs(dead)...)
	args = append(args, newArgs(newMaster)...)
	args = append(args, Arg{Name: "new_master_user", Value: newMaster.User})
	if deadSSHReachable {
		args = append(args, sshArgs(dead, "orig_master_")...)
	}
	args = append(args, sshArgs(newMaster, "new_master_")...)
	return append(args, Arg{Name: "new_master_password", Value: newMaster.Password, Secret: true})
}

// ShutdownArgs are shutdown_script's arguments.
func ShutdownArgs(dead *config.Server, sshReachable bool) []Arg {
	var args []Arg
	if sshReachable {
		args = append(args, Arg{Name: "command", Value: "stopssh"}, Arg{Name: "ssh_user", Value: dead.SSHUser})
	} else {
		args = append(args, Arg{Name: "command", Value: "stop"})
	}
	args = append(args, Arg{Name: "host", Value: dead.Hostname}, Arg{Name: "ip", Value: dead.IP},
		Arg{Name: "port", Value: strconv.Itoa(dead.Port)})
	return append(args, sshArgs(dead, "")...)
}

// OnlineChangeArgs are master_ip_online_change_script's arguments for
// --command=stop|start.
func OnlineChangeArgs(command string, orig, newMaster *config.Server, origIsNewSlave bool) []Arg {
	args := []Arg{{Name: "command", Value: command}}
	args = append(args, origArgs(orig)...)
	args = append(args, Arg{Name: "orig_master_user", Value: orig.User})
	args = append(args, newArgs(newMaster)...)
	args = append(args, Arg{Name: "new_master_user", Value: newMaster.User},
		Arg{Name: "orig_master_ssh_user", Value: orig.SSHUser},
		Arg{Name: "new_master_ssh_user", Value: newMaster.SSHUser})
	args = append(args, sshArgs(orig, "orig_master_")...)
	args = append(args, sshArgs(newMaster, "new_master_")...)
	if origIsNewSlave {
		args = append(args, Arg{Name: "orig_master_is_new_slave", Flag: true})
	}
	return append(args, Arg{Name: "orig_master_password", Value: orig.Password, Secret: true},
		Arg{Name: "new_master_password", Value: newMaster.Password, Secret: true})
}

// ReportArgs are report_script's arguments. newMaster is nil when no new
// master was activated.
func ReportArgs(app *config.App, dead, newMaster *config.Server, newSlaves []string, subject, body string) []Arg {
	args := []Arg{{Name: "orig_master_host", Value: dead.Hostname}}
	if newMaster != nil {
		args = append(args, Arg{Name: "new_master_host", Value: newMaster.Hostname},
			Arg{Name: "new_slave_hosts", Value: strings.Join(newSlaves, ",")})
	}
	return append(args, Arg{Name: "conf", Value: app.File}, Arg{Name: "subject", Value: subject}, Arg{Name: "body", Value: body})
}

// HookOutcome interprets an exit code the way MHA does.
type HookOutcome int

const (
	HookOK      HookOutcome = iota // exit 0
	HookProceed                    // exit 10: failed but MHA proceeds ("Proceeding.")
	HookAbort                      // anything else: the pipeline stops
)

// IPHookOutcome: master_ip_failover_script / master_ip_online_change_script:
// 0 ok, 10 proceed with a warning, anything else aborts.
func IPHookOutcome(code int) HookOutcome {
	switch code {
	case 0:
		return HookOK
	case 10:
		return HookProceed
	}
	return HookAbort
}

// ShutdownOutcome: shutdown_script: 0 means "power off done" (the dead
// master's host is now unreachable over SSH), 10 means "SSH reachable,
// mysqld shut down"; both proceed. Anything else aborts.
func ShutdownOutcome(code int) (outcome HookOutcome, sshStillReachable bool) {
	switch code {
	case 0:
		return HookOK, false
	case 10:
		return HookProceed, true
	}
	return HookAbort, false
}
