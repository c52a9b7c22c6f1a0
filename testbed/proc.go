package testbed

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"
)

// Proc is a child process started by StartProc: mariadbd, sshd or mhanode
// of a test, the demo or the chaos harness.
//
// It runs in its own process group, and every signal goes to that group:
// `ip netns exec` and sshd's per-connection children are in it, while
// mhanode starts its hooks in groups of their own, which a signal to its
// group does not reach. It gets SIGKILL when the process that started it
// dies (Pdeathsig), so a test binary that panics or is killed leaves no
// server behind.
type Proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's result; read only after done is closed
}

// StartProc starts cmd (path, arguments, environment and output set by
// the caller; StartProc sets SysProcAttr). closers, such as the log file
// cmd writes to, are closed once the process has exited, or at once when
// it cannot start.
func StartProc(cmd *exec.Cmd, closers ...io.Closer) (*Proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		for _, c := range closers {
			c.Close()
		}
		return nil, err
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		for _, c := range closers {
			c.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id (and process group id).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited and been waited for.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Running reports whether the process has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the process group. It fails when the process has
// exited: its process group id may belong to another process by now.
func (p *Proc) Signal(sig syscall.Signal) error {
	if !p.Running() {
		return fmt.Errorf("signal %s to process %d: it has exited", sig, p.Pid())
	}
	if err := syscall.Kill(-p.Pid(), sig); err != nil {
		return fmt.Errorf("signal %s to process group %d: %w", sig, p.Pid(), err)
	}
	return nil
}

// Kill sends SIGKILL to the process group and waits until the process is
// gone. It does nothing when the process has exited already.
func (p *Proc) Kill() {
	if p.Signal(syscall.SIGKILL) == nil {
		<-p.done
	}
}

// Stop sends sig (SIGTERM: a clean shutdown) and waits up to grace for the
// process to exit; then it kills the process group, waits for it, and
// returns an error saying so.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) error {
	if p.Signal(sig) != nil {
		return nil // exited already
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		p.Kill()
		return fmt.Errorf("process %d did not exit within %s of %s; killed", p.Pid(), grace, sig)
	}
}

// ErrStillRunning is returned by Wait when the process outlives the timeout.
var ErrStillRunning = errors.New("still running")

// Wait waits up to timeout for the process to exit and returns what
// exec.Cmd.Wait returned (nil for exit status 0, an *exec.ExitError
// otherwise), or ErrStillRunning.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done: // first: with a zero timeout the timer is ready too, and select picks at random
		return p.err
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		return fmt.Errorf("process %d after %s: %w", p.Pid(), timeout, ErrStillRunning)
	}
}
