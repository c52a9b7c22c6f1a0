package manager

import (
	"io"

	"github.com/hashicorp/raft"

	"github.com/mharaft/mharaft/fsm"
	"github.com/mharaft/mharaft/metrics"
)

// notifyingFSM is the raft.FSM handed to consensus: the domain FSM plus a
// wake-up of the manager's evaluator after every applied command and every
// restore, so verdicts are evaluated when observations change instead of
// on a poll, and the count of applied entries by command type
// (mharaft_raft_entries_applied_total{type}).
type notifyingFSM struct {
	*fsm.FSM
	notify  func()
	metrics *metrics.Metrics // counts applied entries by command type (nil: none)
}

func (n *notifyingFSM) Apply(l *raft.Log) any {
	if t, ok := fsm.TypeOf(l.Data); ok && l.Type == raft.LogCommand {
		n.metrics.RaftEntryApplied(t.String(), len(l.Data))
	}
	r := n.FSM.Apply(l)
	n.notify()
	return r
}

func (n *notifyingFSM) Restore(rc io.ReadCloser) error {
	err := n.FSM.Restore(rc)
	n.notify()
	return err
}
