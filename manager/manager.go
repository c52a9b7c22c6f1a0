package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/consensus"
	"github.com/mharaft/mharaft/detector"
	"github.com/mharaft/mharaft/fsm"
	"github.com/mharaft/mharaft/metrics"
	"github.com/mharaft/mharaft/topology"
)

// Defaults of the loops.
const (
	// DefaultDiscoveryInterval is how often the leader re-discovers each
	// application's topology and stores a summary.
	DefaultDiscoveryInterval = 5 * time.Second
	// evaluateBackstop is the sweep that re-evaluates every application
	// even when nothing was applied, because freshness windows expire with
	// time alone (a suspected application is evaluated every
	// suspectEvaluate besides: evaluateLoop).
	evaluateBackstop = time.Second
	// suspectEvaluate is how often an application whose master some
	// manager cannot reach is evaluated (evaluateLoop).
	suspectEvaluate = 100 * time.Millisecond
)

// Config is everything one mhanode needs.
type Config struct {
	ID         string            // this manager's ID (Raft server ID)
	DataDir    string            // Raft log, snapshots and reports
	RaftAddr   string            // host:port of the Raft transport
	HTTPAddr   string            // host:port of the API and forwarding
	GossipAddr string            // host:port of memberlist; "" = raft port + 1
	Datacenter string            // this manager's datacenter
	Peers      map[string]string // every voter's ID -> Raft address, this node included
	Token      string            // bearer token of the API and of forwarding
	// AcceptTokens are accepted besides Token (API, forwarding, Raft
	// handshake, gossip) and never sent: a token rotation's middle steps.
	AcceptTokens []string
	Apps         []*config.App // the applications to watch (already loaded and valid)

	// Logger is the daemon's structured logger; default: text on stderr.
	Logger *slog.Logger
	// RaftLogOutput receives raft and memberlist logs; default os.Stderr.
	RaftLogOutput io.Writer
	// LogLevel of the raft/memberlist loggers: debug, info, warn, error.
	LogLevel string

	// DiscoveryInterval: see DefaultDiscoveryInterval.
	DiscoveryInterval time.Duration
	// DiscoveryConcurrency: see DefaultDiscoveryConcurrency.
	DiscoveryConcurrency int
	// APIHandler, when set, builds the public API handler mounted at "/"
	// (default: api.NewHandler with Token and no metrics registry).
	APIHandler func(b *Manager) http.Handler

	// Metrics, when set, is updated by the loops and served on GET
	// /metrics (build it once per process: metrics.New()).
	Metrics *metrics.Metrics
	// MetricsOpen serves /metrics without the token.
	MetricsOpen bool
	// TLSCert and TLSKey (PEM files), both set, make the API and the
	// forwarding speak HTTPS and the Raft transport TLS; TLSCAFile is the
	// CA that verifies the peers (and, for Raft, their client certificates).
	TLSCert, TLSKey, TLSCAFile string

	// DetectionMode is how the detectors probe the master:
	// detector.ModeFast ("" or "fast") or detector.ModeMHA ("mha", MHA's
	// cadence, a benchmark baseline, not for production).
	DetectionMode string

	// TestClockOffset (TEST ONLY, chaos tests) shifts this manager's wall
	// clock in everything it stamps (observations, commands), to prove that
	// no decision depends on two managers' clocks agreeing.
	TestClockOffset time.Duration

	// TestVerdictDelay (TEST ONLY, safety tests) waits this long between an
	// actionable verdict and the automatic lock, before the app is
	// claimed: the window in which the state can move past the verdict,
	// which the lock's compare-and-set (AcquireLockCmd.Seen) must refuse.
	TestVerdictDelay time.Duration

	// Rejoin (mhanode --rejoin) starts a manager that joins an existing
	// group instead of founding one: no bootstrap of an empty data dir, no
	// stored-peers check; the leader adds it (mhactl members add).
	Rejoin bool
	// RaftMultiplier scales the Raft heartbeat, election and leader-lease
	// timeouts (consensus.Default*: 250 ms each at 1, the default, tuned
	// for managers on one LAN). Managers in several datacenters raise it
	// with the round trip between them (docs/MULTI-DC.md): a timeout that
	// a slow link exceeds costs leader elections, never safety.
	RaftMultiplier int
}

// Manager is one running mhanode.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	fsm  *fsm.FSM
	node *consensus.Node
	apps map[string]*config.App // configured applications by name

	evalWake     chan struct{} // capacity 1: evaluate verdicts now
	detectWake   chan struct{} // capacity 1: check the detectors' targets now
	discoverWake chan struct{} // capacity 1: discover the apps of rediscover now

	httpLn  net.Listener
	httpSrv *http.Server

	mu          sync.Mutex
	running     map[string]bool           // apps with a pipeline running on this node
	evaluating  map[string]bool           // apps whose suspected verdict is being evaluated (evaluateApp)
	evalMarks   map[string]bool           // apps to evaluate at the next round although unchanged (markEval)
	dcs         map[string]string         // last known datacenter of every manager ID
	verdicts    map[string]string         // last verdict per app (status)
	verdictOf   map[string]string         // per app: the master (addr) its last verdict is about
	rediscover  map[string]bool           // apps the leader discovers now, not at the next tick (discoveryLoop)
	discovering map[string]bool           // apps whose discovery runs now (discoveryLoop)
	lastDisco   map[string]*lastDiscovery // per app: the leader's last discovery, for light ones (discovery.go)
	verdictKeys map[string]string         // last verdict and its managers per app (log dedup)
	refusals    map[string]string         // last lock refusal per app (log dedup)
	detectors   map[string]*appDetector   // per app: the probe of the current master
	batcher     *detector.Batcher         // publishes every detector's observations (detect.go)
	prewarms    map[string]*sshPrewarm    // per app: SSH dialled at the first suspicion (prewarm.go), leader only
	lead        *leadership               // the current leadership period, nil when not an established leader
	warned      map[string]bool           // warnOnce keys
	runtime     map[string]*config.Server // servers added at run time, built once (runtimeServer)
	divergence  divergenceChecks          // former masters checked in this term (divergence.go)

	discoPool *topology.Pool // the leader's discovery connections (discoveryLoop)

	topoCtx     context.Context      // the leadership period topoPending belongs to (topobatch.go)
	topoPending []fsm.SetTopologyCmd // periodic discoveries' summaries waiting for the next batch
	topoKick    chan struct{}        // capacity 1: topologyBatchMax are waiting

	stopOnce sync.Once
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// New checks the configuration, binds the HTTP address and starts the Raft
// node. Nothing is started when an error is returned.
func New(cfg Config) (*Manager, error) {
	if err := validate(&cfg); err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:          cfg,
		log:          cfg.Logger.With("node", cfg.ID),
		apps:         map[string]*config.App{},
		evalWake:     make(chan struct{}, 1),
		topoKick:     make(chan struct{}, 1),
		detectWake:   make(chan struct{}, 1),
		discoverWake: make(chan struct{}, 1),
		running:      map[string]bool{},
		evaluating:   map[string]bool{},
		dcs:          map[string]string{cfg.ID: cfg.Datacenter},
		verdicts:     map[string]string{},
		verdictOf:    map[string]string{},
		rediscover:   map[string]bool{},
		discovering:  map[string]bool{},
		lastDisco:    map[string]*lastDiscovery{},
		discoPool:    topology.NewPool(),
		verdictKeys:  map[string]string{},
		refusals:     map[string]string{},
		detectors:    map[string]*appDetector{},
		warned:       map[string]bool{},
		runtime:      map[string]*config.Server{},
	}
	for _, a := range cfg.Apps {
		if _, dup := m.apps[a.Name]; dup {
			return nil, fmt.Errorf("application %q is configured twice (%s)", a.Name, a.File)
		}
		m.apps[a.Name] = a
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on http address %s (is another mhanode or program using it?): %w", cfg.HTTPAddr, err)
	}
	m.httpLn = ln

	tlsCfg, err := m.raftTLS()
	if err != nil {
		ln.Close()
		return nil, err
	}
	m.fsm = fsm.New()
	hl := hclog.New(&hclog.LoggerOptions{
		Name:       "mhanode",
		Level:      hclog.LevelFromString(cfg.LogLevel),
		Output:     cfg.RaftLogOutput,
		JSONFormat: false,
	}).With("node", cfg.ID)
	node, err := consensus.New(consensus.Config{
		ID:           cfg.ID,
		DataDir:      filepath.Join(cfg.DataDir, "raft"),
		RaftAddr:     cfg.RaftAddr,
		Peers:        cfg.Peers,
		GossipAddr:   cfg.GossipAddr,
		HTTPAddr:     cfg.HTTPAddr,
		Datacenter:   cfg.Datacenter,
		Token:        cfg.Token,
		AcceptTokens: cfg.AcceptTokens,
		Logger:       hl,
		TLS:          tlsCfg,
		Rejoin:       cfg.Rejoin,
		// hashicorp/raft wants ElectionTimeout >= HeartbeatTimeout >=
		// LeaderLeaseTimeout: the defaults are equal, so are their multiples.
		HeartbeatTimeout:   time.Duration(cfg.RaftMultiplier) * consensus.DefaultHeartbeatTimeout,
		ElectionTimeout:    time.Duration(cfg.RaftMultiplier) * consensus.DefaultElectionTimeout,
		LeaderLeaseTimeout: time.Duration(cfg.RaftMultiplier) * consensus.DefaultLeaderLeaseTimeout,
		Responses:          consensus.ResponseCodec{Encode: fsm.MarshalResponse, Decode: fsm.UnmarshalResponse},
	}, &notifyingFSM{FSM: m.fsm, notify: m.notifyChanged, metrics: cfg.Metrics})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("start raft node %s: %w", cfg.ID, err)
	}
	m.node = node
	m.batcher = m.newBatcher()
	return m, nil
}

// validate fills defaults and checks what can be checked before binding.
func validate(cfg *Config) error {
	if cfg.ID == "" {
		return errors.New("--id is required")
	}
	if cfg.DataDir == "" {
		return errors.New("--data-dir is required")
	}
	if cfg.Token == "" {
		return errors.New("a token is required (--token-file): it authenticates the API and forwarded commands")
	}
	if cfg.RaftAddr == "" || cfg.HTTPAddr == "" {
		return errors.New("--raft-addr and --http-addr are required")
	}
	if _, err := detector.ParseMode(cfg.DetectionMode); err != nil {
		return err
	}
	if cfg.RaftMultiplier == 0 {
		cfg.RaftMultiplier = 1
	}
	if cfg.RaftMultiplier < 1 || cfg.RaftMultiplier > 10 {
		return fmt.Errorf("--raft-multiplier %d: use 1 (managers on one LAN) to 10; across datacenters about 1 + round trip / 50 ms", cfg.RaftMultiplier)
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	if len(cfg.Apps) == 0 {
		return errors.New("no application configured (--conf app1.conf)")
	}
	if err := checkDataDir(cfg.DataDir); err != nil {
		return err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.RaftLogOutput == nil {
		cfg.RaftLogOutput = os.Stderr
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	if cfg.DiscoveryInterval <= 0 {
		cfg.DiscoveryInterval = DefaultDiscoveryInterval
	}
	if cfg.DiscoveryConcurrency <= 0 {
		cfg.DiscoveryConcurrency = DefaultDiscoveryConcurrency
	}
	return nil
}

// checkDataDir creates the data dir if needed and proves it is a writable
// directory.
func checkDataDir(dir string) error {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("data dir %s exists and is not a directory", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir %s: %w", dir, err)
	}
	probe, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return nil
}

// Run serves HTTP and runs the loops until ctx ends, then shuts down.
func (m *Manager) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	m.cancel = cancel
	defer cancel()

	// Timeouts, a bounded number of connections and the body limit before
	// any token check: an unauthenticated client cannot hold the listener.
	m.httpSrv = api.NewHTTPServer(m.handler(), api.Limits{}, m.log.With("component", "http"))
	ln := api.LimitListener(m.httpLn, api.Limits{})
	srvErr := make(chan error, 1)
	go func() {
		if m.tlsEnabled() {
			srvErr <- m.httpSrv.ServeTLS(ln, m.cfg.TLSCert, m.cfg.TLSKey)
			return
		}
		srvErr <- m.httpSrv.Serve(ln)
	}()

	m.log.Info("mhanode started", "raft_addr", m.cfg.RaftAddr, "http_addr", m.cfg.HTTPAddr,
		"datacenter", m.cfg.Datacenter, "apps", len(m.apps), "epoch", 0)

	m.goLoop(ctx, m.leaderLoop)
	m.goLoop(ctx, m.detectLoop)
	m.goLoop(ctx, m.batcher.Run)
	m.goLoop(ctx, m.beatOnNewLeader)
	m.goLoop(ctx, m.evaluateLoop)
	m.goLoop(ctx, m.discoveryLoop)
	m.goLoop(ctx, m.topologyBatchLoop)
	m.goLoop(ctx, m.raftMetricsLoop)

	var err error
	select {
	case <-ctx.Done():
	case err = <-srvErr:
		err = fmt.Errorf("http server on %s: %w", m.cfg.HTTPAddr, err)
	}
	cancel()
	m.shutdown()
	return err
}

func (m *Manager) goLoop(ctx context.Context, f func(context.Context)) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f(ctx)
	}()
}

// shutdown stops the loops, the HTTP server and the Raft node.
func (m *Manager) shutdown() {
	m.stopOnce.Do(func() {
		m.wg.Wait()
		m.mu.Lock()
		for _, d := range m.detectors {
			d.stop()
		}
		m.mu.Unlock()
		if m.httpSrv != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			m.httpSrv.Shutdown(sctx)
			cancel()
		} else {
			m.httpLn.Close()
		}
		if err := m.node.Shutdown(); err != nil {
			m.log.Warn("shut down raft", "error", err, "epoch", 0)
		}
		m.log.Info("mhanode stopped", "epoch", 0)
	})
}

// Close stops a manager whose Run was never called.
func (m *Manager) Close() {
	if m.cancel != nil {
		m.cancel()
	}
	m.shutdown()
}

// notifyChanged wakes the evaluator and the detectors; it never blocks
// the FSM.
func (m *Manager) notifyChanged() {
	wake(m.evalWake)
	wake(m.detectWake)
}

// applyAsLeader commits a command through this node's own Raft log while
// it is the leader and ctx (a leadership period's context) is alive. It is
// never forwarded: a deposed leader's lock, journal or release command
// must fail, not commit through the new leader.
func (m *Manager) applyAsLeader(ctx context.Context, cmd []byte) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: leadership period ended (%w): %w", m.cfg.ID, err, consensus.ErrNotLeader)
	}
	return m.node.ApplyLocal(ctx, cmd)
}

// now is this manager's wall clock (shifted by TestClockOffset in tests).
func (m *Manager) now() time.Time { return time.Now().Add(m.cfg.TestClockOffset) }

// FSM gives read access to the replicated state (tests, tools).
func (m *Manager) FSM() *fsm.FSM { return m.fsm }
