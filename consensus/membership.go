package consensus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Sentinel errors of membership changes and of a node's own membership.
var (
	// ErrTooFewVoters: the removal would leave fewer than MinVoters voters
	// (refused unless ChangeOptions.Force).
	ErrTooFewVoters = errors.New("the change would leave fewer than 3 voters")
	// ErrMemberUnreachable: nothing answers at the new voter's Raft address
	// (refused unless ChangeOptions.Force).
	ErrMemberUnreachable = errors.New("nothing answers at the new member's address")
	// ErrUnknownMember: the ID is not in the Raft configuration.
	ErrUnknownMember = errors.New("no such member in the raft configuration")
	// ErrMemberExists: the ID, or another member at that address, is
	// already in the Raft configuration.
	ErrMemberExists = errors.New("already a member of the raft configuration")
	// ErrLeadershipTransferred: the leader was asked to remove itself; it
	// handed the leadership to another voter first, and the new leader must
	// run the removal (it always wraps ErrNotLeader too).
	ErrLeadershipTransferred = errors.New("leadership handed over before removing this node")
	// ErrNotMember: this node is not (or no longer) in the Raft
	// configuration it holds: it was removed, or it was started with Rejoin
	// and has not been added yet.
	ErrNotMember = errors.New("this manager is not a member of the raft group")
)

// MinVoters is the smallest group a removal may leave without Force: with
// fewer than 3 voters, losing any one of them stops the group.
const MinVoters = 3

// DefaultProbeTimeout bounds the reachability probe of a new voter.
const DefaultProbeTimeout = 2 * time.Second

// ChangeOptions qualify AddMember and RemoveMember.
type ChangeOptions struct {
	// Force skips the safety checks (fewer than MinVoters voters left, new
	// voter unreachable); never the ones that make no sense (removing the
	// last voter, an ID or address already in the configuration).
	Force bool
	// ProbeTimeout bounds the reachability probe (DefaultProbeTimeout when 0).
	ProbeTimeout time.Duration
}

// configuration reads the latest Raft configuration (raft v1.7 does not
// say at which log index it was appended, nor whether it is committed).
func (n *Node) configuration() (raft.Configuration, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Configuration{}, fmt.Errorf("read the raft configuration of %s: %w", n.cfg.ID, mapRaftErr(err))
	}
	return f.Configuration(), nil
}

// describe prints a configuration as "{m1=h:1, m2=h:2}".
func describe(c raft.Configuration) string {
	m := map[string]string{}
	for _, s := range c.Servers {
		m[string(s.ID)] = string(s.Address)
	}
	return formatPeers(m)
}

func voterIDs(c raft.Configuration, except string) []string {
	var ids []string
	for _, s := range c.Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != except {
			ids = append(ids, string(s.ID))
		}
	}
	sort.Strings(ids)
	return ids
}

// AddMember adds a voter (leader only). Unless opts.Force, something must
// answer at addr within the probe timeout (a TCP dial of the Raft
// address; and when gossip knows the node, its advertised Raft address
// must be addr and its API must answer HTTP): adding a voter nobody
// answers at raises the majority without adding a member that can vote.
func (n *Node) AddMember(ctx context.Context, id, addr string, opts ChangeOptions) error {
	if !n.IsLeader() {
		return fmt.Errorf("add member %s=%s via %s (leader: %q): %w", id, addr, n.cfg.ID, n.LeaderID(), ErrNotLeader)
	}
	if id == "" || addr == "" {
		return errors.New("add member: an ID and a Raft address (HOST:PORT) are required")
	}
	if _, _, err := splitHostPort(addr); err != nil {
		return fmt.Errorf("add member %s: raft address %q is not HOST:PORT: %w", id, addr, err)
	}
	conf, err := n.configuration()
	if err != nil {
		return err
	}
	for _, s := range conf.Servers {
		switch {
		case string(s.ID) == id:
			return fmt.Errorf("add member %s=%s: %s is already in the configuration at %s (%s): %w", id, addr, id, s.Address, s.Suffrage, ErrMemberExists)
		case string(s.Address) == addr:
			return fmt.Errorf("add member %s=%s: member %s already has the raft address %s: %w", id, addr, s.ID, addr, ErrMemberExists)
		}
	}
	if !opts.Force {
		if err := n.probeMember(ctx, id, addr, opts.probeTimeout()); err != nil {
			return fmt.Errorf("add member %s=%s refused: %w (start mhanode there first, with --rejoin, then retry; or pass --force to add it anyway)", id, addr, err)
		}
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if err := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout).Error(); err != nil {
		return fmt.Errorf("add voter %s=%s via %s: %w", id, addr, n.cfg.ID, mapRaftErr(err))
	}
	n.logger.Info("added a voter", "member", id, "raft_addr", addr, "forced", opts.Force)
	return nil
}

func (o ChangeOptions) probeTimeout() time.Duration {
	if o.ProbeTimeout > 0 {
		return o.ProbeTimeout
	}
	return DefaultProbeTimeout
}

// probeMember checks that a manager answers at addr: a TCP dial of the
// Raft address, and, when gossip knows a manager with that ID, that it
// advertises the same Raft address and that its API answers HTTP (any
// status: a node waiting to be added reports itself as not a member).
func (n *Node) probeMember(ctx context.Context, id, addr string, timeout time.Duration) error {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(pctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("nothing answers at the raft address %s of %s within %s (%v): %w", addr, id, timeout, err, ErrMemberUnreachable)
	}
	conn.Close()
	for _, m := range n.Members() {
		if m.Name != id || m.State != "alive" {
			continue
		}
		if m.RaftAddr != "" && m.RaftAddr != addr {
			return fmt.Errorf("manager %s advertises the raft address %s, not %s (a typo in the address?): %w", id, m.RaftAddr, addr, ErrMemberUnreachable)
		}
		if m.HTTPAddr == "" {
			break
		}
		scheme := "http"
		if n.cfg.TLS != nil {
			scheme = "https"
		}
		req, err := http.NewRequestWithContext(pctx, http.MethodGet, scheme+"://"+m.HTTPAddr+"/healthz", nil)
		if err != nil {
			return fmt.Errorf("probe the API of %s at %s: %w", id, m.HTTPAddr, err)
		}
		resp, err := n.cfg.HTTPClient.Do(req)
		if err != nil {
			return fmt.Errorf("the API of %s at %s does not answer within %s (%v): %w", id, m.HTTPAddr, timeout, err, ErrMemberUnreachable)
		}
		resp.Body.Close()
	}
	return nil
}

// RemoveMember removes a server from the configuration (leader only).
//
// Unless opts.Force, a removal that leaves fewer than MinVoters voters is
// refused. The last voter is never removed. A leader asked to remove
// itself does not: it hands the leadership to another voter
// (raft.LeadershipTransfer), waits until it knows the new leader, and
// returns an error wrapping ErrLeadershipTransferred and ErrNotLeader; the
// caller sends the same request to the new leader, which removes the old
// one as a follower. A removed leader would otherwise shut its Raft down
// and be left half alive.
func (n *Node) RemoveMember(ctx context.Context, id string, opts ChangeOptions) error {
	if !n.IsLeader() {
		return fmt.Errorf("remove member %s via %s (leader: %q): %w", id, n.cfg.ID, n.LeaderID(), ErrNotLeader)
	}
	conf, err := n.configuration()
	if err != nil {
		return err
	}
	var target *raft.Server
	for i := range conf.Servers {
		if string(conf.Servers[i].ID) == id {
			target = &conf.Servers[i]
		}
	}
	if target == nil {
		return fmt.Errorf("remove member %s: the configuration is %s: %w", id, describe(conf), ErrUnknownMember)
	}
	left := voterIDs(conf, id)
	if target.Suffrage == raft.Voter {
		if len(left) == 0 {
			return fmt.Errorf("remove member %s: it is the last voter: nothing would be left of the group", id)
		}
		if len(left) < MinVoters && !opts.Force {
			return fmt.Errorf("remove member %s refused: it would leave %d voters (%s), and a group of fewer than %d cannot lose a member without stopping; add a voter first, or pass --force: %w",
				id, len(left), strings.Join(left, ", "), MinVoters, ErrTooFewVoters)
		}
	}
	if id == n.cfg.ID {
		return n.handOverBeforeRemoval(ctx)
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, timeout).Error(); err != nil {
		return fmt.Errorf("remove server %s via %s: %w", id, n.cfg.ID, mapRaftErr(err))
	}
	n.logger.Info("removed a member", "member", id, "voters_left", strings.Join(left, ","), "forced", opts.Force)
	return nil
}

// handOverBeforeRemoval transfers the leadership to another voter and
// waits (bounded by ctx and ApplyTimeout) until this node knows the new
// leader, so that the caller can send it the removal.
func (n *Node) handOverBeforeRemoval(ctx context.Context) error {
	n.logger.Info("asked to remove itself: handing the leadership over first")
	if err := n.raft.LeadershipTransfer().Error(); err != nil {
		return fmt.Errorf("remove member %s: hand the leadership over first: %w (nothing was removed; retry)", n.cfg.ID, mapRaftErr(err))
	}
	wctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if l := n.LeaderID(); l != "" && l != n.cfg.ID && n.LeaderHTTPAddr() != "" {
			return fmt.Errorf("remove member %s: %s handed the leadership to %s, which must run the removal: %w: %w",
				n.cfg.ID, n.cfg.ID, l, ErrLeadershipTransferred, ErrNotLeader)
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("remove member %s: leadership handed over but no new leader known within %s (nothing was removed; retry on the new leader): %w: %w",
				n.cfg.ID, n.cfg.ApplyTimeout, ErrLeadershipTransferred, ErrNotLeader)
		case <-n.stopCh:
			return ErrShutdown
		case <-tick.C:
		}
	}
}

// removedGrace is how long a node that no longer sees itself in its
// latest configuration must have heard nothing from a leader before it
// calls itself removed. The leader stops replicating to a removed
// follower right after the entry that removes it, usually before telling
// it that the entry committed; an uncommitted removal that a new leader
// undoes is followed by that leader's heartbeats within an election.
func (n *Node) removedGrace() time.Duration {
	g := 4 * n.cfg.HeartbeatTimeout
	if e := 4 * n.cfg.ElectionTimeout; e > g {
		g = e
	}
	if g < 2*time.Second {
		g = 2 * time.Second
	}
	return g
}

// Membership returns nil while this node is in the latest Raft
// configuration it holds (or was out of it for less than removedGrace of
// a leader's silence: the change may still be undone), else an error wrapping ErrNotMember that says why
// and how to bring it back. A node removed while it was down does not
// learn it this way: it keeps its old configuration and campaigns in vain
// (the members refuse the votes of a node outside their configuration).
func (n *Node) Membership() error {
	conf, err := n.configuration()
	if err != nil {
		return err
	}
	for _, s := range conf.Servers {
		if string(s.ID) == n.cfg.ID {
			return nil
		}
	}
	back := fmt.Sprintf("to bring it back, run `mhactl members add %s %s` against the cluster (if this mhanode was restarted since, it must run with --rejoin)", n.cfg.ID, n.cfg.RaftAddr)
	if len(conf.Servers) == 0 {
		return fmt.Errorf("%s has not been added to the raft group yet (started with --rejoin and an empty data dir); %s: %w", n.cfg.ID, strings.Replace(back, "bring it back", "add it", 1), ErrNotMember)
	}
	if time.Since(n.raft.LastContact()) < n.removedGrace() {
		return nil // a leader still talks to it: the change may be undone
	}
	return fmt.Errorf("%s was removed from the raft group (the configuration it holds is %s): it takes no part in decisions and serves no status; %s: %w",
		n.cfg.ID, describe(conf), back, ErrNotMember)
}

// watchMembership logs when this node leaves the configuration it holds
// and when it is back (poll every 250 ms until Shutdown).
func (n *Node) watchMembership() {
	defer n.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	was := true
	for {
		select {
		case <-n.stopCh:
			return
		case <-tick.C:
		}
		err := n.Membership()
		if err != nil && !errors.Is(err, ErrNotMember) {
			continue // shut down or unreadable: nothing to say
		}
		switch {
		case err != nil && was:
			n.logger.Error("this manager is no longer a member of the raft group", "error", err.Error())
		case err == nil && !was:
			n.logger.Info("this manager is a member of the raft group again")
		}
		was = err == nil
	}
}
