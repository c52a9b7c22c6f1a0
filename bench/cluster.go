package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/fsm"
	"github.com/mharaft/mharaft/manager"
	"github.com/mharaft/mharaft/manager/managertest"
	"github.com/mharaft/mharaft/testbed"
)

func init() { Register("cluster", clusterSuite) }

// clusterRun is one measured automatic failover; durations are from the
// master's kill -9 (the bench's clock; everything runs on one host).
type clusterRun struct {
	Verdict  float64 `json:"verdict_s"`  // kill -> the leader's DeadMaster verdict
	Lock     float64 `json:"lock_s"`     // kill -> failover lock committed
	Writable float64 `json:"writable_s"` // kill -> new master writable (journal "activate" done)
	Finished float64 `json:"finished_s"` // kill -> lock released (replicas repointed)
	Client   float64 `json:"client_s"`   // kill -> first write acknowledged through HAProxy (client-visible outage)
	Rows     int     `json:"rows"`       // rows on the new master (all the master committed: nothing lost)
}

// clusterSuite measures automatic failover with three real mhanode
// processes at default settings (ping_interval 3): from kill -9 of the
// master's mariadbd to the verdict, to the committed lock, to a writable
// new master, and to the first write acknowledged through HAProxy (the
// client-visible outage: an application writes through HAProxy configured
// as docs/HAPROXY.md says, bench/haproxy.go); medians and p99 over the
// runs. Each run starts a fresh database cluster and three fresh managers.
// The managers' timestamps come from the replicated journal (GET
// /v1/status), not from logs; the client's from the writer itself.
//
// MHANODE_BIN names a prebuilt mhanode; otherwise it is built with `go
// build` from the module root.
func clusterSuite(ctx context.Context, dir string, quick bool, log io.Writer) (*Result, error) {
	runs := 10
	if quick {
		runs = 2
	}
	bin := os.Getenv("MHANODE_BIN")
	if bin == "" {
		var err error
		if bin, err = managertest.Build(dir); err != nil {
			return nil, err
		}
	}
	res := &Result{Started: time.Now()}
	var all []clusterRun
	for i := 0; i < runs; i++ {
		r, err := oneClusterFailover(ctx, bin, filepath.Join(dir, fmt.Sprintf("run-%d", i)))
		if err != nil {
			return nil, fmt.Errorf("cluster run %d: %w", i+1, err)
		}
		fmt.Fprintf(log, "cluster run %d: verdict %.3f s, lock %.3f s, writable %.3f s, client write through HAProxy %.3f s, finished %.3f s, rows %d\n",
			i+1, r.Verdict, r.Lock, r.Writable, r.Client, r.Finished, r.Rows)
		all = append(all, *r)
	}
	pick := func(f func(clusterRun) float64) []float64 {
		var xs []float64
		for _, r := range all {
			xs = append(xs, f(r))
		}
		return xs
	}
	series := []struct {
		name string
		xs   []float64
	}{
		{"kill -> verdict", pick(func(r clusterRun) float64 { return r.Verdict })},
		{"kill -> lock committed", pick(func(r clusterRun) float64 { return r.Lock })},
		{"kill -> new master writable", pick(func(r clusterRun) float64 { return r.Writable })},
		{"kill -> first write through HAProxy (client-visible outage)", pick(func(r clusterRun) float64 { return r.Client })},
		{"kill -> failover finished", pick(func(r clusterRun) float64 { return r.Finished })},
	}
	note := fmt.Sprintf("%d runs, 3 managers, default settings", runs)
	for _, s := range series {
		res.Add(s.name+" (median)", clusterPercentile(s.xs, 50), "s", note)
		res.Add(s.name+" (p99)", clusterPercentile(s.xs, 99), "s", note)
	}
	res.Add("verdict -> lock committed (median)", clusterPercentile(pick(func(r clusterRun) float64 { return r.Lock - r.Verdict }), 50), "s", note)
	res.Extra = all
	return res, nil
}

// clusterPercentile is the nearest-rank percentile.
func clusterPercentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(k, len(s)-1))]
}

func oneClusterFailover(ctx context.Context, bin, dir string) (*clusterRun, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	db, err := testbed.New(filepath.Join(dir, "db"), testbed.Options{N: 3})
	if db != nil {
		defer db.Close()
	}
	if err != nil {
		return nil, err
	}
	m := db.Master()
	if err := m.Exec(ctx, "CREATE DATABASE test", "CREATE TABLE test.t1 (a INT PRIMARY KEY)",
		"INSERT INTO test.t1 VALUES (1),(2),(3)"); err != nil {
		return nil, err
	}
	conf, err := db.WriteAppConfig(dir)
	if err != nil {
		return nil, err
	}
	mc, err := managertest.New(bin, dir, 3, func(int) []string { return []string{conf} })
	if err != nil {
		return nil, err
	}
	defer mc.Close()
	if err := mc.StartAll(); err != nil {
		return nil, err
	}
	// Healthy on the leader: every manager probes the master.
	for {
		li, err := mc.Leader(ctx)
		if err != nil {
			return nil, err
		}
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = mc.WaitApp(wctx, li, "app1", func(a *api.AppStatus) bool {
			return a.Master == m.Addr() && a.Verdict == "Healthy"
		})
		wcancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, err
		}
	}
	if err := db.WaitCaughtUp(ctx, 20*time.Second); err != nil {
		return nil, err
	}
	client, err := startClientPath(ctx, dir, db, mc)
	if err != nil {
		return nil, err
	}
	defer client.close()
	killed := time.Now()
	if err := m.Kill9(); err != nil {
		return nil, err
	}
	dead := time.Now() // Kill9 waited for the process to exit
	var hist []api.HistoryEntry
	for {
		h, err := mc.Client().History(ctx, "app1")
		if err == nil && len(h) > 0 {
			hist = h
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("no failover after the master's death: %w", ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if hist[0].Result != fsm.ResultSuccess {
		return nil, fmt.Errorf("failover result %s: %s", hist[0].Result, hist[0].Summary)
	}
	st, err := mc.Client().Status(ctx)
	if err != nil {
		return nil, err
	}
	r := &clusterRun{Finished: hist[0].Finished.Sub(killed).Seconds()}
	for _, j := range st.Apps[0].Journal {
		d := j.At.Sub(killed).Seconds()
		switch {
		case j.Phase == manager.PhaseVerdict:
			r.Verdict = d
		case j.Phase == manager.PhaseLock:
			r.Lock = d
		case j.Phase == manager.PhaseActivate && j.Status == fsm.PhaseDone:
			r.Writable = d
		}
	}
	if r.Verdict == 0 || r.Lock == 0 || r.Writable == 0 {
		return nil, fmt.Errorf("journal lacks verdict, lock or activate: %+v", st.Apps[0].Journal)
	}
	for _, s := range db.Servers {
		if s.Addr() == hist[0].NewMaster {
			out, err := client.outage(ctx, killed, dead, s)
			if err != nil {
				return nil, err
			}
			r.Client = out.Seconds()
			rows, err := s.Rows(ctx)
			if err != nil {
				return nil, err
			}
			if !slices.Equal(rows, []int{1, 2, 3}) {
				return nil, fmt.Errorf("new master %s has rows %v, want [1 2 3]", s.Name(), rows)
			}
			r.Rows = len(rows)
		}
	}
	return r, nil
}
