package manager

import (
	"io"

	"github.com/hashicorp/raft"

	"github.com/mharaft/mharaft/fsm"
)

// notifyingFSM is the raft.FSM handed to consensus: the domain FSM plus a
// wake-up of the manager's evaluator after every applied command and every
// restore, so verdicts are evaluated when observations change instead of
// on a poll.
type notifyingFSM struct {
	*fsm.FSM
	notify func()
}

func (n *notifyingFSM) Apply(l *raft.Log) any {
	r := n.FSM.Apply(l)
	n.notify()
	return r
}

func (n *notifyingFSM) Restore(rc io.ReadCloser) error {
	err := n.FSM.Restore(rc)
	n.notify()
	return err
}
