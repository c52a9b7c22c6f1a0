package consensus

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// ApplyPath is where the leader accepts forwarded commands.
const ApplyPath = "/internal/v1/apply"

// maxCommandBytes bounds a forwarded command.
const maxCommandBytes = 4 << 20

// Apply commits cmd and returns the FSM's response. On the leader it is
// raft.Apply; on a follower the command is forwarded to the leader's
// ApplyPath over HTTP. A response that is an error (the FSM's refusal) is
// returned as the error.
//
// Apply tries again, every 25 ms until ctx ends (ApplyTimeout when ctx has
// no deadline), only while the command certainly did not reach a leader's
// log: no leader (or no HTTP address of it) known yet, Raft refused it as
// not leader, the connection to the leader was refused, or the leader
// answered "not leader"; when ctx ends meanwhile the error wraps
// ErrNoLeader. Any other failure ends Apply at once: a forwarded request
// that failed after it was sent, or a leader that lost the leadership
// after logging the command, wraps ErrOutcomeUnknown. A forwarded request
// is bounded by ctx and by Config.HTTPClient's timeout (15 s by default);
// on the leader, Apply waits for the commit as ApplyLocal does.
func (n *Node) Apply(ctx context.Context, cmd []byte) (any, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		defer cancel()
	}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		resp, err, retry := n.applyOnce(ctx, cmd)
		if !retry {
			if err != nil {
				return nil, err
			}
			if e, ok := resp.(error); ok {
				return nil, e
			}
			return resp, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("apply command type %d via %s: %w (last: %v)", cmdType(cmd), n.cfg.ID, ErrNoLeader, last)
		case <-n.stopCh:
			return nil, ErrShutdown
		case <-tick.C:
		}
	}
}

// ApplyLocal commits cmd through this node's own Raft log only while it is
// the leader, and never forwards it: a pipeline's journal entries and lock
// commands must be refused, not handed to a new leader, once this node has
// lost leadership (a deposed leader's entry must never commit). A response
// that is an error (the FSM's refusal) is returned as the error.
//
// It never retries and never waits for a leader: a node that is not the
// leader when it is called, or that Raft refuses as not leader, gets an
// error wrapping ErrNotLeader at once. ctx (ApplyTimeout when it has no
// deadline) bounds only the hand-over of the command to Raft
// (raft.ErrEnqueueTimeout); once Raft holds it, ApplyLocal waits until the
// entry is applied, or this node loses the leadership (an error wrapping
// ErrOutcomeUnknown: a leader cut off from the majority steps down within
// LeaderLeaseTimeout), or shuts down (ErrShutdown). Cancelling ctx does not
// end that wait. Apply's leader path waits the same way.
func (n *Node) ApplyLocal(ctx context.Context, cmd []byte) (any, error) {
	if !n.IsLeader() {
		return nil, fmt.Errorf("apply command type %d on %s: %w", cmdType(cmd), n.cfg.ID, ErrNotLeader)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		defer cancel()
	}
	resp, err := n.raftApply(ctx, cmd)
	if errors.Is(err, raft.ErrNotLeader) {
		return nil, fmt.Errorf("apply command type %d on %s: %w: %w", cmdType(cmd), n.cfg.ID, ErrNotLeader, err)
	}
	if err != nil {
		return nil, err
	}
	if e, ok := resp.(error); ok {
		return nil, e
	}
	return resp, nil
}

func cmdType(cmd []byte) int {
	if len(cmd) == 0 {
		return -1
	}
	return int(cmd[0])
}

// applyOnce makes one attempt. retry is true only when the command
// certainly did not reach a leader's log.
func (n *Node) applyOnce(ctx context.Context, cmd []byte) (resp any, err error, retry bool) {
	if n.IsLeader() {
		resp, err := n.raftApply(ctx, cmd)
		if errors.Is(err, raft.ErrNotLeader) {
			return nil, err, true // refused before it was logged
		}
		return resp, err, false
	}
	addr := n.LeaderHTTPAddr()
	if addr == "" {
		return nil, fmt.Errorf("leader %q or its HTTP address not known yet", n.LeaderID()), true
	}
	return n.forward(ctx, addr, cmd)
}

// raftApply is one raft.Apply on this node, which believes it is leader
// (Apply and ApplyLocal decide what to do with its errors).
func (n *Node) raftApply(ctx context.Context, cmd []byte) (any, error) {
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("apply command type %d on %s: %w", cmdType(cmd), n.cfg.ID, context.DeadlineExceeded)
	}
	f := n.raft.Apply(cmd, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return nil, err
		}
		if errors.Is(err, raft.ErrEnqueueTimeout) {
			return nil, fmt.Errorf("apply command type %d on %s: %w", cmdType(cmd), n.cfg.ID, err)
		}
		return nil, fmt.Errorf("apply command type %d on %s: %w", cmdType(cmd), n.cfg.ID, mapRaftErr(err))
	}
	return f.Response(), nil
}

// errNotLeaderBody is the body of a 503 from a node that is not leader.
const errNotLeaderBody = "not leader"

// forward sends cmd to the leader's API.
func (n *Node) forward(ctx context.Context, addr string, cmd []byte) (any, error, bool) {
	scheme := "http"
	if n.cfg.TLS != nil {
		scheme = "https"
	}
	url := scheme + "://" + addr + ApplyPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(cmd))
	if err != nil {
		return nil, fmt.Errorf("forward to leader %s: %w", addr, err), false
	}
	req.Header.Set("Authorization", "Bearer "+n.cfg.Token)
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := n.cfg.HTTPClient.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("forward to leader %s: %w", addr, err), true
		}
		return nil, fmt.Errorf("forward command type %d to leader %s: %w: %w", cmdType(cmd), addr, ErrOutcomeUnknown, err), false
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxCommandBytes))
	if err != nil {
		return nil, fmt.Errorf("forward command type %d to leader %s: read answer: %w: %w", cmdType(cmd), addr, ErrOutcomeUnknown, err), false
	}
	switch res.StatusCode {
	case http.StatusOK:
		resp, err := n.cfg.Responses.Decode(body)
		if err != nil {
			return nil, fmt.Errorf("forward to leader %s: %w", addr, err), false
		}
		return resp, nil, false
	case http.StatusServiceUnavailable:
		if strings.TrimSpace(string(body)) == errNotLeaderBody {
			return nil, fmt.Errorf("forward to %s: it is no longer leader", addr), true
		}
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("forward to leader %s: %w", addr, ErrUnauthorized), false
	case http.StatusInternalServerError:
		return nil, fmt.Errorf("forward command type %d to leader %s: %w: %s", cmdType(cmd), addr, ErrOutcomeUnknown, strings.TrimSpace(string(body))), false
	}
	return nil, fmt.Errorf("forward command type %d to leader %s: HTTP %d: %s", cmdType(cmd), addr, res.StatusCode, strings.TrimSpace(string(body))), false
}

// RegisterHandlers mounts the forwarding endpoint on mux.
func (n *Node) RegisterHandlers(mux *http.ServeMux) {
	mux.Handle("POST "+ApplyPath, n.Handler())
}

// Handler serves forwarded commands: POST ApplyPath with the command as
// body and "Authorization: Bearer <token>". It answers 401 for a wrong
// token, 503 "not leader" when this node is not the leader (the sender
// retries), and 200 with the FSM's response encoded by Config.Responses
// once the command is applied (a refusal is a 200 too: it is the FSM's
// answer).
func (n *Node) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !n.validToken(r.Header.Get("Authorization")) {
			n.logger.Warn("refused a forwarded command with a wrong token", "remote", r.RemoteAddr)
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		cmd, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCommandBytes))
		if err != nil || len(cmd) == 0 {
			http.Error(w, "bad command body", http.StatusBadRequest)
			return
		}
		if !n.IsLeader() {
			http.Error(w, errNotLeaderBody, http.StatusServiceUnavailable)
			return
		}
		resp, err := n.raftApply(r.Context(), cmd)
		if errors.Is(err, raft.ErrNotLeader) {
			http.Error(w, errNotLeaderBody, http.StatusServiceUnavailable)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		body, err := n.cfg.Responses.Encode(resp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
}

// validToken compares "Bearer <token>" in constant time with Token and
// every AcceptTokens.
func (n *Node) validToken(header string) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return false
	}
	valid := 0
	for _, t := range n.cfg.tokens() {
		valid |= subtle.ConstantTimeCompare([]byte(got), []byte(t))
	}
	return valid == 1
}
