package demo

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// Process is a process found by Leftovers.
type Process struct {
	PID     int
	Cmdline string
}

// Leftovers lists the processes whose command line mentions dir: every
// process the demo starts does (mariadbd --defaults-file=DIR/..., sshd -f
// DIR/..., mhanode --data-dir DIR/...). After Run it must be empty.
func Leftovers(dir string) ([]Process, error) {
	if dir == "" {
		return nil, errors.New("leftovers: empty directory")
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	self := os.Getpid()
	var out []Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue // gone, or a kernel thread
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && isZombie(st) {
			continue // exited; only its parent's wait is missing
		}
		cmdline := strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
		if strings.Contains(cmdline, dir) {
			out = append(out, Process{PID: pid, Cmdline: cmdline})
		}
	}
	return out, nil
}

// isZombie reads the state field of /proc/PID/stat ("pid (comm) S ...").
func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// manager is one mhanode process of the sandbox.
type manager struct {
	ID, RaftAddr, GossipAddr, HTTPAddr string
	DataDir, LogPath                   string

	proc *testbed.Proc // nil until started
}

// newManagers picks free loopback ports for n managers m1..mn below dir.
func newManagers(dir string, n int) ([]*manager, error) {
	var ms []*manager
	for i := 1; i <= n; i++ {
		raft, err := testbed.FreePortPair("127.0.0.1")
		if err != nil {
			return nil, err
		}
		http, err := testbed.FreePort("127.0.0.1")
		if err != nil {
			return nil, err
		}
		id := fmt.Sprintf("m%d", i)
		ms = append(ms, &manager{
			ID:         id,
			RaftAddr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(raft)),
			GossipAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(raft+1)),
			HTTPAddr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(http)),
			DataDir:    filepath.Join(dir, id, "data"),
			LogPath:    filepath.Join(dir, id, "mhanode.log"),
		})
	}
	return ms, nil
}

// peers is the --peers value shared by every manager.
func peers(ms []*manager) string {
	var p []string
	for _, m := range ms {
		p = append(p, m.ID+"="+m.RaftAddr)
	}
	return strings.Join(p, ",")
}

// apiAddrs is the MHACTL_ADDR value: every manager's HTTP address.
func apiAddrs(ms []*manager) string {
	var a []string
	for _, m := range ms {
		a = append(a, m.HTTPAddr)
	}
	return strings.Join(a, ",")
}

// args is the mhanode command line of m.
func (m *manager) args(all []*manager, conf, tokenFile string) []string {
	return []string{"--id", m.ID, "--data-dir", m.DataDir, "--raft-addr", m.RaftAddr, "--http-addr", m.HTTPAddr,
		"--gossip-addr", m.GossipAddr, "--peers", peers(all), "--conf", conf, "--token-file", tokenFile}
}

// start runs bin with args; its output goes to m.LogPath. The process gets
// its own process group and dies with this one (testbed.StartProc).
func (m *manager) start(bin string, args []string) error {
	if err := os.MkdirAll(filepath.Dir(m.LogPath), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log of manager %s: %w", m.ID, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if m.proc, err = testbed.StartProc(cmd, logf); err != nil {
		return fmt.Errorf("start mhanode %s: %w", m.ID, err)
	}
	return nil
}

// exited reports whether the process has ended (or never started).
func (m *manager) exited() bool {
	return m.proc == nil || !m.proc.Running()
}

// stop asks mhanode to shut down (SIGTERM) and kills it when it has not
// exited within grace.
func (m *manager) stop(grace time.Duration) {
	if m.proc != nil {
		m.proc.Stop(syscall.SIGTERM, grace)
	}
}

// tailFile returns the last n bytes of a file, for error messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
