package manager

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

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

// publishTimeout bounds one batch of changed observations' trip through
// Raft (a heartbeat is bounded by its own period, detector.Batcher).
const publishTimeout = 3 * time.Second

// newBatcher is this node's one publisher of observations: every
// detector's changes and the heartbeat of all of them go through it, one
// ObserveBatch entry per flush (detector/doc.go, "Publishing").
func (m *Manager) newBatcher() *detector.Batcher {
	return detector.NewBatcher(detector.BatcherConfig{Manager: m.cfg.ID, ChangeTimeout: publishTimeout, Metrics: m.detectorConfigMetrics()},
		batchPublisher{m}, m.log)
}

// batchPublisher commits the Batcher's batches: an ObserveBatch command
// (forwarded to the leader from a follower).
type batchPublisher struct{ m *Manager }

func (p batchPublisher) PublishBatch(ctx context.Context, b detector.Batch) (detector.BatchResult, error) {
	m := p.m
	if m.NotMember() != nil {
		return detector.BatchResult{}, nil // removed from the group: its view counts for nothing, so it writes none
	}
	off := m.cfg.TestClockOffset
	cmd := fsm.ObserveBatchCmd{Manager: m.cfg.ID, At: b.At.Add(off)}
	for _, o := range b.Changed {
		m.noteProbeLogin(o)
		cmd.Observations = append(cmd.Observations, fsm.ObserveCmd{App: o.App, Observation: fsm.Observation{
			Server: o.Server, Reachable: o.Reachable, Kind: o.Kind,
			Since: o.Since.Add(off), At: o.At.Add(off), Detail: o.Detail,
		}})
	}
	for _, r := range b.Refresh {
		cmd.Refresh = append(cmd.Refresh, fsm.ObserveRefresh{App: r.App, Server: r.Server, Since: r.Since.Add(off).UnixNano()})
	}
	start := time.Now()
	resp, err := m.node.Apply(ctx, fsm.EncodeObserveBatch(cmd))
	if err == nil {
		kind := "heartbeat"
		if len(cmd.Observations) > 0 && len(cmd.Refresh) == 0 {
			kind = "change"
		}
		m.cfg.Metrics.ObservePublish(kind, time.Since(start))
	}
	if err != nil {
		return detector.BatchResult{}, fmt.Errorf("publish %d changed and %d refreshed observations of manager %s: %w",
			len(cmd.Observations), len(cmd.Refresh), m.cfg.ID, err)
	}
	var res detector.BatchResult
	if r, ok := resp.(fsm.ObserveBatchResult); ok {
		for _, u := range r.Unmatched {
			res.Unmatched = append(res.Unmatched, detector.Refresh{App: u.App, Server: u.Server, Since: time.Unix(0, u.Since).Add(-off)})
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

// beatOnNewLeader asks the batcher for a heartbeat whenever a leader
// becomes known: observations logged in an earlier term are not fresh, so
// the new leader's verdicts wait for them.
func (m *Manager) beatOnNewLeader(ctx context.Context) {
	obsCh := make(chan raft.Observation, 4)
	obs := raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		lo, ok := o.Data.(raft.LeaderObservation)
		return ok && lo.LeaderID != ""
	})
	r := m.node.Raft()
	r.RegisterObserver(obs)
	defer r.DeregisterObserver(obs)
	for {
		select {
		case <-ctx.Done():
			return
		case <-obsCh:
			m.batcher.Beat()
		}
	}
}

// detectLoop keeps one detector per application pointed at the master the
// replicated state names; after a failover every node learns the new master
// from the FSM and retargets.
//
// An applied entry wakes it, but only the applications whose replicated
// state changed (fsm.AppChanged) are looked at, and all of them every
// retargetSweep: with 1,000 applications, copying every application's
// state at every entry cost a follower a fifth of its CPU (issue 17).
func (m *Manager) detectLoop(ctx context.Context) {
	tick := time.NewTicker(retargetSweep)
	defer tick.Stop()
	seen := map[string]uint64{} // fsm.AppChanged when the application was last looked at
	all := true
	for {
		m.retarget(ctx, seen, all)
		select {
		case <-ctx.Done():
			return
		case <-m.detectWake:
			all = false
		case <-tick.C:
			all = true
		}
	}
}

// retargetSweep is how often detectLoop looks at every application.
const retargetSweep = 5 * time.Second

// retarget points each application's detector at the master the
// replicated state names (creating the detector the first time); with all
// false only at the applications whose state changed since seen.
func (m *Manager) retarget(ctx context.Context, seen map[string]uint64, all bool) {
	for name := range m.apps {
		changed := m.fsm.AppChanged(name)
		if !all && changed == seen[name] {
			continue
		}
		seen[name] = changed
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
			cfg := detector.Config{Manager: m.cfg.ID, Metrics: m.detectorConfigMetrics(), Mode: m.cfg.DetectionMode, OnDemand: true}
			ad = &appDetector{d: detector.New(cfg, m.batcher, m.log.With("app", name))}
			m.detectors[name] = ad
			m.batcher.Track(name, ad.d)
			go m.wakeOnDetectorChange(ctx, name, ad.d)
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

// wakeOnDetectorChange has app evaluated when the local view of it
// changes.
func (m *Manager) wakeOnDetectorChange(ctx context.Context, app string, d *detector.Detector) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.Changed():
			m.markEval(app)
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
