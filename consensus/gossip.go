package consensus

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// nodeMeta is what every manager advertises through gossip.
type nodeMeta struct {
	HTTPAddr   string `json:"http_addr"`
	Datacenter string `json:"datacenter"`
	RaftAddr   string `json:"raft_addr"`
}

// metaDelegate serves this node's metadata to memberlist; the other
// delegate hooks are unused.
type metaDelegate struct{ meta []byte }

func (d *metaDelegate) NodeMeta(limit int) []byte {
	if len(d.meta) > limit {
		return nil
	}
	return d.meta
}
func (d *metaDelegate) NotifyMsg([]byte)                           {}
func (d *metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *metaDelegate) LocalState(join bool) []byte                { return nil }
func (d *metaDelegate) MergeRemoteState(buf []byte, join bool)     {}

// newGossip starts memberlist on cfg.GossipAddr with short probe intervals.
func newGossip(cfg Config) (*memberlist.Memberlist, error) {
	host, port, err := splitHostPort(cfg.GossipAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.GossipAddr, err)
	}
	meta, err := json.Marshal(nodeMeta{HTTPAddr: cfg.HTTPAddr, Datacenter: cfg.Datacenter, RaftAddr: cfg.RaftAddr})
	if err != nil {
		return nil, fmt.Errorf("encode gossip metadata: %w", err)
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.ID
	mc.BindAddr = host
	mc.BindPort = port
	mc.AdvertiseAddr = host
	mc.AdvertisePort = port
	mc.Delegate = &metaDelegate{meta: meta}
	mc.ProbeInterval = 500 * time.Millisecond
	mc.ProbeTimeout = 200 * time.Millisecond
	mc.GossipInterval = 100 * time.Millisecond
	mc.PushPullInterval = 10 * time.Second
	mc.SuspicionMult = 3
	mc.TCPTimeout = 2 * time.Second
	var accepted [][]byte
	for _, t := range cfg.tokens()[1:] {
		accepted = append(accepted, gossipKey(t))
	}
	keyring, err := memberlist.NewKeyring(accepted, gossipKey(cfg.Token))
	if err != nil {
		return nil, fmt.Errorf("gossip keyring: %w", err)
	}
	mc.Keyring = keyring
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.Logger = cfg.Logger.Named("memberlist").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	if ip := net.ParseIP(host); ip == nil {
		return nil, fmt.Errorf("gossip address %s: the host must be an IP address", cfg.GossipAddr)
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, bindError("gossip", cfg.GossipAddr, err)
	}
	return ml, nil
}

// gossipKey is the AES-256 key of the gossip ring for a token: messages
// are encrypted with Token's and decrypted with any accepted token's.
func gossipKey(token string) []byte {
	k := sha256.Sum256([]byte("mharaft-gossip:" + token))
	return k[:]
}

// joinLoop joins the seeds that are not alive members, and keeps trying
// in the background while some are missing.
func (n *Node) joinLoop() {
	defer n.wg.Done()
	seeds, err := n.cfg.gossipSeeds()
	if err != nil {
		n.logger.Error("gossip seeds", "error", err)
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		alive := map[string]bool{}
		for _, m := range n.ml.Members() {
			if m.State == memberlist.StateAlive {
				alive[m.Address()] = true
			}
		}
		var missing []string
		for _, s := range seeds {
			if !alive[s] {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			if joined, err := n.ml.Join(missing); err != nil && joined == 0 {
				n.logger.Debug("join gossip seeds", "seeds", missing, "error", err)
			}
		}
		select {
		case <-n.stopCh:
			return
		case <-tick.C:
		}
	}
}

// Member is one manager seen through gossip.
type Member struct {
	Name       string `json:"name"` // raft ID
	Addr       string `json:"addr"` // gossip address
	Datacenter string `json:"datacenter"`
	HTTPAddr   string `json:"http_addr"`
	RaftAddr   string `json:"raft_addr"`
	State      string `json:"state"` // alive, suspect, dead, left
}

// Members lists the gossip ring as this node sees it.
func (n *Node) Members() []Member {
	var out []Member
	for _, m := range n.ml.Members() {
		var meta nodeMeta
		_ = json.Unmarshal(m.Meta, &meta) // a node without metadata still shows up
		out = append(out, Member{
			Name: m.Name, Addr: m.Address(), Datacenter: meta.Datacenter,
			HTTPAddr: meta.HTTPAddr, RaftAddr: meta.RaftAddr, State: stateName(m.State),
		})
	}
	return out
}

func stateName(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	case memberlist.StateLeft:
		return "left"
	}
	return fmt.Sprintf("state-%d", s)
}

// LeaderHTTPAddr is the API address of the leader, learned through
// gossip; "" when no leader is known or it has not gossiped yet.
func (n *Node) LeaderHTTPAddr() string {
	id := n.LeaderID()
	if id == "" {
		return ""
	}
	if id == n.cfg.ID {
		return n.cfg.HTTPAddr
	}
	for _, m := range n.ml.Members() {
		if m.Name != id || m.State == memberlist.StateDead || m.State == memberlist.StateLeft {
			continue
		}
		var meta nodeMeta
		if json.Unmarshal(m.Meta, &meta) == nil {
			return meta.HTTPAddr
		}
	}
	return ""
}
