package jepsen

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is a campaign's result; its JSON form is out/jepsen/report.json.
type Report struct {
	Seed         int64     `json:"seed"`
	Rounds       int       `json:"rounds"`
	Started      time.Time `json:"started"`
	DurationSecs float64   `json:"duration_secs"`
	Managers     int       `json:"managers"`
	PingInterval int       `json:"ping_interval"`
	WindowSecs   float64   `json:"detection_window_secs"`

	LostAcknowledgedWrites LostSplit `json:"lost_acknowledged_writes"`
	SplitBrain             int       `json:"split_brain"`
	FalseFailovers         int       `json:"false_failovers"`
	MissedFailovers        int       `json:"missed_failovers"`
	UnconvergedRounds      int       `json:"unconverged_rounds"`
	EpochViolations        int       `json:"epoch_violations"`
	FailedButPresent       int       `json:"failed_but_present_writes"`
	OneActorViolations     int       `json:"one_actor_violations"`   // overlapping pairs of actor spans
	DuplicatedRows         int       `json:"duplicated_rows"`        // workload values and tail rows present twice
	LostTailRows           int       `json:"lost_tail_rows"`         // tail rows missing where the old master was reachable
	NemesisCheckFailures   int       `json:"nemesis_check_failures"` // failed assertions of the nemeses themselves
	// Datacenter rounds: lost acknowledged writes of the master's
	// datacenter cut without semi-sync, how many of them the divergence
	// report listed and how many were still missing after `reconcile
	// --apply`; rounds whose divergence check was skipped.
	DivergenceLost       int `json:"divergence_lost"`
	DivergenceListed     int `json:"divergence_listed"`
	DivergenceUnlisted   int `json:"divergence_unlisted"`
	MissingAfterApply    int `json:"missing_after_reconcile_apply"`
	DivergenceSkipped    int `json:"divergence_checks_skipped"`
	DivergenceErrorCount int `json:"divergence_check_errors"`
	// LosslessOldMasterNotes counts lossless rounds whose old master was
	// not brought back (DivergenceCheck.Notes).
	LosslessOldMasterNotes int   `json:"lossless_old_master_notes"`
	HarnessErrors          int   `json:"rounds_with_errors"`
	Acked                  int   `json:"acked_writes"`
	Failed                 int   `json:"failed_writes"`
	Unknown                int   `json:"unknown_writes"`
	FailedRounds           []int `json:"failed_rounds"`
	Passed                 bool  `json:"passed"`

	PerNemesis map[string]*NemesisStats `json:"per_nemesis"`
	RoundList  []*Round                 `json:"round_details"`

	Files map[string]string `json:"files"`
}

// LostSplit counts lost acknowledged writes by whether the old master's
// host stayed reachable over SSH (where the loss must be zero).
type LostSplit struct {
	ReachableOldMaster   int `json:"reachable_old_master"`
	UnreachableOldMaster int `json:"unreachable_old_master"`
	// ZeroLoss: lost in rounds that require none whatever the old
	// master's host (semi-sync lossless, prevent_cross_dc_failover); also
	// counted in the two above.
	ZeroLoss int `json:"zero_loss_rounds"`
}

// NemesisStats are the figures of one nemesis over the campaign.
type NemesisStats struct {
	Rounds             int     `json:"rounds"`
	Failovers          int     `json:"failovers"`
	FailoverMedianSecs float64 `json:"failover_median_secs"`
	FailoverP99Secs    float64 `json:"failover_p99_secs"`
	UnavailMedianSecs  float64 `json:"unavailable_median_secs"`
	UnavailP99Secs     float64 `json:"unavailable_p99_secs"`
	failover, unavail  []float64
}

// NewReport sums up rounds run outside Run (the benchmark does that).
func NewReport(seed int64, started time.Time, rounds []*Round) *Report {
	r := &Report{Seed: seed, Started: started, RoundList: rounds}
	r.finish()
	return r
}

// finish computes the totals.
func (r *Report) finish() {
	r.DurationSecs = time.Since(r.Started).Seconds()
	r.Rounds = len(r.RoundList)
	r.PerNemesis = map[string]*NemesisStats{}
	r.FailedRounds = []int{}
	for _, rd := range r.RoundList {
		if rd.MasterSSHReachable {
			r.LostAcknowledgedWrites.ReachableOldMaster += len(rd.Lost)
		} else {
			r.LostAcknowledgedWrites.UnreachableOldMaster += len(rd.Lost)
		}
		if rd.ZeroLoss {
			r.LostAcknowledgedWrites.ZeroLoss += len(rd.Lost)
		}
		if dv := rd.Divergence; dv != nil {
			if dv.Skipped != "" {
				r.DivergenceSkipped++
			} else {
				if !rd.SemiSync {
					r.DivergenceLost += len(rd.Lost)
					r.DivergenceListed += dv.Listed
					r.DivergenceUnlisted += len(dv.Unlisted)
				}
				r.MissingAfterApply += len(dv.MissingAfterApply)
				if len(dv.Errors) > 0 {
					r.DivergenceErrorCount++
				}
				if len(dv.Notes) > 0 {
					r.LosslessOldMasterNotes++
				}
			}
		}
		r.SplitBrain += len(rd.SplitBrain)
		if rd.FalseFailover {
			r.FalseFailovers++
		}
		if rd.Missed {
			r.MissedFailovers++
		}
		if !rd.Converged {
			r.UnconvergedRounds++
		}
		if rd.EpochError != "" {
			r.EpochViolations++
		}
		if len(rd.Errors) > 0 {
			r.HarnessErrors++
		}
		r.FailedButPresent += len(rd.FailedPresent)
		r.OneActorViolations += len(rd.OneActor)
		r.DuplicatedRows += len(rd.Duplicates) + rd.TailDuplicateRows
		if rd.MasterSSHReachable && rd.TailRowsFound < rd.TailRows {
			r.LostTailRows += rd.TailRows - rd.TailRowsFound
		}
		r.NemesisCheckFailures += len(rd.NemesisChecks)
		r.Acked += rd.Acked
		r.Failed += rd.Failed
		r.Unknown += rd.Unknown
		if !rd.Passed {
			r.FailedRounds = append(r.FailedRounds, rd.Index)
		}
		s := r.PerNemesis[rd.Nemesis]
		if s == nil {
			s = &NemesisStats{}
			r.PerNemesis[rd.Nemesis] = s
		}
		s.Rounds++
		s.Failovers += rd.Failovers
		if rd.FailoverSecs != nil {
			s.failover = append(s.failover, *rd.FailoverSecs)
		}
		if !rd.FaultAt.IsZero() {
			s.unavail = append(s.unavail, rd.UnavailableSecs)
		}
	}
	for _, s := range r.PerNemesis {
		s.FailoverMedianSecs = jsonNum(Quantile(s.failover, 0.5))
		s.FailoverP99Secs = jsonNum(Quantile(s.failover, 0.99))
		s.UnavailMedianSecs = jsonNum(Quantile(s.unavail, 0.5))
		s.UnavailP99Secs = jsonNum(Quantile(s.unavail, 0.99))
	}
	r.Passed = len(r.FailedRounds) == 0 && r.Rounds > 0
}

// jsonNum turns NaN (no data) into -1: JSON has no NaN.
func jsonNum(f float64) float64 {
	if math.IsNaN(f) {
		return -1
	}
	return math.Round(f*1000) / 1000
}

// Write writes report.json, report.txt and timeline.html into dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create report dir %s: %w", dir, err)
	}
	abs, _ := filepath.Abs(dir)
	r.Files = map[string]string{
		"json": filepath.Join(abs, "report.json"),
		"text": filepath.Join(abs, "report.txt"),
		"html": filepath.Join(abs, "timeline.html"),
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(r.Files["json"], append(b, '\n'), 0o644); err != nil {
		return err
	}
	var txt strings.Builder
	r.WriteText(&txt)
	if err := os.WriteFile(r.Files["text"], []byte(txt.String()), 0o644); err != nil {
		return err
	}
	var h strings.Builder
	r.WriteHTML(&h)
	return os.WriteFile(r.Files["html"], []byte(h.String()), 0o644)
}

// WriteText prints the summary.
func (r *Report) WriteText(w io.Writer) {
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "mharaft chaos campaign: %s\n", verdict)
	fmt.Fprintf(w, "seed %d, %d rounds, %.0f s, %d managers, ping_interval=%d (detection window %.0f s)\n",
		r.Seed, r.Rounds, r.DurationSecs, r.Managers, r.PingInterval, r.WindowSecs)
	fmt.Fprintf(w, "writes: %d acknowledged, %d failed, %d unknown\n", r.Acked, r.Failed, r.Unknown)
	fmt.Fprintf(w, "lost acknowledged writes: %d where the old master's host was reachable (must be 0), %d where it was not\n",
		r.LostAcknowledgedWrites.ReachableOldMaster, r.LostAcknowledgedWrites.UnreachableOldMaster)
	fmt.Fprintf(w, "datacenter rounds: lost acknowledged writes %d in zero-loss rounds (semi-sync lossless, prevent_cross_dc_failover: must be 0); without semi-sync %d lost, %d listed by reconcile, %d unlisted, %d missing after reconcile --apply; %d divergence checks skipped, %d with errors; %d lossless rounds whose old master was not rejoined\n",
		r.LostAcknowledgedWrites.ZeroLoss, r.DivergenceLost, r.DivergenceListed, r.DivergenceUnlisted, r.MissingAfterApply, r.DivergenceSkipped, r.DivergenceErrorCount, r.LosslessOldMasterNotes)
	fmt.Fprintf(w, "split brain: %d   false failovers: %d   missed failovers: %d   unconverged rounds: %d   epoch violations: %d   refused-but-present writes: %d   rounds with harness errors: %d\n",
		r.SplitBrain, r.FalseFailovers, r.MissedFailovers, r.UnconvergedRounds, r.EpochViolations, r.FailedButPresent, r.HarnessErrors)
	fmt.Fprintf(w, "one actor violations: %d   rows applied twice: %d   lost tail rows: %d   failed nemesis checks: %d\n",
		r.OneActorViolations, r.DuplicatedRows, r.LostTailRows, r.NemesisCheckFailures)
	if len(r.FailedRounds) > 0 {
		fmt.Fprintf(w, "failed rounds: %v\n", r.FailedRounds)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nnemesis\trounds\tfailovers\tfailover median s\tp99 s\tunavailable median s\tp99 s")
	for _, n := range sortedKeys(r.PerNemesis) {
		s := r.PerNemesis[n]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\n", n, s.Rounds, s.Failovers, secs(s.FailoverMedianSecs),
			secs(s.FailoverP99Secs), secs(s.UnavailMedianSecs), secs(s.UnavailP99Secs))
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, rd := range r.RoundList {
		status := "ok"
		if !rd.Passed {
			status = "FAIL"
		}
		fo := "-"
		if rd.FailoverSecs != nil {
			fo = fmt.Sprintf("%.2fs", *rd.FailoverSecs)
		}
		fmt.Fprintf(w, "round %3d %-4s %-28s gtid=%-5v failovers=%d failover=%s unavailable=%.2fs acked=%d lost=%d split=%d converged=%v %s %s\n",
			rd.Index, status, rd.Nemesis, rd.GTID, rd.Failovers, fo, rd.UnavailableSecs, rd.Acked, len(rd.Lost),
			len(rd.SplitBrain), rd.Converged, rd.ConvergeNote, strings.Join(rd.Errors, "; "))
		for _, sb := range rd.SplitBrain {
			fmt.Fprintf(w, "          split brain: %s\n", sb.Detail)
		}
		writeDCText(w, rd)
		if rd.EpochError != "" {
			fmt.Fprintf(w, "          epochs: %s\n", rd.EpochError)
		}
		if rd.TailRows > 0 {
			fmt.Fprintf(w, "          tail: %d rows written, %d distinct on the final master, %d extra copies\n", rd.TailRows, rd.TailRowsFound, rd.TailDuplicateRows)
		}
		if len(rd.Duplicates) > 0 {
			fmt.Fprintf(w, "          rows applied twice: %d workload values (first %v)\n", len(rd.Duplicates), rd.Duplicates[:min(5, len(rd.Duplicates))])
		}
		for i, v := range rd.OneActor {
			if i == 3 {
				fmt.Fprintf(w, "          one actor: ... %d more\n", len(rd.OneActor)-3)
				break
			}
			fmt.Fprintf(w, "          one actor: %s\n", v.Detail)
		}
		for _, c := range rd.NemesisChecks {
			fmt.Fprintf(w, "          nemesis check: %s\n", c)
		}
	}
	if r.Files != nil {
		fmt.Fprintf(w, "\nJSON: %s\ntext: %s\ntimeline: %s\n", r.Files["json"], r.Files["text"], r.Files["html"])
	}
}

// writeDCText prints a datacenter round's layout, cut, per-datacenter
// clients and divergence check.
func writeDCText(w io.Writer, rd *Round) {
	if rd.Datacenters == nil {
		return
	}
	fmt.Fprintf(w, "          datacenters: %s; latency %.0f ms one-way; cut %s; semi-sync=%v prevent_cross_dc_failover=%v zero-loss=%v\n",
		rd.Datacenters, rd.DCLatencyMs, orDash(rd.CutDC), rd.SemiSync, rd.PreventCrossDC, rd.ZeroLoss)
	var parts []string
	for _, dc := range sortedKeys(rd.AckedByDC) {
		parts = append(parts, fmt.Sprintf("%s %d acked/%d lost", orDash(dc), rd.AckedByDC[dc], rd.LostByDC[dc]))
	}
	fmt.Fprintf(w, "          clients by datacenter: %s\n", strings.Join(parts, ", "))
	if len(rd.DivergentWrites) > 0 {
		for _, sb := range rd.DivergentWrites {
			fmt.Fprintf(w, "          divergent writes (no semi-sync, no fencing across the cut): %s\n", sb.Detail)
		}
	}
	if dv := rd.Divergence; dv != nil {
		if dv.Skipped != "" {
			fmt.Fprintf(w, "          divergence: %s\n", dv.Skipped)
			return
		}
		fmt.Fprintf(w, "          divergence of %s: %d transactions, %d rows (file %s, state %s); lost writes listed %d, unlisted %d %v; after --apply (applied %s, conflict %q) missing %d %v; rejoin: %s\n",
			dv.Server, dv.Transactions, dv.Rows, orDash(dv.File), orDash(dv.State), dv.Listed, len(dv.Unlisted), firstIDs(dv.Unlisted),
			orDash(dv.Applied), dv.Conflict, len(dv.MissingAfterApply), firstIDs(dv.MissingAfterApply), orDash(lastLine(dv.Rejoin)))
		for _, e := range dv.Errors {
			fmt.Fprintf(w, "          divergence error: %s\n", e)
		}
		for _, e := range dv.Notes {
			fmt.Fprintf(w, "          old master after a lossless round (not a failure): %s\n", e)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstIDs(ids []int64) []int64 { return ids[:min(5, len(ids))] }

func secs(f float64) string {
	if f < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", f)
}

func sortedKeys[V any](m map[string]V) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

var eventColor = map[string]string{
	"fault": "#d62728", "heal": "#1f77b4", "verdict": "#ff7f0e", "lock": "#9467bd",
	"master": "#2ca02c", "stonith": "#000000", "leader": "#8c564b", "phase": "#bcbd22",
	"actor": "#e377c2", "tail": "#17becf", "check": "#7f7f7f",
}

func dcColor(k int) string {
	return []string{"#1f77b4", "#ff7f0e", "#9467bd", "#8c564b"}[k%4]
}

// WriteHTML draws one strip per round: acknowledged writes per 100 ms
// (green bars, red where none), and the events as coloured ticks.
func (r *Report) WriteHTML(w io.Writer) {
	const width, strip, left = 1100.0, 46.0, 250.0
	maxSecs := 1.0
	for _, rd := range r.RoundList {
		if d := rd.End.Sub(rd.Start).Seconds(); d > maxSecs {
			maxSecs = d
		}
	}
	scale := (width - left - 10) / maxSecs
	height := strip*float64(len(r.RoundList)) + 60
	fmt.Fprintf(w, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>mharaft chaos campaign seed %d</title></head><body style=\"font-family:sans-serif\">\n", r.Seed)
	fmt.Fprintf(w, "<h2>mharaft chaos campaign, seed %d: %d rounds, %s</h2>\n", r.Seed, r.Rounds, map[bool]string{true: "passed", false: "FAILED"}[r.Passed])
	fmt.Fprintf(w, "<p>Each strip is one round (time from cluster start). Green: acknowledged writes per 100 ms; red: none. Datacenter rounds: a pale red band while a datacenter is cut, and one thin row per datacenter's clients marking the 100 ms with an acknowledged write of theirs. Ticks: ")
	for _, k := range sortedKeys(eventColor) {
		fmt.Fprintf(w, "<span style=\"color:%s\">&#9646; %s</span> ", eventColor[k], k)
	}
	fmt.Fprintf(w, "</p>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-size=\"11\">\n", width, height)
	for s := 0.0; s <= maxSecs; s += 5 {
		x := left + s*scale
		fmt.Fprintf(w, "<line x1=\"%.1f\" y1=\"20\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#eee\"/><text x=\"%.1f\" y=\"14\">%.0fs</text>\n", x, x, height-30, x-6, s)
	}
	for i, rd := range r.RoundList {
		y := 24 + float64(i)*strip
		col := "#000"
		if !rd.Passed {
			col = "#d62728"
		}
		fmt.Fprintf(w, "<text x=\"4\" y=\"%.1f\" fill=\"%s\">%d %s%s</text>\n", y+18, col, rd.Index, html.EscapeString(rd.Nemesis), map[bool]string{true: " (FAIL)", false: ""}[!rd.Passed])
		faultBucket := -1
		if !rd.FaultAt.IsZero() {
			faultBucket = int(rd.FaultAt.Sub(rd.Start) / (100 * time.Millisecond))
		}
		end := int(rd.End.Sub(rd.Start) / (100 * time.Millisecond))
		for b := 0; b < end; b++ {
			n := 0
			if b < len(rd.AckBuckets) {
				n = rd.AckBuckets[b]
			}
			x := left + float64(b)*0.1*scale
			if n > 0 {
				h := math.Min(float64(n), 20)
				fmt.Fprintf(w, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" fill=\"#2ca02c\"/>\n", x, y+24-h, 0.1*scale, h)
			} else if faultBucket >= 0 && b >= faultBucket && b < len(rd.AckBuckets)+1 {
				fmt.Fprintf(w, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.2f\" height=\"3\" fill=\"#d62728\"/>\n", x, y+22, 0.1*scale)
			}
		}
		if rd.CutDC != "" && !rd.FaultAt.IsZero() && !rd.HealAt.IsZero() {
			x0 := left + rd.FaultAt.Sub(rd.Start).Seconds()*scale
			x1 := left + rd.HealAt.Sub(rd.Start).Seconds()*scale
			fmt.Fprintf(w, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"44\" fill=\"#d62728\" fill-opacity=\"0.08\"><title>%s cut from the other datacenters %s-%s</title></rect>\n",
				x0, y, math.Max(x1-x0, 1), rd.CutDC, rd.FaultAt.Format("15:04:05.000"), rd.HealAt.Format("15:04:05.000"))
			fmt.Fprintf(w, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#d62728\">%s cut</text>\n", x0+2, y+10, rd.CutDC)
		}
		// One thin row per datacenter's clients: a mark where they had
		// acknowledged writes in that 100 ms.
		for k, dc := range sortedKeys(rd.AckBucketsByDC) {
			yy := y + 37 + float64(k)*3
			fmt.Fprintf(w, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"7\" fill=\"%s\">%s</text>\n", left-22, yy+3, dcColor(k), html.EscapeString(dc))
			for b, n := range rd.AckBucketsByDC[dc] {
				if n > 0 {
					fmt.Fprintf(w, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.2f\" height=\"2.5\" fill=\"%s\"/>\n", left+float64(b)*0.1*scale, yy, 0.1*scale, dcColor(k))
				}
			}
		}
		for _, e := range rd.Events {
			if e.At.Before(rd.Start) || e.Kind == "phase" && !strings.Contains(e.Detail, "done") {
				continue
			}
			x := left + e.At.Sub(rd.Start).Seconds()*scale
			c := eventColor[e.Kind]
			if c == "" {
				c = "#777"
			}
			fmt.Fprintf(w, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"><title>%s %s: %s</title></line>\n",
				x, y+26, x, y+36, c, e.At.Format("15:04:05.000"), e.Kind, html.EscapeString(e.Detail))
		}
	}
	fmt.Fprintf(w, "</svg>\n<pre>\n")
	var txt strings.Builder
	r.WriteText(&txt)
	fmt.Fprint(w, html.EscapeString(txt.String()))
	fmt.Fprintf(w, "</pre></body></html>\n")
}
