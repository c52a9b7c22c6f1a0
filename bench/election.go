package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/manager/managertest"
	"github.com/mharaft/mharaft/testbed"
)

func init() { Register("election", electionSuite) }

// electionRun is one kill -9 of the Raft leader; durations are from the
// kill (the bench's clock; everything runs on one host).
type electionRun struct {
	Elected float64 `json:"elected_s"` // kill -> a surviving manager is leader and says so itself
	Acting  float64 `json:"acting_s"`  // kill -> an operator's command (pause) committed through the new leader
	// PreVoteFailed counts the surviving managers' "pre-vote campaign
	// failed" log lines of this election (rounds that had to wait for an
	// election timeout).
	PreVoteFailed int `json:"prevote_failed"`
}

// electionSuite measures leader elections of three real mhanode processes
// (one real application, ping_interval 1): first a quiet period without
// any kill, in which every change of term is a false election (a loaded
// machine delaying heartbeats); then runs of kill -9 of the leader's
// process, each timed to a new leader and to the first command it commits
// (an operator's pause, forwarded to it, then resumed), the killed manager
// restarted and caught up before the next run. MHANODE_BIN names a
// prebuilt mhanode (to compare two builds), else it is built.
func electionSuite(ctx context.Context, dir string, quick bool, log io.Writer) (*Result, error) {
	runs, quiet := 10, 30*time.Second
	if quick {
		runs, quiet = 3, 10*time.Second
	}
	bin := os.Getenv("MHANODE_BIN")
	if bin == "" {
		var err error
		if bin, err = managertest.Build(dir); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	db, err := testbed.New(filepath.Join(dir, "db"), testbed.Options{N: 3, NoSSH: true})
	if db != nil {
		defer db.Close()
	}
	if err != nil {
		return nil, err
	}
	conf, err := db.WriteAppConfig(dir, "ping_interval=1")
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
	if err := waitAllFollowLeader(ctx, mc); err != nil {
		return nil, err
	}
	if _, err := mc.WaitApp(ctx, -1, "app1", func(a *api.AppStatus) bool { return a.Verdict == "Healthy" }); err != nil {
		return nil, err
	}

	res := &Result{Started: time.Now()}
	falseElections, err := countTermChanges(ctx, mc, quiet)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "election: %d term changes in %s without a kill (load %s)\n", falseElections, quiet, loadAverage())
	var all []electionRun
	for i := 0; i < runs; i++ {
		r, err := oneLeaderKill(ctx, mc)
		if err != nil {
			return nil, fmt.Errorf("election run %d: %w", i+1, err)
		}
		fmt.Fprintf(log, "election run %d: new leader %.3f s, command committed %.3f s, failed pre-vote rounds %d (load %s)\n",
			i+1, r.Elected, r.Acting, r.PreVoteFailed, loadAverage())
		all = append(all, *r)
	}
	var elected, acting []float64
	for _, r := range all {
		elected = append(elected, r.Elected)
		acting = append(acting, r.Acting)
	}
	note := fmt.Sprintf("%d kills of the leader, 3 managers, one application", runs)
	res.Add("leader kill -> new leader (median)", clusterPercentile(elected, 50), "s", note)
	res.Add("leader kill -> new leader (max)", clusterPercentile(elected, 100), "s", note)
	res.Add("leader kill -> command committed by the new leader (median)", clusterPercentile(acting, 50), "s", note)
	res.Add("leader kill -> command committed by the new leader (max)", clusterPercentile(acting, 100), "s", note)
	res.Add("false elections without a kill", float64(falseElections), "count", "in "+quiet.String())
	res.Extra = all
	return res, nil
}

// oneLeaderKill kills the leader's process, times the election, restarts
// the killed manager and waits until it follows the new leader.
func oneLeaderKill(ctx context.Context, mc *managertest.Cluster) (*electionRun, error) {
	li, err := mc.Leader(ctx)
	if err != nil {
		return nil, err
	}
	before := make([]int, len(mc.Nodes))
	for i := range mc.Nodes {
		before[i] = strings.Count(mc.Log(i), "pre-vote campaign failed")
	}
	killed := time.Now()
	if err := mc.Kill(li); err != nil {
		return nil, err
	}
	r := &electionRun{}
	newLeader := -1
	for newLeader < 0 {
		for i := range mc.Nodes {
			if i == li {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := mc.NodeClient(i).Status(sctx)
			cancel()
			if err == nil && st.Leader == mc.Nodes[i].ID {
				newLeader = i
				break
			}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("no new leader after killing %s: %w", mc.Nodes[li].ID, ctx.Err())
		}
		if newLeader < 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	r.Elected = time.Since(killed).Seconds()
	for {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		res, err := mc.NodeClient(newLeader).Do(sctx, api.Action{Kind: api.ActionPause, App: "app1", Reason: "election bench"})
		cancel()
		if err == nil && res.OK {
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("no command committed after killing %s: %w (last: %v)", mc.Nodes[li].ID, ctx.Err(), err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.Acting = time.Since(killed).Seconds()
	for i := range mc.Nodes {
		if i != li {
			r.PreVoteFailed += strings.Count(mc.Log(i), "pre-vote campaign failed") - before[i]
		}
	}
	if res, err := mc.NodeClient(newLeader).Do(ctx, api.Action{Kind: api.ActionResume, App: "app1"}); err != nil || !res.OK {
		return nil, fmt.Errorf("resume app1 on %s: %+v %v", mc.Nodes[newLeader].ID, res, err)
	}
	if err := mc.Start(li); err != nil {
		return nil, err
	}
	if err := waitAllFollowLeader(ctx, mc); err != nil {
		return nil, err
	}
	return r, nil
}

// waitAllFollowLeader waits until every manager names the same leader and
// has caught up with it (the same term), then a second more so the
// restarted one settles.
func waitAllFollowLeader(ctx context.Context, mc *managertest.Cluster) error {
	for {
		leaders := map[string]bool{}
		terms := map[uint64]bool{}
		ok := true
		for i := range mc.Nodes {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := mc.NodeClient(i).Status(sctx)
			cancel()
			if err != nil || st.Leader == "" {
				ok = false
				break
			}
			leaders[st.Leader] = true
			terms[st.Term] = true
		}
		if ok && len(leaders) == 1 && len(terms) == 1 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("managers do not agree on a leader: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Second):
	}
	return nil
}

// countTermChanges watches every manager's term for d and returns how many
// times the highest term seen went up.
func countTermChanges(ctx context.Context, mc *managertest.Cluster, d time.Duration) (int, error) {
	var top uint64
	changes := 0
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		for i := range mc.Nodes {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := mc.NodeClient(i).Status(sctx)
			cancel()
			if err != nil {
				continue
			}
			if top != 0 && st.Term > top {
				changes++
			}
			top = max(top, st.Term)
		}
		if ctx.Err() != nil {
			return changes, ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return changes, nil
}

// loadAverage is the 1-minute load average, printed with timing figures.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
