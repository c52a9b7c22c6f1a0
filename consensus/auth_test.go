package consensus

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/mharaft/mharaft/fsm"
	"github.com/mharaft/mharaft/testbed"
)

func bufLogger(buf *testbed.SyncBuffer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: buf, Level: hclog.Debug})
}

// listenAuth starts an authLayer on 127.0.0.1 that accepts tokens.
func listenAuth(t *testing.T, tokens []string, log *testbed.SyncBuffer) *authLayer {
	t.Helper()
	a, err := newAuthLayer("127.0.0.1:0", nil, tokens, nil, bufLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// TestAuthHandshake: the Raft port admits a dialer only when both know a
// common token; rotation sets (old+new on one side) interoperate; the
// refusal is logged with the remote address and never the token.
func TestAuthHandshake(t *testing.T) {
	const old, new = "old-token-0123456789", "new-token-9876543210"
	tests := []struct {
		name           string
		server, client []string
		wantClient     error  // nil: admitted
		wantServerLog  string // in the listener's log when refused
	}{
		{"same token", []string{old}, []string{old}, nil, ""},
		{"wrong token", []string{old}, []string{"wrong-token-000000000"}, ErrPeerWrongToken, ErrPeerWrongToken.Error()},
		{"rotation: listener accepts new and old", []string{old, new}, []string{old}, nil, ""},
		{"rotation: dialer sends new, knows old", []string{old}, []string{new, old}, nil, ""},
		{"rotation: both moved on", []string{new, old}, []string{new}, nil, ""},
		{"rotation: no token in common", []string{new}, []string{old}, ErrPeerWrongToken, ErrPeerWrongToken.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var slog, clog testbed.SyncBuffer
			server := listenAuth(t, tc.server, &slog)
			client := listenAuth(t, tc.client, &clog)
			accepted := make(chan net.Conn, 1)
			go func() {
				if c, err := server.Accept(); err == nil {
					accepted <- c
				}
			}()
			c, err := client.Dial(raft.ServerAddress(server.Addr().String()), 2*time.Second)
			if tc.wantClient == nil {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer c.Close()
				select {
				case s := <-accepted:
					s.Close()
				case <-time.After(2 * time.Second):
					t.Fatal("the listener did not hand the authenticated connection to raft")
				}
				return
			}
			if !errors.Is(err, tc.wantClient) {
				t.Fatalf("dial error %v, want %v", err, tc.wantClient)
			}
			eventually(t, 2*time.Second, "refusal logged", func() bool {
				return strings.Contains(slog.String(), tc.wantServerLog)
			})
			log := slog.String()
			for _, want := range []string{"refused a raft connection", "remote=127.0.0.1:"} {
				if !strings.Contains(log, want) {
					t.Errorf("listener log lacks %q:\n%s", want, log)
				}
			}
			for _, tok := range append(tc.server, tc.client...) {
				if strings.Contains(log, tok) {
					t.Errorf("listener log shows a token:\n%s", log)
				}
			}
			select {
			case <-accepted:
				t.Fatal("a refused connection reached raft")
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}

// TestAuthRefusesRaftClientWithoutToken: hashicorp/raft's own TCP
// transport (what an intruder would use) sends a forged AppendEntries to a
// transport on the authenticated layer: the RPC fails, nothing reaches the
// consumer, and the listener logs who tried. The same RPC through the
// authenticated layer with the token gets through (the control).
func TestAuthRefusesRaftClientWithoutToken(t *testing.T) {
	var slog testbed.SyncBuffer
	layer := listenAuth(t, []string{testToken}, &slog)
	server := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: layer, MaxPool: 1, Timeout: 2 * time.Second, Logger: bufLogger(&slog)})
	defer server.Close()

	forged := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("intruder"), Addr: []byte("127.0.0.1:1")},
		Term:      1000,
		Entries:   []*raft.Log{{Index: 1, Term: 1000, Type: raft.LogNoop}},
	}
	intruder, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	var resp raft.AppendEntriesResponse
	if err := intruder.AppendEntries("m1", raft.ServerAddress(layer.Addr().String()), forged, &resp); err == nil {
		t.Fatalf("a forged AppendEntries without the token was answered: %+v", resp)
	}
	select {
	case rpc := <-server.Consumer():
		t.Fatalf("the forged RPC reached raft: %T", rpc.Command)
	case <-time.After(300 * time.Millisecond):
	}
	if log := slog.String(); !strings.Contains(log, ErrPeerNotAuthenticating.Error()) {
		t.Fatalf("the listener did not log the unauthenticated peer:\n%s", log)
	}

	// Control: the same RPC with the token reaches the consumer.
	var clog testbed.SyncBuffer
	friend, err := newAuthLayer("127.0.0.1:0", nil, []string{testToken}, nil, bufLogger(&clog))
	if err != nil {
		t.Fatal(err)
	}
	ft := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: friend, MaxPool: 1, Timeout: 2 * time.Second, Logger: bufLogger(&clog)})
	defer ft.Close()
	go func() {
		select {
		case rpc := <-server.Consumer():
			rpc.Respond(&raft.AppendEntriesResponse{Term: 1000, Success: true}, nil)
		case <-time.After(3 * time.Second):
		}
	}()
	resp = raft.AppendEntriesResponse{}
	if err := ft.AppendEntries("m1", raft.ServerAddress(layer.Addr().String()), forged, &resp); err != nil || !resp.Success {
		t.Fatalf("authenticated AppendEntries: %v %+v", err, resp)
	}
}

// TestAuthSilentPeersDoNotBlock: connections that never finish the
// handshake do not delay a manager's connection.
func TestAuthSilentPeersDoNotBlock(t *testing.T) {
	var slog, clog testbed.SyncBuffer
	server := listenAuth(t, []string{testToken}, &slog)
	client := listenAuth(t, []string{testToken}, &clog)
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", server.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	go func() {
		if c, err := server.Accept(); err == nil {
			c.Close()
		}
	}()
	start := time.Now()
	c, err := client.Dial(raft.ServerAddress(server.Addr().String()), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("dial took %s behind 5 silent connections", d)
	}
}

// TestTokenRotation rotates the cluster token of a running 3-node cluster
// in three rolling restarts (accept the new token; send the new token and
// accept the old; drop the old) as docs/SECURITY.md says: after every
// restart there is a leader, a command forwarded by a follower commits on
// every node, and the gossip ring has 3 alive members.
func TestTokenRotation(t *testing.T) {
	const old, new = testToken, "rotated-token-0123456789"
	c := newTCPCluster(t, 3)
	for _, tn := range c.nodes {
		if err := c.start(tn); err != nil {
			t.Fatal(err)
		}
	}
	c.leader(10 * time.Second)
	step := 0
	check := func(what string) {
		t.Helper()
		step++
		c.leader(10 * time.Second)
		f := c.follower()
		app := "rot" + string(rune('a'+step))
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if _, err := f.current.Load().Apply(ctx, fsm.EncodeRegisterApp(fsm.RegisterAppCmd{App: app, At: t0})); err != nil {
			t.Fatalf("%s: forwarded apply via %s: %v", what, f.id, err)
		}
		for _, tn := range c.nodes {
			eventually(t, 5*time.Second, what+": "+tn.id+" applied "+app, func() bool {
				_, ok := tn.fsm.App(app)
				return ok
			})
			eventually(t, 10*time.Second, what+": "+tn.id+" sees 3 alive gossip members", func() bool {
				alive := 0
				for _, m := range tn.current.Load().Members() {
					if m.State == "alive" {
						alive++
					}
				}
				return alive == 3
			})
		}
	}
	phases := []struct {
		name   string
		token  string
		accept []string
	}{
		{"1 accept the new token", old, []string{new}},
		{"2 send the new token, accept the old", new, []string{old}},
		{"3 drop the old token", new, nil},
	}
	for _, ph := range phases {
		for _, tn := range c.nodes {
			c.stop(tn)
			tn.token, tn.accept = ph.token, ph.accept
			if err := c.start(tn); err != nil {
				t.Fatal(err)
			}
			check("phase " + ph.name + ", " + tn.id + " restarted")
		}
	}
}
