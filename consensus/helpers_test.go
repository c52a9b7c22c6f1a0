package consensus

import (
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/mharaft/mharaft/fsm"
)

// testLogger sends logs to t.Log (only shown on failure or with -v).
func testLogger(t *testing.T, name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   name,
		Level:  hclog.Info,
		Output: tWriter{t},
	})
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// grant is one lock grant seen by one node's FSM.
type grant struct {
	node   string
	epoch  uint64
	holder string
	index  uint64
}

// recordingFSM is the real fsm.FSM plus a record of the lock grants it
// answered, so tests can compare grants across nodes.
type recordingFSM struct {
	*fsm.FSM
	node   string
	grants *grantLog
}

// grantLog collects grants from every node of a cluster.
type grantLog struct {
	mu     sync.Mutex
	grants []grant
}

func (g *grantLog) add(x grant) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.grants = append(g.grants, x)
}

func (g *grantLog) all() []grant {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]grant(nil), g.grants...)
}

func (r *recordingFSM) Apply(l *raft.Log) any {
	resp := r.FSM.Apply(l)
	if lock, ok := resp.(fsm.Lock); ok {
		r.grants.add(grant{node: r.node, epoch: lock.Epoch, holder: lock.Holder, index: l.Index})
	}
	return resp
}
