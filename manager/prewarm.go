package manager

import (
	"context"
	"sync"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/failover"
)

// SSH pre-warming (issue 16 item 4). A master that gives no signal (a host
// cut off, a frozen mariadbd) is declared dead only after the detection
// window, and the dead-master pipeline then needs its host's SSH: for the
// tail, bounded by ssh_connection_timeout when the host is silent. The
// leader therefore dials SSH to the master's host (and to the replicas'
// hosts) as soon as its evaluation sees the first fresh "cannot reach"
// observation, in parallel with detection, and hands the dialled
// connections to the pipeline if the verdict follows. A dial changes
// nothing on a server, so it needs neither the verdict nor the lock; every
// action still waits for both. The pre-warm is dropped when the suspicion
// ends (no fresh non-reacher), when the master changes, when its dial of
// the master failed (the pipeline then dials again: an old failure must
// not cost a tail that a fresh dial could save), and with the leadership
// period it was started in.

// sshPrewarm is one pre-warm: a LogRecovery whose SSH dials started at the
// first suspicion of master.
type sshPrewarm struct {
	master  string // config name of the suspected master
	started time.Time
	rec     *prewarmedRecovery
	ctx     context.Context    // the dials' context; when it ends, rec is closed
	cancel  context.CancelFunc // ends ctx (once handed over, only after the pipeline returned)
	done    chan struct{}      // closed when the dial of the master ended
	err     error              // its result, read after done
	ended   time.Time          // when it ended, read after done
}

// usable reports whether the pre-warm may still be handed over: its
// context is alive (its recovery is not closed) and its dial of the master
// did not fail.
func (p *sshPrewarm) usable() bool {
	if p.ctx.Err() != nil {
		return false
	}
	select {
	case <-p.done:
		return p.err == nil
	default:
		return true
	}
}

// prewarmedRecovery is the pipeline's LogRecovery with dials started
// before the run; it tells the run when (failover.SSHDialStarted), so that
// the hooks' connect_timeout grace counts from the real start.
type prewarmedRecovery struct {
	failover.LogRecovery
	mu      sync.Mutex
	started map[string]time.Time // by server name
}

func (r *prewarmedRecovery) SSHDialStarted(s *config.Server) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.started[s.Name]
	return t, ok
}

// reach starts the dial of s's SSH in the background, noting when.
func (r *prewarmedRecovery) reach(ctx context.Context, s *config.Server, done func(error)) {
	r.mu.Lock()
	if _, ok := r.started[s.Name]; !ok {
		r.started[s.Name] = time.Now()
	}
	r.mu.Unlock()
	go func() {
		err := r.LogRecovery.Reach(ctx, s)
		if done != nil {
			done(err)
		}
	}()
}

// prewarmSSH keeps the pre-warm of app in line with the evaluation: suspect
// (some fresh observation cannot reach master) starts one if none runs for
// master; otherwise any pre-warm of app is dropped. ctx is the leadership
// period's.
func (m *Manager) prewarmSSH(ctx context.Context, app *config.App, master *config.Server, suspect bool) {
	m.mu.Lock()
	if m.prewarms == nil {
		m.prewarms = map[string]*sshPrewarm{}
	}
	cur := m.prewarms[app.Name]
	keep := suspect && cur != nil && cur.master == master.Name && (cur.usable() || cur.retryLater())
	if cur != nil && !keep {
		delete(m.prewarms, app.Name)
		cur.cancel()
		cur = nil
	}
	if !suspect || cur != nil {
		m.mu.Unlock()
		return
	}
	pctx, cancel := context.WithCancel(ctx)
	p := &sshPrewarm{master: master.Name, started: time.Now(), ctx: pctx, cancel: cancel, done: make(chan struct{}),
		rec: &prewarmedRecovery{LogRecovery: failover.DefaultRecovery(), started: map[string]time.Time{}}}
	m.prewarms[app.Name] = p
	m.mu.Unlock()

	m.log.Info("master suspected: dialling SSH ahead of the verdict", "app", app.Name, "server", master.Name)
	go func() {
		<-pctx.Done()
		p.rec.Close() // idempotent; the pipeline closes it too when it was handed over
	}()
	p.rec.reach(pctx, master, func(err error) {
		p.err, p.ended = err, time.Now()
		close(p.done)
	})
	for _, s := range app.Servers {
		if s.Name != master.Name {
			p.rec.reach(pctx, s, nil)
		}
	}
}

// prewarmRetry is how long a pre-warm whose dial of the master failed is
// kept (not handed over) before the next evaluation dials again: a host
// whose sshd refuses is not dialled at every evaluation.
const prewarmRetry = time.Second

// retryLater reports whether the dial of the master failed less than
// prewarmRetry ago (its context still alive).
func (p *sshPrewarm) retryLater() bool {
	if p.ctx.Err() != nil {
		return false
	}
	select {
	case <-p.done:
		return p.err != nil && time.Since(p.ended) < prewarmRetry
	default:
		return false
	}
}

// takePrewarm hands the pre-warm of app to the dead-master pipeline of
// dead: its recovery (the pipeline closes it) and the function that ends
// its dials once the pipeline returned. nil when there is none for dead,
// or when its dial of dead failed (the pipeline dials afresh).
func (m *Manager) takePrewarm(app, dead string) (failover.LogRecovery, context.CancelFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.prewarms[app]
	if p == nil {
		return nil, nil
	}
	delete(m.prewarms, app)
	if p.master != dead || !p.usable() {
		p.cancel()
		return nil, nil
	}
	return p.rec, p.cancel
}
