package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/testbed"
)

func init() { Register("failover", failoverSuite) }

// failoverSuite measures the walkthrough's manual dead-master failover (per
// phase and in total, median of the runs; each run on a fresh cluster) and
// the online switch's write-block time. MHA 0.58 takes 8.2-8.4 s for the
// same manual failover on this kind of machine.
func failoverSuite(ctx context.Context, dir string, quick bool, log io.Writer) (*Result, error) {
	runs := 5
	if quick {
		runs = 1
	}
	res := &Result{Started: time.Now()}
	for _, gtid := range []bool{false, true} {
		mode := map[bool]string{false: "filepos", true: "gtid"}[gtid]
		phases := map[string][]float64{}
		var totals []float64
		for i := 0; i < runs; i++ {
			rep, err := oneFailover(ctx, filepath.Join(dir, fmt.Sprintf("%s-%d", mode, i)), gtid)
			if err != nil {
				return nil, fmt.Errorf("failover run %d (%s): %w", i+1, mode, err)
			}
			for _, p := range rep.Phases {
				phases[p.Phase] = append(phases[p.Phase], p.Took.Seconds())
			}
			totals = append(totals, rep.Total)
			fmt.Fprintf(log, "failover %s run %d: %.3f s\n", mode, i+1, rep.Total)
		}
		var names []string
		for n := range phases {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			res.Add(fmt.Sprintf("failover %s: %s", mode, n), median(phases[n]), "s", fmt.Sprintf("median of %d", runs))
		}
		res.Add(fmt.Sprintf("failover %s: total", mode), median(totals), "s",
			fmt.Sprintf("median of %d; MHA 0.58: 8.2-8.4 s", runs))
	}
	var blocked []float64
	for i := 0; i < runs; i++ {
		b, err := oneSwitch(ctx, filepath.Join(dir, fmt.Sprintf("switch-%d", i)))
		if err != nil {
			return nil, fmt.Errorf("switch run %d: %w", i+1, err)
		}
		blocked = append(blocked, b.Seconds())
	}
	res.Add("switch: writes blocked", median(blocked), "s", fmt.Sprintf("median of %d, fence to new master writable", runs))
	return res, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func loadBenchApp(c *testbed.Cluster, dir string) (*config.App, error) {
	path, err := c.WriteAppConfig(dir)
	if err != nil {
		return nil, err
	}
	return config.Load(path, "")
}

// oneFailover: fresh cluster, the walkthrough's state, server1 shut down,
// failover to server2.
func oneFailover(ctx context.Context, dir string, gtid bool) (*failover.Report, error) {
	c, err := testbed.New(dir, testbed.Options{N: 3, GTID: gtid})
	if err != nil {
		if c != nil {
			c.Close()
		}
		return nil, err
	}
	defer c.Close()
	if err := c.Walkthrough(ctx); err != nil {
		return nil, err
	}
	if err := c.Servers[0].Shutdown(); err != nil {
		return nil, err
	}
	app, err := loadBenchApp(c, dir)
	if err != nil {
		return nil, err
	}
	rep, err := failover.DeadMaster(ctx, failover.FailoverOptions{
		Options:    failover.Options{App: app, Yes: true, NewMaster: c.Servers[1].Addr()},
		DeadMaster: c.Servers[0].Addr(),
	})
	if err != nil {
		return nil, err
	}
	for _, s := range c.Servers[1:] {
		rows, err := s.Rows(ctx)
		if err != nil {
			return nil, err
		}
		if len(rows) != 3 {
			return nil, fmt.Errorf("%s holds rows %v after the failover, want 1,2,3", s.Name(), rows)
		}
	}
	return rep, nil
}

// oneSwitch: fresh cluster, online switch server1 -> server2.
func oneSwitch(ctx context.Context, dir string) (time.Duration, error) {
	c, err := testbed.New(dir, testbed.Options{N: 3})
	if err != nil {
		if c != nil {
			c.Close()
		}
		return 0, err
	}
	defer c.Close()
	app, err := loadBenchApp(c, dir)
	if err != nil {
		return 0, err
	}
	rep, err := failover.Switch(ctx, failover.Options{App: app, Yes: true, NewMaster: c.Servers[1].Addr(), OrigMasterIsNewSlave: true})
	if err != nil {
		return 0, err
	}
	return rep.WritesBlocked, nil
}
