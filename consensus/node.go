package consensus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Sentinel errors of the package.
var (
	// ErrNoLeader: no leader became known before the context ended.
	ErrNoLeader = errors.New("no raft leader")
	// ErrNotLeader: the operation needs the leader and this node is not.
	ErrNotLeader = errors.New("not the raft leader")
	// ErrUnauthorized: a forwarded command carried a wrong token.
	ErrUnauthorized = errors.New("forwarding token refused")
	// ErrOutcomeUnknown: a command may or may not have been committed
	// (leadership lost after it was logged, or the forwarded request failed
	// after it was sent). Read the state before retrying.
	ErrOutcomeUnknown = errors.New("command outcome unknown")
	// ErrShutdown: the node is shut down.
	ErrShutdown = errors.New("raft node shut down")
	// ErrPeerMismatch: the stored Raft configuration disagrees with Peers.
	ErrPeerMismatch = errors.New("stored raft configuration differs from the configured peers")
)

// Node is one member of the Raft group.
type Node struct {
	cfg       Config
	logger    hclog.Logger
	raft      *raft.Raft
	boltStore *raftboltdb.BoltStore
	ml        *memberlist.Memberlist

	notifyCh chan bool
	subMu    sync.Mutex
	subs     []chan bool

	stopCh       chan struct{}
	wg           sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error
}

// New starts a node: opens the stores in cfg.DataDir, binds the Raft
// transport and the gossip ring, bootstraps a new data dir from
// cfg.Peers, and starts joining the other peers in the background.
func New(cfg Config, fsm raft.FSM) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, logger: cfg.Logger.Named("consensus").With("id", cfg.ID), notifyCh: make(chan bool, 16), stopCh: make(chan struct{})}
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			n.closeAll()
		}
	}()

	n.boltStore, err = raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(cfg.DataDir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: 2 * time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("open raft store %s (is another mhanode using this data dir?): %w",
			filepath.Join(cfg.DataDir, "raft.db"), err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, cfg.Logger.Named("snapshot"))
	if err != nil {
		return nil, fmt.Errorf("open snapshot store in %s: %w", cfg.DataDir, err)
	}
	trans, err := newTransport(cfg)
	if err != nil {
		return nil, err
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = cfg.Logger.Named("raft")
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.NotifyCh = n.notifyCh

	existing, err := raft.HasExistingState(n.boltStore, n.boltStore, snaps)
	if err != nil {
		trans.Close()
		return nil, fmt.Errorf("read raft state in %s: %w", cfg.DataDir, err)
	}
	if !existing && cfg.Rejoin {
		n.logger.Info("empty data dir and Rejoin: not bootstrapping; waiting to be added by the leader (mhactl members add)")
	}
	if !existing && !cfg.Rejoin {
		if err := raft.BootstrapCluster(rc, n.boltStore, n.boltStore, snaps, trans, peersConfiguration(cfg.Peers)); err != nil {
			trans.Close()
			return nil, fmt.Errorf("bootstrap raft cluster %s in %s: %w", formatPeers(cfg.Peers), cfg.DataDir, err)
		}
		n.logger.Info("bootstrapped a new raft cluster", "peers", formatPeers(cfg.Peers))
	}
	n.raft, err = raft.NewRaft(rc, fsm, n.boltStore, n.boltStore, snaps, trans)
	if err != nil {
		trans.Close()
		return nil, fmt.Errorf("start raft node %s: %w", cfg.ID, err)
	}
	if existing && !cfg.SkipPeerCheck {
		if err := n.checkPeers(); err != nil {
			return nil, err
		}
	}
	if n.ml, err = newGossip(cfg); err != nil {
		return nil, err
	}
	n.wg.Add(3)
	go n.fanOutLeadership()
	go n.joinLoop()
	go n.watchMembership()
	ok = true
	return n, nil
}

// prepareDataDir creates the data dir and checks that it is writable.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create raft data dir %s (check the path and its permissions): %w", dir, err)
	}
	probe, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("raft data dir %s is not writable (check ownership and permissions): %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return nil
}

// newTransport binds the Raft transport: TCP (or mutual TLS) where every
// connection proves the cluster token before raft reads it (auth.go).
func newTransport(cfg Config) (*raft.NetworkTransport, error) {
	advertise, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("resolve raft address %s: %w", cfg.RaftAddr, err)
	}
	layer, err := newAuthLayer(cfg.RaftAddr, advertise, cfg.tokens(), cfg.TLS, cfg.Logger.Named("raft-auth"))
	if err != nil {
		return nil, bindError("raft", cfg.RaftAddr, err)
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  layer,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  cfg.Logger.Named("raft-net"),
	}), nil
}

// bindError explains a failed listen.
func bindError(what, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s address %s is already in use (another mhanode or program listens there: stop it or choose another port): %w", what, addr, err)
	}
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("%s address %s is not an address of this host: %w", what, addr, err)
	}
	return fmt.Errorf("listen on %s address %s: %w", what, addr, err)
}

func peersConfiguration(peers map[string]string) raft.Configuration {
	var c raft.Configuration
	for id, addr := range peers {
		c.Servers = append(c.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(addr)})
	}
	sort.Slice(c.Servers, func(i, j int) bool { return c.Servers[i].ID < c.Servers[j].ID })
	return c
}

// checkPeers compares the stored configuration with cfg.Peers.
func (n *Node) checkPeers() error {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("read stored raft configuration in %s: %w", n.cfg.DataDir, err)
	}
	stored := map[string]string{}
	for _, s := range f.Configuration().Servers {
		stored[string(s.ID)] = string(s.Address)
	}
	if _, member := stored[n.cfg.ID]; !member && len(stored) > 0 {
		return fmt.Errorf("start %s with data dir %s: it was removed from the raft group (stored peers %s): to bring it back, start it with --rejoin, then run `mhactl members add %s %s`: %w",
			n.cfg.ID, n.cfg.DataDir, formatPeers(stored), n.cfg.ID, n.cfg.RaftAddr, ErrPeerMismatch)
	}
	if formatPeers(stored) != formatPeers(n.cfg.Peers) {
		return fmt.Errorf("start %s with data dir %s: stored peers %s, configured peers %s (fix the peer list, or start with --rejoin (SkipPeerCheck) if the membership was changed on purpose): %w",
			n.cfg.ID, n.cfg.DataDir, formatPeers(stored), formatPeers(n.cfg.Peers), ErrPeerMismatch)
	}
	return nil
}

// formatPeers prints a peer map in a stable order: "{a=h:1, b=h:2}".
func formatPeers(peers map[string]string) string {
	parts := make([]string, 0, len(peers))
	for id, addr := range peers {
		parts = append(parts, id+"="+addr)
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ", ") + "}"
}

// closeAll releases what New opened; used on a failed New and by Shutdown.
func (n *Node) closeAll() error {
	var errs []error
	if n.ml != nil {
		if err := n.ml.Leave(time.Second); err != nil {
			n.logger.Warn("leave gossip ring", "error", err)
		}
		errs = append(errs, n.ml.Shutdown())
	}
	if n.raft != nil {
		errs = append(errs, n.raft.Shutdown().Error())
	}
	if n.boltStore != nil {
		errs = append(errs, n.boltStore.Close())
	}
	return errors.Join(errs...)
}

// Shutdown hands leadership to another voter when this node is leader
// (so the group does not wait for an election timeout), leaves the gossip
// ring, stops Raft and closes the stores. It is idempotent.
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() {
		if n.IsLeader() && len(n.cfg.Peers) > 1 {
			start := time.Now()
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				n.logger.Warn("leadership transfer before shutdown failed", "error", err)
			} else {
				n.logger.Info("leadership transferred before shutdown", "took", time.Since(start))
			}
		}
		close(n.stopCh)
		n.shutdownErr = n.closeAll()
		n.wg.Wait()
		if n.shutdownErr != nil {
			n.shutdownErr = fmt.Errorf("shut down raft node %s: %w", n.cfg.ID, n.shutdownErr)
		}
	})
	return n.shutdownErr
}

// fanOutLeadership copies leadership changes to the LeaderCh subscribers.
func (n *Node) fanOutLeadership() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stopCh:
			return
		case v := <-n.notifyCh:
			n.logger.Info("leadership changed", "leader", v)
			n.subMu.Lock()
			for _, ch := range n.subs {
				select {
				case <-ch: // drop the value not consumed: only the latest matters
				default:
				}
				ch <- v
			}
			n.subMu.Unlock()
		}
	}
}

// LeaderCh returns a channel that receives true when this node becomes
// leader and false when it stops being leader. Only the latest value is
// kept if the reader is slow. Each call returns a new subscription.
func (n *Node) LeaderCh() <-chan bool {
	ch := make(chan bool, 1)
	n.subMu.Lock()
	n.subs = append(n.subs, ch)
	n.subMu.Unlock()
	return ch
}

// Raft gives access to the underlying raft.Raft (for tests and tools).
func (n *Node) Raft() *raft.Raft { return n.raft }

// ID is this node's Raft server ID.
func (n *Node) ID() string { return n.cfg.ID }

// IsLeader tells whether this node is the leader right now (it may have
// lost a majority without knowing yet; use VerifyLeader before acting).
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Term is this node's current Raft term. A leader's term changes only
// when it loses leadership, so "still leader in the term in which I took
// the lock" is a leadership check that a regained leadership cannot pass.
func (n *Node) Term() uint64 { return n.raft.CurrentTerm() }

// LeaderID is the ID of the leader this node knows, "" if none.
func (n *Node) LeaderID() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// VerifyLeader confirms with a majority that this node is still leader.
func (n *Node) VerifyLeader() error {
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return fmt.Errorf("verify leadership of %s: %w", n.cfg.ID, err)
	}
	return nil
}

// Barrier waits until every command committed before it is applied to
// this (leader) node's FSM.
func (n *Node) Barrier(timeout time.Duration) error {
	if err := n.raft.Barrier(timeout).Error(); err != nil {
		return fmt.Errorf("raft barrier on %s: %w", n.cfg.ID, err)
	}
	return nil
}

// WaitForLeader polls until a leader is known or ctx ends.
func (n *Node) WaitForLeader(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if n.LeaderID() != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for a leader on %s: %w (%w)", n.cfg.ID, ErrNoLeader, ctx.Err())
		case <-n.stopCh:
			return ErrShutdown
		case <-tick.C:
		}
	}
}

// mapRaftErr adds our sentinels to raft's errors.
func mapRaftErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrShutdown, err)
	}
	return err
}

// ServerInfo is one server of the Raft configuration.
type ServerInfo struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"` // "Voter", "Nonvoter", "Staging"
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
}

// Status is a snapshot of this node's Raft state.
type Status struct {
	ID           string       `json:"id"`
	State        string       `json:"state"` // Follower, Candidate, Leader, Shutdown
	Term         uint64       `json:"term"`
	LeaderID     string       `json:"leader_id"`
	LeaderAddr   string       `json:"leader_addr"`
	LastContact  time.Time    `json:"last_contact"` // zero on the leader
	CommitIndex  uint64       `json:"commit_index"`
	AppliedIndex uint64       `json:"applied_index"`
	LastIndex    uint64       `json:"last_index"`
	Servers      []ServerInfo `json:"servers"`
}

// Stats returns this node's Raft status.
func (n *Node) Stats() Status {
	addr, leaderID := n.raft.LeaderWithID()
	s := Status{
		ID:           n.cfg.ID,
		State:        n.raft.State().String(),
		Term:         n.raft.CurrentTerm(),
		LeaderID:     string(leaderID),
		LeaderAddr:   string(addr),
		LastContact:  n.raft.LastContact(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
		LastIndex:    n.raft.LastIndex(),
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			s.Servers = append(s.Servers, ServerInfo{
				ID: string(srv.ID), Address: string(srv.Address), Suffrage: srv.Suffrage.String(),
				Voter: srv.Suffrage == raft.Voter, Leader: srv.ID == leaderID,
			})
		}
	}
	return s
}
