// Package managertest starts real mhanode processes on 127.0.0.1 for the
// cluster tests of package manager and for the "cluster" benchmark: a
// Cluster of Nodes, each a child process with its own data dir, ports and
// log file, reached through the api.Client.
//
// It is test infrastructure: product code never imports it.
package managertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/testbed"
)

// Build compiles cmd/mhanode into dir and returns the binary's path
// (testbed.BuildBinaries: from the module root, once per process).
func Build(dir string) (string, error) {
	if err := testbed.BuildBinaries(context.Background(), dir, "./cmd/mhanode"); err != nil {
		return "", err
	}
	return filepath.Join(dir, "mhanode"), nil
}

// Node is one mhanode process.
type Node struct {
	ID         string
	RaftAddr   string
	HTTPAddr   string
	GossipAddr string
	DataDir    string
	LogPath    string
	Confs      []string // --conf files
	Env        []string // extra environment (KEY=VALUE)
	ExtraArgs  []string

	mu   sync.Mutex
	proc *testbed.Proc // nil until started
}

// Cluster is a group of mhanode processes sharing a token and a peer list.
type Cluster struct {
	Bin       string
	Dir       string
	Token     string
	TokenFile string
	Nodes     []*Node
}

// New prepares n nodes (m1..mn) below dir with free ports; confs(i) gives
// node i's --conf files. Nothing starts until Start.
func New(bin, dir string, n int, confs func(i int) []string) (*Cluster, error) {
	c := &Cluster{Bin: bin, Dir: dir, Token: "test-token-0123456789-" + strconv.Itoa(os.Getpid()), TokenFile: filepath.Join(dir, "token")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.TokenFile, []byte(c.Token+"\n"), 0o600); err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		raft, err := freePortPair()
		if err != nil {
			return nil, err
		}
		http, err := freePort()
		if err != nil {
			return nil, err
		}
		id := fmt.Sprintf("m%d", i+1)
		c.Nodes = append(c.Nodes, &Node{
			ID:         id,
			RaftAddr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(raft)),
			GossipAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(raft+1)),
			HTTPAddr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(http)),
			DataDir:    filepath.Join(dir, id, "data"),
			LogPath:    filepath.Join(dir, id, "mhanode.log"),
			Confs:      confs(i),
		})
	}
	return c, nil
}

// Peers is the --peers value of the cluster.
func (c *Cluster) Peers() string {
	var p []string
	for _, n := range c.Nodes {
		p = append(p, n.ID+"="+n.RaftAddr)
	}
	return strings.Join(p, ",")
}

// Args is the command line of node i.
func (c *Cluster) Args(i int) []string {
	n := c.Nodes[i]
	args := []string{"--id", n.ID, "--data-dir", n.DataDir, "--raft-addr", n.RaftAddr, "--http-addr", n.HTTPAddr,
		"--gossip-addr", n.GossipAddr, "--peers", c.Peers(), "--token-file", c.TokenFile, "--log-level", "info"}
	for _, f := range n.Confs {
		args = append(args, "--conf", f)
	}
	return append(args, n.ExtraArgs...)
}

// StartAll starts every node.
func (c *Cluster) StartAll() error {
	for i := range c.Nodes {
		if err := c.Start(i); err != nil {
			return err
		}
	}
	return nil
}

// Start starts node i (again) with Args(i); its output is appended to its
// log file.
func (c *Cluster) Start(i int) error {
	return c.StartWith(i, c.Args(i))
}

// StartWith starts node i with the given arguments.
func (c *Cluster) StartWith(i int, args []string) error {
	n := c.Nodes[i]
	if err := os.MkdirAll(filepath.Dir(n.LogPath), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.Bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), n.Env...)
	proc, err := testbed.StartProc(cmd, logf)
	if err != nil {
		return fmt.Errorf("start %s: %w", n.ID, err)
	}
	n.mu.Lock()
	n.proc = proc
	n.mu.Unlock()
	return nil
}

// process is node i's process, nil when it was never started.
func (c *Cluster) process(i int) *testbed.Proc {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// Pid is node i's process id, 0 when it was never started.
func (c *Cluster) Pid(i int) int {
	if p := c.process(i); p != nil {
		return p.Pid()
	}
	return 0
}

// Running reports whether node i's process is alive.
func (c *Cluster) Running(i int) bool {
	p := c.process(i)
	return p != nil && p.Running()
}

// Wait waits for node i's process to exit and returns its exit error.
func (c *Cluster) Wait(i int, timeout time.Duration) error {
	p := c.process(i)
	if p == nil {
		return errors.New(c.Nodes[i].ID + " was never started")
	}
	if err := p.Wait(timeout); err != nil {
		if errors.Is(err, testbed.ErrStillRunning) {
			return fmt.Errorf("%s still running after %s", c.Nodes[i].ID, timeout)
		}
		return err
	}
	return nil
}

// Pause stops node i with SIGSTOP (alive for the kernel, silent for the
// cluster); Resume continues it.
func (c *Cluster) Pause(i int) error { return c.send(i, syscall.SIGSTOP) }

// Resume sends SIGCONT to node i.
func (c *Cluster) Resume(i int) error { return c.send(i, syscall.SIGCONT) }

func (c *Cluster) send(i int, sig syscall.Signal) error {
	p := c.process(i)
	if p == nil || !p.Running() {
		return fmt.Errorf("%s is not running", c.Nodes[i].ID)
	}
	return p.Signal(sig)
}

// Kill sends SIGKILL to node i and waits for it to die.
func (c *Cluster) Kill(i int) error { return c.signal(i, syscall.SIGKILL) }

// Stop sends SIGTERM to node i and waits for it to exit (15 s, then it
// kills it and returns an error).
func (c *Cluster) Stop(i int) error { return c.signal(i, syscall.SIGTERM) }

func (c *Cluster) signal(i int, sig syscall.Signal) error {
	p := c.process(i)
	if p == nil || !p.Running() {
		return nil
	}
	if err := p.Stop(sig, 15*time.Second); err != nil {
		return fmt.Errorf("%s: %w", c.Nodes[i].ID, err)
	}
	return nil
}

// Close kills every node still running (paused ones too).
func (c *Cluster) Close() {
	for i := range c.Nodes {
		c.Kill(i)
	}
}

// Log returns node i's log so far.
func (c *Cluster) Log(i int) string {
	b, _ := os.ReadFile(c.Nodes[i].LogPath)
	return string(b)
}

// Client reaches any node of the cluster.
func (c *Cluster) Client() *api.Client {
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, n.HTTPAddr)
	}
	return &api.Client{Addrs: addrs, Token: c.Token, ProbeTimeout: 500 * time.Millisecond}
}

// NodeClient reaches node i only.
func (c *Cluster) NodeClient(i int) *api.Client {
	return &api.Client{Addrs: []string{c.Nodes[i].HTTPAddr}, Token: c.Token, ProbeTimeout: 500 * time.Millisecond}
}

// Index returns the index of the node with the given ID, -1 if none.
func (c *Cluster) Index(id string) int {
	for i, n := range c.Nodes {
		if n.ID == id {
			return i
		}
	}
	return -1
}

// Leader polls the running nodes until one reports a leader that is
// itself running, and returns its index.
func (c *Cluster) Leader(ctx context.Context) (int, error) {
	var last error
	for {
		for i := range c.Nodes {
			if !c.Running(i) {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := c.NodeClient(i).Status(sctx)
			cancel()
			if err != nil {
				last = err
				continue
			}
			if j := c.Index(st.Leader); j >= 0 && c.Running(j) {
				return j, nil
			}
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("no leader among the running nodes: %w (last error: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitApp polls node i's status (any running node when i < 0) until cond
// holds for the application, and returns that status.
func (c *Cluster) WaitApp(ctx context.Context, i int, app string, cond func(*api.AppStatus) bool) (*api.AppStatus, error) {
	var last string
	for {
		for j := range c.Nodes {
			if (i >= 0 && j != i) || !c.Running(j) {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := c.NodeClient(j).Status(sctx)
			cancel()
			if err != nil {
				last = err.Error()
				continue
			}
			for k := range st.Apps {
				a := &st.Apps[k]
				if a.Name == app {
					if cond(a) {
						return a, nil
					}
					last = fmt.Sprintf("%s: master %s verdict %q lock %v journal %d entries", c.Nodes[j].ID, a.Master, a.Verdict, a.Lock != nil, len(a.Journal))
				}
			}
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for app %s: %w (last: %s)", app, ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// freePort and freePortPair take their ports from testbed, below the
// kernel's ephemeral range and locked against other test processes: a
// port-0 pick could be taken by another process before mhanode binds it.
func freePort() (int, error) { return testbed.FreePort("127.0.0.1") }

func freePortPair() (int, error) { return testbed.FreePortPair("127.0.0.1") }
