package consensus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/fsm"
)

// addTCPNode adds a node to c that is not in c.peers (a manager that will
// join the group): its HTTP listener serves its consensus handlers.
func (c *tcpCluster) addTCPNode(id string) *tcpNode {
	c.t.Helper()
	return c.newNode(id)
}

// newNode adds a node with its own data dir, Raft port pair and HTTP
// listener serving its consensus handlers (503 while it is down).
func (c *tcpCluster) newNode(id string) *tcpNode {
	c.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	tn := &tcpNode{id: id, dir: c.t.TempDir(), raft: "127.0.0.1:" + strconv.Itoa(freeRaftPort(c.t)), httpL: l}
	tn.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		node := tn.current.Load()
		if node == nil {
			http.Error(w, "node down", http.StatusServiceUnavailable)
			return
		}
		mux := http.NewServeMux()
		node.RegisterHandlers(mux)
		mux.ServeHTTP(w, r)
	})}
	go tn.srv.Serve(l)
	c.nodes = append(c.nodes, tn)
	return tn
}

// startRejoin starts tn with Rejoin: the cluster's peers plus itself.
func (c *tcpCluster) startRejoin(tn *tcpNode) error {
	cfg := c.config(tn)
	cfg.Peers = map[string]string{tn.id: tn.raft}
	for id, addr := range c.peers {
		cfg.Peers[id] = addr
	}
	cfg.Rejoin = true
	tn.fsm = fsm.New()
	node, err := New(cfg, tn.fsm)
	if err != nil {
		return err
	}
	tn.current.Store(node)
	return nil
}

// voters is the sorted voter list of tn's configuration.
func voters(t *testing.T, tn *tcpNode) string {
	t.Helper()
	conf, err := tn.current.Load().configuration()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(voterIDs(conf, ""), ",")
}

// caughtUp waits until tn's FSM shows app1 paused as `paused`.
func caughtUp(t *testing.T, tn *tcpNode, paused bool) {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("%s sees app1 paused=%v", tn.id, paused), func() bool {
		a, ok := tn.fsm.App("app1")
		return ok && a.Paused == paused
	})
}

// TestMembershipChanges runs every membership rule against four real
// nodes over TCP: the leader hands over before its removal; a removal
// below 3 voters and a voter nobody answers at are refused without Force;
// a removed node says so and comes back with AddMember (running) or with
// Rejoin then AddMember (restarted); a Rejoin node with an empty data dir
// does not bootstrap a group of its own.
func TestMembershipChanges(t *testing.T) {
	c := newTCPCluster(t, 4)
	for _, tn := range c.nodes {
		if err := c.start(tn); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	leader := c.leader(10 * time.Second)
	reg := fsm.EncodeRegisterApp(fsm.RegisterAppCmd{App: "app1", LastFailoverMinute: 480, At: t0,
		Servers: []fsm.Server{{Name: "server1", Hostname: "127.0.0.1", Port: 3306}}})
	if _, err := leader.current.Load().Apply(ctx, reg); err != nil {
		t.Fatal(err)
	}
	pause := func(paused bool) {
		t.Helper()
		cmd := fsm.EncodePause(fsm.PauseCmd{App: "app1", By: "test", At: t0})
		if !paused {
			cmd = fsm.EncodeResume(fsm.ResumeCmd{App: "app1", By: "test", At: t0})
		}
		if _, err := c.leader(10*time.Second).current.Load().Apply(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	var removed *tcpNode

	t.Run("removing the leader hands the leadership over first", func(t *testing.T) {
		old := c.leader(10 * time.Second)
		err := old.current.Load().RemoveMember(ctx, old.id, ChangeOptions{})
		if !errors.Is(err, ErrLeadershipTransferred) || !errors.Is(err, ErrNotLeader) {
			t.Fatalf("leader removing itself: %v, want ErrLeadershipTransferred and ErrNotLeader", err)
		}
		t.Logf("leader removing itself: %v", err)
		if old.current.Load().IsLeader() || voters(t, old) != "m1,m2,m3,m4" {
			t.Fatalf("after the handover %s leader=%v voters %s, want a follower and nothing removed yet", old.id, old.current.Load().IsLeader(), voters(t, old))
		}
		nl := c.leader(10 * time.Second)
		if nl == old {
			t.Fatalf("%s is leader again", old.id)
		}
		if err := nl.current.Load().RemoveMember(ctx, old.id, ChangeOptions{}); err != nil {
			t.Fatalf("new leader %s removes %s: %v", nl.id, old.id, err)
		}
		removed = old
		eventually(t, 10*time.Second, old.id+" says it was removed", func() bool {
			err := old.current.Load().Membership()
			return errors.Is(err, ErrNotMember) && strings.Contains(err.Error(), "mhactl members add "+old.id+" "+old.raft)
		})
		t.Logf("removed node: %v", old.current.Load().Membership())
		if st := old.current.Load().Stats(); st.State == "Shutdown" {
			t.Fatalf("removed node's raft is %s, want it running (a follower that can be added back)", st.State)
		}
		for _, tn := range c.nodes {
			if tn != old && tn.current.Load().Membership() != nil {
				t.Fatalf("%s: %v, want a member", tn.id, tn.current.Load().Membership())
			}
		}
	})

	t.Run("removal below 3 voters is refused without force", func(t *testing.T) {
		l := c.leader(10 * time.Second)
		f := c.follower()
		if f == removed {
			for _, tn := range c.nodes {
				if tn != removed && tn != l {
					f = tn
				}
			}
		}
		before := voters(t, l)
		err := l.current.Load().RemoveMember(ctx, f.id, ChangeOptions{})
		if !errors.Is(err, ErrTooFewVoters) || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("remove %s from %s: %v, want ErrTooFewVoters naming --force", f.id, before, err)
		}
		t.Logf("refused: %v", err)
		if got := voters(t, l); got != before {
			t.Fatalf("voters %s after a refused removal, want %s", got, before)
		}
	})

	t.Run("adding a voter nobody answers at is refused without force", func(t *testing.T) {
		l := c.leader(10 * time.Second)
		before := voters(t, l)
		dead := "127.0.0.1:" + strconv.Itoa(freeRaftPort(t))
		start := time.Now()
		err := l.current.Load().AddMember(ctx, "m9", dead, ChangeOptions{ProbeTimeout: time.Second})
		if !errors.Is(err, ErrMemberUnreachable) || !strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("add m9=%s: %v, want ErrMemberUnreachable naming the address and --force", dead, err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("the refusal took %s, want it bounded by the probe timeout", took)
		}
		t.Logf("refused: %v", err)
		if got := voters(t, l); got != before {
			t.Fatalf("voters %s after a refused add, want %s", got, before)
		}
		// An ID or address already in the configuration is refused even with force.
		if err := l.current.Load().AddMember(ctx, l.id, dead, ChangeOptions{Force: true}); !errors.Is(err, ErrMemberExists) {
			t.Fatalf("add an existing ID: %v, want ErrMemberExists", err)
		}
		// With force it is added, and a removal back to 3 voters needs no force.
		if err := l.current.Load().AddMember(ctx, "m9", dead, ChangeOptions{Force: true}); err != nil {
			t.Fatalf("add m9 with force: %v", err)
		}
		if err := l.current.Load().RemoveMember(ctx, "m9", ChangeOptions{}); err != nil {
			t.Fatalf("remove m9: %v", err)
		}
		if got := voters(t, l); got != before {
			t.Fatalf("voters %s, want %s", got, before)
		}
		if err := l.current.Load().RemoveMember(ctx, "m9", ChangeOptions{}); !errors.Is(err, ErrUnknownMember) {
			t.Fatalf("remove an unknown member: %v, want ErrUnknownMember", err)
		}
	})

	t.Run("a removed running node comes back with AddMember", func(t *testing.T) {
		pause(true) // committed while it is out: it must catch up
		l := c.leader(10 * time.Second)
		if err := l.current.Load().AddMember(ctx, removed.id, removed.raft, ChangeOptions{}); err != nil {
			t.Fatalf("add %s back: %v", removed.id, err)
		}
		eventually(t, 10*time.Second, removed.id+" a member again", func() bool { return removed.current.Load().Membership() == nil })
		caughtUp(t, removed, true)
		if got := voters(t, l); got != "m1,m2,m3,m4" {
			t.Fatalf("voters %s", got)
		}
	})

	t.Run("a restarted removed node needs Rejoin, then AddMember", func(t *testing.T) {
		l := c.leader(10 * time.Second)
		f := c.follower()
		if err := l.current.Load().RemoveMember(ctx, f.id, ChangeOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, f.id+" says it was removed", func() bool {
			return errors.Is(f.current.Load().Membership(), ErrNotMember)
		})
		c.stop(f)
		err := c.start(f)
		if !errors.Is(err, ErrPeerMismatch) || !strings.Contains(err.Error(), "--rejoin") || !strings.Contains(err.Error(), "removed") {
			t.Fatalf("restart of a removed node without Rejoin: %v, want ErrPeerMismatch saying it was removed and naming --rejoin", err)
		}
		t.Logf("restart without rejoin: %v", err)
		pause(false)
		cfg := c.config(f)
		cfg.Rejoin = true
		f.fsm = fsm.New()
		node, err := New(cfg, f.fsm)
		if err != nil {
			t.Fatalf("restart with Rejoin: %v", err)
		}
		f.current.Store(node)
		if err := node.Membership(); !errors.Is(err, ErrNotMember) {
			t.Fatalf("restarted removed node: %v, want ErrNotMember", err)
		}
		if err := l.current.Load().AddMember(ctx, f.id, f.raft, ChangeOptions{}); err != nil {
			t.Fatalf("add %s back: %v", f.id, err)
		}
		eventually(t, 10*time.Second, f.id+" a member again", func() bool { return node.Membership() == nil })
		caughtUp(t, f, false)
	})

	t.Run("a Rejoin node with an empty data dir waits to be added", func(t *testing.T) {
		n5 := c.addTCPNode("m5")
		if err := c.startRejoin(n5); err != nil {
			t.Fatal(err)
		}
		node := n5.current.Load()
		if st := node.Stats(); len(st.Servers) != 0 || st.State == "Leader" {
			t.Fatalf("fresh Rejoin node: %+v, want no configuration (not bootstrapped)", st)
		}
		if err := node.Membership(); !errors.Is(err, ErrNotMember) || !strings.Contains(err.Error(), "not been added") {
			t.Fatalf("fresh Rejoin node: %v, want ErrNotMember saying it has not been added", err)
		}
		l := c.leader(10 * time.Second)
		if err := l.current.Load().AddMember(ctx, n5.id, n5.raft, ChangeOptions{}); err != nil {
			t.Fatalf("add m5: %v", err)
		}
		eventually(t, 10*time.Second, "m5 a member", func() bool { return node.Membership() == nil })
		caughtUp(t, n5, false)
		if got := voters(t, n5); got != "m1,m2,m3,m4,m5" {
			t.Fatalf("m5 sees voters %s", got)
		}
	})
}
