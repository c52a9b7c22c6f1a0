package manager

// What status shows of each server (see api.ServerStatus):
//
//   - every row carries the age of the leader's discovery it shows
//     (ObservedAt is when that discovery started), and a row older than
//     staleAfter is stale: health "stale", with why;
//   - the tree (role, replicating_from) is always the one the managers
//     believe now: when the discovery started before the master last
//     changed (a failover or switch finished since), the rows are stale and
//     their roles come from that change and its plan, not from the old
//     discovery that still shows the failed master as a healthy master;
//   - the failed master of a failover that discovery cannot reach is
//     "dead", not "unknown";
//   - the verdict is shown only while it is about the current master.
//
// The leader re-discovers an application when a pipeline ends, when its
// verdict changes and when it becomes leader (discovery.go), so the stale
// rows of a finished failover last one discovery.

import (
	"fmt"
	"math"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/fsm"
)

// staleAfter is the age beyond which a discovered row is stale: three
// discovery intervals plus the bound of one discovery.
func (m *Manager) staleAfter() time.Duration {
	return 3*m.cfg.DiscoveryInterval + discoverTimeout
}

// belief is a server's place in the tree the managers believe.
type belief struct {
	role string // api.Role*
	from string // the address it replicates from
}

// serverStatuses builds the server rows of st at now (this node's
// time.Now(); ages are measured on m.now(), the clock that stamps
// discoveries and history): hist is st's history.
func (m *Manager) serverStatuses(st *fsm.AppState, cfgApp *config.App, hist []fsm.HistoryEntry, now time.Time) []api.ServerStatus {
	clock := now.Add(m.cfg.TestClockOffset)
	topo := map[string]fsm.ServerStatus{}
	var observed time.Time
	if st.Topology != nil {
		observed = st.Topology.ObservedAt
		for _, ss := range st.Topology.Servers {
			topo[ss.Addr] = ss
		}
	}
	change, changed := masterChange(hist, st.Master)
	var believed map[string]belief
	before := changed && st.Topology != nil && observed.Before(change.Finished)
	if before {
		believed = believedTree(st, change, hist)
	}
	dead := formerMasters(hist, st.Master) // the failed masters not rejoined since
	var out []api.ServerStatus
	for _, srv := range st.Servers {
		addr := srv.Addr()
		ss := api.ServerStatus{Name: srv.Name, Addr: addr, Datacenter: srv.Datacenter, Role: api.RoleUnknown}
		t, discovered := topo[addr]
		ss.Health, ss.HealthDetail = serverHealth(st, cfgApp, addr, t, discovered, now)
		if discovered {
			at := t.ObservedAt
			if at.IsZero() {
				at = observed
			}
			age := max(clock.Sub(at), 0)
			ss.ObservedAt = &at
			secs := math.Round(age.Seconds()*1000) / 1000
			ss.AgeSeconds = &secs
			ss.Reachable, ss.ReadOnly, ss.Error = t.Reachable, t.ReadOnly, t.Error
			if before {
				b, ok := believed[addr]
				if !ok {
					b = belief{role: api.RoleUnknown}
				}
				ss.Role, ss.ReplicatingFrom = b.role, b.from
				markStale(&ss, fmt.Sprintf("discovered %s ago, before the %s of epoch %d made %s the master; not rediscovered since (the leader does it as soon as it can)",
					fmtAge(age), changeName(change.Kind), change.Epoch, serverName(st, st.Master)))
			} else {
				fillDiscovered(&ss, t)
				if _, wasDead := dead[addr]; wasDead && ss.Role != api.RoleMaster && ss.Role != api.RoleReplica && !t.Reachable {
					ss.Role = api.RoleDead
				}
				if age > m.staleAfter() {
					was := ss.Health
					if ss.HealthDetail != "" {
						was += ": " + ss.HealthDetail
					}
					markStale(&ss, fmt.Sprintf("last discovered %s ago (%s then); the leader rediscovers every %s: is there an established leader?",
						fmtAge(age), was, m.cfg.DiscoveryInterval))
				}
			}
		}
		if addr == st.Master && ss.Role == api.RoleUnknown {
			ss.Role = api.RoleMaster
		}
		divergedStatus(&ss, st)
		out = append(out, ss)
	}
	return out
}

// fillDiscovered copies what the leader's discovery saw of a server.
func fillDiscovered(ss *api.ServerStatus, t fsm.ServerStatus) {
	ss.Role, ss.ReplicatingFrom = t.Role, t.ReplicatingFrom
	ss.IOThread, ss.SQLThread, ss.GTID = t.IORunning, t.SQLRunning, t.GTIDPos
	if t.LagKnown {
		lag := int64(t.Lag / time.Second)
		ss.LagSeconds = &lag
	}
	if t.MasterFile != "" {
		ss.BinlogPos = fmt.Sprintf("%s:%d", t.MasterFile, t.MasterPos)
	}
	if t.ReadFile != "" {
		ss.ReadPos = fmt.Sprintf("%s:%d", t.ReadFile, t.ReadPos)
	}
	if t.ExecFile != "" {
		ss.ExecPos = fmt.Sprintf("%s:%d", t.ExecFile, t.ExecPos)
	}
}

// markStale marks a row stale. A refused login seen by a fresh observation
// stays the health: it is newer than the row.
func markStale(ss *api.ServerStatus, why string) {
	ss.Stale = true
	if ss.Health == api.HealthAuthError {
		return
	}
	ss.Health, ss.HealthDetail = api.HealthStale, why
}

// fmtAge prints an age for people: 0.3s, 12s, 3m5s.
func fmtAge(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// masterChange is the finished failover or switch that made master the
// master: the last successful one, when it named master as the new master
// (false when the master was set otherwise, by registration).
func masterChange(hist []fsm.HistoryEntry, master string) (fsm.HistoryEntry, bool) {
	for i := len(hist) - 1; i >= 0; i-- {
		h := hist[i]
		if h.Result != fsm.ResultSuccess || h.NewMaster == "" {
			continue
		}
		switch h.Kind {
		case fsm.KindAuto, fsm.KindManual, fsm.KindSwitch:
			return h, h.NewMaster == master
		}
	}
	return fsm.HistoryEntry{}, false
}

func changeName(kind string) string {
	if kind == fsm.KindSwitch {
		return "switch"
	}
	return "failover"
}

// serverName is the name of the server at addr, or addr.
func serverName(st *fsm.AppState, addr string) string {
	if s, ok := st.Server(addr); ok {
		return s.Name
	}
	return addr
}

// believedTree is the tree the managers believe after change (which made
// st.Master the master): the new master, its plan's replicas replicating
// from it, the old master dead (failover) or replicating from it (switch
// with --orig-master-is-new-slave), and servers rejoined since replicating
// from it. Other servers are absent (unknown).
func believedTree(st *fsm.AppState, change fsm.HistoryEntry, hist []fsm.HistoryEntry) map[string]belief {
	b := map[string]belief{st.Master: {role: api.RoleMaster}}
	old := change.OldMaster
	if change.Kind != fsm.KindSwitch {
		b[old] = belief{role: api.RoleDead}
	}
	// The journal is the change's while no lock was taken since (its plan
	// names the same masters).
	if p := journalPlan(st); p != nil && fsmAddr(st, p.NewMaster) == st.Master && fsmAddr(st, p.OldMaster) == old {
		for _, name := range p.Replicas {
			if addr := fsmAddr(st, name); addr != "" {
				b[addr] = belief{role: api.RoleReplica, from: st.Master}
			}
		}
		if change.Kind == fsm.KindSwitch && origIsNewSlave(st.Journal) {
			b[old] = belief{role: api.RoleReplica, from: st.Master}
		}
	}
	for _, h := range hist {
		if h.Kind == fsm.KindRejoin && h.Result == fsm.ResultSuccess && h.Epoch > change.Epoch {
			b[h.OldMaster] = belief{role: api.RoleReplica, from: st.Master}
		}
	}
	return b
}

// origIsNewSlave tells whether the switch of journal was run with
// --orig-master-is-new-slave.
func origIsNewSlave(journal []fsm.JournalEntry) bool {
	for _, e := range journal {
		if e.Phase == PhaseLock && e.Detail[origIsNewSlaveKey] == "1" {
			return true
		}
	}
	return false
}

// journalPlan is the plan of the journal of st (the last lock's), nil
// when it has none.
func journalPlan(st *fsm.AppState) *failover.Plan {
	p, err := failover.ProgressOf(st.Journal, st.LastPlan())
	if err != nil {
		return nil
	}
	return p.Plan
}
