package jepsen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/testbed"
)

// Options of a campaign.
type Options struct {
	Rounds       int
	Seed         int64    // 0: taken from the clock (and printed)
	Nemeses      []string // names to draw from; default all
	Dir          string   // scratch directory (default a new temp dir, removed at the end)
	OutDir       string   // report.json, report.txt, timeline.html (default out/jepsen)
	Managers     int      // default 3
	PingInterval int      // seconds, default 1
	Detection    string   // mhanode --detection: "" (fast) or "mha" (MHA's cadence, the benchmark baseline)
	KeepDirs     bool     // keep every round's directory, not only failed ones
	MhanodeBin   string   // default: built from this module
	Writers      int      // default 3
	// TailMB is the size of the dead master's tail (rows the replicas never
	// received) that leader-pause-mid-apply writes before killing the
	// master, in transactions of ~5 MB (each bigger than an apply batch);
	// leader-partition-mid-phase writes a quarter of it in ten
	// transactions. Default 20.
	TailMB int
	// Layout forces the datacenter layout of the datacenter rounds ("3dc"
	// or "2dc+tb"); "" takes them in turn.
	Layout string
	// DCLatency is the one-way delay between datacenters in datacenter
	// rounds (a delaying relay, latency.go); negative: none. Default
	// DefaultDCLatency.
	DCLatency time.Duration
	Log       io.Writer
}

// DefaultDCLatency is the one-way delay between datacenters of the
// datacenter rounds: 10 ms, a 20 ms round trip.
const DefaultDCLatency = 10 * time.Millisecond

// Round is one round of a campaign: what was done and what the checkers
// found.
type Round struct {
	Index              int       `json:"index"`
	Nemesis            string    `json:"nemesis"`
	GTID               bool      `json:"gtid"`
	Start              time.Time `json:"start"`
	FaultAt            time.Time `json:"fault_at"`
	HealAt             time.Time `json:"heal_at"`
	End                time.Time `json:"end"`
	ExpectFailover     bool      `json:"expect_failover"`
	MasterSSHReachable bool      `json:"master_ssh_reachable"`
	OldMaster          string    `json:"old_master"`
	FinalMaster        string    `json:"final_master"`

	History             []api.HistoryEntry `json:"history"`
	Failovers           int                `json:"failovers"`
	VerdictAt           *time.Time         `json:"verdict_at,omitempty"`
	FailoverStarted     *time.Time         `json:"failover_started,omitempty"`
	FailoverFinished    *time.Time         `json:"failover_finished,omitempty"`
	FirstWriteNewMaster *time.Time         `json:"first_write_new_master,omitempty"`
	FailoverSecs        *float64           `json:"failover_secs,omitempty"` // fault to first acknowledged write on the new master
	UnavailableSecs     float64            `json:"unavailable_secs"`        // longest time without an acknowledged write after the fault

	Acked         int               `json:"acked"`
	Failed        int               `json:"failed"`
	Unknown       int               `json:"unknown"`
	Lost          []int64           `json:"lost,omitempty"`
	FailedPresent []int64           `json:"failed_present,omitempty"`
	SplitBrain    []SplitBrain      `json:"split_brain,omitempty"`
	FalseFailover bool              `json:"false_failover"`
	Missed        bool              `json:"missed_failover"`
	Converged     bool              `json:"converged"`
	Checksums     map[string]string `json:"checksums,omitempty"`
	ConvergeNote  string            `json:"converge_note,omitempty"`
	EpochError    string            `json:"epoch_error,omitempty"`
	// Duplicates are workload values present more than once on the final
	// master (jepsen.nk has no key): a transaction applied twice.
	Duplicates []int64 `json:"duplicates,omitempty"`
	// TailRows were written to the master (and acknowledged to the
	// harness) where no replica received them, just before its kill;
	// TailRowsFound of them (distinct values) are on the final master, and
	// TailDuplicateRows are extra copies of them there.
	TailRows          int `json:"tail_rows,omitempty"`
	TailRowsFound     int `json:"tail_rows_found,omitempty"`
	TailDuplicateRows int `json:"tail_duplicate_rows,omitempty"`
	// ActorSpans and OneActor: the one-actor checker (oneactor.go) on the
	// servers' general logs.
	ActorSpans []ActorSpan         `json:"actor_spans,omitempty"`
	OneActor   []OneActorViolation `json:"one_actor,omitempty"`
	// HistoryEntries is the number of history entries the round added;
	// NemesisChecks are the nemesis's own assertions that failed.
	HistoryEntries int      `json:"history_entries"`
	NemesisChecks  []string `json:"nemesis_checks,omitempty"`
	Errors         []string `json:"errors,omitempty"`
	Events         []Event  `json:"events"`
	AckBuckets     []int    `json:"ack_buckets"` // acknowledged writes per 100 ms since Start
	Passed         bool     `json:"passed"`
	Dir            string   `json:"dir,omitempty"`

	// Datacenter rounds (nemesis_dc.go): the layout and its hosts, the
	// datacenter cut, semi-sync, prevent_cross_dc_failover; ZeroLoss
	// requires zero lost acknowledged writes even when the old master's
	// host was unreachable (lossless mode, or no failover allowed).
	Layout         string         `json:"layout,omitempty"`
	Datacenters    *DCLayout      `json:"datacenters,omitempty"`
	DCLatencyMs    float64        `json:"dc_latency_ms,omitempty"` // one-way, between datacenters
	CutDC          string         `json:"cut_dc,omitempty"`
	SemiSync       bool           `json:"semi_sync,omitempty"`
	PreventCrossDC bool           `json:"prevent_cross_dc_failover,omitempty"`
	ZeroLoss       bool           `json:"zero_loss,omitempty"`
	AckedByDC      map[string]int `json:"acked_by_dc,omitempty"`
	LostByDC       map[string]int `json:"lost_by_dc,omitempty"`
	// AckBucketsByDC: acknowledged writes per 100 ms of each
	// datacenter's clients.
	AckBucketsByDC map[string][]int `json:"ack_buckets_by_dc,omitempty"`
	// DivergentWrites: without semi-sync, the old master's datacenter
	// clients wrote to it while the new master took writes (the split
	// brain a partition without fencing gives); not a failure when every
	// lost write is listed by reconcile and replayed (Divergence).
	DivergentWrites []SplitBrain     `json:"divergent_writes,omitempty"`
	Divergence      *DivergenceCheck `json:"divergence,omitempty"`

	env        *Env
	obs        *Observer
	rng        *rand.Rand
	histBase   int
	maxHistory int // > 0: the round fails when it adds more history entries
	tailMB     int
	broken     bool // a deliberately broken deployment: no waits for a healthy end, no convergence check
	nth        int  // rounds of the same nemesis before this one in the campaign
	// clock-skew and refused-failover remember their Setup's choices.
	skewed         string
	skew           time.Duration
	refusedReplica string
	layoutOpt      string
	successOnly    bool // only successful failovers count (a refused attempt is no failover)
	divergence     bool // the master's datacenter is cut: run the divergence check after a failover
	mu             sync.Mutex
}

// nemesisCheck records a failed assertion of the nemesis itself.
func (r *Round) nemesisCheck(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.NemesisChecks = append(r.NemesisChecks, fmt.Sprintf(format, args...))
}

// harnessError records an error of the harness (the round fails).
func (r *Round) harnessError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Errors = append(r.Errors, err.Error())
}

func (r *Round) event(kind, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Events = append(r.Events, Event{At: time.Now(), Kind: kind, Detail: detail})
}

func (r *Round) fault(detail string) {
	r.mu.Lock()
	if r.FaultAt.IsZero() {
		r.FaultAt = time.Now()
	}
	r.mu.Unlock()
	r.event("fault", detail)
}

func (r *Round) heal(detail string) {
	r.mu.Lock()
	r.HealAt = time.Now()
	r.mu.Unlock()
	r.event("heal", detail)
}

func (r *Round) healNet() {
	if err := r.env.Net.Heal(); err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	r.heal("network healed")
}

// waitFailover polls the history until a failover newer than the round's
// start is recorded.
func (r *Round) waitFailover(ctx context.Context, timeout time.Duration) error {
	return poll(ctx, timeout, 100*time.Millisecond, func() error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		h, err := r.obs.API().History(cctx, "app1")
		if err != nil {
			return err
		}
		if len(h) > r.histBase {
			return nil
		}
		return errors.New("no failover recorded yet")
	})
}

// restartReplica starts d's mariadbd again and points it (by GTID, which
// MariaDB keeps crash-safe) at the master the cluster names.
func (r *Round) restartReplica(ctx context.Context, d *DBHost) error {
	if err := d.RestartServer(ctx); err != nil {
		return err
	}
	if err := r.waitNoLock(ctx, 60*time.Second); err != nil {
		return err
	}
	m := r.env.DBByAddr(r.obs.Master())
	if m == nil {
		return fmt.Errorf("restart %s: no master named by the API", d.Name())
	}
	return d.Server.Exec(ctx, "STOP SLAVE", "SET GLOBAL read_only=1",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=3306, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos",
			m.Net.IP, "repl", "repl-secret-pw"), "START SLAVE")
}

// waitNoLock polls the API until no failover lock is held and it names a
// master.
func (r *Round) waitNoLock(ctx context.Context, timeout time.Duration) error {
	return poll(ctx, timeout, 100*time.Millisecond, func() error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		a, err := r.obs.API().App(cctx, "app1")
		if err != nil {
			return err
		}
		if a.Lock != nil {
			return fmt.Errorf("failover lock held (epoch %d by %s, halted journal: %v)", a.Lock.Epoch, a.Lock.Holder, a.Unfinished)
		}
		if r.env.DBByAddr(a.Master) == nil {
			return fmt.Errorf("API names no known master (%q)", a.Master)
		}
		return nil
	})
}

// Campaign runs rounds against one environment.
type Campaign struct {
	Opts   Options
	Env    *Env
	nextID atomic.Int64
	log    io.Writer
	ran    map[string]int // rounds run per nemesis
}

var envCounter atomic.Int32

// freeSubnet picks a third octet of 10.213.x.0/24 that no address of the
// root namespace uses.
func freeSubnet(start int) int {
	out, _ := exec.Command("ip", "-o", "-4", "addr", "show").Output()
	for i := 0; i < 250; i++ {
		s := (start+i)%250 + 1
		if !strings.Contains(string(out), fmt.Sprintf("10.213.%d.", s)) {
			return s
		}
	}
	return start%250 + 1
}

// NewCampaign sweeps leftovers of dead runs, builds mhanode when needed
// and creates the environment. Close it.
func NewCampaign(ctx context.Context, o Options) (*Campaign, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the chaos harness needs root (network namespaces, iptables)")
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Managers == 0 {
		o.Managers = 3
	}
	if o.PingInterval == 0 {
		o.PingInterval = 1
	}
	if o.Writers == 0 {
		o.Writers = 3
	}
	if o.TailMB == 0 {
		o.TailMB = 20
	}
	if o.OutDir == "" {
		o.OutDir = "out/jepsen"
	}
	if o.DCLatency == 0 {
		o.DCLatency = DefaultDCLatency
	}
	mysql.SetLogger(log.New(io.Discard, "", 0)) // the driver's own noise about dropped connections
	if removed := Sweep(); len(removed) > 0 {
		fmt.Fprintf(o.Log, "jepsen: removed leftovers of earlier runs: %s\n", strings.Join(removed, " "))
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "mhj")
		if err != nil {
			return nil, err
		}
		o.Dir = d
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	if o.MhanodeBin == "" {
		bin, err := BuildMhanode(ctx, o.Dir)
		if err != nil {
			return nil, err
		}
		o.MhanodeBin = bin
	}
	k := envCounter.Add(1) % 10
	prefix := fmt.Sprintf("%s%d%d-", NamePrefixRoot, os.Getpid()%1000, k)
	env, err := NewEnv(ctx, EnvOptions{Dir: o.Dir, Managers: o.Managers, MhanodeBin: o.MhanodeBin,
		PingInterval: o.PingInterval, ConnectTimeout: 1, Detection: o.Detection, Prefix: prefix, DCLatency: max(o.DCLatency, 0),
		Subnet: freeSubnet(os.Getpid() % 250), Log: o.Log})
	if err != nil {
		env.Close()
		return nil, err
	}
	return &Campaign{Opts: o, Env: env, log: o.Log}, nil
}

// Close removes every process, namespace and link of the campaign.
func (c *Campaign) Close() { c.Env.Close() }

func (c *Campaign) logf(format string, args ...any) {
	fmt.Fprintf(c.log, time.Now().Format("15:04:05.000")+" "+format+"\n", args...)
}

// RunRound runs one round with nemesis n.
func (c *Campaign) RunRound(ctx context.Context, index int, n Nemesis, rng *rand.Rand) *Round {
	r := &Round{Index: index, Nemesis: n.Name, GTID: rng.IntN(2) == 1, ExpectFailover: n.ExpectFailover,
		MasterSSHReachable: n.MasterSSHReachable, env: c.Env, rng: rng, Start: time.Now(),
		maxHistory: n.MaxHistory, tailMB: c.Opts.TailMB, broken: n.Broken, nth: c.ran[n.Name], layoutOpt: c.Opts.Layout}
	if c.ran == nil {
		c.ran = map[string]int{}
	}
	c.ran[n.Name]++
	r.Dir = filepath.Join(c.Opts.Dir, fmt.Sprintf("round%03d", index))
	c.logf("round %d: %s (gtid=%v)", index, n.Name, r.GTID)
	defer func() {
		c.Env.StopRound()
		r.End = time.Now()
		if r.Passed && !c.Opts.KeepDirs {
			os.RemoveAll(r.Dir)
			r.Dir = ""
		}
	}()
	fail := func(err error) *Round {
		r.Errors = append(r.Errors, err.Error())
		r.Passed = false
		c.logf("round %d: harness error: %v", index, err)
		return r
	}
	setup := RoundSetup{GTID: r.GTID}
	if n.Setup != nil {
		n.Setup(r, &setup)
	}
	if err := c.Env.StartRound(ctx, r.Dir, setup); err != nil {
		return fail(fmt.Errorf("start round: %w", err))
	}
	r.OldMaster = c.Env.DBs[0].Name()
	r.Datacenters = c.Env.Layout()
	if r.Datacenters != nil {
		r.DCLatencyMs = float64(c.Env.Opts.DCLatency) / float64(time.Millisecond)
		c.logf("round %d: datacenters %s latency %.0f ms one-way, semi-sync=%v prevent_cross_dc_failover=%v", index, r.Datacenters, r.DCLatencyMs, setup.SemiSync, setup.PreventCrossDC)
	}
	r.obs = NewObserver(c.Env)
	octx, ocancel := context.WithCancel(ctx)
	defer ocancel()
	go r.obs.Run(octx)
	if err := poll(ctx, 60*time.Second, 100*time.Millisecond, func() error {
		if r.obs.Master() != r.OldMaster || r.obs.Verdict() != "Healthy" {
			return fmt.Errorf("API: master %q verdict %q", r.obs.Master(), r.obs.Verdict())
		}
		return nil
	}); err != nil {
		return fail(fmt.Errorf("cluster not ready: %w", err))
	}
	if h, err := r.obs.API().History(ctx, "app1"); err == nil {
		r.histBase = len(h)
	}
	wl := NewWorkload(c.Env, r.obs, c.Opts.Writers, &c.nextID)
	defer wl.Close()
	wctx, wcancel := context.WithCancel(ctx)
	wdone := make(chan struct{})
	go func() { wl.Run(wctx); close(wdone) }()
	stopWorkload := func() { wcancel(); <-wdone }
	defer stopWorkload()
	if err := poll(ctx, 20*time.Second, 50*time.Millisecond, func() error {
		if n := countAcks(wl.Writes()); n < 50 {
			return fmt.Errorf("only %d acknowledged writes", n)
		}
		return nil
	}); err != nil {
		return fail(fmt.Errorf("workload warm-up: %w", err))
	}

	if err := n.Inject(ctx, r); err != nil {
		r.Errors = append(r.Errors, fmt.Sprintf("nemesis %s: %v", n.Name, err))
	}
	if r.HealAt.IsZero() {
		r.heal("nothing to heal")
	}
	// Let things converge: no lock, a master, and a write acknowledged by
	// it (a deliberately broken deployment may never get there).
	if !n.Broken {
		if err := r.waitNoLock(ctx, 60*time.Second); err != nil {
			r.Errors = append(r.Errors, "after heal: "+err.Error())
		}
		r.FinalMaster = r.obs.Master()
		healAt := r.HealAt
		if err := poll(ctx, 30*time.Second, 50*time.Millisecond, func() error {
			if n := acksOnSince(wl.Writes(), r.obs.Master(), healAt); n < 50 {
				return fmt.Errorf("%d acknowledged writes on %s since the heal, want 50", n, r.obs.Master())
			}
			return nil
		}); err != nil {
			r.Errors = append(r.Errors, "after heal: "+err.Error())
		}
	}
	stopWorkload()
	ocancel()
	r.FinalMaster = r.obs.Master()
	c.check(ctx, r, wl)
	return r
}

func acksOnSince(ops []Op, server string, t time.Time) int {
	n := 0
	for _, o := range ops {
		if o.Outcome == Ack && o.Server == server && o.Start.After(t) {
			n++
		}
	}
	return n
}

func countAcks(ops []Op) int {
	n := 0
	for _, o := range ops {
		if o.Outcome == Ack {
			n++
		}
	}
	return n
}

// check runs the checkers on a finished round.
func (c *Campaign) check(ctx context.Context, r *Round, wl *Workload) {
	writes, probes := wl.Writes(), wl.Probes()
	for _, w := range writes {
		switch w.Outcome {
		case Ack:
			r.Acked++
		case Fail:
			r.Failed++
		default:
			r.Unknown++
		}
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	h, err := r.obs.API().History(hctx, "app1")
	cancel()
	if err != nil {
		r.Errors = append(r.Errors, "read history: "+err.Error())
	}
	r.History = h
	if len(h) > r.histBase {
		r.HistoryEntries = len(h) - r.histBase
		r.Failovers = AutoFailovers(h[r.histBase:])
		if r.successOnly {
			r.Failovers = SuccessfulFailovers(h[r.histBase:])
		}
		f := h[r.histBase]
		r.FailoverStarted, r.FailoverFinished = &f.Started, &f.Finished
	}
	if err := CheckEpochs(h); err != nil {
		r.EpochError = err.Error()
	}
	if r.maxHistory > 0 && r.HistoryEntries > r.maxHistory {
		r.nemesisCheck("the round added %d history entries, at most %d allowed: refused attempts must be retried with a bounded policy, not in a loop", r.HistoryEntries, r.maxHistory)
	}
	r.FalseFailover, r.Missed = FailoverVerdict(r.ExpectFailover, r.Failovers)
	r.Events = append(r.Events, r.obs.Events()...)
	for _, e := range r.Events {
		if e.Kind == "verdict" && r.VerdictAt == nil && e.At.After(r.FaultAt) {
			t := e.At
			r.VerdictAt = &t
		}
	}
	for _, l := range c.Env.StonithLog() {
		if e := stonithEvent(l); e.At.After(r.Start) {
			r.Events = append(r.Events, e)
		}
	}
	all := append(append([]Op(nil), writes...), probes...)
	r.SplitBrain = CheckSplitBrain(all)
	if r.divergence && !r.SemiSync {
		r.SplitBrain, r.DivergentWrites = splitExpected(r.SplitBrain, r.OldMaster)
	}
	if !r.FaultAt.IsZero() {
		end := r.End
		if end.IsZero() {
			end = time.Now()
		}
		r.UnavailableSecs = MaxAckGap(writes, r.FaultAt, end).Seconds()
		if r.FinalMaster != r.OldMaster && r.FinalMaster != "" {
			if t := FirstAckOn(writes, r.FinalMaster, r.FaultAt); !t.IsZero() {
				r.FirstWriteNewMaster = &t
				s := t.Sub(r.FaultAt).Seconds()
				r.FailoverSecs = &s
			}
		}
	}
	r.AckBuckets = ackBuckets(writes, r.Start)
	if r.Datacenters != nil {
		r.AckedByDC, r.AckBucketsByDC = map[string]int{}, map[string][]int{}
		byDC := map[string][]Op{}
		for _, w := range writes {
			if w.Outcome == Ack {
				r.AckedByDC[w.DC]++
			}
			byDC[w.DC] = append(byDC[w.DC], w)
		}
		for dc, ops := range byDC {
			r.AckBucketsByDC[dc] = ackBuckets(ops, r.Start)
		}
	}
	fm := c.Env.DBByAddr(r.FinalMaster)
	if fm == nil {
		r.Errors = append(r.Errors, "no final master")
	} else {
		present, dups, err := readIDs(ctx, fm)
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
		} else {
			r.Lost, r.FailedPresent = LostWrites(writes, present)
			r.Duplicates = dups
			r.LostByDC = lostByDC(writes, r.Lost)
			if r.divergence && r.Failovers > 0 && r.FinalMaster != r.OldMaster {
				c.checkDivergence(ctx, r, writes, r.Lost, fm)
			}
		}
		if r.TailRows > 0 {
			var total int
			if err := fm.Server.Root().QueryRowContext(ctx, "SELECT COUNT(*), COUNT(DISTINCT v) FROM jepsen.big").Scan(&total, &r.TailRowsFound); err != nil {
				r.Errors = append(r.Errors, fmt.Sprintf("count the tail rows on %s: %v", fm.Name(), err))
			}
			r.TailDuplicateRows = total - r.TailRowsFound
		}
		if r.broken {
			r.ConvergeNote = "not checked: a deliberately broken deployment"
		} else {
			r.Converged, r.Checksums, r.ConvergeNote = converge(ctx, c.Env, fm)
		}
	}
	c.checkOneActor(r)
	tailLost := r.TailRows > 0 && r.TailRowsFound < r.TailRows && r.MasterSSHReachable
	r.Passed = len(r.Errors) == 0 && len(r.SplitBrain) == 0 && !r.FalseFailover && !r.Missed &&
		r.Converged && r.EpochError == "" && len(r.FailedPresent) == 0 &&
		(len(r.Lost) == 0 || !r.MasterSSHReachable && !r.ZeroLoss) && r.Divergence.ok(r.SemiSync) &&
		len(r.Duplicates) == 0 && r.TailDuplicateRows == 0 && !tailLost &&
		len(r.OneActor) == 0 && len(r.NemesisChecks) == 0
	c.logf("round %d: %s: passed=%v failovers=%d acked=%d lost=%d split=%d converged=%v duplicates=%d tail=%d/%d(+%d) one-actor=%d %s %s",
		r.Index, r.Nemesis, r.Passed, r.Failovers, r.Acked, len(r.Lost), len(r.SplitBrain), r.Converged,
		len(r.Duplicates), r.TailRowsFound, r.TailRows, r.TailDuplicateRows, len(r.OneActor),
		strings.Join(r.NemesisChecks, "; "), strings.Join(r.Errors, "; "))
}

// checkOneActor reads every server's general log and runs the one-actor
// checker over the spans of the managers' (and any other client's)
// changes; every span also goes on the timeline.
func (c *Campaign) checkOneActor(r *Round) {
	actors := map[string]string{c.Env.Net.ClientIP: "harness-client"}
	for _, m := range c.Env.Managers {
		actors[m.Net.IP] = m.ID
	}
	var spans []ActorSpan
	for _, d := range c.Env.DBs {
		if d.Server == nil {
			continue
		}
		recs, err := readGeneralLog(d)
		if err != nil {
			r.Errors = append(r.Errors, "one actor: "+err.Error())
		}
		spans = append(spans, ActorSpans(d.Name(), recs, testbed.MHAUser, actors)...)
	}
	r.ActorSpans = spans
	r.OneActor = CheckOneActor(spans)
	for _, s := range spans {
		r.Events = append(r.Events, Event{At: s.First, Kind: "actor", Detail: fmt.Sprintf("%s first change on %s: %s", s.Name(), s.Server, s.FirstStmt)},
			Event{At: s.Last, Kind: "actor", Detail: fmt.Sprintf("%s last change on %s (%d statements): %s", s.Name(), s.Server, s.N, s.LastStmt)})
	}
}

// stonithEvent parses a power switch log line: "<unix>.<nanos> <ip> <command>".
func stonithEvent(line string) Event {
	var sec, nsec int64
	var ip string
	fmt.Sscanf(strings.Replace(line, ".", " ", 1), "%d %d %s", &sec, &nsec, &ip)
	return Event{At: time.Unix(sec, nsec), Kind: "stonith", Detail: "power off " + ip}
}

func ackBuckets(ops []Op, start time.Time) []int {
	var b []int
	for _, o := range ops {
		if o.Outcome != Ack {
			continue
		}
		i := int(o.End.Sub(start) / (100 * time.Millisecond))
		if i < 0 {
			continue
		}
		for len(b) <= i {
			b = append(b, 0)
		}
		b[i]++
	}
	return b
}

// readIDs reads every workload id on d (as root over the socket): the ids
// of jepsen.w and the values of jepsen.nk, and the values present more
// than once in jepsen.nk.
func readIDs(ctx context.Context, d *DBHost) (map[int64]bool, []int64, error) {
	out := map[int64]bool{}
	var nk []int64
	for _, q := range []string{"SELECT id FROM jepsen.w", "SELECT v FROM jepsen.nk"} {
		rows, err := d.Server.Root().QueryContext(ctx, q)
		if err != nil {
			return nil, nil, fmt.Errorf("read written ids on %s (%s): %w", d.Name(), q, err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, nil, err
			}
			out[id] = true
			if strings.Contains(q, "nk") {
				nk = append(nk, id)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("read written ids on %s (%s): %w", d.Name(), q, err)
		}
	}
	return out, Duplicates(nk), nil
}

// converge waits until every running server replicates from the final
// master and caught up, then compares CHECKSUM TABLE of the tables. When
// only the checksums differ it reads them all again (catching up to the
// master's position again first) for up to 30 s: a client's write that
// its kernel retransmits after a partition healed (the client gave up
// long before) may reach the master between its checksum and the
// replicas' (seen 12 s after a 15 s datacenter cut healed).
func converge(ctx context.Context, env *Env, fm *DBHost) (bool, map[string]string, string) {
	deadline := time.Now().Add(30 * time.Second)
	for tries := 1; ; tries++ {
		ok, sums, note, differ := convergeOnce(ctx, env, fm)
		if !differ || time.Now().After(deadline) || ctx.Err() != nil {
			if tries > 1 {
				note = strings.TrimPrefix(note+fmt.Sprintf("; checksums read %d times", tries), "; ")
			}
			return ok, sums, note
		}
		pause(ctx, 500*time.Millisecond) // the next read, not a wait for a condition
	}
}

// convergeOnce is one pass of converge; differ: every server caught up
// and only the checksums differ.
func convergeOnce(ctx context.Context, env *Env, fm *DBHost) (ok bool, sums map[string]string, note string, differ bool) {
	sums = map[string]string{}
	var notes []string
	ok = true
	for _, d := range env.DBs {
		if d.Server == nil || !d.Server.Running() {
			notes = append(notes, d.Name()+" is down (not compared)")
			continue
		}
		if d != fm {
			err := poll(ctx, 30*time.Second, 50*time.Millisecond, func() error {
				st, err := d.Server.SlaveStatus(ctx)
				if err != nil {
					return err
				}
				if st == nil || st["Master_Host"] != fm.Net.IP {
					return fmt.Errorf("%s does not replicate from %s", d.Name(), fm.Name())
				}
				if st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" {
					return fmt.Errorf("%s: io=%s sql=%s %s %s", d.Name(), st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Last_IO_Error"], st["Last_SQL_Error"])
				}
				return nil
			})
			if err == nil {
				err = d.Server.WaitCaughtUp(ctx, fm.Server, 30*time.Second)
			}
			if err != nil {
				ok = false
				notes = append(notes, err.Error())
				continue
			}
		}
		rows, err := d.Server.QueryRows(ctx, "CHECKSUM TABLE jepsen.w, jepsen.probe, jepsen.nk, jepsen.big")
		if err != nil {
			ok = false
			notes = append(notes, err.Error())
			continue
		}
		var parts []string
		for _, row := range rows {
			parts = append(parts, row["Checksum"])
		}
		sums[d.Name()] = strings.Join(parts, "/")
	}
	var first string
	for _, s := range sums {
		if first == "" {
			first = s
		} else if s != first {
			differ = ok // every server caught up: only the data differ
			ok = false
			notes = append(notes, "checksums differ")
			break
		}
	}
	if len(sums) < 2 {
		notes = append(notes, fmt.Sprintf("only %d server(s) compared", len(sums)))
	}
	return ok, sums, strings.Join(notes, "; "), differ
}

// Run runs a whole campaign and writes the reports.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano() % 1000000
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	fmt.Fprintf(o.Log, "jepsen: seed %d, %d rounds (repeat with --seed %d)\n", o.Seed, o.Rounds, o.Seed)
	tmp := o.Dir == ""
	c, err := NewCampaign(ctx, o)
	if err != nil {
		return nil, err
	}
	defer func() {
		c.Close()
		if tmp {
			keep := false
			entries, _ := os.ReadDir(c.Opts.Dir)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), "round") {
					keep = true
				}
			}
			if !keep {
				os.RemoveAll(c.Opts.Dir)
			}
		}
	}()
	names := o.Nemeses
	if len(names) == 0 {
		for _, n := range Nemeses() {
			names = append(names, n.Name)
		}
	}
	rep := &Report{Seed: o.Seed, Rounds: o.Rounds, Started: time.Now(), Managers: c.Opts.Managers,
		PingInterval: c.Opts.PingInterval, WindowSecs: c.Env.window().Seconds()}
	rng := newRNG(o.Seed)
	for i, name := range Schedule(o.Seed, o.Rounds, names) {
		if ctx.Err() != nil {
			break
		}
		n, ok := NemesisByName(name)
		if !ok {
			return nil, fmt.Errorf("no nemesis %q", name)
		}
		rrng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		rep.RoundList = append(rep.RoundList, c.RunRound(ctx, i+1, n, rrng))
	}
	rep.finish()
	if err := rep.Write(o.OutDir); err != nil {
		return rep, err
	}
	return rep, ctx.Err()
}
