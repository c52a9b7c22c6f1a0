package consensus

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Defaults tuned for managers on one LAN (or loopback in tests).
//
// Election after a leader's death: a follower notices the silence between
// HeartbeatTimeout and about three times it (hashicorp/raft checks on a
// timer of one to two HeartbeatTimeouts), and when its pre-vote is refused
// (the other follower still believes in the dead leader, or holds a
// longer log) it tries again after one to two ElectionTimeouts (which
// hashicorp/raft requires to be at least HeartbeatTimeout). With 500 ms
// each, kills of the leader took 1.0-1.9 s (issue 17); 250 ms halves it.
// The leader sends heartbeats every HeartbeatTimeout/10 (25 ms), so a
// follower starts an election only if it heard nothing for 250 ms or more;
// LeaderLeaseTimeout is at its maximum (HeartbeatTimeout), so a leader
// steps down only after 250 ms without hearing from a majority.
//
// Snapshots and log: an observation heartbeat entry carries about 50 bytes
// per application (one per manager per RefreshEvery), so with 1,000
// applications the log grows by about 150 KB a second; the default
// TrailingLogs of hashicorp/raft (10,240 entries) would keep about 0.5 GB.
// A snapshot is taken when SnapshotThreshold entries were written since the
// last one, checked every SnapshotInterval (randomized up to twice it), and
// TrailingLogs entries stay after it for followers slightly behind.
const (
	DefaultHeartbeatTimeout   = 250 * time.Millisecond
	DefaultElectionTimeout    = 250 * time.Millisecond
	DefaultLeaderLeaseTimeout = 250 * time.Millisecond
	DefaultApplyTimeout       = 10 * time.Second
	DefaultSnapshotThreshold  = 1024
	DefaultSnapshotInterval   = 30 * time.Second
	DefaultTrailingLogs       = 1024
)

// Config configures one Raft node.
type Config struct {
	// ID is this manager's Raft server ID (and its memberlist node name).
	ID string
	// DataDir holds raft.db (log and stable store) and snapshots/.
	DataDir string
	// RaftAddr is the host:port the Raft transport binds to and advertises.
	RaftAddr string
	// Peers maps every voter's ID to its Raft address, this node included.
	// It must be identical on every node; it bootstraps a new data dir.
	// Empty means a single-node cluster of this node.
	Peers map[string]string
	// SkipPeerCheck allows a restart whose stored configuration differs from
	// Peers (after AddMember/RemoveMember changed the membership).
	SkipPeerCheck bool
	// Rejoin starts a node that joins an existing group instead of
	// founding one: an empty data dir is not bootstrapped from Peers (the
	// node waits until the leader adds it with AddMember), and the stored
	// peers are not checked (SkipPeerCheck), so a removed member can come
	// back. Peers still seed the gossip ring.
	Rejoin bool
	// GossipAddr is the memberlist bind address; default: the Raft host and
	// the Raft port + 1.
	GossipAddr string
	// GossipPeers maps peer IDs to their gossip addresses where they do not
	// follow the Raft port + 1 rule.
	GossipPeers map[string]string
	// HTTPAddr is this node's API address, advertised to the others so
	// that followers can forward commands to the leader.
	HTTPAddr string
	// Datacenter of this manager, advertised through gossip.
	Datacenter string
	// Token is the cluster's secret (required): every connection to the
	// Raft port must prove it (auth.go), forwarded commands carry it as a
	// bearer token, and it keys the gossip encryption (AES-256 of its
	// SHA-256). It is what this node sends.
	Token string
	// AcceptTokens are accepted besides Token, never sent: during a token
	// rotation (docs/SECURITY.md) a manager accepts the old and the new
	// token. The Raft handshake, forwarded commands and gossip (secondary
	// keyring keys) accept them.
	AcceptTokens []string
	// Logger receives raft and memberlist logs; default hclog.Default().
	Logger hclog.Logger
	// TLS, when set, secures the Raft transport and the forwarding client
	// (https). It must hold this node's certificate and the CA that signs
	// the peers' (RootCAs and ClientCAs).
	TLS *tls.Config
	// HTTPClient forwards commands; default: a client with a 15 s timeout.
	HTTPClient *http.Client
	// Responses carries the FSM's Apply responses from the leader back to
	// the follower that forwarded the command (required).
	Responses ResponseCodec

	HeartbeatTimeout   time.Duration // default DefaultHeartbeatTimeout
	ElectionTimeout    time.Duration // default DefaultElectionTimeout
	LeaderLeaseTimeout time.Duration // default DefaultLeaderLeaseTimeout
	// ApplyTimeout bounds Apply when the context has no deadline.
	ApplyTimeout time.Duration

	SnapshotThreshold uint64        // default DefaultSnapshotThreshold
	SnapshotInterval  time.Duration // default DefaultSnapshotInterval
	TrailingLogs      uint64        // default DefaultTrailingLogs
}

// ResponseCodec is the contract between consensus and the FSM for
// forwarded commands: the leader encodes the FSM's Apply response (a value
// or an error, the FSM's refusal) with Encode, and the follower that
// forwarded the command decodes it with Decode. Decode returns a refusal as
// its value (an error value, which Apply then returns as its error) and
// uses its own error only for a body it cannot read. An error value should
// keep the identity callers test with errors.Is (mharaft: fsm.MarshalResponse
// and fsm.UnmarshalResponse keep the fsm sentinels).
type ResponseCodec struct {
	Encode func(resp any) ([]byte, error)
	Decode func(body []byte) (any, error)
}

// withDefaults validates the configuration and fills in defaults.
func (c Config) withDefaults() (Config, error) {
	if c.ID == "" {
		return c, errors.New("consensus config: ID is required")
	}
	if c.DataDir == "" {
		return c, errors.New("consensus config: DataDir is required")
	}
	if c.Token == "" {
		return c, errors.New("consensus config: Token (the shared secret for forwarding) is required")
	}
	if c.Responses.Encode == nil || c.Responses.Decode == nil {
		return c, errors.New("consensus config: Responses (how the FSM's Apply responses travel to a forwarding follower) needs Encode and Decode")
	}
	host, port, err := splitHostPort(c.RaftAddr)
	if err != nil {
		return c, fmt.Errorf("consensus config: raft address %q: %w", c.RaftAddr, err)
	}
	if c.Rejoin {
		c.SkipPeerCheck = true
	}
	if len(c.Peers) == 0 {
		c.Peers = map[string]string{c.ID: c.RaftAddr}
	}
	if addr, ok := c.Peers[c.ID]; !ok || addr != c.RaftAddr {
		return c, fmt.Errorf("consensus config: peers %s must contain this node %s=%s", formatPeers(c.Peers), c.ID, c.RaftAddr)
	}
	if c.GossipAddr == "" {
		c.GossipAddr = net.JoinHostPort(host, strconv.Itoa(port+1))
	}
	if c.Logger == nil {
		c.Logger = hclog.Default()
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 15 * time.Second}
		if c.TLS != nil {
			c.HTTPClient.Transport = &http.Transport{TLSClientConfig: c.TLS.Clone()}
		}
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = DefaultElectionTimeout
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = DefaultLeaderLeaseTimeout
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = DefaultApplyTimeout
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = DefaultSnapshotInterval
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	return c, nil
}

// tokens is Token then AcceptTokens (without empty or repeated ones).
func (c Config) tokens() []string {
	out := []string{c.Token}
	for _, t := range c.AcceptTokens {
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// gossipSeeds returns the gossip addresses of the other peers.
func (c Config) gossipSeeds() ([]string, error) {
	var seeds []string
	for id, raftAddr := range c.Peers {
		if id == c.ID {
			continue
		}
		if g, ok := c.GossipPeers[id]; ok {
			seeds = append(seeds, g)
			continue
		}
		host, port, err := splitHostPort(raftAddr)
		if err != nil {
			return nil, fmt.Errorf("peer %s raft address %q: %w", id, raftAddr, err)
		}
		seeds = append(seeds, net.JoinHostPort(host, strconv.Itoa(port+1)))
	}
	return seeds, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65534 {
		return "", 0, fmt.Errorf("port %q out of range", p)
	}
	return host, port, nil
}
