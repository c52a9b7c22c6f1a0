package manager_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/manager/managertest"
	"github.com/mharaft/mharaft/testbed"
)

// scrapeEntries reads mharaft_raft_entries_applied_total{type} from node i's
// /metrics.
func (e *env) scrapeEntries(ctx context.Context, i int) map[string]float64 {
	e.t.Helper()
	return e.scrape(ctx, i, `mharaft_raft_entries_applied_total{type="`)
}

// scrape reads the series of node i's /metrics whose line starts with
// prefix, a name and the opening of its one label's value; the result is
// keyed by that value.
func (e *env) scrape(ctx context.Context, i int, prefix string) map[string]float64 {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.mc.Nodes[i].HTTPAddr+"/metrics", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.mc.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("scrape %s: %v", e.mc.Nodes[i].ID, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("scrape %s: HTTP %d", e.mc.Nodes[i].ID, res.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		typ, rest, ok := strings.Cut(line[len(prefix):], `"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(rest, 64)
		if err != nil {
			e.t.Fatalf("metrics line %q: %v", line, err)
		}
		out[typ] = v
	}
	return out
}

// TestObservationTraffic: three managers watching three applications
// (ping_interval 1 s, so RefreshEvery is 1 s) write one observation entry
// per manager and second in steady state, whatever the number of
// applications: 3 a second here, where one entry per observation and
// refresh (the code before ObserveBatch) wrote 9. Every application's
// app1's verdict stays Healthy on the leader throughout (the heartbeats keep every
// manager's observation fresh), and no old-format Observe entry is written.
func TestObservationTraffic(t *testing.T) {
	const apps = 3
	ctx := ctxT(t, 3*time.Minute)
	var confs []string
	e := startEnv(t, testbed.Options{N: 3, NoSSH: true}, nil, func(i int, conf string) []string {
		if confs == nil {
			body, err := os.ReadFile(conf)
			if err != nil {
				t.Fatal(err)
			}
			confs = []string{conf}
			for a := 2; a <= apps; a++ { // the same servers watched as app2, app3
				p := filepath.Join(filepath.Dir(conf), fmt.Sprintf("app%d.conf", a))
				if err := os.WriteFile(p, body, 0o600); err != nil {
					t.Fatal(err)
				}
				confs = append(confs, p)
			}
		}
		return confs
	})
	e.waitHealthy(e.db.Master())
	li, err := e.mc.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for a := 1; a <= apps; a++ {
		if _, err := e.mc.WaitApp(ctxT(t, 30*time.Second), li, fmt.Sprintf("app%d", a), func(s *api.AppStatus) bool {
			return s.Verdict == "Healthy"
		}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // let the start-up changes settle: what follows is the steady state
	const measure = 15 * time.Second
	start := e.scrapeEntries(ctx, li)
	startAt := time.Now()
	e.watchLeader(ctx, measure, func(a api.AppStatus) {
		if a.Verdict != "Healthy" {
			t.Errorf("%s: verdict %s during the steady state", a.Name, a.Verdict)
		}
	})
	end := e.scrapeEntries(ctx, li)
	secs := time.Since(startAt).Seconds()
	rate := map[string]float64{}
	for typ, v := range end {
		rate[typ] = (v - start[typ]) / secs
	}
	sum := e.scrape(ctx, li, `mharaft_observation_publish_seconds_sum{batch="`)
	count := e.scrape(ctx, li, `mharaft_observation_publish_seconds_count{batch="`)
	if count["heartbeat"] == 0 {
		t.Error("the leader's heartbeats are not in mharaft_observation_publish_seconds")
	} else {
		t.Logf("the leader's heartbeats took %.1f ms on average to commit", 1000*sum["heartbeat"]/count["heartbeat"])
	}
	obs := rate["observe_batch"] + rate["observe"]
	t.Logf("entries per second over %.1fs (load %s): %v; observations %.2f/s = %.1f per application per minute",
		secs, loadavg(), rate, obs, obs*60/apps)
	if rate["observe"] != 0 {
		t.Errorf("%.2f old-format Observe entries per second, want none", rate["observe"])
	}
	// One heartbeat per manager per second (3/s), with room for a
	// heartbeat that came early (a new leader) or a change: 4.5/s. One
	// entry per observation would be 9/s.
	if obs > 4.5 || obs < 2 {
		t.Errorf("%.2f observation entries per second with %d applications and 3 managers, want about 3", obs, apps)
	}
}

// loadavg is the 1-minute load average, for the log of a timing figure.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// TestUpgradeReplaysObserveLog: managers of a version before ObserveBatch
// (MHARAFT_TEST_OLD_MHANODE_BIN, e.g. built from commit 348684e) write
// their observations as one Observe entry each; the managers are stopped
// and started again with this version on the same data directories. They
// replay the old entries (counted as type "observe" on start), elect a
// leader, publish ObserveBatch entries and find the master Healthy again.
// Skipped without the old binary.
func TestUpgradeReplaysObserveLog(t *testing.T) {
	oldBin := os.Getenv("MHARAFT_TEST_OLD_MHANODE_BIN")
	newBin := mhanodeBinary(t)
	if oldBin == "" {
		t.Skip("MHARAFT_TEST_OLD_MHANODE_BIN (an mhanode from before ObserveBatch) is not set")
	}
	ctx := ctxT(t, 3*time.Minute)
	db := testbed.Start(t, testbed.Options{N: 3, NoSSH: true})
	dir := t.TempDir()
	conf, err := db.WriteAppConfig(dir, "ping_interval=1")
	if err != nil {
		t.Fatal(err)
	}
	mc, err := managertest.New(oldBin, dir, 3, func(int) []string { return []string{conf} })
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, mc: mc, conf: conf}
	t.Cleanup(func() {
		mc.Close()
		if t.Failed() {
			for i, n := range mc.Nodes {
				t.Logf("==== log of %s ====\n%s", n.ID, tail(mc.Log(i), 30000))
			}
		}
	})
	if err := mc.StartAll(); err != nil {
		t.Fatal(err)
	}
	e.waitHealthy(db.Master())
	time.Sleep(3 * time.Second) // a few more old-format refreshes in the log
	for i := range mc.Nodes {
		if err := mc.Stop(i); err != nil {
			t.Fatal(err)
		}
	}
	for i := range mc.Nodes {
		if err := mc.Wait(i, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	mc.Bin = newBin
	if err := mc.StartAll(); err != nil {
		t.Fatal(err)
	}
	// A status right after the start may show the verdict stored with the
	// last topology summary: wait for the new managers' batches (two
	// heartbeats of each), then for a Healthy verdict.
	var got map[string]float64
	li := -1
	for got["observe_batch"] < 6 {
		if ctx.Err() != nil {
			t.Fatalf("the upgraded managers published %v ObserveBatch entries, want 6", got["observe_batch"])
		}
		time.Sleep(100 * time.Millisecond)
		if li, err = mc.Leader(ctx); err != nil {
			t.Fatal(err)
		}
		got = e.scrapeEntries(ctx, li)
	}
	t.Logf("entries applied by %s since its start: %v", mc.Nodes[li].ID, got)
	if got["observe"] == 0 {
		t.Error("no old-format Observe entry was replayed")
	}
	e.waitHealthy(db.Master())
}
