package jepsen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The datacenter nemeses (issue 16): a round with a layout (datacenter.go)
// cuts one whole datacenter, clients included, from the others. See doc.go.

// DCPartitionHold is the least time a datacenter stays cut: longer than
// detection plus a failover.
const DCPartitionHold = 15 * time.Second

// DCAfterFailover is how long a cut master's datacenter stays cut after
// the failover succeeded: its clients keep writing to the old master
// (divergent writes without semi-sync, blocked writes with it).
const DCAfterFailover = 4 * time.Second

// FallbackSemiSyncTimeout is rpl_semi_sync_master_timeout of the
// deliberately broken dc-partition-semisync-fallback: the master falls
// back to asynchronous replication a moment after its datacenter is cut.
const FallbackSemiSyncTimeout = 500 * time.Millisecond

func dcNemeses() []Nemesis {
	return []Nemesis{
		{Name: "dc-partition-master", ExpectFailover: true, Setup: dcMasterSetup(false, 0), Inject: dcPartitionMaster},
		{Name: "dc-partition-master-lossless", ExpectFailover: true, Setup: dcMasterSetup(true, 0), Inject: dcPartitionMaster},
		{Name: "dc-partition-other", MasterSSHReachable: true, Setup: dcOtherSetup, Inject: dcPartitionOther},
		{Name: "dc-partition-no-cross-dc", MaxHistory: RefusedHistoryBound, Setup: dcNoCrossSetup, Inject: dcPartitionNoCross},
	}
}

// brokenDCNemeses: a lossless round whose semi-sync falls back to
// asynchronous replication; the lossless checker must fail it.
func brokenDCNemeses() []Nemesis {
	return []Nemesis{
		{Name: "dc-partition-semisync-fallback", ExpectFailover: true, Setup: dcMasterSetup(true, FallbackSemiSyncTimeout), Inject: dcPartitionMaster},
	}
}

// dcLayout is the round's layout: Options.Layout, or 3dc and 2dc+tb in
// turn over the rounds of one nemesis.
func (r *Round) dcLayout(k int) string {
	if r.layoutOpt != "" {
		return r.layoutOpt
	}
	return Layouts[k%len(Layouts)]
}

// dcCommon is the setup of every datacenter round: the layout, and no
// shutdown_script (the power switch of a datacenter cut off is cut off
// too; a deployment whose switch stays reachable would fence the old
// master, which is the easy case). Failovers count only when they
// succeed (a refused attempt is not a false failover).
func (r *Round) dcCommon(s *RoundSetup, layout string) {
	s.Layout, s.NoShutdownScript = layout, true
	r.Layout = layout
	r.successOnly = true
}

// dcMasterSetup: semiSync turns the round lossless (every acknowledged
// write must survive the failover, whatever the old master's host);
// timeout > 0 overrides rpl_semi_sync_master_timeout.
func dcMasterSetup(semiSync bool, timeout time.Duration) func(r *Round, s *RoundSetup) {
	return func(r *Round, s *RoundSetup) {
		k := r.nth
		if semiSync {
			k++ // the lossless rounds start with the other layout: a short campaign gets both
		}
		r.dcCommon(s, r.dcLayout(k))
		s.SemiSync, s.SemiSyncTimeout = semiSync, timeout
		r.SemiSync, r.ZeroLoss = semiSync, semiSync
		r.divergence = true
	}
}

// dcOtherSetup: layouts in turn, the cut datacenter in turn (see
// dcPartitionOther), semi-sync in every other pair of rounds.
func dcOtherSetup(r *Round, s *RoundSetup) {
	r.dcCommon(s, r.dcLayout(r.nth))
	s.SemiSync = (r.nth/4)%2 == 1
	r.SemiSync = s.SemiSync
}

// dcNoCrossSetup: prevent_cross_dc_failover=1; the master's datacenter
// has no other DB host, so no failover may happen and nothing may be lost.
func dcNoCrossSetup(r *Round, s *RoundSetup) {
	r.dcCommon(s, r.dcLayout(r.nth))
	s.PreventCrossDC = true
	r.PreventCrossDC, r.ZeroLoss = true, true
}

// cutDC cuts datacenter dc (its hosts and its clients' address) from every
// other datacenter; the harness's own address (observer, prober, checks)
// stays connected to all.
func (r *Round) cutDC(dc string) error {
	l := r.env.Layout()
	if l == nil {
		return fmt.Errorf("cut datacenter %s: the round has no datacenter layout", dc)
	}
	in, inAddrs := r.env.DCNetHosts(dc), nonEmpty(l.Addr[dc])
	var out []*NetHost
	var outAddrs, others []string
	for _, d := range l.DCs {
		if d == dc {
			continue
		}
		others = append(others, d)
		out = append(out, r.env.DCNetHosts(d)...)
		outAddrs = append(outAddrs, nonEmpty(l.Addr[d])...)
	}
	start := time.Now()
	if err := r.env.Net.CutGroup(in, inAddrs, out, outAddrs); err != nil {
		return err
	}
	r.CutDC = dc
	what := strings.Join(l.Hosts(dc), " ")
	if l.Addr[dc] != "" {
		what += " and its clients (" + l.Addr[dc] + ")"
	}
	r.fault(fmt.Sprintf("datacenter %s (%s) cut from %s (rules in place after %s)", dc, what, strings.Join(others, ", "), time.Since(start).Round(time.Millisecond)))
	return nil
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

// dcPartitionMaster cuts the master's datacenter (the master, its
// manager, its clients) from the others. The others hold a majority of
// managers spanning two datacenters and replicas that lost the master: a
// failover is due. The cut lasts DCPartitionHold at least and
// DCAfterFailover after the failover succeeded, while the old master's
// clients go on writing to it: without semi-sync those writes are
// acknowledged and diverge (the divergence check lists and replays them);
// with it they wait for an acknowledgement that cannot come.
func dcPartitionMaster(ctx context.Context, r *Round) error {
	if err := r.cutDC(r.env.DCOf(r.master().Net.Name)); err != nil {
		return err
	}
	_, err := r.waitSuccessfulFailover(ctx, 90*time.Second)
	rest := DCPartitionHold - time.Since(r.FaultAt)
	if rest < DCAfterFailover {
		rest = DCAfterFailover
	}
	hold(ctx, rest)
	r.healNet()
	return err
}

// dcPartitionOther cuts a datacenter other than the master's (in turn over
// the rounds: dc2, then dc3; in 2dc+tb dc3 is the tie-breaker manager
// alone). The master keeps a majority of managers: no failover. Its
// clients and those of the remaining datacenters keep writing; the cut
// datacenter's clients fail. With semi-sync in 2dc+tb, cutting dc2 leaves
// the master without a semi-sync replica: its writes wait until the heal
// (no failover, nothing lost, unavailable).
func dcPartitionOther(ctx context.Context, r *Round) error {
	l := r.env.Layout()
	mdc := l.Of[r.master().Net.Name]
	var others []string
	for _, dc := range l.DCs {
		if dc != mdc {
			others = append(others, dc)
		}
	}
	if err := r.cutDC(others[(r.nth/2)%len(others)]); err != nil {
		return err
	}
	hold(ctx, DCPartitionHold)
	r.healNet()
	return nil
}

// dcPartitionNoCross cuts the master's datacenter under
// prevent_cross_dc_failover=1: the only candidates are in other
// datacenters, so every attempt must be refused (no successful failover,
// few history entries) for the whole cut; after the heal the old master
// is master again and nothing acknowledged is lost.
func dcPartitionNoCross(ctx context.Context, r *Round) error {
	if err := r.cutDC(r.env.DCOf(r.master().Net.Name)); err != nil {
		return err
	}
	hold(ctx, DCPartitionHold)
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	h, err := r.obs.API().History(hctx, "app1")
	cancel()
	r.healNet()
	if err != nil {
		return fmt.Errorf("dc-partition-no-cross-dc: read history: %w", err)
	}
	h = h[min(r.histBase, len(h)):]
	for _, e := range h {
		if e.Result == "success" {
			r.nemesisCheck("a failover to %s (another datacenter) succeeded at %s although prevent_cross_dc_failover=1", e.NewMaster, e.Finished.Format("15:04:05.000"))
		}
	}
	r.event("check", fmt.Sprintf("%d history entries while %s was cut (prevent_cross_dc_failover=1)", len(h), r.CutDC))
	return nil
}

// DivergenceCheck is what the divergence checker found in a round whose
// master's datacenter was cut and failed over: `mhactl reconcile --json`
// on the old master, then `--apply`, then `mhactl rejoin`.
type DivergenceCheck struct {
	Server string `json:"server"`
	// Skipped says why nothing was checked (mhactl has no reconcile
	// command): the old master is then stopped, out of the topology.
	Skipped      string `json:"skipped,omitempty"`
	File         string `json:"file,omitempty"`
	State        string `json:"state,omitempty"`
	Transactions int    `json:"transactions"`
	Rows         int    `json:"rows"`
	// Listed: lost acknowledged writes that the report lists; Unlisted:
	// those it does not (each fails the round).
	Listed   int     `json:"listed"`
	Unlisted []int64 `json:"unlisted,omitempty"`
	Applied  string  `json:"applied,omitempty"`
	Conflict string  `json:"conflict,omitempty"`
	// MissingAfterApply: acknowledged writes still missing on the final
	// master after `reconcile --apply` (each fails the round).
	MissingAfterApply []int64  `json:"missing_after_apply,omitempty"`
	Rejoin            string   `json:"rejoin,omitempty"`
	Errors            []string `json:"errors,omitempty"`
	// Notes are the problems of a lossless round's old master after the
	// round (divergence not recorded, rejoin refused): reported, not
	// failures (the round asserts zero loss).
	Notes []string `json:"notes,omitempty"`
}

// ReconcileReport is the JSON of `mhactl reconcile --json` (only the
// fields the checker reads are typed).
type ReconcileReport struct {
	App          string                 `json:"app"`
	Server       string                 `json:"server"`
	File         string                 `json:"file"`
	State        string                 `json:"state"`
	Transactions []ReconcileTransaction `json:"transactions"`
	Applied      json.RawMessage        `json:"applied,omitempty"`
	Conflict     json.RawMessage        `json:"conflict,omitempty"`
}

// ReconcileTransaction is one divergent transaction.
type ReconcileTransaction struct {
	GTID   string         `json:"gtid"`
	Binlog string         `json:"binlog"`
	Tables []string       `json:"tables"`
	Rows   []ReconcileRow `json:"rows"`
}

// ReconcileRow is one row event of a divergent transaction.
type ReconcileRow struct {
	Table   string   `json:"table"`
	Type    string   `json:"type"`
	Columns []string `json:"columns"`
	Values  []string `json:"values"`
}

// ListedIDs returns the workload ids the report's inserted rows carry:
// jepsen.w's id and jepsen.nk's v.
func (rp *ReconcileReport) ListedIDs() map[int64]bool {
	out := map[int64]bool{}
	for _, t := range rp.Transactions {
		for _, row := range t.Rows {
			if !strings.EqualFold(row.Type, "insert") {
				continue
			}
			col := ""
			switch strings.TrimPrefix(row.Table, "jepsen.") {
			case "w":
				col = "id"
			case "nk":
				col = "v"
			default:
				continue
			}
			for i, c := range row.Columns {
				if c == col && i < len(row.Values) {
					var id int64
					if _, err := fmt.Sscan(row.Values[i], &id); err == nil {
						out[id] = true
					}
				}
			}
		}
	}
	return out
}

// SplitListed splits lost ids into those listed and those not.
func SplitListed(lost []int64, listed map[int64]bool) (n int, unlisted []int64) {
	for _, id := range lost {
		if listed[id] {
			n++
		} else {
			unlisted = append(unlisted, id)
		}
	}
	sort.Slice(unlisted, func(i, j int) bool { return unlisted[i] < unlisted[j] })
	return n, unlisted
}

func rawString(m json.RawMessage) string {
	s := strings.TrimSpace(string(m))
	if s == "" || s == "null" || s == `""` {
		return ""
	}
	return strings.Trim(s, `"`)
}

// mhactlCluster runs mhactl against the round's managers with a bound.
func (e *Env) mhactlCluster(ctx context.Context, bin string, timeout time.Duration, args ...string) ([]byte, error) {
	var addrs []string
	for _, m := range e.Managers {
		addrs = append(addrs, m.APIAddr())
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	full := append([]string{"--addr", strings.Join(addrs, ","), "--token-file", e.tokenFile}, args...)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(cctx, bin, full...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("mhactl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()+" "+lastLine(stdout.String())))
	}
	return stdout.Bytes(), nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// hasReconcile reports whether mhactl has the reconcile command.
func hasReconcile(bin string) bool {
	out, err := exec.Command(bin, "reconcile", "--help").CombinedOutput()
	return err == nil && strings.Contains(string(out), "reconcile")
}

// checkDivergence runs the divergence check of a round whose master's
// datacenter was cut and failed over (see DivergenceCheck); lost are the
// acknowledged writes missing on the final master fm before it.
func (c *Campaign) checkDivergence(ctx context.Context, r *Round, writes []Op, lost []int64, fm *DBHost) {
	old := c.Env.DBByAddr(r.OldMaster)
	dv := &DivergenceCheck{Server: r.OldMaster}
	r.Divergence = dv
	// Without semi-sync the divergence flow is asserted: every problem
	// fails the round. With it, the round asserts zero loss; what happens
	// to the old master afterwards (it holds commits that waited for a
	// semi-sync acknowledgement) is reported as notes.
	fail := func(format string, args ...any) {
		if r.SemiSync {
			dv.Notes = append(dv.Notes, fmt.Sprintf(format, args...))
		} else {
			dv.Errors = append(dv.Errors, fmt.Sprintf(format, args...))
		}
	}
	detect := DivergenceDetectTimeout
	if r.SemiSync {
		detect = LosslessDetectTimeout
	}
	bin, err := c.Env.mhactl(ctx)
	if err != nil {
		fail("%v", err)
		return
	}
	if !hasReconcile(bin) {
		dv.Skipped = "mhactl has no reconcile command: divergence not checked; the old master is stopped (out of the topology)"
		if old != nil && old.Server != nil {
			old.Server.Stop()
		}
		return
	}
	run := func(apply bool) (*ReconcileReport, error) {
		args := []string{"reconcile", "--app", "app1", "--server", r.OldMaster, "--json"}
		name := "reconcile.json"
		if apply {
			args = append(args, "--apply")
			name = "reconcile-apply.json"
		}
		out, err := c.Env.mhactlCluster(ctx, bin, 3*time.Minute, args...)
		os.WriteFile(filepath.Join(r.Dir, name), out, 0o644)
		var rp ReconcileReport
		if jerr := json.Unmarshal(out, &rp); jerr != nil {
			if err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("mhactl %s: output is not the reconcile JSON: %w", strings.Join(args, " "), jerr)
		}
		return &rp, err
	}
	// The leader checks a former master once discovery sees it reachable
	// again: poll until it recorded the divergence.
	var rp *ReconcileReport
	var last error
	perr := poll(ctx, detect, time.Second, func() error {
		rp, last = run(false)
		if rp != nil && last == nil {
			return nil
		}
		return last
	})
	switch {
	case perr == nil:
	case r.SemiSync && last != nil && strings.Contains(last.Error(), "no divergence is recorded"):
		// Lossless: nothing acknowledged can be there; the old master may
		// hold nothing at all. Rejoin says.
		dv.State = "none recorded"
		dv.Notes = append(dv.Notes, fmt.Sprintf("no divergence recorded for %s within %s", r.OldMaster, detect))
		rp = nil
	default:
		fail("no divergence recorded for %s within %s: %v", r.OldMaster, detect, last)
		if old != nil && old.Server != nil {
			old.Server.Stop() // out of the topology: the convergence check is about the others
		}
		return
	}
	if rp == nil {
		// Nothing recorded: the old master holds the commits that waited
		// for a semi-sync acknowledgement and the leader could not read
		// them; a rejoin would wait on the same binlog. Leave it out.
		dv.Rejoin = "not tried: no divergence recorded"
		dv.Notes = append(dv.Notes, "rejoin not tried; the old master is stopped")
		if old != nil && old.Server != nil {
			old.Server.Stop()
		}
		return
	}
	dv.File, dv.State, dv.Transactions = rp.File, rp.State, len(rp.Transactions)
	for _, t := range rp.Transactions {
		dv.Rows += len(t.Rows)
	}
	dv.Listed, dv.Unlisted = SplitListed(lost, rp.ListedIDs())
	r.event("check", fmt.Sprintf("reconcile %s: %d divergent transactions (%d rows), %d of %d lost acknowledged writes listed", r.OldMaster, dv.Transactions, dv.Rows, dv.Listed, len(lost)))
	ap, err := run(true)
	if err != nil {
		fail("%v", err)
	}
	if ap != nil {
		dv.Applied, dv.Conflict = rawString(ap.Applied), rawString(ap.Conflict)
		if dv.State == "" {
			dv.State = ap.State
		}
	}
	present, dups, err := readIDs(ctx, fm)
	if err != nil {
		fail("%v", err)
	} else {
		dv.MissingAfterApply, _ = LostWrites(writes, present)
		if len(dups) > len(r.Duplicates) {
			r.Duplicates = dups // a replayed transaction applied twice
		}
	}
	r.event("check", fmt.Sprintf("reconcile --apply: applied %s, conflict %q; %d acknowledged writes still missing on %s", dv.Applied, dv.Conflict, len(dv.MissingAfterApply), fm.Name()))
	c.rejoin(ctx, r, bin, old, dv)
}

// rejoin runs `mhactl rejoin` on the old master; convergence then
// includes it.
func (c *Campaign) rejoin(ctx context.Context, r *Round, bin string, old *DBHost, dv *DivergenceCheck) {
	if old == nil {
		dv.Errors = append(dv.Errors, fmt.Sprintf("no old master %q", r.OldMaster))
		return
	}
	out, err := c.Env.mhactlCluster(ctx, bin, 3*time.Minute, "rejoin", "--app", "app1", "--host", old.Addr())
	dv.Rejoin = strings.TrimSpace(string(out))
	if err == nil {
		dv.Rejoin = "ok"
		if first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n"); first != "" && first != "{" {
			dv.Rejoin += ": " + first
		}
	} else {
		dv.Rejoin = "failed: " + err.Error()
		if r.SemiSync {
			// Reported, and the old master leaves the topology: the
			// convergence check is about the others.
			dv.Notes = append(dv.Notes, "rejoin "+dv.Rejoin+"; the old master is stopped")
			old.Server.Stop()
		} else {
			dv.Errors = append(dv.Errors, err.Error())
		}
	}
	r.event("check", "rejoin "+r.OldMaster+": "+dv.Rejoin)
}

// LosslessDetectTimeout bounds that wait in a lossless round, where the
// old master may hold nothing to record.
const LosslessDetectTimeout = 45 * time.Second

// DivergenceDetectTimeout bounds the wait for the leader to record a
// former master's divergence after the heal.
const DivergenceDetectTimeout = 60 * time.Second
