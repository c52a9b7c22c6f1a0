package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/mharaft/mharaft/jepsen"
)

func init() { Register("chaos", chaosSuite) }

// chaosConfig is one detection cadence measured by the chaos suite.
type chaosConfig struct {
	name      string
	ping      int    // ping_interval of app1.conf (seconds)
	detection string // mhanode --detection
	note      string
}

// The baseline runs mhanode with --detection mha: MHA's cadence (one ping
// every ping_interval=3 s, unreachable after 4 failed pings in a row, as
// MHA::HealthCheck does), so it does not notice a kill -9 through a
// sentinel connection; quorum, replica checks and the failover itself are
// ours in both configurations.
var chaosConfigs = []chaosConfig{
	{"mharaft", 1, "fast", "3 managers, fast detection, ping_interval=1 (window 3 s)"},
	{"mha-cadence", 3, "mha", "3 managers, MHA's detection cadence: 4 failed pings at ping_interval=3"},
}

// chaosKinds are the faults whose failover time is measured.
var chaosKinds = []string{"kill-master", "pause-master-long", "isolate-master"}

// chaosSuite measures, per fault kind, the failover time (fault to the
// first acknowledged write on the new master) and the write unavailability
// (longest time without an acknowledged write), median and p99, for our
// cadence and for MHA's detection cadence in the same run, with real
// mariadbd, sshd and mhanode processes in network namespaces. Both run the
// harness's settings (jepsen/env.go): connect_timeout=1,
// ssh_connection_timeout=1 (jepsen.SSHConnectionTimeout: a LAN, where a
// host whose sshd has not answered within a second is down or cut off) and
// a replication heartbeat of 0.25 s (jepsen.HeartbeatPeriod: the replicas'
// testimony about a silent master takes half the window, one heartbeat
// period and 250 ms). The signalless faults (pause-master-long,
// isolate-master) are where those settings show: their goal is a median
// under 3 s (issue 16 item 4).
func chaosSuite(ctx context.Context, dir string, quick bool, log io.Writer) (*Result, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the chaos suite needs root (network namespaces, iptables)")
	}
	per := 3
	if quick {
		per = 1
	}
	// MHANODE_BIN names a prebuilt mhanode (an older build, to compare);
	// otherwise it is built from the module.
	bin := os.Getenv("MHANODE_BIN")
	if bin == "" {
		var err error
		if bin, err = jepsen.BuildMhanode(ctx, dir); err != nil {
			return nil, err
		}
	}
	res := &Result{Started: time.Now()}
	medians := map[string]map[string]float64{} // config -> kind -> failover median
	unavail := map[string]map[string]float64{} // config -> kind -> unavailability median
	extra := map[string]*jepsen.Report{}
	for _, cfg := range chaosConfigs {
		c, err := jepsen.NewCampaign(ctx, jepsen.Options{Dir: dir + "/" + cfg.name, MhanodeBin: bin,
			PingInterval: cfg.ping, Detection: cfg.detection, Log: log})
		if err != nil {
			return nil, fmt.Errorf("chaos %s: %w", cfg.name, err)
		}
		var rounds []*jepsen.Round
		rng := rand.New(rand.NewPCG(1, 2))
		i := 0
		for _, kind := range chaosKinds {
			n, _ := jepsen.NemesisByName(kind)
			for k := 0; k < per; k++ {
				i++
				rounds = append(rounds, c.RunRound(ctx, i, n, rng))
			}
		}
		c.Close()
		rep := jepsen.NewReport(1, res.Started, rounds)
		extra[cfg.name] = rep
		medians[cfg.name] = map[string]float64{}
		unavail[cfg.name] = map[string]float64{}
		for _, kind := range chaosKinds {
			s := rep.PerNemesis[kind]
			if s == nil {
				continue
			}
			medians[cfg.name][kind] = s.FailoverMedianSecs
			unavail[cfg.name][kind] = s.UnavailMedianSecs
			res.Add(fmt.Sprintf("%s %s failover median", cfg.name, kind), s.FailoverMedianSecs, "s", cfg.note)
			res.Add(fmt.Sprintf("%s %s failover p99", cfg.name, kind), s.FailoverP99Secs, "s", fmt.Sprintf("%d rounds", s.Rounds))
			res.Add(fmt.Sprintf("%s %s unavailable median", cfg.name, kind), s.UnavailMedianSecs, "s", "longest time without an acknowledged write")
			res.Add(fmt.Sprintf("%s %s unavailable p99", cfg.name, kind), s.UnavailP99Secs, "s", "")
		}
		if !rep.Passed {
			res.Add(cfg.name+" failed rounds", float64(len(rep.FailedRounds)), "rounds", fmt.Sprint(rep.FailedRounds))
		}
	}
	for _, kind := range chaosKinds {
		a, b := medians["mharaft"][kind], medians["mha-cadence"][kind]
		if a > 0 && b > 0 {
			res.Add("ratio mha-cadence/mharaft "+kind+" failover", b/a, "x", "failover time medians")
		}
		a, b = unavail["mharaft"][kind], unavail["mha-cadence"][kind]
		if a > 0 && b > 0 {
			res.Add("ratio mha-cadence/mharaft "+kind+" unavailable", b/a, "x", "write-unavailability medians")
		}
	}
	res.Extra = extra
	return res, nil
}
