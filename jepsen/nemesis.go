package jepsen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/mharaft/mharaft/api"
)

// Nemesis is one kind of fault: Inject applies it, waits for the expected
// outcome (a failover, or a quiet period in which there must be none) and
// heals.
type Nemesis struct {
	Name string
	// ExpectFailover: the master really is gone for the managers' majority
	// and the replicas; otherwise any failover is a false failover.
	ExpectFailover bool
	// MasterSSHReachable: the old master's host stays reachable over SSH,
	// so no acknowledged write may be lost.
	MasterSSHReachable bool
	// Broken marks a deliberately broken deployment (a checker must fail
	// it): the round skips waiting for a healthy cluster and the
	// convergence check, which would only spend minutes.
	Broken bool
	// MaxHistory > 0 fails a round that adds more history entries.
	MaxHistory int
	// Setup, when set, changes the deployment before the round starts
	// (and may change r.ExpectFailover).
	Setup  func(r *Round, s *RoundSetup)
	Inject func(ctx context.Context, r *Round) error
}

// Nemeses is every nemesis the campaign draws from.
func Nemeses() []Nemesis {
	return append([]Nemesis{
		{Name: "kill-master", ExpectFailover: true, MasterSSHReachable: true, Inject: killMaster},
		{Name: "pause-master-long", ExpectFailover: true, MasterSSHReachable: true, Inject: pauseMasterLong},
		{Name: "pause-master-short", MasterSSHReachable: true, Inject: pauseMasterShort},
		{Name: "isolate-master", ExpectFailover: true, Inject: isolateMaster},
		{Name: "power-off-master", ExpectFailover: true, Inject: powerOffMaster},
		{Name: "isolate-manager", MasterSSHReachable: true, Inject: isolateManager},
		{Name: "split-managers", MasterSSHReachable: true, Inject: splitManagers},
		{Name: "cut-manager-from-master", MasterSSHReachable: true, Inject: cutManagerFromMaster},
		{Name: "cut-master-backend", MasterSSHReachable: true, Inject: cutMasterBackend},
		{Name: "kill-leader-mid-failover", ExpectFailover: true, MasterSSHReachable: true, Inject: killLeaderMidFailover},
		{Name: "kill-replica", MasterSSHReachable: true, Inject: killReplica},
		{Name: "kill-master+isolate-manager", ExpectFailover: true, MasterSSHReachable: true, Inject: killMasterIsolateManager},
		{Name: "kill-master+kill-replica", ExpectFailover: true, MasterSSHReachable: true, Inject: killMasterKillReplica},
	}, append(safetyNemeses(), dcNemeses()...)...)
}

// NemesisByName finds a nemesis, the deliberately broken ones included.
func NemesisByName(name string) (Nemesis, bool) {
	for _, n := range append(append(Nemeses(), brokenNemeses()...), brokenDCNemeses()...) {
		if n.Name == name {
			return n, true
		}
	}
	return Nemesis{}, false
}

// quiet is how long a fault that must not cause a failover is held: three
// detection windows.
func (r *Round) quiet() time.Duration { return 3 * r.env.window() }

func (e *Env) window() time.Duration {
	return time.Duration(2*e.Opts.PingInterval+e.Opts.ConnectTimeout) * time.Second
}

// hold keeps a fault in place for d: the fault's duration, not a wait for
// a condition.
func hold(ctx context.Context, d time.Duration) { pause(ctx, d) }

func (r *Round) master() *DBHost { return r.env.DBs[0] }

func (r *Round) randomManager() *ManagerHost {
	return r.env.Managers[r.rng.IntN(len(r.env.Managers))]
}

func (r *Round) randomReplica() *DBHost {
	reps := r.env.DBs[1:]
	return reps[r.rng.IntN(len(reps))]
}

func killMaster(ctx context.Context, r *Round) error {
	r.fault("kill -9 mariadbd on " + r.master().Name())
	if err := r.master().Server.Kill9(); err != nil {
		return err
	}
	return r.waitFailover(ctx, 90*time.Second)
}

func pauseMasterLong(ctx context.Context, r *Round) error {
	r.fault("SIGSTOP mariadbd on " + r.master().Name())
	if err := r.master().Server.Pause(); err != nil {
		return err
	}
	err := r.waitFailover(ctx, 90*time.Second)
	r.master().Server.Resume() // the power switch may have killed it: ignore
	r.heal("SIGCONT " + r.master().Name())
	return err
}

func pauseMasterShort(ctx context.Context, r *Round) error {
	d := r.env.window() / 2
	r.fault(fmt.Sprintf("SIGSTOP mariadbd on %s for %s (window %s)", r.master().Name(), d, r.env.window()))
	if err := r.master().Server.Pause(); err != nil {
		return err
	}
	hold(ctx, d)
	r.master().Server.Resume()
	r.heal("SIGCONT " + r.master().Name())
	hold(ctx, r.quiet())
	return nil
}

func isolateMaster(ctx context.Context, r *Round) error {
	r.fault("isolate host " + r.master().Net.Name)
	if err := r.env.Net.Isolate(r.master().Net); err != nil {
		return err
	}
	err := r.waitFailover(ctx, 90*time.Second)
	r.healNet()
	return err
}

// powerOffMaster takes the master's host off the LAN as a power cut
// does (Network.PowerOff): its mariadbd keeps running but reaches and is
// reached by nobody, the harness's workload included, and a connect to it
// fails with "no route to host" once ARP gives up, where isolate-master's
// DROP rules give timeouts. Issue 12 finding 4: the detector called that
// error dead and the failover's own string matcher called it alive ("it
// is not dead"), refusing in a loop. Like isolate-master, the host is out
// of SSH reach too, so acknowledged writes it never shipped may be lost;
// the power switch (shutdown_script) kills its mariadbd during the
// failover, and after the heal the prober's writes to it are checked by
// the split-brain checker like every server's.
func powerOffMaster(ctx context.Context, r *Round) error {
	h := r.master().Net
	r.fault(fmt.Sprintf("power off host %s: its link down, every other host forgets its MAC (ARP gives up after 3 probes %s apart)", h.Name, PowerOffARPRetrans))
	if err := r.env.Net.PowerOff(h); err != nil {
		return err
	}
	m := r.env.Managers[0]
	msg, took := DialFrom(m.Net.NS, h.IP, 3306, 5*time.Second)
	r.event("net", fmt.Sprintf("plain TCP connect from %s to %s:3306: %q after %s", m.ID, h.IP, msg, took.Round(time.Millisecond)))
	if !strings.Contains(strings.ToLower(msg), "no route to host") {
		r.nemesisCheck("power-off: a plain connect from %s to %s:3306 said %q after %s, want \"No route to host\" (a powered-off host on a LAN)", m.ID, h.IP, msg, took.Round(time.Millisecond))
	}
	// The master stays off until a failover SUCCEEDED (a refused attempt
	// is recorded in the history too), so the heal never races a retry.
	h1, err := r.waitSuccessfulFailover(ctx, 90*time.Second)
	r.healNet()
	for _, e := range h1 {
		if e.Result != "success" {
			r.nemesisCheck("power-off: failover attempt of epoch %d ended %q (%s): a powered-off master is dead for the detector and the failover alike, the first attempt must fail over (issue 12 finding 4)",
				e.Epoch, e.Result, e.Summary)
		}
	}
	return err
}

// waitSuccessfulFailover polls the history until an entry newer than the
// round's start is a success and returns the round's entries.
func (r *Round) waitSuccessfulFailover(ctx context.Context, timeout time.Duration) ([]api.HistoryEntry, error) {
	var since []api.HistoryEntry
	err := poll(ctx, timeout, 100*time.Millisecond, func() error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		h, err := r.obs.API().History(cctx, "app1")
		if err != nil {
			return err
		}
		if len(h) > r.histBase {
			since = h[r.histBase:]
		}
		for _, e := range since {
			if e.Result == "success" && IsAutoFailover(e) {
				return nil
			}
		}
		return fmt.Errorf("no successful failover recorded yet (%d attempts)", len(since))
	})
	return since, err
}

func isolateManager(ctx context.Context, r *Round) error {
	m := r.randomManager()
	r.fault("isolate manager " + m.ID)
	if err := r.env.Net.Isolate(m.Net); err != nil {
		return err
	}
	hold(ctx, r.quiet())
	r.healNet()
	return nil
}

func splitManagers(ctx context.Context, r *Round) error {
	minority := r.randomManager()
	r.fault("split managers: " + minority.ID + " alone")
	for _, m := range r.env.Managers {
		if m != minority {
			if err := r.env.Net.Cut(minority.Net, m.Net); err != nil {
				return err
			}
		}
	}
	hold(ctx, r.quiet())
	r.healNet()
	return nil
}

func cutManagerFromMaster(ctx context.Context, r *Round) error {
	m := r.randomManager()
	r.fault("cut manager " + m.ID + " from " + r.master().Name())
	if err := r.env.Net.Cut(m.Net, r.master().Net); err != nil {
		return err
	}
	hold(ctx, r.quiet())
	r.healNet()
	return nil
}

// cutMasterBackend cuts one manager and every replica from the master:
// the replicas confirm what that manager sees, so only the other
// managers' quorum keeps the healthy master (a single-manager build fails
// over here).
func cutMasterBackend(ctx context.Context, r *Round) error {
	m := r.env.Managers[0]
	if len(r.env.Managers) > 1 {
		m = r.randomManager()
	}
	r.fault("cut manager " + m.ID + " and every replica from " + r.master().Name())
	if err := r.env.Net.Cut(m.Net, r.master().Net); err != nil {
		return err
	}
	for _, d := range r.env.DBs[1:] {
		if err := r.env.Net.Cut(d.Net, r.master().Net); err != nil {
			return err
		}
	}
	hold(ctx, r.quiet())
	r.healNet()
	return nil
}

func killLeaderMidFailover(ctx context.Context, r *Round) error {
	r.fault("kill -9 mariadbd on " + r.master().Name() + ", then the raft leader once the failover lock is taken")
	if err := r.master().Server.Kill9(); err != nil {
		return err
	}
	if err := poll(ctx, 30*time.Second, 10*time.Millisecond, func() error {
		if r.obs.LockSeen() {
			return nil
		}
		return errors.New("no failover lock seen")
	}); err != nil {
		return err
	}
	m := r.env.ManagerByID(r.obs.LockHolder())
	if m == nil {
		m = r.env.ManagerByID(r.obs.Leader())
	}
	if m == nil {
		return fmt.Errorf("cannot tell the leader (lock holder %q, leader %q)", r.obs.LockHolder(), r.obs.Leader())
	}
	r.event("fault", "kill -9 mhanode "+m.ID+" (leader, lock holder)")
	r.env.KillManager(m)
	err := r.waitFailover(ctx, 90*time.Second)
	if serr := r.env.StartManager(m); serr != nil && err == nil {
		err = serr
	}
	r.heal("restart mhanode " + m.ID)
	return err
}

func killReplica(ctx context.Context, r *Round) error {
	d := r.randomReplica()
	r.fault("kill -9 mariadbd on replica " + d.Name())
	if err := d.Server.Kill9(); err != nil {
		return err
	}
	hold(ctx, r.quiet())
	r.heal("restart " + d.Name())
	return r.restartReplica(ctx, d)
}

func killMasterIsolateManager(ctx context.Context, r *Round) error {
	m := r.randomManager()
	r.fault("isolate manager " + m.ID + " and kill -9 mariadbd on " + r.master().Name())
	if err := r.env.Net.Isolate(m.Net); err != nil {
		return err
	}
	if err := r.master().Server.Kill9(); err != nil {
		return err
	}
	err := r.waitFailover(ctx, 90*time.Second)
	r.healNet()
	return err
}

func killMasterKillReplica(ctx context.Context, r *Round) error {
	d := r.randomReplica()
	r.fault("kill -9 mariadbd on replica " + d.Name() + " and on master " + r.master().Name())
	if err := d.Server.Kill9(); err != nil {
		return err
	}
	if err := r.master().Server.Kill9(); err != nil {
		return err
	}
	err := r.waitFailover(ctx, 90*time.Second)
	r.heal("restart " + d.Name())
	if rerr := r.restartReplica(ctx, d); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// newRNG is the campaign's random source: the same seed gives the same
// schedule.
func newRNG(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
}

// Schedule picks the nemesis of every round: each one once (shuffled),
// then random picks.
func Schedule(seed int64, rounds int, names []string) []string {
	rng := newRNG(seed)
	perm := rng.Perm(len(names))
	out := make([]string, 0, rounds)
	for i := 0; i < rounds; i++ {
		if i < len(names) {
			out = append(out, names[perm[i]])
		} else {
			out = append(out, names[rng.IntN(len(names))])
		}
	}
	return out
}
