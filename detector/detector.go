package detector

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
)

// Publisher shares an observation with the other managers. The daemon wires
// it to a Raft Apply of an "Observe" command; tests use an in-memory store.
// It may block (a Raft round trip); the Detector calls it from its own
// goroutine, never from the probe loop.
type Publisher interface {
	Publish(ctx context.Context, o Observation) error
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(ctx context.Context, o Observation) error

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, o Observation) error { return f(ctx, o) }

// Metrics receives counters and latencies; the daemon exports them to
// Prometheus. Every method must be cheap and safe for concurrent use.
type Metrics interface {
	// Probe is called after every probe of the master (connect, ping or a
	// sentinel break) with the resulting kind and how long it took.
	Probe(app, server, kind string, latency time.Duration)
	// ReplicaSample is called after every status query of a replica.
	ReplicaSample(app, server string, ok bool, latency time.Duration)
	// Published is called after every Publish, err nil on success.
	Published(app, server, kind string, err error)
}

// NopMetrics discards everything.
type NopMetrics struct{}

func (NopMetrics) Probe(string, string, string, time.Duration)       {}
func (NopMetrics) ReplicaSample(string, string, bool, time.Duration) {}
func (NopMetrics) Published(string, string, string, error)           {}

// Config tunes a Detector. Zero values take the defaults shown.
type Config struct {
	Manager string // this manager's ID (required)
	// Window is the detection window (default DefaultWindow(app)): it is
	// used here only to derive RefreshEvery; Evaluate gets it in Input.
	Window time.Duration
	// RefreshEvery republishes an unchanged observation so that it stays
	// fresh (default Window/3).
	RefreshEvery time.Duration
	// RetryInterval is the pause between connection attempts while the
	// master is not reachable (default 200ms).
	RetryInterval time.Duration
	// ReplicaInterval is how often replicas are sampled while the master is
	// reachable (default DefaultReplicaInterval); while it is not, they are
	// sampled every RetryInterval, and once at once when a sentinel sleep
	// turns late.
	ReplicaInterval time.Duration
	// OnDemand has replicas sampled in steady state (every ReplicaInterval
	// while the master looks fine) only within ReplicaDemand of a call to
	// Replicas (routing asks); the samples of a suspected master
	// (RetryInterval, a late sentinel sleep) and CheckReplicas are taken
	// regardless. The daemon sets it (see ReplicaDemand).
	OnDemand bool
	Metrics  Metrics          // default NopMetrics
	Now      func() time.Time // default time.Now
	// Mode is how the master is probed: ModeFast (default) or ModeMHA,
	// MHA's cadence as a benchmark baseline (mha.go). Check names with
	// ParseMode: any other value probes as ModeFast.
	Mode string
}

// DefaultWindow is the detection window for app: two ping intervals plus
// the connect timeout, so a probe that timed out once and a second,
// confirming probe both fit in it.
func DefaultWindow(app *config.App) time.Duration {
	return 2*pingInterval(app) + connectTimeout(app)
}

// DefaultReplicaInterval is how often the replicas of app are sampled while
// the master looks fine: every two ping_intervals, at most every two
// seconds (one SHOW ALL SLAVES STATUS per replica on a kept connection).
// Once the master looks unreachable the watch loop samples every
// RetryInterval, and the leader samples at every evaluation (CheckReplicas),
// so the fast cadence costs only while the master is suspected (issue 17).
// The verdict of a silent master does not wait on this cadence: a
// replica's last progress is pinned down by the sample a late sentinel
// sleep asks for (sleep), half a ping_interval after the stop at most;
// a steady sample helps only when it falls between the stop and that one.
// Routing accepts a replica's sample up to 5 s old. At 300 applications
// the replicas' samples were two fifths of a follower's CPU at one per
// second.
func DefaultReplicaInterval(app *config.App) time.Duration {
	return min(2*pingInterval(app), 2*time.Second)
}

// ReplicaDemand is how long a call to Replicas keeps a detector with
// Config.OnDemand taking steady replica samples. HAProxy asks every manager
// about every replica every 500 ms (docs/HAPROXY.md), so with replica
// routing the samples go on as before; without it they are not taken (a
// third of a follower's CPU at 300 applications, a sixth of the
// leader's). The verdict of a silent master does not need them: the
// sample a late sentinel sleep asks for pins a replica's last progress
// (DefaultReplicaInterval); a steady one did better only when it fell
// between the last heartbeat before the stop and the stop.
const ReplicaDemand = 10 * time.Second

func pingInterval(app *config.App) time.Duration {
	if app.PingInterval > 0 {
		return app.PingInterval
	}
	return 3 * time.Second
}

func connectTimeout(app *config.App) time.Duration {
	if app.ConnectTimeout > 0 {
		return app.ConnectTimeout
	}
	return time.Second
}

// Detector watches the master of one application from this manager: it
// probes the master, samples the replicas, keeps its latest local view and
// publishes observations. It never acts on servers.
type Detector struct {
	cfg Config
	pub Publisher
	log *slog.Logger

	changed chan struct{} // capacity 1: "the local observation changed"

	mu      sync.Mutex
	app     *config.App
	master  *config.Server
	local   *Observation // latest local observation of master
	cancel  context.CancelFunc
	done    chan struct{}
	tracker *replicaTracker
	kick    chan struct{} // the current watch's request for a replica sample (watch.suspect)
	window  time.Duration // of the current watch
	refresh time.Duration // of the current watch
	due     *atomic.Int64 // the current watch's sentinel due time (watch.due)

	// demand is when Replicas was last called (UnixNano; see
	// Config.OnDemand).
	demand atomic.Int64

	pubMu   sync.Mutex
	pending *Observation  // latest observation waiting to be published
	pubKick chan struct{} // capacity 1
}

// New returns a Detector that publishes through pub and logs to log
// (slog.Default() when nil). Call Watch to start it.
func New(cfg Config, pub Publisher, log *slog.Logger) *Detector {
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 200 * time.Millisecond
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NopMetrics{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Mode != ModeMHA {
		cfg.Mode = ModeFast
	}
	if log == nil {
		log = slog.Default()
	}
	return &Detector{cfg: cfg, pub: pub, log: log.With("component", "detector", "manager", cfg.Manager),
		changed: make(chan struct{}, 1), pubKick: make(chan struct{}, 1)}
}

// Changed delivers a signal (coalesced) whenever the local observation of
// the master changes kind or a sentinel sleep is late enough to suspect
// the master (Suspects), so the leader can evaluate at once.
func (d *Detector) Changed() <-chan struct{} { return d.changed }

// Suspects reports whether this manager suspects the watched master now:
// its latest observation is "cannot reach", or a sentinel sleep is late by
// suspectLate or more. A late sentinel is the first hint of a signalless
// master, a second or more before the deadline makes it an observation; it
// decides nothing (the leader dials SSH to the master's host on it, which
// changes nothing on a server).
func (d *Detector) Suspects() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.local != nil && !d.local.Reachable {
		return true
	}
	if d.due == nil {
		return false
	}
	due := d.due.Load()
	return due != 0 && d.cfg.Now().Sub(time.Unix(0, due)) >= suspectLate
}

// Local returns this manager's latest observation of the watched master
// (empty before the first probe).
func (d *Detector) Local() []Observation {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.local == nil {
		return nil
	}
	return []Observation{*d.local}
}

// current is the latest local observation with the window and refresh
// period of the watch that made it (ok false before the first result).
// Its At is when the probe loop last produced a result.
func (d *Detector) current() (o Observation, window, refresh time.Duration, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.local == nil {
		return Observation{}, 0, 0, false
	}
	return *d.local, d.window, d.refresh, true
}

// Replicas returns the latest replica views sampled by the watch loop,
// without I/O. A detector that samples only on demand (Config.OnDemand)
// samples again at once when the previous call is older than
// ReplicaDemand, so that this first answer may be that old; the next
// answers are fresh.
func (d *Detector) Replicas() []ReplicaView {
	now := d.cfg.Now()
	prev := d.demand.Swap(now.UnixNano())
	d.mu.Lock()
	t, app, master, kick := d.tracker, d.app, d.master, d.kick
	d.mu.Unlock()
	if now.Sub(time.Unix(0, prev)) > ReplicaDemand && kick != nil {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	if t == nil {
		return nil
	}
	return t.latest(app, master)
}

// steadySampling reports whether the replica loop takes its steady samples
// now (Config.OnDemand).
func (d *Detector) steadySampling() bool {
	return !d.cfg.OnDemand || d.cfg.Now().Sub(time.Unix(0, d.demand.Load())) <= ReplicaDemand
}

// CheckReplicas samples every replica of app (every server but master) now,
// in parallel, each with the connect timeout, and returns their views.
// While Watch runs on the same master, the views carry the progress history
// of the watch loop.
func (d *Detector) CheckReplicas(ctx context.Context, app *config.App, master *config.Server) []ReplicaView {
	d.mu.Lock()
	t := d.tracker
	if t == nil || d.master == nil || d.master.Name != master.Name {
		t = newReplicaTracker(d.cfg.Now, connectTimeout(app))
		defer t.close()
	}
	d.mu.Unlock()
	return d.sampleReplicas(ctx, t, app, master)
}

func (d *Detector) sampleReplicas(ctx context.Context, t *replicaTracker, app *config.App, master *config.Server) []ReplicaView {
	start := time.Now()
	views := t.sample(ctx, app, master)
	for _, v := range views {
		d.cfg.Metrics.ReplicaSample(app.Name, v.Server, v.Reachable, time.Since(start))
	}
	return views
}

// Watch starts watching master of app, replacing any earlier target (after
// a failover the daemon calls Watch with the new master). It returns at
// once; the work runs until Stop, the next Watch, or ctx ends.
func (d *Detector) Watch(ctx context.Context, app *config.App, master *config.Server) {
	d.Stop()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	t := newReplicaTracker(d.cfg.Now, connectTimeout(app))
	w := &watch{d: d, app: app, master: master, tracker: t,
		suspect: make(chan struct{}, 1), window: d.cfg.Window}
	if w.window <= 0 {
		w.window = DefaultWindow(app)
	}
	w.refresh = d.cfg.RefreshEvery
	if w.refresh <= 0 {
		w.refresh = w.window / 3
	}
	d.mu.Lock()
	d.app, d.master, d.local, d.cancel, d.done, d.tracker, d.kick = app, master, nil, cancel, done, t, w.suspect
	d.window, d.refresh, d.due = w.window, w.refresh, &w.due
	d.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(3)
	probe := w.probeLoop
	if d.cfg.Mode == ModeMHA {
		probe = w.mhaProbeLoop
	}
	go func() { defer wg.Done(); probe(ctx) }()
	go func() { defer wg.Done(); w.replicaLoop(ctx) }()
	go func() { defer wg.Done(); d.publishLoop(ctx) }()
	go func() {
		wg.Wait()
		t.close()
		close(done)
	}()
	d.log.Info("watching master", "app", app.Name, "master", master.String(),
		"ping_type", pingType(app), "ping_interval", pingInterval(app), "window", w.window, "mode", d.cfg.Mode)
}

// Stop ends the current watch and waits for its goroutines.
func (d *Detector) Stop() {
	d.mu.Lock()
	cancel, done := d.cancel, d.done
	d.cancel, d.done = nil, nil
	d.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// record stores a local observation result and queues it for publishing
// when its kind changed or the last publication is older than refresh.
func (d *Detector) record(o Observation, refresh time.Duration, lastPub *time.Time) bool {
	d.mu.Lock()
	prev := d.local
	changed := prev == nil || prev.Kind != o.Kind || prev.Reachable != o.Reachable
	if !changed {
		o.Since = prev.Since
	}
	d.local = &o
	d.mu.Unlock()
	if changed || o.At.Sub(*lastPub) >= refresh {
		*lastPub = o.At
		d.pubMu.Lock()
		d.pending = &o
		d.pubMu.Unlock()
		select {
		case d.pubKick <- struct{}{}:
		default:
		}
	}
	if changed {
		select {
		case d.changed <- struct{}{}:
		default:
		}
		d.log.Info("master observation changed", "app", o.App, "server", o.Server,
			"kind", o.Kind, "reachable", o.Reachable, "detail", o.Detail)
	}
	return changed
}

// publishLoop publishes the latest pending observation; observations that
// were superseded while a Publish was in flight are skipped.
func (d *Detector) publishLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.pubKick:
		}
		d.pubMu.Lock()
		o := d.pending
		d.pending = nil
		d.pubMu.Unlock()
		if o == nil || d.pub == nil {
			continue
		}
		err := d.pub.Publish(ctx, *o)
		d.cfg.Metrics.Published(o.App, o.Server, o.Kind, err)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("publish observation", "app", o.App, "server", o.Server, "kind", o.Kind, "err", err)
		}
	}
}

// watch is one running watch of one master.
type watch struct {
	d       *Detector
	app     *config.App
	master  *config.Server
	tracker *replicaTracker
	window  time.Duration
	refresh time.Duration
	lastPub time.Time
	suspect chan struct{} // the probe loop asks for an immediate replica sample
	// due is when the sentinel's current sleep should end (UnixNano); 0
	// once it ended well or the master answered since (Suspects).
	due     atomic.Int64
	db      *sql.DB
	created bool // ping_type=INSERT: infra.chk_masterha exists (created on this connection)
}

func pingType(app *config.App) string {
	if app.PingType == "" {
		return "SELECT"
	}
	return strings.ToUpper(app.PingType)
}

// probeLoop is the heart of the detector. It holds one sentinel connection
// to the master, blocked in SELECT SLEEP for ping_interval (two sleeps of
// half of it, see sleep): when mysqld dies
// the kernel closes the socket and the blocked read fails at once. After
// every sleep it runs the ping_type probe. A broken sentinel is followed by
// an immediate reconnect, whose result (refused, alive-but-refusing, ok,
// timeout) is the observation. A server that gives no signal (paused, host
// cut off) is caught by the deadline of the sleep: ping_interval plus the
// connect timeout.
func (w *watch) probeLoop(ctx context.Context) {
	db, err := openDB(w.master, connectTimeout(w.app))
	if err != nil {
		w.observe(KindError, false, err.Error())
		return
	}
	db.SetMaxIdleConns(0) // every Conn is a fresh connection (ping_type=CONNECT relies on it)
	w.db = db
	defer db.Close()

	var conn *sql.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	lostConnects := 0
	fresh := false // conn was just opened: it gets a ping_type probe whatever the type
	for ctx.Err() == nil {
		if conn == nil {
			start := time.Now()
			c, err := w.connect(ctx)
			if ctx.Err() != nil {
				return
			}
			kind, reachable := Classify(err)
			w.d.cfg.Metrics.Probe(w.app.Name, w.master.Name, kind, time.Since(start))
			if kind == KindLost && lostConnects < maxLostConnects {
				// The handshake was cut: typically mysqld dying right
				// now, its socket still accepting. Ask again at once
				// instead of publishing an intermediate state.
				lostConnects++
				w.pause(ctx, lostRetry)
				continue
			}
			lostConnects = 0
			w.observe(kind, reachable, detail("connect", err))
			if err != nil {
				w.pause(ctx, w.d.cfg.RetryInterval)
				continue
			}
			conn, fresh = c, true
		}
		// Ping with ping_type. With SELECT only on a new connection: then
		// the sentinel's own SELECT SLEEPs on it prove every ping_interval
		// what SELECT 1 would, one query fewer per cycle (issue 17).
		if fresh || pingType(w.app) != "SELECT" {
			fresh = false
			start := time.Now()
			err := w.ping(ctx, conn)
			if ctx.Err() != nil {
				return
			}
			kind, reachable := Classify(err)
			if err != nil && kind == KindServerError && pingType(w.app) == "INSERT" {
				kind, reachable = KindWriteFailed, false
			}
			w.d.cfg.Metrics.Probe(w.app.Name, w.master.Name, kind, time.Since(start))
			if kind == KindLost {
				conn.Close()
				conn = nil
				continue // reconnect now: its result is the observation
			}
			w.observe(kind, reachable, detail("ping", err))
			if err != nil {
				conn.Close()
				conn = nil
				w.pause(ctx, w.d.cfg.RetryInterval)
				continue
			}
		}
		// Sentinel: block in the server until the next ping is due, in
		// sentinelSleeps sleeps that share one deadline.
		start := time.Now()
		err := w.sleep(ctx, conn, start.Add(pingInterval(w.app)+connectTimeout(w.app)))
		if ctx.Err() != nil {
			return
		}
		if err == nil && pingType(w.app) == "SELECT" {
			// The probe's latency is how late the sleeps ended.
			w.d.cfg.Metrics.Probe(w.app.Name, w.master.Name, KindOK, max(0, time.Since(start)-pingInterval(w.app)))
			w.observe(KindOK, true, "")
		}
		if err != nil {
			kind, reachable := Classify(err)
			w.d.cfg.Metrics.Probe(w.app.Name, w.master.Name, kind, time.Since(start))
			conn.Close()
			conn = nil
			if kind != KindLost && kind != KindServerError {
				w.observe(kind, reachable, detail("sentinel", err))
				w.pause(ctx, w.d.cfg.RetryInterval)
			}
			// KindLost (the socket broke: mysqld died or restarted) and a
			// killed query: reconnect at once and observe that.
		}
	}
}

// sentinelLate is how late a sentinel sleep may return before the
// replicas are sampled (see sleep); suspectLate how late before the
// manager suspects the master (Suspects): long enough that the sleeps a
// loaded machine returns late do not send the leader dialling SSH.
const (
	sentinelLate = 50 * time.Millisecond
	suspectLate  = 250 * time.Millisecond
)

// sentinelSleeps is how many SELECT SLEEPs the sentinel takes per
// ping_interval (see sleep).
const sentinelSleeps = 2

// A connect whose handshake is cut is retried maxLostConnects times,
// lostRetry apart, before it is observed as KindLost.
const (
	maxLostConnects = 5
	lostRetry       = 10 * time.Millisecond
)

// pause waits d (or until ctx ends).
func (w *watch) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// observe records one probe result and, when the master stopped being
// reachable, asks the replica loop for an immediate sample.
func (w *watch) observe(kind string, reachable bool, det string) {
	if reachable {
		w.due.Store(0)
	}
	now := w.d.cfg.Now()
	o := Observation{App: w.app.Name, Manager: w.d.cfg.Manager, Server: w.master.Name,
		Reachable: reachable, Kind: kind, Since: now, At: now, Detail: redact(det, w.master.Password)}
	w.d.record(o, w.refresh, &w.lastPub)
	if !reachable {
		select {
		case w.suspect <- struct{}{}:
		default:
		}
	}
}

// connect opens the sentinel connection within the connect timeout.
func (w *watch) connect(ctx context.Context) (*sql.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout(w.app))
	defer cancel()
	c, err := w.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", w.master, err)
	}
	if err := c.PingContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect to %s: %w", w.master, err)
	}
	w.created = false
	return c, nil
}

// ping runs the ping_type probe: SELECT 1 on the sentinel connection
// (SELECT), a new connection plus SELECT 1 (CONNECT), or MHA's
// infra.chk_masterha upsert (INSERT; the CREATEs run once per connection).
func (w *watch) ping(ctx context.Context, conn *sql.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout(w.app))
	defer cancel()
	switch pingType(w.app) {
	case "CONNECT":
		c, err := w.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("connect ping to %s: %w", w.master, err)
		}
		defer c.Close()
		conn = c
	case "INSERT":
		if !w.created {
			for _, q := range []string{
				"CREATE DATABASE IF NOT EXISTS infra",
				"CREATE TABLE IF NOT EXISTS infra.chk_masterha (`key` tinyint NOT NULL primary key, `val` int(10) unsigned NOT NULL DEFAULT '0')",
			} {
				if _, err := conn.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("insert ping to %s: %s: %w", w.master, q, err)
				}
			}
			w.created = true
		}
		_, err := conn.ExecContext(ctx, "INSERT INTO infra.chk_masterha VALUES (1, unix_timestamp()) ON DUPLICATE KEY UPDATE val=unix_timestamp()")
		if err != nil {
			return fmt.Errorf("insert ping to %s: %w", w.master, err)
		}
		return nil
	}
	var one int
	if err := conn.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("select ping to %s: %w", w.master, err)
	}
	return nil
}

// sleep blocks the sentinel connection for ping_interval, in
// sentinelSleeps SELECT SLEEPs of an equal share. It returns early with an
// error when the connection breaks, and with a timeout when the server has
// not answered them all by deadline (the cycle's start plus ping_interval
// plus the connect timeout): the observation of a silent master comes when
// it did with one sleep.
//
// The shorter sleeps time one replica sample (only that: the observation
// still waits for the deadline): a sleep that has not returned
// sentinelLate after it should have asks the replica loop for a sample at
// once. A replica's last progress is the first sample after it, so a
// stopped master's last progress is pinned down by that sample, on average
// 0.3 s after the stop with two sleeps per second (ping_interval=1)
// instead of 0.6 s with one; later samples cannot improve on it (they see
// the same counters), so none is taken until the deadline makes the
// master unreachable. In steady state this costs one more query per
// ping_interval on a kept connection (none with ping_type=SELECT, whose
// separate ping the sleeps replace), and a sleep late under load one
// sample.
func (w *watch) sleep(ctx context.Context, conn *sql.Conn, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	part := pingInterval(w.app) / sentinelSleeps
	for i := 0; i < sentinelSleeps; i++ {
		if err := w.sleepOnce(ctx, conn, part); err != nil {
			return err
		}
	}
	return nil
}

// sleepOnce is one SELECT SLEEP(d) of the sentinel. It asks for a replica
// sample when it has not returned sentinelLate after d, and wakes the
// leader's evaluation (Changed) when it has not returned suspectLate after
// d (Suspects is then true).
func (w *watch) sleepOnce(ctx context.Context, conn *sql.Conn, d time.Duration) error {
	w.due.Store(w.d.cfg.Now().Add(d).UnixNano())
	late := time.AfterFunc(d+sentinelLate, func() {
		select {
		case w.suspect <- struct{}{}:
		default:
		}
	})
	defer late.Stop()
	suspected := time.AfterFunc(d+suspectLate, func() {
		select {
		case w.d.changed <- struct{}{}:
		default:
		}
	})
	defer suspected.Stop()
	var r int
	if err := conn.QueryRowContext(ctx, "SELECT SLEEP(?)", d.Seconds()).Scan(&r); err != nil {
		// due stays: a late sentinel stays suspected through its failure
		// until the master answers again (Suspects has no gap before the
		// observation it leads to).
		return fmt.Errorf("sentinel on %s: %w", w.master, err)
	}
	w.due.Store(0)
	return nil
}

// replicaLoop samples the replicas every ReplicaInterval while the master
// looks fine (only while steadySampling), every RetryInterval after the
// probe loop reported it unreachable, and at once when asked (a sentinel
// sleep turned late, the master turned unreachable, Replicas called after
// a pause).
func (w *watch) replicaLoop(ctx context.Context) {
	normal := w.d.cfg.ReplicaInterval
	if normal <= 0 {
		normal = DefaultReplicaInterval(w.app)
	}
	sample := w.d.steadySampling()
	for {
		if sample {
			w.d.sampleReplicas(ctx, w.tracker, w.app, w.master)
		}
		wait, unreachable := normal, false
		if l := w.d.Local(); len(l) == 1 && !l[0].Reachable {
			wait, unreachable = w.d.cfg.RetryInterval, true
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.suspect:
			sample = true
		case <-t.C:
			sample = unreachable || w.d.steadySampling()
		}
		t.Stop()
	}
}

// openDB returns a database handle for s with the configured user; it does
// not connect. The driver's own logging is off: we report errors ourselves.
func openDB(s *config.Server, timeout time.Duration) (*sql.DB, error) {
	mc := dialect.DriverConfig(s)
	mc.Timeout = timeout
	mc.Logger = &mysql.NopLogger{}
	c, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("configure connection to %s: %w", s, err)
	}
	return sql.OpenDB(c), nil
}

// detail renders an error for Observation.Detail.
func detail(what string, err error) string {
	if err == nil {
		return ""
	}
	return what + ": " + err.Error()
}

// redact removes password from s. The driver does not put passwords into
// its errors; this guards Observation.Detail in case one ever does.
func redact(s, password string) string {
	if password == "" {
		return s
	}
	return strings.ReplaceAll(s, password, "xxx")
}
