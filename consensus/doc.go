// Package consensus runs the Raft group of the managers: hashicorp/raft
// with raft-boltdb log and stable stores and a file snapshot store in the
// data directory, a TCP transport (optionally TLS), bootstrap from a
// static peer list, a token handshake on every Raft connection
// (auth.go), forwarding of commands from followers to the leader
// over HTTP, and a memberlist gossip ring that tells every manager the
// HTTP address and datacenter of the others.
//
// It knows nothing of MySQL and imports no other mharaft package: the
// state machine is any raft.FSM, and Config.Responses (ResponseCodec) says
// how its Apply responses travel from the leader to a follower that
// forwarded the command (package manager passes fsm.FSM with
// fsm.MarshalResponse and fsm.UnmarshalResponse).
//
// ErrNotLeader is mharaft's one "this node is not the leader" sentinel:
// package api forwards an action whose Backend.Do error wraps it, and
// package manager wraps it in every refusal of leader-only work.
//
// Invariants:
//
//  1. A command takes effect only once it is committed by a majority:
//     Node.Apply returns the FSM's response only after commit and apply
//     on the leader; a follower forwards the command to the leader and
//     never applies it locally. A node that cannot reach a majority
//     returns an error, never a response.
//  2. A forwarded command is executed at most once: Apply retries only
//     when the command certainly did not reach the leader's log (no leader
//     known, connection refused, or the receiver answered "not leader").
//     Any other failure returns an error that says the outcome is unknown.
//  3. Forwarded commands are accepted only with the shared token, compared
//     in constant time, and only by the current leader (no second hop).
//  4. The cluster is bootstrapped from Peers only when the data directory
//     holds no Raft state and Rejoin is not set; on restart the stored
//     configuration must agree with Peers unless SkipPeerCheck (or Rejoin)
//     is set, and a node whose stored configuration no longer holds it is
//     told that it was removed and how to come back.
//  5. Shutdown is idempotent and leaves the gossip ring before stopping.
//  6. Membership changes (AddMember, RemoveMember, leader only) never
//     remove the leader itself: it hands the leadership over
//     (raft.LeadershipTransfer) and answers ErrLeadershipTransferred (with
//     ErrNotLeader), and the new leader removes it as a follower. Without
//     Force, a removal that leaves fewer than MinVoters (3) voters is
//     refused (ErrTooFewVoters), and so is a voter nobody answers at
//     (ErrMemberUnreachable: a TCP dial of its Raft address and, when
//     gossip knows it, its API's /healthz, within ProbeTimeout, 2 s).
//     Removing the last voter, or adding an ID or address already in the
//     configuration, is refused even with Force.
//  7. Raft reads nothing from a connection that has not proved the token
//     (Token or one of AcceptTokens) by the mutual HMAC challenge-response
//     of auth.go, run inside mutual TLS when TLS is set; a refused
//     connection is closed and logged (remote address, reason, never a
//     token). Forwarded commands and gossip take the same tokens.
//
// # Membership
//
// A removed node keeps running as a follower outside the configuration:
// Raft never lets it campaign or vote. Membership() tells it: it returns
// an error wrapping ErrNotMember once the latest configuration it holds
// leaves it out and no leader has talked to it for removedGrace (2 s, or
// 4 election timeouts), and watchMembership logs that at ERROR, with the
// way back, and logs again when it is a member again. The daemon (package
// manager) reports it on /healthz and refuses to serve a stale status.
//
// The way back, for a removed node still running: `mhactl members add ID
// RAFT_ADDR` on the cluster; the leader replicates the missing log to it
// and it is a voter again, with no restart. For a removed node that was
// restarted: its stored configuration no longer holds it, so New refuses
// it (ErrPeerMismatch, saying it was removed) unless it starts with
// Rejoin (mhanode --rejoin), which skips the stored-peers check; then
// `mhactl members add`. Rejoin on an empty data dir does not bootstrap:
// it is how a brand-new manager joins, and how a removed one whose data
// dir was wiped comes back (never wipe the data dir without --rejoin: the
// node would bootstrap a group from --peers on its own).
//
// A node removed while it was down does not learn it: its stored
// configuration still holds it, it campaigns in vain (the members refuse
// the votes of a node outside their configuration) and reports no leader.
package consensus
