package consensus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mharaft/mharaft/fsm"
	"github.com/mharaft/mharaft/testbed"
)

const testToken = "s3cret-token"

// eventually polls cond every 20ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("%s: not within %s", what, timeout)
		case <-tick.C:
		}
	}
}

// freeRaftPort returns a port p such that p (TCP) and p+1 (TCP and UDP,
// for gossip) are free on 127.0.0.1, from testbed (below the ephemeral
// range, locked against other test processes).
func freeRaftPort(t *testing.T) int {
	t.Helper()
	p, err := testbed.FreePortPair("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tcpNode is one consensus.Node with its own HTTP listener, which survives
// restarts of the node.
type tcpNode struct {
	id      string
	dir     string
	raft    string
	httpL   net.Listener
	srv     *http.Server
	current atomic.Pointer[Node]
	fsm     *fsm.FSM
	token   string   // default testToken
	accept  []string // Config.AcceptTokens
}

type tcpCluster struct {
	t     *testing.T
	nodes []*tcpNode
	peers map[string]string
	tls   *tls.Config // Raft over TLS when set
}

func newTCPCluster(t *testing.T, n int) *tcpCluster {
	c := &tcpCluster{t: t, peers: map[string]string{}}
	for i := 0; i < n; i++ {
		tn := c.newNode(fmt.Sprintf("m%d", i+1))
		c.peers[tn.id] = tn.raft
	}
	t.Cleanup(func() {
		for _, tn := range c.nodes {
			if node := tn.current.Load(); node != nil {
				node.Shutdown()
			}
			tn.srv.Close()
		}
	})
	return c
}

func (c *tcpCluster) config(tn *tcpNode) Config {
	token := tn.token
	if token == "" {
		token = testToken
	}
	return Config{
		ID: tn.id, DataDir: tn.dir, RaftAddr: tn.raft, Peers: c.peers,
		HTTPAddr: tn.httpL.Addr().String(), Datacenter: "dc1", Token: token, AcceptTokens: tn.accept,
		Logger: testLogger(c.t, tn.id), TLS: c.tls,
		Responses: ResponseCodec{Encode: fsm.MarshalResponse, Decode: fsm.UnmarshalResponse},
	}
}

func (c *tcpCluster) start(tn *tcpNode) error {
	tn.fsm = fsm.New()
	node, err := New(c.config(tn), tn.fsm)
	if err != nil {
		return err
	}
	tn.current.Store(node)
	return nil
}

func (c *tcpCluster) stop(tn *tcpNode) {
	node := tn.current.Swap(nil)
	if err := node.Shutdown(); err != nil {
		c.t.Fatalf("shutdown %s: %v", tn.id, err)
	}
	if err := node.Shutdown(); err != nil { // idempotent
		c.t.Fatalf("second shutdown %s: %v", tn.id, err)
	}
}

// leader polls for a single leader among running nodes.
func (c *tcpCluster) leader(timeout time.Duration) *tcpNode {
	c.t.Helper()
	var found *tcpNode
	eventually(c.t, timeout, "a single leader", func() bool {
		found = nil
		count := 0
		for _, tn := range c.nodes {
			if node := tn.current.Load(); node != nil && node.IsLeader() {
				found = tn
				count++
			}
		}
		return count == 1
	})
	return found
}

func (c *tcpCluster) follower() *tcpNode {
	for _, tn := range c.nodes {
		if node := tn.current.Load(); node != nil && !node.IsLeader() {
			return tn
		}
	}
	c.t.Fatal("no running follower")
	return nil
}

func TestTCPCluster(t *testing.T) {
	c := newTCPCluster(t, 3)
	start := time.Now()
	for _, tn := range c.nodes {
		if err := c.start(tn); err != nil {
			t.Fatal(err)
		}
	}
	leader := c.leader(10 * time.Second)
	t.Logf("first leader %s elected %s after start", leader.id, time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("gossip members and leader HTTP address", func(t *testing.T) {
		f := c.follower()
		eventually(t, 10*time.Second, "3 alive members with HTTP addresses", func() bool {
			alive := 0
			for _, m := range f.current.Load().Members() {
				if m.State == "alive" && m.HTTPAddr != "" && m.Datacenter == "dc1" {
					alive++
				}
			}
			return alive == 3
		})
		eventually(t, 5*time.Second, "leader HTTP address known", func() bool {
			return f.current.Load().LeaderHTTPAddr() == leader.httpL.Addr().String()
		})
		st := f.current.Load().Stats()
		if st.State != "Follower" || st.LeaderID != leader.id || len(st.Servers) != 3 || !st.Servers[0].Voter {
			t.Fatalf("follower stats %+v", st)
		}
	})

	t.Run("apply via a follower is forwarded and committed", func(t *testing.T) {
		f := c.follower()
		reg := fsm.EncodeRegisterApp(fsm.RegisterAppCmd{App: "app1", LastFailoverMinute: 480, At: t0,
			Servers: []fsm.Server{{Name: "server1", Hostname: "127.0.0.1", Port: 3306}}})
		if _, err := f.current.Load().Apply(ctx, reg); err != nil {
			t.Fatal(err)
		}
		resp, err := f.current.Load().Apply(ctx, lockCmd(f.id, t0))
		if err != nil {
			t.Fatal(err)
		}
		if l, ok := resp.(fsm.Lock); !ok || l.Epoch != 1 {
			t.Fatalf("forwarded AcquireLock answered %#v", resp)
		}
		// A refusal travels back with its sentinel.
		_, err = c.nodes[0].current.Load().Apply(ctx, lockCmd("other", t0))
		if !errors.Is(err, fsm.ErrLockHeld) || !strings.Contains(err.Error(), "epoch 1") {
			t.Fatalf("second AcquireLock: %v, want ErrLockHeld naming epoch 1", err)
		}
		for _, tn := range c.nodes {
			eventually(t, 5*time.Second, tn.id+" applied the lock", func() bool {
				a, ok := tn.fsm.App("app1")
				return ok && a.Lock != nil && a.Lock.Epoch == 1
			})
		}
	})

	t.Run("wrong token is refused", func(t *testing.T) {
		cmd := fsm.EncodeAck(fsm.AckCmd{App: "app1", By: "intruder", At: t0})
		for _, tok := range []string{"Bearer wrong", "", "Bearer " + testToken + "x", testToken} {
			req, _ := http.NewRequest(http.MethodPost, "http://"+leader.httpL.Addr().String()+ApplyPath, strings.NewReader(string(cmd)))
			if tok != "" {
				req.Header.Set("Authorization", tok)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("Authorization %q: HTTP %d, want 401", tok, res.StatusCode)
			}
		}
		// A follower configured with another token gets ErrUnauthorized.
		f := c.follower()
		node := f.current.Load()
		saved := node.cfg.Token
		node.cfg.Token = "wrong"
		_, err := node.Apply(ctx, cmd)
		node.cfg.Token = saved
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("apply with a wrong token: %v, want ErrUnauthorized", err)
		}
	})

	t.Run("restart keeps state; disagreeing peers are refused", func(t *testing.T) {
		f := c.follower()
		c.stop(f)
		// Commit something while it is down.
		if _, err := leader.current.Load().Apply(ctx, fsm.EncodePause(fsm.PauseCmd{App: "app1", By: "op", At: t0})); err != nil {
			t.Fatal(err)
		}

		cfg := c.config(f)
		cfg.Peers = map[string]string{f.id: f.raft, "m9": "127.0.0.1:1"}
		_, err := New(cfg, fsm.New())
		if !errors.Is(err, ErrPeerMismatch) || !strings.Contains(err.Error(), "m9=127.0.0.1:1") || !strings.Contains(err.Error(), leader.id+"="+leader.raft) {
			t.Fatalf("start with other peers: %v, want ErrPeerMismatch naming both lists", err)
		}
		t.Logf("peer mismatch error: %v", err)

		if err := c.start(f); err != nil {
			t.Fatalf("restart %s: %v", f.id, err)
		}
		want, _ := leader.fsm.App("app1")
		eventually(t, 10*time.Second, f.id+" state equal to the leader's after restart", func() bool {
			got, ok := f.fsm.App("app1")
			return ok && reflect.DeepEqual(got, want) && got.Paused
		})
	})

	t.Run("port in use and bad data dir are clear errors", func(t *testing.T) {
		cfg := c.config(leader)
		cfg.ID, cfg.DataDir, cfg.Peers = "x", t.TempDir(), nil
		_, err := New(cfg, fsm.New())
		if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), leader.raft) {
			t.Fatalf("raft port in use: %v", err)
		}
		t.Logf("port in use error: %v", err)

		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg = c.config(leader)
		cfg.DataDir = filepath.Join(file, "data")
		_, err = New(cfg, fsm.New())
		if err == nil || !strings.Contains(err.Error(), cfg.DataDir) {
			t.Fatalf("data dir under a file: %v", err)
		}
		t.Logf("bad data dir error: %v", err)
	})

	t.Run("graceful leader shutdown hands over leadership", func(t *testing.T) {
		old := c.leader(5 * time.Second)
		stopped := time.Now()
		c.stop(old)
		nl := c.leader(10 * time.Second)
		t.Logf("new leader %s %s after graceful shutdown of leader %s", nl.id, time.Since(stopped).Round(time.Millisecond), old.id)
		if err := c.start(old); err != nil {
			t.Fatalf("restart %s: %v", old.id, err)
		}
		eventually(t, 10*time.Second, old.id+" caught up", func() bool {
			a, ok := old.fsm.App("app1")
			return ok && a.Paused
		})
	})

	t.Run("leader crash elects a new leader", func(t *testing.T) {
		old := c.leader(5 * time.Second)
		stopped := time.Now()
		// Stop raft without a leadership transfer: the others see what a
		// crash looks like (a closed connection, then silence).
		if err := old.current.Load().Raft().Shutdown().Error(); err != nil {
			t.Fatal(err)
		}
		var nl *tcpNode
		eventually(t, 10*time.Second, "a new leader", func() bool {
			for _, tn := range c.nodes {
				if tn != old && tn.current.Load().IsLeader() {
					nl = tn
					return true
				}
			}
			return false
		})
		t.Logf("new leader %s elected %s after leader %s stopped without handover", nl.id, time.Since(stopped).Round(time.Millisecond), old.id)
		c.stop(old)
		var f *tcpNode
		for _, tn := range c.nodes {
			if tn != old && tn != nl {
				f = tn
			}
		}
		resp, err := f.current.Load().Apply(ctx, fsm.EncodeReleaseLock(fsm.ReleaseLockCmd{App: "app1", Epoch: 1, Result: fsm.ResultFailed, At: t0}))
		if err != nil || resp != nil {
			t.Fatalf("apply via the remaining follower: %v %v", resp, err)
		}
	})
}
