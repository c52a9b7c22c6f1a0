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
// observation or its own detector suspects the master (a late sentinel,
// detector.Suspects), in parallel with detection, and hands the dialled
// connections to the pipeline if the verdict follows. A dial changes
// nothing on a server, so it needs neither the verdict nor the lock; every
// action still waits for both.
//
// ssh_connection_timeout counts from the first dial of the suspicion
// (SSHDialStarted reports that start, kept across re-dials): the pipeline
// waits for the dead master's SSH until then and no longer (failover's
// finalTail), so a silent host costs the failover nothing once that much
// time has passed since the suspicion began. A dial that failed is done
// again while the suspicion lasts (at the next evaluation once a second
// has passed since it started: a refusing sshd is not dialled at every
// evaluation), so a host whose SSH answers again before the tail is needed
// still has its tail saved. The pre-warm is dropped when the suspicion ends
// (no fresh non-reacher, no local suspicion), when the master changes, and with the leadership
// period it was started in. A pre-warm whose last dial of the master failed
// and was not done again yet is not handed over: the pipeline dials afresh,
// its wait still counted from the suspicion's first dial (takePrewarm).

// sshPrewarm is one pre-warm: a LogRecovery whose SSH dials started at the
// first suspicion of master (or when its previous dial failed).
type sshPrewarm struct {
	master  string    // config name of the suspected master
	since   time.Time // when the first dial of this suspicion of master started
	started time.Time // when this pre-warm's dial started
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
// before the run; it tells the run when (failover.SSHDialStarted): for the
// master, when the suspicion's first dial started, so that the hooks'
// connect_timeout grace and ssh_connection_timeout count from there.
type prewarmedRecovery struct {
	failover.LogRecovery
	master  string    // the suspected master
	since   time.Time // the suspicion's first dial of master
	mu      sync.Mutex
	started map[string]time.Time // by server name
}

func (r *prewarmedRecovery) SSHDialStarted(s *config.Server) (time.Time, bool) {
	if s.Name == r.master && !r.since.IsZero() {
		return r.since, true
	}
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
	same := suspect && cur != nil && cur.master == master.Name && cur.ctx.Err() == nil
	keep := same && (cur.usable() || cur.retryLater())
	now := time.Now()
	since := now
	if same {
		since = cur.since // the same suspicion: a re-dial keeps its start
	}
	if cur != nil && !keep {
		delete(m.prewarms, app.Name)
		cur.cancel()
		cur = nil
	}
	if !suspect || cur != nil {
		m.mu.Unlock()
		return
	}
	if !same && len(m.prewarms) >= maxPrewarms {
		m.mu.Unlock()
		m.log.Debug("master suspected: not dialling SSH ahead of the verdict, as many pre-warms run already",
			"app", app.Name, "server", master.Name, "running", maxPrewarms)
		return
	}
	pctx, cancel := context.WithCancel(ctx)
	p := &sshPrewarm{master: master.Name, since: since, started: now, ctx: pctx, cancel: cancel, done: make(chan struct{}),
		rec: &prewarmedRecovery{LogRecovery: failover.DefaultRecovery(), master: master.Name, since: since, started: map[string]time.Time{}}}
	m.prewarms[app.Name] = p
	m.mu.Unlock()

	if same {
		m.log.Debug("SSH to the suspected master failed: dialling again", "app", app.Name, "server", master.Name,
			"suspected_since", since.Format(time.RFC3339Nano))
	} else {
		m.log.Info("master suspected: dialling SSH ahead of the verdict", "app", app.Name, "server", master.Name)
	}
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

// maxPrewarms bounds the pre-warms running at once. A pre-warm costs an
// SSH handshake per server of the application (an sshd process each on
// the hosts), and its trigger, a late sentinel sleep, is what an
// overloaded manager sees everywhere: at 600 applications on two cores
// the leader started 2,300 pre-warms in four minutes for masters that were
// not dead, and the handshakes added to the load that made the sleeps
// late. 16 covers a datacenter's masters lost at once (the scale bench's
// ten); a suspect beyond it is not pre-warmed, and its pipeline dials at
// the verdict as it did before pre-warming.
const maxPrewarms = 16

// prewarmRetry is the least time between two dials of a suspected
// master's SSH: a dial that timed out (ssh_connection_timeout, at least a
// second) is done again at the next evaluation, one that an sshd refused at
// once a second after it started.
const prewarmRetry = time.Second

// retryLater reports whether the dial of the master failed and started
// less than prewarmRetry ago (its context still alive).
func (p *sshPrewarm) retryLater() bool {
	if p.ctx.Err() != nil {
		return false
	}
	select {
	case <-p.done:
		return p.err != nil && time.Since(p.started) < prewarmRetry
	default:
		return false
	}
}

// takePrewarm hands the pre-warm of app to the dead-master pipeline of
// dead: its recovery (the pipeline closes it) and the function that ends
// its dials once the pipeline returned. nil when there is none for dead.
// When its dial of dead failed, the pipeline gets a fresh recovery (a
// recovery keeps a failed dial's error, so it would never dial again) that
// still dates the dial of dead from the suspicion's first one: the
// pipeline dials afresh but waits for SSH no longer than it would have
// for the first dial (without this, a re-dial that failed just before the
// verdict cost the failover a whole connect_timeout).
func (m *Manager) takePrewarm(app, dead string) (failover.LogRecovery, context.CancelFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.prewarms[app]
	if p == nil {
		return nil, nil
	}
	delete(m.prewarms, app)
	if p.master != dead || p.ctx.Err() != nil {
		p.cancel()
		return nil, nil
	}
	if !p.usable() { // its dial of dead failed
		p.cancel()
		return &prewarmedRecovery{LogRecovery: failover.DefaultRecovery(), master: dead, since: p.since,
			started: map[string]time.Time{}}, func() {}
	}
	return p.rec, p.cancel
}
