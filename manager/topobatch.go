package manager

import (
	"context"
	"time"

	"github.com/mharaft/mharaft/fsm"
)

// Topology summaries of periodic discoveries are stored several
// applications per Raft entry (fsm.SetTopologyBatchCmd, issue 17): with
// 1,000 applications one entry per summary was about a hundred entries a
// second, each appended, replicated and applied on every manager. A
// summary waits at most topologyBatchEvery (or until topologyBatchMax are
// waiting); a requested discovery's summary (a pipeline ended, a verdict
// changed) is stored at once, on its own, and the batch's handler never
// replaces a summary with an older one, so a batch collected before it
// cannot bring the old tree back. Summaries still waiting when the
// leadership period ends are dropped: the next leader discovers again.
const (
	topologyBatchEvery = 250 * time.Millisecond
	topologyBatchMax   = 64
)

// queueTopology has sum stored with the next batch of the leadership
// period lctx.
func (m *Manager) queueTopology(lctx context.Context, app string, sum fsm.Topology) {
	m.mu.Lock()
	if m.topoCtx != lctx {
		m.topoCtx, m.topoPending = lctx, nil
	}
	m.topoPending = append(m.topoPending, fsm.SetTopologyCmd{App: app, Topology: sum})
	full := len(m.topoPending) >= topologyBatchMax
	m.mu.Unlock()
	if full {
		wake(m.topoKick)
	}
}

// topologyBatchLoop stores the queued summaries every topologyBatchEvery,
// or as soon as topologyBatchMax are waiting.
func (m *Manager) topologyBatchLoop(ctx context.Context) {
	tick := time.NewTicker(topologyBatchEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-m.topoKick:
		}
		for {
			if m.storeTopologies() < topologyBatchMax {
				break
			}
		}
	}
}

// storeTopologies commits up to topologyBatchMax queued summaries in one
// entry and returns how many it took.
func (m *Manager) storeTopologies() int {
	m.mu.Lock()
	lctx, batch := m.topoCtx, m.topoPending
	if len(batch) > topologyBatchMax {
		batch = batch[:topologyBatchMax]
	}
	m.topoPending = m.topoPending[len(batch):]
	m.mu.Unlock()
	if len(batch) == 0 || lctx == nil || lctx.Err() != nil {
		return 0
	}
	if _, err := m.applyAsLeader(lctx, fsm.EncodeSetTopologyBatch(fsm.SetTopologyBatchCmd{Topologies: batch})); err != nil && lctx.Err() == nil {
		m.log.Warn("store topologies", "apps", len(batch), "error", err, "epoch", 0)
	}
	return len(batch)
}
