package detector

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mharaft/mharaft/fsm"
)

// The batcher tests run the publisher against the real replicated state
// machine (package fsm): each batch becomes one raft.Log stamped by a
// "leader" with the test's clock and term, as the daemon's Raft would
// stamp it. Raft itself is not run here (the manager's cluster tests do).

// clock is the test's one clock: the detectors', the batcher's and the
// leader's (the leader stamps with its own clock; in these tests all run
// on one).
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fsmLog applies batches to an fsm.FSM as one log entry each.
type fsmLog struct {
	mu      sync.Mutex
	f       *fsm.FSM
	clock   *clock
	term    uint64
	fail    error         // when set, batches fail without being applied
	batches []Batch       // every batch applied
	delay   chan struct{} // when set, each PublishBatch waits for a receive
	waiting int           // PublishBatch calls waiting on delay
}

func newFSMLog(t *testing.T, c *clock, apps ...string) *fsmLog {
	f := fsm.New()
	for _, a := range apps {
		r := f.ApplyBytes(fsm.EncodeRegisterApp(fsm.RegisterAppCmd{App: a, Master: "10.0.0.1:3306",
			Servers: []fsm.Server{{Name: "server1", IP: "10.0.0.1", Port: 3306}, {Name: "server2", IP: "10.0.0.2", Port: 3306}}}))
		if err, ok := r.(error); ok {
			t.Fatal(err)
		}
	}
	return &fsmLog{f: f, clock: c, term: 1}
}

func (l *fsmLog) PublishBatch(ctx context.Context, b Batch) (BatchResult, error) {
	if l.delay != nil {
		l.mu.Lock()
		l.waiting++
		l.mu.Unlock()
		defer func() {
			l.mu.Lock()
			l.waiting--
			l.mu.Unlock()
		}()
		select {
		case <-l.delay:
		case <-ctx.Done():
			return BatchResult{}, ctx.Err()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return BatchResult{}, l.fail
	}
	cmd := fsm.ObserveBatchCmd{Manager: b.Manager, At: b.At}
	for _, o := range b.Changed {
		cmd.Observations = append(cmd.Observations, fsm.ObserveCmd{App: o.App, Observation: fsm.Observation{
			Server: o.Server, Reachable: o.Reachable, Kind: o.Kind, Since: o.Since, At: o.At, Detail: o.Detail}})
	}
	for _, r := range b.Refresh {
		cmd.Refresh = append(cmd.Refresh, fsm.ObserveRefresh{App: r.App, Server: r.Server, Since: r.Since.UnixNano()})
	}
	resp := l.f.Apply(&raft.Log{Type: raft.LogCommand, Term: l.term, AppendedAt: l.clock.Now(), Data: fsm.EncodeObserveBatch(cmd)})
	l.batches = append(l.batches, b)
	var res BatchResult
	switch r := resp.(type) {
	case error:
		return res, r
	case fsm.ObserveBatchResult:
		for _, u := range r.Unmatched {
			res.Unmatched = append(res.Unmatched, Refresh{App: u.App, Server: u.Server, Since: time.Unix(0, u.Since)})
		}
		for _, rj := range r.Rejected {
			if res.Rejected == nil {
				res.Rejected = map[string]string{}
			}
			res.Rejected[rj.App] = rj.Error
		}
	}
	return res, nil
}

func (l *fsmLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.batches)
}

// fresh reports whether manager mgr's observation of app's master is fresh
// for the leader of l.term at the clock's now, as Evaluate decides it.
func (l *fsmLog) fresh(app, mgr string, window time.Duration) (Observation, bool) {
	st, _ := l.f.App(app)
	o, ok := st.Observations[mgr]["10.0.0.1:3306"]
	if !ok {
		return Observation{}, false
	}
	do := Observation{App: app, Manager: mgr, Server: "server1", Reachable: o.Reachable, Kind: o.Kind, Since: o.Since, At: o.At,
		LoggedAt: o.LoggedAt, LoggedTerm: o.LoggedTerm, SinceLogged: o.SinceLogged}
	return do, do.FreshAt(l.clock.Now(), l.term, window)
}

// testWindow: the window of ping_interval 1 s and connect_timeout 1 s (the
// tests' usual settings); RefreshEvery is a third of it.
const testWindow = 3 * time.Second

// watched returns a detector of manager mgr that behaves as if Watch ran
// on app's server1 (window testWindow) without probing anything: the test
// feeds its results with result().
func watched(mgr string, c *clock, b *Batcher) *Detector {
	d := New(Config{Manager: mgr, Now: c.Now}, b, nil)
	d.window, d.refresh = testWindow, testWindow/3
	return d
}

// result records one probe result of d about app's server1 at the clock's
// now, as the probe loop does, and passes what the detector would publish
// to the batcher (the detector's publishLoop does that in a goroutine).
func result(d *Detector, b *Batcher, app, kind string, last *time.Time) {
	now := d.cfg.Now()
	o := Observation{App: app, Manager: d.cfg.Manager, Server: "server1", Kind: kind, Reachable: kind == KindOK, Since: now, At: now}
	d.record(o, testWindow/3, last)
	d.pubMu.Lock()
	p := d.pending
	d.pending = nil
	d.pubMu.Unlock()
	if p != nil {
		b.Publish(context.Background(), *p)
	}
}

// flush runs what flushLoop runs once.
func flush(b *Batcher) {
	now := b.cfg.Now()
	if ch := b.takePending(now); len(ch) > 0 {
		b.publish(context.Background(), Batch{Manager: b.cfg.Manager, Changed: ch, At: now}, time.Second)
	}
}

// beat runs what heartbeatLoop runs once and returns the heartbeat; when
// changes wait to be sent again it then runs the flush it wakes and
// returns that batch too.
func beat(b *Batcher) (hb Batch, retried []Observation) {
	hb, retry := b.heartbeat()
	if len(hb.Changed) != 0 {
		panic("a heartbeat carries changes")
	}
	if len(hb.Refresh) > 0 {
		b.publish(context.Background(), hb, time.Second)
	}
	if retry {
		now := b.cfg.Now()
		retried = b.takePending(now)
		if len(retried) > 0 {
			b.publish(context.Background(), Batch{Manager: b.cfg.Manager, Changed: retried, At: now}, time.Second)
		}
	}
	return hb, retried
}

// TestBatcherHeartbeat: after the changes are committed, one heartbeat
// entry per period refreshes every application whose detector produced a
// result within half the window, and no other: the observation of a
// detector that hangs (no result any more) goes stale one window after its
// last refresh, while the others stay fresh, all on the leader's clock.
func TestBatcherHeartbeat(t *testing.T) {
	c := &clock{now: t0}
	l := newFSMLog(t, c, "ok-app", "hung-app", "down-app")
	b := NewBatcher(BatcherConfig{Manager: "m1", Now: c.Now}, l, nil)
	var lastOK, lastHung, lastDown time.Time
	dOK, dHung, dDown := watched("m1", c, b), watched("m1", c, b), watched("m1", c, b)
	b.Track("ok-app", dOK)
	b.Track("hung-app", dHung)
	b.Track("down-app", dDown)

	result(dOK, b, "ok-app", KindOK, &lastOK)
	result(dHung, b, "hung-app", KindRefused, &lastHung)
	result(dDown, b, "down-app", KindRefused, &lastDown)
	flush(b)
	if n := l.count(); n != 1 {
		t.Fatalf("three changes made %d entries, want 1", n)
	}
	if got := len(l.batches[0].Changed); got != 3 {
		t.Fatalf("the entry holds %d observations, want 3", got)
	}
	// From now on dHung produces nothing (a probe that hangs); the others
	// produce a result every ping interval (1 s), unchanged.
	var staleAt time.Duration
	for step := 1; step <= 12; step++ {
		c.advance(500 * time.Millisecond)
		if step%2 == 0 {
			result(dOK, b, "ok-app", KindOK, &lastOK)
			result(dDown, b, "down-app", KindRefused, &lastDown)
		}
		before := l.count()
		if step%2 == 0 { // a heartbeat every second (testWindow/3)
			hb, retried := beat(b)
			if len(retried) != 0 {
				t.Fatalf("step %d: an unchanged observation was sent in full: %+v", step, retried)
			}
			if l.count() != before+1 {
				t.Fatalf("step %d: the heartbeat made %d entries", step, l.count()-before)
			}
			for _, r := range hb.Refresh {
				if r.App == "hung-app" && c.Now().Sub(t0) > ConfirmWithin(testWindow) {
					t.Fatalf("step %d: the hung detector's observation refreshed %s after its last result", step, c.Now().Sub(t0))
				}
			}
		}
		if _, fresh := l.fresh("ok-app", "m1", testWindow); !fresh {
			t.Fatalf("step %d: the healthy detector's observation went stale", step)
		}
		if _, fresh := l.fresh("down-app", "m1", testWindow); !fresh {
			t.Fatalf("step %d: the healthy detector's 'refused' went stale", step)
		}
		if _, fresh := l.fresh("hung-app", "m1", testWindow); !fresh && staleAt == 0 {
			staleAt = c.Now().Sub(t0)
		}
	}
	// The hung detector's last result was at t0; its last refresh at most
	// ConfirmWithin later; stale one window after that refresh.
	if staleAt == 0 || staleAt > ConfirmWithin(testWindow)+testWindow+500*time.Millisecond {
		t.Fatalf("the hung detector's observation went stale at +%s, want by +%s", staleAt, ConfirmWithin(testWindow)+testWindow)
	}
	if o, _ := l.fresh("ok-app", "m1", testWindow); !o.SinceLogged.Equal(t0) {
		t.Fatalf("refreshes moved SinceLogged: %+v", o)
	}
}

// TestBatcherSilentManager: a manager that stops publishing (stopped, cut
// off from the Raft majority) has its observations expire one window after
// its last entry, and an entry of an earlier term is never fresh, as
// before batching.
func TestBatcherSilentManager(t *testing.T) {
	c := &clock{now: t0}
	l := newFSMLog(t, c, "app1")
	b := NewBatcher(BatcherConfig{Manager: "m2", Now: c.Now}, l, nil)
	d := watched("m2", c, b)
	b.Track("app1", d)
	var last time.Time
	result(d, b, "app1", KindRefused, &last)
	flush(b)
	c.advance(time.Second)
	result(d, b, "app1", KindRefused, &last)
	beat(b)
	refreshedAt := c.Now()
	if _, fresh := l.fresh("app1", "m2", testWindow); !fresh {
		t.Fatal("not fresh after a heartbeat")
	}
	// Silent from now on: the detector goes on, nothing is published.
	for c.Now().Sub(refreshedAt) <= testWindow {
		result(d, b, "app1", KindRefused, &last)
		if _, fresh := l.fresh("app1", "m2", testWindow); !fresh {
			t.Fatalf("stale %s after the last entry, within the window", c.Now().Sub(refreshedAt))
		}
		c.advance(100 * time.Millisecond)
	}
	if _, fresh := l.fresh("app1", "m2", testWindow); fresh {
		t.Fatalf("still fresh %s after the last entry", c.Now().Sub(refreshedAt))
	}
	// A new term: the next heartbeat makes it fresh again in that term;
	// until then, nothing of the earlier term counts.
	result(d, b, "app1", KindRefused, &last)
	beat(b)
	l.term = 2
	if _, fresh := l.fresh("app1", "m2", testWindow); fresh {
		t.Fatal("an entry of term 1 is fresh in term 2")
	}
	beat(b)
	if _, fresh := l.fresh("app1", "m2", testWindow); !fresh {
		t.Fatal("the heartbeat of term 2 did not refresh")
	}
}

// TestBatcherFailedChange: a change whose entry failed is sent again with
// the next heartbeat while its detector confirms it, but never from a
// detector that produced nothing since (it would make a stale "cannot
// reach" look fresh); a change replaced by a newer one is not sent.
func TestBatcherFailedChange(t *testing.T) {
	c := &clock{now: t0}
	l := newFSMLog(t, c, "app1", "app2")
	b := NewBatcher(BatcherConfig{Manager: "m1", Now: c.Now}, l, nil)
	d1, d2 := watched("m1", c, b), watched("m1", c, b)
	b.Track("app1", d1)
	b.Track("app2", d2)
	var last1, last2 time.Time
	result(d1, b, "app1", KindOK, &last1)
	result(d2, b, "app2", KindOK, &last2)
	flush(b)

	c.advance(100 * time.Millisecond)
	result(d1, b, "app1", KindRefused, &last1)
	result(d2, b, "app2", KindRefused, &last2)
	l.fail = errors.New("no leader")
	flush(b)
	l.fail = nil
	// d1 goes on confirming "refused"; d2 hangs.
	for range 20 {
		c.advance(100 * time.Millisecond)
		result(d1, b, "app1", KindRefused, &last1)
	}
	_, retried := beat(b)
	if len(retried) != 1 || retried[0].App != "app1" || retried[0].Kind != KindRefused || !retried[0].At.Equal(c.Now()) {
		t.Fatalf("the retry after a failed change sends %+v, want app1's refused with its latest result", retried)
	}
	if o, _ := l.fresh("app2", "m1", testWindow); o.Kind != KindOK || !o.LoggedAt.Equal(t0) {
		t.Fatalf("app2: %+v: the hung detector's failed change was published late, or its old ok refreshed", o)
	}
	if o, fresh := l.fresh("app1", "m1", testWindow); o.Kind != KindRefused || !fresh {
		t.Fatalf("app1: %+v fresh=%v", o, fresh)
	}
}

// TestBatcherUnmatched: a refresh that names nothing stored (the
// observation was pruned by a registration that dropped the server and
// added it back) makes the batcher publish the full observation again.
func TestBatcherUnmatched(t *testing.T) {
	c := &clock{now: t0}
	l := newFSMLog(t, c, "app1")
	b := NewBatcher(BatcherConfig{Manager: "m1", Now: c.Now}, l, nil)
	d := watched("m1", c, b)
	b.Track("app1", d)
	var last time.Time
	result(d, b, "app1", KindOK, &last)
	flush(b)
	// Another manager's registration replaces the server list: m1's
	// observation of server1 is pruned.
	l.f.ApplyBytes(fsm.EncodeRegisterApp(fsm.RegisterAppCmd{App: "app1", Servers: []fsm.Server{{Name: "server2", IP: "10.0.0.2", Port: 3306}}}))
	l.f.ApplyBytes(fsm.EncodeRegisterApp(fsm.RegisterAppCmd{App: "app1", Servers: []fsm.Server{
		{Name: "server1", IP: "10.0.0.1", Port: 3306}, {Name: "server2", IP: "10.0.0.2", Port: 3306}}}))
	c.advance(time.Second)
	result(d, b, "app1", KindOK, &last)
	beat(b) // unmatched: requeued
	if _, fresh := l.fresh("app1", "m1", testWindow); fresh {
		t.Fatal("fresh before the full observation was sent again")
	}
	flush(b)
	if o, fresh := l.fresh("app1", "m1", testWindow); !fresh || o.Kind != KindOK {
		t.Fatalf("after the requeue: %+v fresh=%v", o, fresh)
	}
}

// TestBatcherFlushAtOnce runs the loops: a change is committed without
// waiting for the heartbeat, and changes made while a flush is in flight
// go together in the next entry.
func TestBatcherFlushAtOnce(t *testing.T) {
	c := &clock{now: t0}
	l := newFSMLog(t, c, "a1", "a2", "a3")
	l.delay = make(chan struct{})
	b := NewBatcher(BatcherConfig{Manager: "m1", Now: c.Now, DefaultInterval: time.Hour}, l, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	now := c.Now()
	obs := func(app string) Observation {
		return Observation{App: app, Manager: "m1", Server: "server1", Kind: KindRefused, Since: now, At: now}
	}
	b.Publish(ctx, obs("a1"))
	select { // the flush of a1 is in flight, waiting for the "round trip"
	case l.delay <- struct{}{}:
	case <-time.After(5 * time.Second):
		t.Fatal("the change was not flushed at once")
	}
	b.Publish(ctx, obs("a2"))
	b.Publish(ctx, obs("a3"))
	select {
	case l.delay <- struct{}{}:
	case <-time.After(5 * time.Second):
		t.Fatal("the changes made during a flush were not flushed")
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.count() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.batches) != 2 || len(l.batches[0].Changed) != 1 || len(l.batches[1].Changed) != 2 {
		t.Fatalf("batches %+v, want [a1] then [a2 a3]", l.batches)
	}
}

// TestBatcherRejected: an observation the replicated state refuses (its
// application is not registered yet) is not taken as committed: it is sent
// again with the heartbeats while its detector confirms it, and stored once
// the application exists; the other applications of the batch are not
// held back.
func TestBatcherRejected(t *testing.T) {
	c := &clock{now: t0}
	l := newFSMLog(t, c, "app1")
	b := NewBatcher(BatcherConfig{Manager: "m1", Now: c.Now}, l, nil)
	d1, dNew := watched("m1", c, b), watched("m1", c, b)
	b.Track("app1", d1)
	b.Track("new-app", dNew)
	var last1, lastNew time.Time
	result(d1, b, "app1", KindOK, &last1)
	result(dNew, b, "new-app", KindOK, &lastNew)
	flush(b)
	if o, fresh := l.fresh("app1", "m1", testWindow); !fresh || o.Kind != KindOK {
		t.Fatalf("app1 held back by another app's refusal: %+v", o)
	}
	c.advance(time.Second)
	result(d1, b, "app1", KindOK, &last1)
	result(dNew, b, "new-app", KindOK, &lastNew)
	if hb, retried := beat(b); len(retried) != 1 || retried[0].App != "new-app" || len(hb.Refresh) != 1 || hb.Refresh[0].App != "app1" {
		t.Fatalf("heartbeat after a refusal: retried %+v refresh %+v", retried, hb.Refresh)
	}
	l.f.ApplyBytes(fsm.EncodeRegisterApp(fsm.RegisterAppCmd{App: "new-app", Master: "10.0.0.1:3306",
		Servers: []fsm.Server{{Name: "server1", IP: "10.0.0.1", Port: 3306}}}))
	c.advance(time.Second)
	result(dNew, b, "new-app", KindOK, &lastNew)
	beat(b)
	if o, fresh := l.fresh("new-app", "m1", testWindow); !fresh || o.Kind != KindOK {
		t.Fatalf("new-app after its registration: %+v fresh=%v", o, fresh)
	}
	c.advance(time.Second)
	result(dNew, b, "new-app", KindOK, &lastNew)
	if hb, retried := beat(b); len(retried) != 0 || len(hb.Refresh) != 1 {
		t.Fatalf("once stored, new-app is refreshed, not sent in full: %+v %+v", hb, retried)
	}
}

// TestBatcherChangesInOrder: while a change of an application is in
// flight, its next change waits for it, even when a heartbeat comes
// meanwhile (a heartbeat never carries changes): the log holds the two in
// the order the detector saw them, and the newer one is stored last.
func TestBatcherChangesInOrder(t *testing.T) {
	c := &clock{now: t0}
	l := newFSMLog(t, c, "app1")
	l.delay = make(chan struct{})
	b := NewBatcher(BatcherConfig{Manager: "m1", Now: c.Now, DefaultInterval: time.Hour}, l, nil)
	d := watched("m1", c, b)
	b.Track("app1", d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	var last time.Time
	result(d, b, "app1", KindRefused, &last) // flushed at once: waits in PublishBatch
	waiting := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.waiting
	}
	deadline := time.Now().Add(5 * time.Second)
	for waiting() < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	c.advance(100 * time.Millisecond)
	result(d, b, "app1", KindOK, &last) // the master is back: a newer change
	b.Beat()
	// Two batches in flight together would be the bug: give the heartbeat
	// goroutine time to show it (a bounded wait for something that must
	// not happen).
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if n := waiting(); n > 1 {
			t.Fatalf("%d batches in flight together: the two changes of app1 may be logged in either order", n)
		}
	}
	for range 2 {
		select {
		case l.delay <- struct{}{}:
		case <-time.After(5 * time.Second):
			t.Fatal("the second change was not flushed after the first")
		}
	}
	for l.count() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.batches) != 2 || l.batches[0].Changed[0].Kind != KindRefused || l.batches[1].Changed[0].Kind != KindOK {
		t.Fatalf("batches %+v, want refused then ok", l.batches)
	}
	if o, _ := l.fresh("app1", "m1", testWindow); o.Kind != KindOK {
		t.Fatalf("stored %+v, want the newer ok", o)
	}
}
