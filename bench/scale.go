package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/fsm"
	"github.com/mharaft/mharaft/manager"
	"github.com/mharaft/mharaft/manager/managertest"
	"github.com/mharaft/mharaft/testbed"
)

func init() { Register("scale", scaleSuite) }

// Settings of the scale suite, from the environment (defaults in
// parentheses; --quick in brackets):
//
//	MHABENCH_SCALE_SIZES    applications watched, comma-separated (60,300,1000) [20,60]
//	MHABENCH_SCALE_REAL     real applications among them (13) [12]
//	MHABENCH_SCALE_MEASURE  steady-state window per size (60s) [20s]
//	MHABENCH_SCALE_SINGLE   single kill -9 failovers at the largest size (3) [2]
//	MHABENCH_SCALE_FAILURES the size at which the failure scenarios run (the largest; 0: none)
//	MHANODE_BIN             the mhanode to measure (default: built from this tree)
//	MHABENCH_SCALE_LOGS     a directory to copy the managers' logs to (none)
//	MHABENCH_SCALE_PROFILE  a directory for the managers' CPU profiles,
//	                        SIZE-ID.pprof (mhanode --cpu-profile; none)
//	MHABENCH_SCALE_ARGS     more mhanode flags, space separated, e.g.
//	                        "--raft-multiplier 2" (none)
//
// Each size needs at least MHABENCH_SCALE_REAL applications; the failure
// scenarios need MHABENCH_SCALE_SINGLE + 10 real applications (fewer: the
// simultaneous kill takes what is left).
type scaleSettings struct {
	Sizes   []int         `json:"sizes"`
	Real    int           `json:"real_apps"`
	Measure time.Duration `json:"measure_ns"`
	Single  int           `json:"single_failovers"`
	// FailuresAt is the size whose trio runs the failure scenarios.
	FailuresAt int    `json:"failures_at"`
	Bin        string `json:"mhanode"`
}

func scaleSettingsFromEnv(quick bool) (scaleSettings, error) {
	s := scaleSettings{Sizes: []int{60, 300, 1000}, Real: 13, Measure: time.Minute, Single: 3}
	if quick {
		s = scaleSettings{Sizes: []int{20, 60}, Real: 12, Measure: 20 * time.Second, Single: 2}
	}
	if v := os.Getenv("MHABENCH_SCALE_SIZES"); v != "" {
		s.Sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return s, fmt.Errorf("MHABENCH_SCALE_SIZES=%q: want positive counts separated by commas", v)
			}
			s.Sizes = append(s.Sizes, n)
		}
		slices.Sort(s.Sizes)
	}
	for _, kv := range []struct {
		name string
		dst  *int
	}{{"MHABENCH_SCALE_REAL", &s.Real}, {"MHABENCH_SCALE_SINGLE", &s.Single}} {
		if v := os.Getenv(kv.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return s, fmt.Errorf("%s=%q: want a count", kv.name, v)
			}
			*kv.dst = n
		}
	}
	s.FailuresAt = s.Sizes[len(s.Sizes)-1]
	if v := os.Getenv("MHABENCH_SCALE_FAILURES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || (n != 0 && !slices.Contains(s.Sizes, n)) {
			return s, fmt.Errorf("MHABENCH_SCALE_FAILURES=%q: want one of the sizes or 0", v)
		}
		s.FailuresAt = n
	}
	if v := os.Getenv("MHABENCH_SCALE_MEASURE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 5*time.Second {
			return s, fmt.Errorf("MHABENCH_SCALE_MEASURE=%q: want a duration of at least 5s", v)
		}
		s.Measure = d
	}
	if s.Real < 1 {
		return s, errors.New("MHABENCH_SCALE_REAL: at least one real application (failovers are of real applications only)")
	}
	if s.Sizes[0] < s.Real {
		return s, fmt.Errorf("the smallest size %d is below the %d real applications", s.Sizes[0], s.Real)
	}
	s.Single = min(s.Single, s.Real-1)
	return s, nil
}

// scaleSteady is the steady-state cost at one size.
type scaleSteady struct {
	Apps          int     `json:"apps"`
	RealApps      int     `json:"real_apps"`
	SimulatedApps int     `json:"simulated_apps"`
	WindowS       float64 `json:"window_s"`
	LeaderCores   float64 `json:"leader_cpu_cores"`
	FollowerCores float64 `json:"follower_cpu_cores"` // the busier follower
	LeaderRSSMB   float64 `json:"leader_rss_mb"`
	FollowerRSSMB float64 `json:"follower_rss_mb"` // the larger follower
	// MySQL connections counted on the endpoints' side: the simulated
	// endpoints' open connections plus the manager user's sessions on the
	// real servers; connects per second over the window (accepted).
	OpenConns    int64   `json:"mysql_connections_open"`
	ConnectsPerS float64 `json:"mysql_connects_per_s"`
	// SimReplicaConnectsPerS: of those, the simulated replicas' (the rest
	// went to simulated masters and to the real servers).
	SimReplicaConnectsPerS float64 `json:"sim_replica_connects_per_s"`
	RaftEntries            uint64  `json:"raft_entries"` // leader's last index advance over the window
	EntriesPerMin          float64 `json:"raft_entries_per_min"`
	// EntriesByType: Raft entries applied per application and minute by
	// command type (mharaft_raft_entries_applied_total on the leader;
	// empty for an mhanode without that metric).
	EntriesByType map[string]float64 `json:"raft_entries_per_app_min_by_type,omitempty"`
	SetupS        float64            `json:"setup_s"` // managers started -> every application Healthy on the leader
	Load1         string             `json:"loadavg_after"`
}

// scaleFailures are the failure scenarios at the largest size.
type scaleFailures struct {
	Apps int `json:"apps"`
	// Leader kill: kill -9 of the Raft leader's mhanode; to a new leader
	// named by the survivors, and to the new leader acting (a discovery it
	// started after the kill stored); false failovers after it.
	LeaderKillNewLeaderS float64 `json:"leader_kill_new_leader_s"`
	LeaderKillActingS    float64 `json:"leader_kill_acting_s"`
	// All rediscovered: every application's summary is from a discovery
	// the new leader started after the kill.
	LeaderKillAllRediscoveredS float64 `json:"leader_kill_all_rediscovered_s"`
	FalseFailovers             int     `json:"leader_kill_false_failovers"`
	// Single kill -9 failovers of a real master, one at a time.
	SingleWritableS []float64 `json:"single_writable_s"` // kill -> new master writable
	SingleFinishedS []float64 `json:"single_finished_s"` // kill -> failover finished
	SingleNotDone   int       `json:"single_not_done"`   // halted or refused
	// Masters of several real applications killed at once.
	ConcurrentKilled    int     `json:"concurrent_killed"`
	ConcurrentDone      int     `json:"concurrent_done"`
	ConcurrentWritableS float64 `json:"concurrent_last_writable_s"` // the last to be writable
	ConcurrentFinishedS float64 `json:"concurrent_last_finished_s"`
	RowsLost            int     `json:"rows_lost"` // over every failover
}

// scaleResult is the suite's JSON extra.
type scaleResult struct {
	Settings scaleSettings  `json:"settings"`
	Steady   []scaleSteady  `json:"steady"`
	Failures *scaleFailures `json:"failures,omitempty"`
	Note     string         `json:"note"`
}

const scaleNote = "Three real mhanode processes on one host watch N applications: the real ones are three mariadbd each, " +
	"the rest are SIMULATED MySQL endpoints (internal/simmysql: they answer the probes and discovery reads of a healthy " +
	"MariaDB master or replica; no database). Failovers are only of real applications. CPU is utime+stime over the window " +
	"in cores; connections are counted on the endpoints' side; Raft entries are the leader's log index advance. " +
	"Goals (issue 17): at 1,000 applications the leader under 1 core, each follower under 0.5, under 10 Raft entries per " +
	"application per minute, a kill -9 failover median under 0.5 s, ten at once all done under 1.5 s with nothing lost, " +
	"a new leader acting within 1 s median with no false failover."

// scaleSuite measures what a trio of managers costs per application
// watched, and failovers of real applications while many are watched.
func scaleSuite(ctx context.Context, dir string, quick bool, w io.Writer) (*Result, error) {
	set, err := scaleSettingsFromEnv(quick)
	if err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(w, "scale: "+format+"\n", args...)
	}
	set.Bin = os.Getenv("MHANODE_BIN")
	if set.Bin == "" {
		if set.Bin, err = managertest.Build(dir); err != nil {
			return nil, err
		}
	}
	sshd, err := testbed.StartSSHD(filepath.Join(dir, "sshd"), "127.0.0.1")
	if err != nil {
		return nil, err
	}
	defer sshd.Stop()
	reals, err := startRealApps(ctx, filepath.Join(dir, "real"), set.Real, sshd, logf)
	if err != nil {
		return nil, err
	}
	defer func() { stopRealApps(reals) }()
	sims := newSimApps(filepath.Join(dir, "sim"))
	defer sims.srv.Close()

	out := &scaleResult{Settings: set, Note: scaleNote}
	res := &Result{Started: time.Now(), Extra: out}
	for _, n := range set.Sizes {
		st, fail, err := scaleSize(ctx, filepath.Join(dir, fmt.Sprintf("size-%d", n)), set, n, reals, sims, n == set.FailuresAt, logf)
		if err != nil {
			return nil, fmt.Errorf("%d applications: %w", n, err)
		}
		out.Steady = append(out.Steady, *st)
		if fail != nil {
			out.Failures = fail
		}
	}
	for _, st := range out.Steady {
		note := fmt.Sprintf("%d real + %d simulated, %.0f s window, load %s", st.RealApps, st.SimulatedApps, st.WindowS, st.Load1)
		pre := fmt.Sprintf("%d apps: ", st.Apps)
		res.Add(pre+"leader CPU", st.LeaderCores, "cores", note)
		res.Add(pre+"follower CPU (busier)", st.FollowerCores, "cores", note)
		res.Add(pre+"leader CPU per app", 100*st.LeaderCores/float64(st.Apps), "% of a core", "")
		res.Add(pre+"follower CPU per app", 100*st.FollowerCores/float64(st.Apps), "% of a core", "")
		res.Add(pre+"leader RSS", st.LeaderRSSMB, "MB", "")
		res.Add(pre+"follower RSS (larger)", st.FollowerRSSMB, "MB", "")
		res.Add(pre+"MySQL connections open", float64(st.OpenConns), "conns", "endpoints' side, all three managers")
		res.Add(pre+"MySQL connects", st.ConnectsPerS, "/s", "endpoints' side, all three managers")
		res.Add(pre+"MySQL connects to simulated replicas", st.SimReplicaConnectsPerS, "/s", "of the above")
		res.Add(pre+"Raft entries per app", st.EntriesPerMin/float64(st.Apps), "/min", fmt.Sprintf("%.0f entries/min in all", st.EntriesPerMin))
		for _, typ := range slices.Sorted(maps.Keys(st.EntriesByType)) {
			res.Add(pre+"Raft entries per app: "+typ, st.EntriesByType[typ], "/min", "applied on the leader")
		}
		res.Add(pre+"setup to all Healthy", st.SetupS, "s", "")
	}
	if f := out.Failures; f != nil {
		pre := fmt.Sprintf("%d apps: ", f.Apps)
		res.Add(pre+"leader kill -> new leader", f.LeaderKillNewLeaderS, "s", "")
		res.Add(pre+"leader kill -> new leader acting (first discovery of its own stored)", f.LeaderKillActingS, "s", "goal: 1 s")
		res.Add(pre+"leader kill -> every app rediscovered by the new leader", f.LeaderKillAllRediscoveredS, "s", "")
		res.Add(pre+"false failovers after the leader kill", float64(f.FalseFailovers), "", "goal: 0")
		if len(f.SingleWritableS) > 0 {
			res.Add(pre+"kill -9 -> new master writable (median)", median(f.SingleWritableS), "s", fmt.Sprintf("%d runs; goal: 0.5 s", len(f.SingleWritableS)))
			res.Add(pre+"kill -9 -> failover finished (median)", median(f.SingleFinishedS), "s", fmt.Sprintf("%d runs", len(f.SingleFinishedS)))
		}
		if f.SingleNotDone > 0 {
			res.Add(pre+"single failovers not done (halted or refused)", float64(f.SingleNotDone), "", "")
		}
		if f.ConcurrentKilled > 0 {
			note := fmt.Sprintf("%d of %d done", f.ConcurrentDone, f.ConcurrentKilled)
			res.Add(pre+fmt.Sprintf("%d masters killed at once -> last writable", f.ConcurrentKilled), f.ConcurrentWritableS, "s", note)
			res.Add(pre+fmt.Sprintf("%d masters killed at once -> last finished", f.ConcurrentKilled), f.ConcurrentFinishedS, "s", note+"; goal: 1.5 s for ten")
		}
		res.Add(pre+"rows lost", float64(f.RowsLost), "rows", "over every failover")
	}
	return res, nil
}

// scaleSize runs one size: a fresh trio of managers watching n
// applications; the steady state over the window; the failure scenarios
// when failures is set.
func scaleSize(ctx context.Context, dir string, set scaleSettings, n int, reals []*realApp, sims *simApps,
	failures bool, logf func(string, ...any)) (*scaleSteady, *scaleFailures, error) {
	simConfs, err := sims.grow(n - len(reals))
	if err != nil {
		return nil, nil, err
	}
	var confs []string
	for _, a := range reals {
		confs = append(confs, a.Conf)
	}
	confs = append(confs, simConfs...)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	mc, err := managertest.New(set.Bin, dir, 3, func(int) []string { return confs })
	if err != nil {
		return nil, nil, err
	}
	defer mc.Close()
	extra := strings.Fields(os.Getenv("MHABENCH_SCALE_ARGS"))
	profiles := os.Getenv("MHABENCH_SCALE_PROFILE")
	for _, node := range mc.Nodes {
		node.ExtraArgs = append(node.ExtraArgs, extra...)
		if profiles != "" {
			node.ExtraArgs = append(node.ExtraArgs, "--cpu-profile", filepath.Join(profiles, fmt.Sprintf("%d-%s.pprof", n, node.ID)))
		}
	}
	if profiles != "" {
		if err := os.MkdirAll(profiles, 0o755); err != nil {
			return nil, nil, err
		}
		// A profile is written at a graceful stop (before Close kills).
		defer func() {
			for i := range mc.Nodes {
				mc.Stop(i)
			}
		}()
	}
	if keep := os.Getenv("MHABENCH_SCALE_LOGS"); keep != "" {
		// The managers' logs outlive the suite's scratch directory.
		defer func() {
			for i, node := range mc.Nodes {
				path := filepath.Join(keep, fmt.Sprintf("%d-%s.log", n, node.ID))
				if err := os.MkdirAll(keep, 0o755); err == nil {
					os.WriteFile(path, []byte(mc.Log(i)), 0o600)
				}
			}
		}()
	}
	started := time.Now()
	if err := mc.StartAll(); err != nil {
		return nil, nil, err
	}
	for i := range mc.Nodes {
		prioritize(mc, i)
	}
	leader, err := waitAllHealthy(ctx, mc, n, 2*time.Minute+time.Duration(n)*200*time.Millisecond)
	if err != nil {
		return nil, nil, err
	}
	st := &scaleSteady{Apps: n, RealApps: len(reals), SimulatedApps: n - len(reals), SetupS: time.Since(started).Seconds()}
	logf("%d applications (%d real, %d simulated): every one Healthy on the leader after %.1f s", n, len(reals), n-len(reals), st.SetupS)
	// Let registration's and the first discoveries' burst pass.
	if err := sleepCtx(ctx, 10*time.Second); err != nil {
		return nil, nil, err
	}
	if err := measureSteady(ctx, mc, leader, set.Measure, reals, sims, st); err != nil {
		return nil, nil, err
	}
	logf("%d applications: leader %.3f cores, follower %.3f cores, RSS %.0f/%.0f MB, %d MySQL connections open, %.1f connects/s, %.1f Raft entries per app per minute (load %s)",
		n, st.LeaderCores, st.FollowerCores, st.LeaderRSSMB, st.FollowerRSSMB, st.OpenConns, st.ConnectsPerS, st.EntriesPerMin/float64(n), st.Load1)
	if !failures {
		return st, nil, nil
	}
	f, err := scaleFailureScenarios(ctx, mc, n, reals, set.Single, logf)
	return st, f, err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitAllHealthy waits until the leader's status shows n applications,
// every one Healthy, and returns the leader's index.
func waitAllHealthy(ctx context.Context, mc *managertest.Cluster, n int, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		li, st, err := scaleLeader(ctx, mc)
		if err == nil {
			healthy := 0
			for _, a := range st.Apps {
				if a.Verdict == "Healthy" {
					healthy++
				}
			}
			if len(st.Apps) == n && healthy == n && st.Node == st.Leader {
				return li, nil
			}
			last = fmt.Sprintf("%d applications, %d Healthy", len(st.Apps), healthy)
		} else {
			last = err.Error()
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return -1, fmt.Errorf("not every application Healthy within %s (last: %s)", timeout, last)
		}
	}
}

// scaleLeader asks every running manager for its status (a status of
// hundreds of applications takes a while on a loaded machine: 10 s each)
// and returns the one that answers as the leader.
func scaleLeader(ctx context.Context, mc *managertest.Cluster) (int, *api.Status, error) {
	var last error = errors.New("no manager running")
	for i := range mc.Nodes {
		if !mc.Running(i) {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := mc.NodeClient(i).Status(sctx)
		cancel()
		if err != nil {
			last = err
			continue
		}
		if st.Node == st.Leader {
			return i, st, nil
		}
		last = fmt.Errorf("%s says the leader is %q", st.Node, st.Leader)
	}
	return -1, nil, last
}

// measureSteady samples the managers, the endpoints and the Raft log at
// the start and the end of the window.
func measureSteady(ctx context.Context, mc *managertest.Cluster, leader int, window time.Duration,
	reals []*realApp, sims *simApps, st *scaleSteady) error {
	type snap struct {
		procs    []procSample
		simAcc   int64
		simRepl  int64
		realAcc  int64
		index    uint64
		simOpen  int
		realOpen int64
		types    map[string]float64
	}
	take := func() (*snap, error) {
		s := &snap{}
		for i := range mc.Nodes {
			p, err := sampleProc(mc.Pid(i))
			if err != nil {
				return nil, err
			}
			s.procs = append(s.procs, p)
		}
		ss := sims.srv.Stats()
		s.simAcc, s.simRepl, s.simOpen = ss.Accepted, ss.AcceptedByReplicas, ss.Open
		var err error
		if s.realOpen, s.realAcc, err = realConnections(ctx, reals); err != nil {
			return nil, err
		}
		if s.index, err = raftLastIndex(filepath.Join(mc.Nodes[leader].DataDir, "raft")); err != nil {
			return nil, err
		}
		if s.types, err = entriesByType(ctx, mc.Nodes[leader].HTTPAddr, mc.Token); err != nil {
			return nil, err
		}
		return s, nil
	}
	a, err := take()
	if err != nil {
		return err
	}
	if err := sleepCtx(ctx, window); err != nil {
		return err
	}
	b, err := take()
	if err != nil {
		return err
	}
	secs := b.procs[leader].At.Sub(a.procs[leader].At).Seconds()
	st.WindowS = secs
	for i := range mc.Nodes {
		c := cores(a.procs[i], b.procs[i])
		rss := float64(b.procs[i].RSSBytes) / (1 << 20)
		if i == leader {
			st.LeaderCores, st.LeaderRSSMB = c, rss
			continue
		}
		st.FollowerCores = max(st.FollowerCores, c)
		st.FollowerRSSMB = max(st.FollowerRSSMB, rss)
	}
	st.OpenConns = int64(b.simOpen) + b.realOpen
	st.ConnectsPerS = float64((b.simAcc-a.simAcc)+(b.realAcc-a.realAcc)) / secs
	st.SimReplicaConnectsPerS = float64(b.simRepl-a.simRepl) / secs
	st.RaftEntries = b.index - a.index
	st.EntriesPerMin = float64(st.RaftEntries) / secs * 60
	for typ, v := range b.types {
		if d := v - a.types[typ]; d > 0 {
			if st.EntriesByType == nil {
				st.EntriesByType = map[string]float64{}
			}
			st.EntriesByType[typ] = d / secs * 60 / float64(st.Apps)
		}
	}
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		st.Load1 = strings.Join(strings.Fields(string(l))[:3], " ")
	}
	return nil
}

// scaleFailureScenarios: a leader kill under load, single kill -9
// failovers, then the remaining real masters killed at once.
func scaleFailureScenarios(ctx context.Context, mc *managertest.Cluster, n int, reals []*realApp, single int,
	logf func(string, ...any)) (*scaleFailures, error) {
	f := &scaleFailures{Apps: n}
	if err := leaderKill(ctx, mc, n, f, logf); err != nil {
		return f, fmt.Errorf("leader kill: %w", err)
	}
	for k := 0; k < single; k++ {
		r, err := realFailovers(ctx, mc, reals[k:k+1])
		if err != nil {
			return f, fmt.Errorf("single failover of %s: %w", reals[k].Name, err)
		}
		if !r[0].done {
			f.SingleNotDone++
			logf("%d applications: kill -9 of %s's master: NOT DONE: %s", n, reals[k].Name, r[0].reason)
			continue
		}
		f.SingleWritableS = append(f.SingleWritableS, r[0].writable)
		f.SingleFinishedS = append(f.SingleFinishedS, r[0].finished)
		f.RowsLost += r[0].lost
		logf("%d applications: kill -9 of %s's master: writable after %.3f s, finished after %.3f s, %d rows lost",
			n, reals[k].Name, r[0].writable, r[0].finished, r[0].lost)
	}
	rest := reals[single:]
	if len(rest) > 10 {
		rest = rest[:10]
	}
	if len(rest) > 0 {
		r, err := realFailovers(ctx, mc, rest)
		if err != nil {
			return f, fmt.Errorf("%d masters killed at once: %w", len(rest), err)
		}
		f.ConcurrentKilled = len(rest)
		for _, x := range r {
			if !x.done {
				logf("%d applications: NOT DONE: %s", n, x.reason)
				continue
			}
			f.ConcurrentDone++
			f.ConcurrentWritableS = max(f.ConcurrentWritableS, x.writable)
			f.ConcurrentFinishedS = max(f.ConcurrentFinishedS, x.finished)
			f.RowsLost += x.lost
		}
		logf("%d applications: %d masters killed at once: %d done, the last writable after %.3f s, finished after %.3f s",
			n, len(rest), f.ConcurrentDone, f.ConcurrentWritableS, f.ConcurrentFinishedS)
	}
	return f, nil
}

// leaderKill kills the leader's mhanode with SIGKILL and measures the time
// to a new leader and to that leader showing a verdict of every
// application; then it watches for 10 s that no application fails over,
// restarts the killed manager and waits until it is back.
func leaderKill(ctx context.Context, mc *managertest.Cluster, n int, f *scaleFailures, logf func(string, ...any)) error {
	old, _, err := scaleLeader(ctx, mc)
	if err != nil {
		return err
	}
	oldID := mc.Nodes[old].ID
	epochs, err := appEpochs(ctx, mc.NodeClient(old))
	if err != nil {
		return err
	}
	killed := time.Now()
	if err := mc.Kill(old); err != nil {
		return err
	}
	deadline := killed.Add(60 * time.Second)
	newLeader := -1
	for newLeader < 0 || f.LeaderKillAllRediscoveredS == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("no new leader acting within 60 s of killing %s", oldID)
		}
		for i := range mc.Nodes {
			if i == old {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := mc.NodeClient(i).Status(sctx)
			cancel()
			if err != nil || st.Leader == "" || st.Leader == oldID || st.Node != st.Leader {
				continue
			}
			if newLeader < 0 {
				newLeader = i
				f.LeaderKillNewLeaderS = time.Since(killed).Seconds()
			}
			// Acting: the new leader stored a discovery it started after
			// the kill (it rediscovers every application once its
			// leadership period is open: barrier done, leader work runs).
			fresh := 0
			for _, a := range st.Apps {
				if len(a.Servers) > 0 && a.Servers[0].ObservedAt != nil && a.Servers[0].ObservedAt.After(killed) {
					fresh++
				}
			}
			if fresh > 0 && f.LeaderKillActingS == 0 {
				f.LeaderKillActingS = time.Since(killed).Seconds()
			}
			if fresh == n && f.LeaderKillAllRediscoveredS == 0 {
				f.LeaderKillAllRediscoveredS = time.Since(killed).Seconds()
			}
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	logf("%d applications: leader %s killed: new leader %s after %.3f s, acting (a discovery of its own stored) after %.3f s, every application rediscovered after %.3f s",
		n, oldID, mc.Nodes[newLeader].ID, f.LeaderKillNewLeaderS, f.LeaderKillActingS, f.LeaderKillAllRediscoveredS)
	if err := sleepCtx(ctx, 10*time.Second); err != nil {
		return err
	}
	after, err := appEpochs(ctx, mc.NodeClient(newLeader))
	if err != nil {
		return err
	}
	for app, e := range after {
		if e != epochs[app] {
			f.FalseFailovers++
			logf("FALSE FAILOVER: %s changed after the leader kill: %s -> %s", app, epochs[app], e)
		}
	}
	if err := mc.Start(old); err != nil {
		return err
	}
	prioritize(mc, old)
	_, err = waitAllHealthy(ctx, mc, n, 2*time.Minute+time.Duration(n)*200*time.Millisecond)
	return err
}

// appEpochs summarises each application's failover state (master, lock,
// last failover) from one manager's status.
func appEpochs(ctx context.Context, c *api.Client) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, a := range st.Apps {
		s := "master " + a.Master
		if a.Lock != nil {
			s += " locked"
		}
		if a.LastFailover != nil {
			s += " failed over " + a.LastFailover.String()
		}
		out[a.Name] = s
	}
	return out, nil
}

// realFailover is one measured failover of a real application.
type realFailover struct {
	writable, finished float64
	done               bool
	reason             string // why not done
	lost               int
}

// realFailovers kills the masters of apps at once (kill -9) and waits for
// every failover; times are from the kill.
func realFailovers(ctx context.Context, mc *managertest.Cluster, apps []*realApp) ([]realFailover, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	// 100 more rows (test.t1 then holds 1..103), on every replica before
	// the kill: every one must be on the new master.
	for _, a := range apps {
		if err := a.DB.Master().Exec(ctx, "INSERT INTO test.t1 SELECT seq FROM test.seq_4_to_103"); err != nil {
			return nil, fmt.Errorf("%s: %w", a.Name, err)
		}
		if err := a.DB.WaitCaughtUp(ctx, 20*time.Second); err != nil {
			return nil, fmt.Errorf("%s: %w", a.Name, err)
		}
	}
	out := make([]realFailover, len(apps))
	errs := make([]error, len(apps))
	killed := make([]time.Time, len(apps))
	var wg sync.WaitGroup
	for i, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			killed[i] = time.Now()
			errs[i] = a.DB.Master().Kill9()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = awaitFailover(ctx, mc, a, killed[i])
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func awaitFailover(ctx context.Context, mc *managertest.Cluster, a *realApp, killed time.Time) (realFailover, error) {
	var r realFailover
	var hist []api.HistoryEntry
	for {
		h, err := mc.Client().History(ctx, a.Name)
		if err == nil && len(h) > 0 {
			hist = h
			break
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return r, fmt.Errorf("%s: no failover after its master's kill: %w", a.Name, err)
		}
	}
	if hist[0].Result != fsm.ResultSuccess {
		// A halted or refused failover is a measured outcome (counted as
		// not done), not a failure of the bench.
		r.reason = fmt.Sprintf("%s: failover %s: %s", a.Name, hist[0].Result, hist[0].Summary)
		return r, nil
	}
	r.done = true
	r.finished = hist[0].Finished.Sub(killed).Seconds()
	app, err := mc.Client().App(ctx, a.Name)
	if err != nil {
		return r, err
	}
	for _, j := range app.Journal {
		if j.Phase == manager.PhaseActivate && j.Status == fsm.PhaseDone {
			r.writable = j.At.Sub(killed).Seconds()
		}
	}
	if r.writable == 0 {
		return r, fmt.Errorf("%s: journal lacks a done activate phase: %+v", a.Name, app.Journal)
	}
	for _, s := range a.DB.Servers {
		if s.Addr() != hist[0].NewMaster {
			continue
		}
		rows, err := s.Rows(ctx)
		if err != nil {
			return r, err
		}
		for want := 1; want <= 103; want++ {
			if !slices.Contains(rows, want) {
				r.lost++
			}
		}
	}
	return r, nil
}

// managerNice is the scheduling priority (nice) of the managers in the
// scale suite. The suite runs the three managers, their real servers and
// the simulated endpoints on one machine; in production the managers have
// hosts of their own. Above everything else here, the managers are not
// starved by the simulated endpoints the bench process answers with: the
// CPU they use (utime+stime, what the suite reports) is the same at any
// priority, the latency of their Raft heartbeats is not.
const managerNice = -5

// prioritize gives manager i managerNice (best effort: a bench that may
// not renice measures at the default priority and says so). On Linux a
// priority is a thread's: every thread of the process is reniced, and the
// threads they start later inherit it.
func prioritize(mc *managertest.Cluster, i int) {
	pid := mc.Pid(i)
	if pid <= 0 {
		return
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		fmt.Fprintf(os.Stderr, "scale: manager %s stays at the default priority: %v\n", mc.Nodes[i].ID, err)
		return
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, managerNice); err != nil {
			fmt.Fprintf(os.Stderr, "scale: manager %s thread %d stays at the default priority: %v\n", mc.Nodes[i].ID, tid, err)
		}
	}
}
