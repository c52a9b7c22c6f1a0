package manager

import (
	"context"
	"errors"
	"net/http"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/consensus"
)

// The membership actions (mhactl members add/remove) and this manager's
// own membership, which the API reports (api.MembershipReporter).

var _ api.MembershipReporter = (*Manager)(nil)

// NotMember returns nil while this manager is a member of the Raft group,
// else an error (wrapping consensus.ErrNotMember) that says it was removed
// (or not added yet) and how to bring it back. The API then answers 503 on
// /healthz and refuses to serve this node's stale status.
func (m *Manager) NotMember() error {
	if err := m.node.Membership(); errors.Is(err, consensus.ErrNotMember) {
		return err
	}
	return nil
}

// memberAdd adds a voter; unless a.Force, something must answer at its
// Raft address (consensus.Node.AddMember).
func (m *Manager) memberAdd(ctx context.Context, a api.Action) (*api.ActionResult, error) {
	err := m.node.AddMember(ctx, a.MemberID, a.MemberAddr, consensus.ChangeOptions{Force: a.Force})
	if err != nil {
		return nil, membershipError(err)
	}
	m.log.Info("manager added to the raft group", "member", a.MemberID, "raft_addr", a.MemberAddr, "forced", a.Force, "reason", a.Reason)
	msg := "added voter " + a.MemberID + " at " + a.MemberAddr + "; it catches up in the background (mhactl members list)"
	if a.Force {
		msg += " (forced: not checked)"
	}
	return &api.ActionResult{OK: true, Message: msg}, nil
}

// memberRemove removes a member. The leader never removes itself: it
// hands the leadership over and returns ErrNotLeader, and the API sends
// the same request to the new leader, which removes it as a follower.
// Unless a.Force, a removal that leaves fewer than 3 voters is refused.
func (m *Manager) memberRemove(ctx context.Context, a api.Action) (*api.ActionResult, error) {
	err := m.node.RemoveMember(ctx, a.MemberID, consensus.ChangeOptions{Force: a.Force})
	if err != nil {
		if errors.Is(err, consensus.ErrLeadershipTransferred) {
			m.log.Info("asked to remove itself: leadership handed over, the new leader removes it", "member", a.MemberID, "leader", m.node.LeaderID())
		}
		return nil, membershipError(err)
	}
	m.log.Info("manager removed from the raft group", "member", a.MemberID, "forced", a.Force, "reason", a.Reason)
	msg := "removed " + a.MemberID + " from the raft group; it reports itself removed until it is added back (mhactl members add)"
	if a.Force {
		msg += " (forced)"
	}
	return &api.ActionResult{OK: true, Message: msg}, nil
}

// membershipError gives a refused membership change its HTTP status; a
// lost (or handed over) leadership stays an error wrapping
// consensus.ErrNotLeader, so that the API forwards the request to the
// leader.
func membershipError(err error) error {
	status := 0
	switch {
	case errors.Is(err, consensus.ErrNotLeader):
		return err
	case errors.Is(err, consensus.ErrTooFewVoters), errors.Is(err, consensus.ErrMemberUnreachable):
		status = http.StatusPreconditionFailed
	case errors.Is(err, consensus.ErrMemberExists):
		status = http.StatusConflict
	case errors.Is(err, consensus.ErrUnknownMember):
		status = http.StatusNotFound
	}
	if status == 0 {
		return err
	}
	return &api.Error{Status: status, Msg: err.Error()}
}
