// Package consensus runs the Raft group of the managers: hashicorp/raft
// with raft-boltdb log and stable stores and a file snapshot store in the
// data directory, a TCP transport (optionally TLS), bootstrap from a
// static peer list, forwarding of commands from followers to the leader
// over HTTP, and a memberlist gossip ring that tells every manager the
// HTTP address and datacenter of the others.
//
// It knows nothing of MySQL; the state machine is any raft.FSM (mharaft
// uses fsm.FSM, and forwarded responses travel with fsm.MarshalResponse).
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
//     holds no Raft state; on restart the stored configuration must agree
//     with Peers unless SkipPeerCheck is set.
//  5. Shutdown is idempotent and leaves the gossip ring before stopping.
package consensus
