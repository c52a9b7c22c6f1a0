package detector

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/mharaft/mharaft/config"
)

// SecondaryCheck runs app's secondary_check_script for master with MHA's
// arguments (--user=<ssh_user> --master_host --master_ip --master_port
// --master_user --ping_type) and reports MHA's meaning of its exit status:
// exit 0 = the master is unreachable from the secondary network too (the
// failure is confirmed), any other status = not confirmed. The script runs
// through sh -c like MHA's, so the setting may carry its own arguments.
//
// Unlike MHA, the master's password is NOT passed as --master_password
// (command lines are visible in ps): the script finds it in the environment
// variable MHA_MASTER_PASSWORD. A run longer than timeout is killed and
// counts as not confirmed. output is what the script printed (for the log).
// An error is returned only when the script could not be started at all.
func SecondaryCheck(ctx context.Context, app *config.App, master *config.Server, timeout time.Duration) (confirmed bool, output string, err error) {
	if app.SecondaryCheckScript == "" {
		return false, "", fmt.Errorf("secondary check for %s: secondary_check_script is not set", master)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmdline := app.SecondaryCheckScript +
		" --user=" + shellQuote(master.SSHUser) +
		" --master_host=" + shellQuote(master.Hostname) +
		" --master_ip=" + shellQuote(master.IP) +
		" --master_port=" + strconv.Itoa(master.Port) +
		" --master_user=" + shellQuote(master.User) +
		" --ping_type=" + shellQuote(pingType(app))
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", cmdline)
	cmd.Env = append(os.Environ(), "MHA_MASTER_PASSWORD="+master.Password)
	// Its own process group, so a timeout kills the script's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	output = redact(string(out), master.Password)
	if err == nil {
		return true, output, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return false, output, nil
	}
	return false, output, fmt.Errorf("run secondary_check_script for %s: %w", master, err)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	out := "'"
	for _, r := range s {
		if r == '\'' {
			out += `'\''`
		} else {
			out += string(r)
		}
	}
	return out + "'"
}
