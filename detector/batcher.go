package detector

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Batch is what one manager publishes in one entry of the replicated log:
// full observations that changed (or were never committed), and the
// refresh of unchanged ones whose detectors confirm them.
type Batch struct {
	Manager string
	Changed []Observation
	Refresh []Refresh
	At      time.Time // the batcher's clock when it built the batch
}

// Refresh names one committed observation of the batch's manager: its
// application, server and Since. The replicated state re-stamps that
// observation and no other (a newer or older one of the same server has
// another Since).
type Refresh struct {
	App    string
	Server string
	Since  time.Time
}

// BatchResult is what the replicated state did not apply of a batch.
type BatchResult struct {
	// Unmatched: refreshes that named no stored observation (it was
	// replaced, pruned, or never stored): their full observations are
	// published again.
	Unmatched []Refresh
	// Rejected: changed observations that were refused (unknown
	// application or server), by application; retried with the next
	// heartbeat.
	Rejected map[string]string
}

// BatchPublisher commits one batch (the daemon: one Raft entry, an
// fsm.ObserveBatch forwarded to the leader from a follower). An error
// means the batch may not have been committed.
type BatchPublisher interface {
	PublishBatch(ctx context.Context, b Batch) (BatchResult, error)
}

// BatcherConfig tunes a Batcher. Zero values take the defaults shown.
type BatcherConfig struct {
	Manager string // this manager's ID (required)
	// ChangeTimeout bounds the commit of a batch of changes (default 3 s).
	ChangeTimeout time.Duration
	// DefaultInterval is the heartbeat period while no detector is
	// tracked (default 1 s); otherwise it is the smallest RefreshEvery of
	// the tracked detectors.
	DefaultInterval time.Duration
	Metrics         Metrics          // default NopMetrics
	Now             func() time.Time // default time.Now; the detectors' clock
}

// Batcher is the one publisher of a manager (see the package doc,
// "Publishing"). Detectors publish their changes through it (it is their
// Publisher) and it flushes them at once, coalescing whatever changes while
// a flush is in flight into the next one; every heartbeat period it
// publishes one batch that refreshes the committed observations that their
// detectors confirmed within ConfirmWithin (half their window).
type Batcher struct {
	cfg BatcherConfig
	pub BatchPublisher
	log *slog.Logger

	kick chan struct{} // capacity 1: changes are pending
	beat chan struct{} // capacity 1: send a heartbeat now

	mu        sync.Mutex
	detectors map[string]*Detector   // app -> its detector (Track)
	pending   map[string]Observation // app -> newest change not committed yet
	committed map[string]Observation // app -> last observation committed in full
	refused   map[string]string      // app -> the last refusal logged (logged again only when it changes)
}

// ConfirmWithin is how recent a detector's last result must be for a
// heartbeat to refresh its observation: half the window. A healthy
// detector produces a result at least every ping_interval plus a ping's
// latency, well within half of DefaultWindow (two ping intervals plus
// the connect timeout), so every heartbeat refreshes it; a detector that
// produced nothing for that long (a hung probe) is left to go stale like
// the view of a silent manager.
func ConfirmWithin(window time.Duration) time.Duration { return window / 2 }

// NewBatcher returns the publisher of manager cfg.Manager; call Run.
func NewBatcher(cfg BatcherConfig, pub BatchPublisher, log *slog.Logger) *Batcher {
	if cfg.ChangeTimeout <= 0 {
		cfg.ChangeTimeout = 3 * time.Second
	}
	if cfg.DefaultInterval <= 0 {
		cfg.DefaultInterval = time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NopMetrics{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Batcher{cfg: cfg, pub: pub, log: log.With("component", "publisher", "manager", cfg.Manager),
		kick: make(chan struct{}, 1), beat: make(chan struct{}, 1),
		detectors: map[string]*Detector{}, pending: map[string]Observation{}, committed: map[string]Observation{},
		refused: map[string]string{}}
}

// Track makes the heartbeat refresh app's observations from d. One
// detector per application; tracking another replaces it.
func (b *Batcher) Track(app string, d *Detector) {
	b.mu.Lock()
	b.detectors[app] = d
	b.mu.Unlock()
}

// Beat asks for a heartbeat now (the daemon calls it when a new leader is
// known: observations logged in an earlier term are not fresh).
func (b *Batcher) Beat() { signal(b.beat) }

// Publish is the detectors' Publisher: a change (a new Kind, reachability
// or Since, or a first observation) is queued and flushed at once; an
// observation that was already committed or queued unchanged is left to
// the heartbeat. It never blocks.
func (b *Batcher) Publish(_ context.Context, o Observation) error {
	b.mu.Lock()
	c, isCommitted := b.committed[o.App]
	p, isPending := b.pending[o.App]
	if (isCommitted && sameObservation(c, o) && !isPending) || (isPending && sameObservation(p, o)) {
		b.mu.Unlock()
		return nil
	}
	b.pending[o.App] = o
	b.mu.Unlock()
	signal(b.kick)
	return nil
}

// sameObservation: the same observation as far as the replicated state is
// concerned (a refresh can stand for it).
func sameObservation(a, b Observation) bool {
	return a.Server == b.Server && a.Kind == b.Kind && a.Reachable == b.Reachable && a.Since.Equal(b.Since)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run flushes changes and sends heartbeats until ctx ends.
func (b *Batcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); b.flushLoop(ctx) }()
	go func() { defer wg.Done(); b.heartbeatLoop(ctx) }()
	wg.Wait()
}

// flushLoop publishes the pending changes as soon as there are any: one
// batch at a time, so changes made during a flush go together in the next.
func (b *Batcher) flushLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
		}
		now := b.cfg.Now()
		batch := Batch{Manager: b.cfg.Manager, Changed: b.takePending(now), At: now}
		if len(batch.Changed) == 0 {
			continue
		}
		b.publish(ctx, batch, b.cfg.ChangeTimeout)
	}
}

// heartbeatLoop sends a heartbeat every interval (and on Beat): the
// refresh of every committed observation that its detector confirmed
// within ConfirmWithin. Changes whose flush failed are retried by the
// flush loop, which it wakes: changes are only ever sent by that one loop,
// one batch at a time, so two changes of one application are never in
// flight together and cannot be logged in the wrong order.
func (b *Batcher) heartbeatLoop(ctx context.Context) {
	for {
		iv := b.interval()
		t := time.NewTimer(iv)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-b.beat:
		case <-t.C:
		}
		t.Stop()
		batch, retry := b.heartbeat()
		if retry {
			signal(b.kick)
		}
		if len(batch.Refresh) == 0 {
			continue
		}
		// A heartbeat that cannot be committed within its period is
		// abandoned: the next one replaces it, so no refresh is logged
		// much later than the results it confirms.
		b.publish(ctx, batch, iv)
	}
}

// interval is the heartbeat period: the smallest RefreshEvery of the
// tracked detectors.
func (b *Batcher) interval() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	iv := time.Duration(0)
	for _, d := range b.detectors {
		if _, _, r, ok := d.current(); ok && r > 0 && (iv == 0 || r < iv) {
			iv = r
		}
	}
	if iv == 0 {
		iv = b.cfg.DefaultInterval
	}
	return iv
}

// takePending removes the pending changes and returns those that are
// still confirmed, sorted by app.
func (b *Batcher) takePending(now time.Time) []Observation {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.takePendingLocked(now)
}

// takePendingLocked: a pending change is published only while its
// detector still holds it and produced a result within ConfirmWithin (a
// change whose flush failed is not published later from a detector that
// hung meanwhile); it is published with the detector's latest At. The
// changes of an application without a tracked detector are published as
// given.
func (b *Batcher) takePendingLocked(now time.Time) []Observation {
	out := make([]Observation, 0, len(b.pending))
	for app, o := range b.pending {
		if d := b.detectors[app]; d != nil {
			cur, window, _, ok := d.current()
			if !ok || !sameObservation(cur, o) || !confirmed(now, cur.At, window) {
				continue
			}
			o = cur
		}
		out = append(out, o)
	}
	clear(b.pending)
	sort.Slice(out, func(i, j int) bool { return out[i].App < out[j].App })
	return out
}

// confirmed: a result at at is recent enough at now for window.
func confirmed(now, at time.Time, window time.Duration) bool {
	age := now.Sub(at)
	return age <= ConfirmWithin(window) && age >= -ConfirmWithin(window)
}

// heartbeat builds the next heartbeat batch (see heartbeatLoop); retry
// says that changes wait to be sent again.
func (b *Batcher) heartbeat() (batch Batch, retry bool) {
	now := b.cfg.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	batch = Batch{Manager: b.cfg.Manager, At: now}
	for app, d := range b.detectors {
		o, window, _, ok := d.current()
		if !ok {
			continue
		}
		c, isCommitted := b.committed[app]
		if !isCommitted || !sameObservation(c, o) {
			continue // not committed yet (a flush is in flight or failed): no refresh
		}
		if !confirmed(now, o.At, window) {
			continue // the detector produced nothing recently: let it go stale
		}
		batch.Refresh = append(batch.Refresh, Refresh{App: app, Server: c.Server, Since: c.Since})
	}
	sort.Slice(batch.Refresh, func(i, j int) bool { return batch.Refresh[i].App < batch.Refresh[j].App })
	return batch, len(b.pending) > 0
}

// publish commits batch within timeout and records the outcome: committed
// changes become refreshable, failed and rejected ones wait for the next
// heartbeat (unless a newer change replaced them), and unmatched refreshes
// are published in full again.
func (b *Batcher) publish(ctx context.Context, batch Batch, timeout time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	res, err := b.pub.PublishBatch(pctx, batch)
	cancel()
	for _, o := range batch.Changed {
		perr := err
		if why, ok := res.Rejected[o.App]; ok && err == nil {
			perr = rejectedError(why)
		}
		b.cfg.Metrics.Published(o.App, o.Server, o.Kind, perr)
	}
	if err != nil && ctx.Err() == nil {
		b.log.Warn("publish observations", "changed", len(batch.Changed), "refreshed", len(batch.Refresh), "err", err)
	}
	requeue := false
	b.mu.Lock()
	for _, o := range batch.Changed {
		why, rejected := res.Rejected[o.App]
		if err == nil && !rejected {
			b.committed[o.App] = o
			delete(b.refused, o.App)
			continue
		}
		if rejected && b.refused[o.App] != why {
			b.refused[o.App] = why
			b.log.Warn("observation refused by the replicated state; it is sent again with each heartbeat while its detector confirms it",
				"app", o.App, "server", o.Server, "kind", o.Kind, "err", why)
		}
		if _, newer := b.pending[o.App]; !newer {
			b.pending[o.App] = o // retried when the next heartbeat wakes the flush loop
		}
	}
	for _, r := range res.Unmatched {
		c, ok := b.committed[r.App]
		if !ok || c.Server != r.Server || !c.Since.Equal(r.Since) {
			continue // a newer observation was committed meanwhile
		}
		delete(b.committed, r.App)
		if _, newer := b.pending[r.App]; !newer {
			b.pending[r.App] = c
			requeue = true
		}
	}
	b.mu.Unlock()
	if requeue {
		signal(b.kick)
	}
}

type rejectedError string

func (e rejectedError) Error() string { return string(e) }
