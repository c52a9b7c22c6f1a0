package manager

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/mharaft/mharaft/consensus"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/fsm"
)

// barrierTimeout bounds the Barrier that a new leader runs before it does
// any leader work.
const barrierTimeout = 10 * time.Second

// leadership is one continuous period during which this node is the Raft
// leader in one term. Every piece of leader-only work (registration,
// discovery, evaluation, pipelines, operator actions) takes its context
// from ctx, which is cancelled the moment the node is no longer leader in
// that term (Consul's and Nomad's establishLeadership/revokeLeadership).
type leadership struct {
	ctx    context.Context
	cancel context.CancelFunc
	term   uint64
}

// reconcileLeadership compares this node's Raft state with the current
// leadership period: it revokes the period when the node is no longer
// leader or its term changed (a leadership lost and regained is a new
// period: work of the old one must not go on), and it establishes a new
// period when the node leads without one. Establishing runs a Barrier
// first, so that the FSM holds every entry committed by earlier leaders
// (locks, journals) before this node reads it to decide anything.
func (m *Manager) reconcileLeadership(parent context.Context) {
	leader, term := m.node.IsLeader(), m.node.Term()
	m.mu.Lock()
	cur := m.lead
	m.mu.Unlock()
	if cur != nil && (!leader || cur.term != term) {
		m.revokeLeadership()
		m.log.Warn("lost raft leadership: leader work stopped", "term", term, "epoch", 0)
		cur = nil
	}
	if !leader || cur != nil {
		return
	}
	if err := m.node.Barrier(barrierTimeout); err != nil {
		m.log.Warn("new leader: raft barrier failed, retrying before any leader work", "term", term, "error", err, "epoch", 0)
		return
	}
	if !m.node.IsLeader() || m.node.Term() != term {
		return // lost it during the barrier; the next event reconciles again
	}
	ctx, cancel := context.WithCancel(parent)
	m.mu.Lock()
	m.lead = &leadership{ctx: ctx, cancel: cancel, term: term}
	m.mu.Unlock()
	m.log.Info("became raft leader: barrier applied, leader work starts", "term", term, "epoch", 0)
	wake(m.evalWake)
	for name := range m.apps {
		m.requestDiscovery(name) // the summaries are the last leader's: refresh them now
	}
}

// revokeLeadership ends the current period, if any: when Raft says this
// node no longer leads in the period's term, and when the leader loop
// stops (shutdown).
func (m *Manager) revokeLeadership() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lead != nil {
		m.lead.cancel()
		m.lead = nil
	}
}

// leaderContext is the context of the current leadership period and its
// term; ok is false when this node is not an established leader (then no
// leader work may start).
func (m *Manager) leaderContext() (ctx context.Context, term uint64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lead == nil || m.lead.ctx.Err() != nil {
		return nil, 0, false
	}
	return m.lead.ctx, m.lead.term, true
}

// errNotEstablished is returned for leader work asked of a node that is
// not (or not yet) an established leader.
var errNotEstablished = fmt.Errorf("this manager is not the established raft leader: %w", consensus.ErrNotLeader)

// leaderGuard is the failover.Guard of one pipeline run: the run may act on
// MySQL servers only while this node still leads in the term in which it
// took the lock and the replicated lock still carries the run's epoch with
// this node as holder.
type leaderGuard struct {
	m     *Manager
	lctx  context.Context // the leadership period the run belongs to
	term  uint64
	app   string
	epoch uint64
}

// MayAct confirms with a quorum (raft VerifyLeader) that this node is still
// the leader, in the same term, and that the lock is still ours. A node
// that was paused or cut off and has been replaced fails here: a quorum
// has moved to a higher term.
func (g *leaderGuard) MayAct(ctx context.Context) error {
	if err := g.lctx.Err(); err != nil {
		return fmt.Errorf("%s lost the leadership of term %d: %w", g.m.cfg.ID, g.term, consensus.ErrNotLeader)
	}
	if err := g.m.node.VerifyLeader(); err != nil {
		return fmt.Errorf("%s may not act on %s at epoch %d: %w: %w", g.m.cfg.ID, g.app, g.epoch, consensus.ErrNotLeader, err)
	}
	if t := g.m.node.Term(); t != g.term {
		return fmt.Errorf("%s may not act on %s at epoch %d: term is %d, the lock was taken in term %d: %w",
			g.m.cfg.ID, g.app, g.epoch, t, g.term, consensus.ErrNotLeader)
	}
	st, ok := g.m.fsm.App(g.app)
	if !ok || st.Lock == nil || st.Lock.Epoch != g.epoch || st.Lock.Holder != g.m.cfg.ID {
		return fmt.Errorf("%s may not act on %s: the failover lock is no longer epoch %d held by it: %w",
			g.m.cfg.ID, g.app, g.epoch, consensus.ErrNotLeader)
	}
	return nil
}

// mayNoLongerAct tells errors that mean "this manager may no longer act":
// it is not (or no longer) the leader (consensus.ErrNotLeader), or a
// pipeline stopped because its journal or its Guard refused
// (failover.ErrMayNotAct).
func mayNoLongerAct(err error) bool {
	return errors.Is(err, consensus.ErrNotLeader) || errors.Is(err, failover.ErrMayNotAct)
}

// haltOnPanic, deferred around a pipeline, turns a panic into a halted
// lock and a logged stack instead of a crashed daemon (and a crash loop of
// every leader that resumes the same pipeline).
func (m *Manager) haltOnPanic(app string) {
	r := recover()
	if r == nil {
		return
	}
	stack := string(debug.Stack())
	m.log.Error("pipeline panicked: halting its lock (a bug: please report it with this stack)", "app", app, "panic", fmt.Sprint(r), "stack", stack, "epoch", 0)
	st, ok := m.fsm.App(app)
	if !ok || st.Lock == nil || st.Lock.Halted || st.Lock.Holder != m.cfg.ID {
		return
	}
	lctx, _, ok := m.leaderContext()
	if !ok {
		return // the next leader resumes; if it panics too, it halts
	}
	summary := fmt.Sprintf("halted: the %s pipeline panicked (%v): see the log of %s for the stack; check the servers and run `mhactl ack`", st.Lock.Kind, r, m.cfg.ID)
	if _, err := m.applyAsLeader(lctx, fsm.EncodeReleaseLock(fsm.ReleaseLockCmd{
		App: app, Epoch: st.Lock.Epoch, Result: fsm.ResultHalted, Summary: summary, At: m.now(),
	})); err != nil {
		m.log.Error("halt lock after panic", "app", app, "error", err, "epoch", st.Lock.Epoch)
	}
}
