package testbed

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// closeRecorder records that StartProc closed it.
type closeRecorder struct{ closed chan struct{} }

func (c *closeRecorder) Close() error { close(c.closed); return nil }

// TestProc: each way a process ends, what Stop and Wait report, and that
// the closers are closed once it has exited.
func TestProc(t *testing.T) {
	tests := []struct {
		name     string
		script   string
		end      func(*Proc) error
		wantErr  bool // what end returns
		wantExit int  // exit code Wait reports afterwards; -1: killed by a signal
	}{
		{"exits by itself", "echo ready; sleep 0.3; exit 3", func(p *Proc) error { return nil }, false, 3},
		{"stops on SIGTERM", "trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done",
			func(p *Proc) error { return p.Stop(syscall.SIGTERM, 10*time.Second) }, false, 0},
		{"killed after the grace", "trap '' TERM; echo ready; while :; do sleep 0.05; done",
			func(p *Proc) error { return p.Stop(syscall.SIGTERM, 200*time.Millisecond) }, true, -1},
		{"killed", "echo ready; exec sleep 60", func(p *Proc) error { p.Kill(); return nil }, false, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &closeRecorder{closed: make(chan struct{})}
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			cmd := exec.Command("/bin/sh", "-c", tc.script)
			cmd.Stdout = w
			p, err := StartProc(cmd, rec, w)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Kill()
			// "ready": the shell has set its traps.
			if line, err := bufio.NewReader(r).ReadString('\n'); line != "ready\n" {
				t.Fatalf("first line of the script: %q, %v", line, err)
			}
			if pgid, err := syscall.Getpgid(p.Pid()); err != nil || pgid != p.Pid() {
				t.Errorf("process group of %d = %d (%v), want its own", p.Pid(), pgid, err)
			}
			if err := tc.end(p); (err != nil) != tc.wantErr {
				t.Errorf("ending it: %v, want an error: %v", err, tc.wantErr)
			}
			err = p.Wait(10 * time.Second)
			var ee *exec.ExitError
			switch {
			case tc.wantExit == 0 && err != nil:
				t.Errorf("Wait = %v, want nil", err)
			case tc.wantExit != 0 && (!errors.As(err, &ee) || ee.ExitCode() != tc.wantExit):
				t.Errorf("Wait = %v, want exit code %d", err, tc.wantExit)
			}
			if p.Running() {
				t.Error("Running after Wait returned")
			}
			select {
			case <-rec.closed:
			default:
				t.Error("closer not closed after the process exited")
			}
			if err := p.Signal(syscall.SIGCONT); err == nil {
				t.Error("Signal to an exited process: no error")
			}
		})
	}
}

// TestProcPauseAndWaitTimeout: SIGSTOP holds the process, Wait gives up
// with ErrStillRunning, SIGCONT lets it finish.
func TestProcPauseAndWaitTimeout(t *testing.T) {
	p, err := StartProc(exec.Command("/bin/sh", "-c", "sleep 0.3"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(600 * time.Millisecond); !errors.Is(err, ErrStillRunning) {
		t.Fatalf("Wait on a stopped process = %v, want ErrStillRunning", err)
	}
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatalf("Wait after SIGCONT = %v", err)
	}
}

// TestBuildBinaries: the command is built into the directory from the
// module root, and not built again by a second call.
// TestProcWaitZeroAfterExit: once the process has ended, Wait(0) reports
// its exit every time (a zero timer is ready at once too, and a select
// between the two picked "still running" half of the time; seen in CI).
func TestProcWaitZeroAfterExit(t *testing.T) {
	p, err := StartProc(exec.Command("sh", "-c", "exit 0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatalf("wait: %v", err)
	}
	for i := 0; i < 200; i++ {
		if err := p.Wait(0); err != nil {
			t.Fatalf("Wait(0) after the exit, try %d: %v", i, err)
		}
	}
}

func TestBuildBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds mhactl (seconds)")
	}
	dir := t.TempDir()
	ctx := context.Background()
	if err := BuildBinaries(ctx, dir, "./cmd/mhactl"); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "mhactl")
	before, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "--help").CombinedOutput(); err != nil {
		t.Fatalf("%s --help: %v\n%s", bin, err, out)
	}
	if err := BuildBinaries(ctx, dir, "./cmd/mhactl"); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("mhactl built twice (modified %s, then %s)", before.ModTime(), after.ModTime())
	}
}
