package manager

import (
	"context"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/detector"
	"github.com/mharaft/mharaft/fsm"
)

// appDetector is this node's probe of one application's current master.
type appDetector struct {
	d      *detector.Detector
	master string // config name of the watched master, "" before the first Watch
}

func (a *appDetector) stop() { a.d.Stop() }

// publishTimeout bounds one observation's trip through Raft.
const publishTimeout = 3 * time.Second

// publish is the detector.Publisher of this node: it commits an Observe
// command (forwarded to the leader from a follower).
func (m *Manager) publish(ctx context.Context, o detector.Observation) error {
	if m.NotMember() != nil {
		return nil // removed from the group: its view counts for nothing, so it writes none
	}
	m.noteProbeLogin(o)
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	_, err := m.node.Apply(ctx, fsm.EncodeObserve(fsm.ObserveCmd{App: o.App, Observation: fsm.Observation{
		Manager: o.Manager, Server: o.Server, Reachable: o.Reachable, Kind: o.Kind,
		Since: o.Since.Add(m.cfg.TestClockOffset), At: o.At.Add(m.cfg.TestClockOffset), Detail: o.Detail,
	}}))
	return err
}

// detectLoop keeps one detector per application pointed at the master the
// replicated state names; after a failover every node learns the new master
// from the FSM and retargets.
func (m *Manager) detectLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		m.retarget(ctx)
		select {
		case <-ctx.Done():
			return
		case <-m.detectWake:
		case <-tick.C:
		}
	}
}

func (m *Manager) retarget(ctx context.Context) {
	for name := range m.apps {
		st, ok := m.fsm.App(name)
		if !ok || st.Master == "" {
			continue
		}
		app := m.effectiveApp(name, &st)
		srv := configServer(app, &st, st.Master)
		if srv == nil {
			continue
		}
		m.mu.Lock()
		ad := m.detectors[name]
		if ad == nil {
			ad = &appDetector{d: detector.New(detector.Config{Manager: m.cfg.ID, Metrics: m.detectorConfigMetrics(), Mode: m.cfg.DetectionMode},
				detector.PublisherFunc(m.publish), m.log.With("app", name))}
			m.detectors[name] = ad
			go m.wakeOnDetectorChange(ctx, ad.d)
		}
		retarget := ad.master != srv.Name
		if retarget {
			ad.master = srv.Name
		}
		m.mu.Unlock()
		if retarget {
			m.log.Info("watching master", "app", name, "server", srv.Name, "addr", srv.Addr(), "epoch", st.LastEpoch)
			ad.d.Watch(ctx, app, srv)
		}
	}
}

// wakeOnDetectorChange wakes the evaluator when the local view changes.
func (m *Manager) wakeOnDetectorChange(ctx context.Context, d *detector.Detector) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.Changed():
			wake(m.evalWake)
		}
	}
}

// configServer maps a server of the replicated state (addr or name) to
// this node's configured server of the same name: the name is the identity
// that every node shares, while addresses may differ per node (proxies,
// NAT) and credentials exist only in the local configuration.
func configServer(app *config.App, st *fsm.AppState, key string) *config.Server {
	if s, ok := st.Server(key); ok {
		for _, cs := range app.Servers {
			if cs.Name == s.Name {
				return cs
			}
		}
	}
	return app.Server(key)
}

// fsmAddr is the replicated-state address of the configured server name.
func fsmAddr(st *fsm.AppState, name string) string {
	if s, ok := st.Server(name); ok {
		return s.Addr()
	}
	return ""
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
