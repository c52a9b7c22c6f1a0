package jepsen

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain removes the mhanode build the tests shared.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// mhanodeBin builds cmd/mhanode once for every test of the package.
func mhanodeBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mhj-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath, binErr = BuildMhanode(context.Background(), dir)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// needRoot skips the test under -short (the unit lane: it starts servers
// in network namespaces) and fails it when not root: the full run (`make
// test`, CI) must not pass without the chaos tests having run.
func needRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the chaos harness starts servers in network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the chaos harness needs root (network namespaces, iptables): run `sudo go test ./jepsen/` or `make test` as root, or `make test-unit` (-short) without it")
	}
}

// TestShortCampaign is the CI campaign: one round of each main nemesis,
// of each nemesis of issue 12 and two datacenter rounds of issue 16 (the
// master's datacenter cut without semi-sync, layout 3dc, and with it,
// layout 2dc+tb), against three real mhanode managers and three real
// mariadbd hosts.
func TestShortCampaign(t *testing.T) {
	needRoot(t)
	out := filepath.Join("..", "out", "jepsen-short")
	nemeses := []string{"kill-master", "pause-master-long", "isolate-master", "power-off-master", "pause-master-short",
		"cut-manager-from-master", "split-managers", "kill-leader-mid-failover",
		"leader-partition-mid-phase", "leader-pause-mid-apply", "clock-skew", "refused-failover",
		"dc-partition-master", "dc-partition-master-lossless"}
	var log bytes.Buffer
	start := time.Now()
	rep, err := Run(context.Background(), Options{Rounds: len(nemeses), Seed: 20261125, Nemeses: nemeses,
		OutDir: out, MhanodeBin: mhanodeBin(t), Log: &log})
	t.Log(log.String())
	if rep != nil {
		var txt bytes.Buffer
		rep.WriteText(&txt)
		t.Log(txt.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rounds in %s", rep.Rounds, time.Since(start).Round(time.Second))
	if rep.Rounds != len(nemeses) {
		t.Fatalf("ran %d rounds, want %d", rep.Rounds, len(nemeses))
	}
	if rep.LostAcknowledgedWrites.ReachableOldMaster != 0 {
		t.Errorf("%d acknowledged writes lost although the old master's host was reachable", rep.LostAcknowledgedWrites.ReachableOldMaster)
	}
	if rep.SplitBrain != 0 || rep.FalseFailovers != 0 || rep.UnconvergedRounds != 0 {
		t.Errorf("split brain %d, false failovers %d, unconverged rounds %d", rep.SplitBrain, rep.FalseFailovers, rep.UnconvergedRounds)
	}
	if rep.OneActorViolations != 0 || rep.DuplicatedRows != 0 || rep.LostTailRows != 0 || rep.NemesisCheckFailures != 0 {
		t.Errorf("one-actor violations %d, rows applied twice %d, lost tail rows %d, failed nemesis checks %d",
			rep.OneActorViolations, rep.DuplicatedRows, rep.LostTailRows, rep.NemesisCheckFailures)
	}
	if rep.LostAcknowledgedWrites.ZeroLoss != 0 || rep.DivergenceUnlisted != 0 || rep.MissingAfterApply != 0 || rep.DivergenceErrorCount != 0 {
		t.Errorf("datacenter rounds: %d acknowledged writes lost in lossless rounds, %d lost writes not listed by reconcile, %d missing after reconcile --apply, %d divergence checks with errors",
			rep.LostAcknowledgedWrites.ZeroLoss, rep.DivergenceUnlisted, rep.MissingAfterApply, rep.DivergenceErrorCount)
	}
	if rep.DivergenceSkipped != 0 || rep.DivergenceLost == 0 || rep.DivergenceListed != rep.DivergenceLost {
		t.Errorf("the asynchronous datacenter round lost %d acknowledged writes of the old master's clients, reconcile listed %d, %d checks skipped: want some lost, all listed, none skipped",
			rep.DivergenceLost, rep.DivergenceListed, rep.DivergenceSkipped)
	}
	for _, n := range nemeses {
		if rep.PerNemesis[n] == nil || rep.PerNemesis[n].Rounds == 0 {
			t.Errorf("nemesis %s did not run", n)
		}
	}
	if !rep.Passed {
		t.Errorf("campaign failed: rounds %v (see %s)", rep.FailedRounds, rep.Files["text"])
	}
}

// TestBrokenDetectionCaught runs a deliberately broken deployment: ONE
// manager (what MHA is) against a fault that cuts it and the replicas from
// a healthy master. With three managers the quorum keeps the master; alone,
// the manager fails over a master the clients still write to, and the
// false-failover checker must say so.
func TestBrokenDetectionCaught(t *testing.T) {
	needRoot(t)
	var log bytes.Buffer
	// Dir: the failed round's directory is kept, t.TempDir removes it.
	rep, err := Run(context.Background(), Options{Rounds: 1, Seed: 1, Nemeses: []string{"cut-master-backend"},
		Managers: 1, Dir: t.TempDir(), OutDir: t.TempDir(), MhanodeBin: mhanodeBin(t), Log: &log})
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	var txt bytes.Buffer
	rep.WriteText(&txt)
	t.Log(txt.String())
	if rep.FalseFailovers != 1 {
		t.Fatalf("false-failover checker reported %d false failovers for a single-manager cluster cut from a healthy master, want 1", rep.FalseFailovers)
	}
	if rep.Passed {
		t.Fatal("the campaign passed a broken build")
	}
}

// TestLosslessCheckCaught runs a deliberately broken lossless round:
// semi-sync with rpl_semi_sync_master_timeout=500ms, so the master falls
// back to asynchronous replication a moment after its datacenter is cut
// and its clients' writes are acknowledged again. The lossless checker
// must count them lost and fail the round although the old master's host
// was unreachable (where an asynchronous round may lose writes).
func TestLosslessCheckCaught(t *testing.T) {
	needRoot(t)
	var log bytes.Buffer
	rep, err := Run(context.Background(), Options{Rounds: 1, Seed: 1, Nemeses: []string{"dc-partition-semisync-fallback"},
		Dir: t.TempDir(), OutDir: t.TempDir(), MhanodeBin: mhanodeBin(t), Log: &log})
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	var txt bytes.Buffer
	rep.WriteText(&txt)
	t.Log(txt.String())
	rd := rep.RoundList[0]
	if !rd.ZeroLoss || rd.MasterSSHReachable {
		t.Fatalf("the round is not a lossless one with the old master unreachable (zero loss %v, reachable %v)", rd.ZeroLoss, rd.MasterSSHReachable)
	}
	if rep.LostAcknowledgedWrites.ZeroLoss == 0 || rd.LostByDC[rd.CutDC] == 0 {
		t.Fatalf("no acknowledged write of the cut datacenter %s lost (lost by datacenter %v): the fallback to asynchronous replication went unseen", rd.CutDC, rd.LostByDC)
	}
	if rep.Passed {
		t.Fatal("the campaign passed a lossless round that lost acknowledged writes")
	}
}

// TestTwoActorsCaught runs a deliberately broken deployment: while the
// cluster's leader applies a dead master's tail, the harness runs
// `mhactl failover --local` against the same servers from its own
// address. Two actors change the servers at once, and the one-actor
// checker must say so from the servers' general logs.
func TestTwoActorsCaught(t *testing.T) {
	needRoot(t)
	var log bytes.Buffer
	rep, err := Run(context.Background(), Options{Rounds: 1, Seed: 1, Nemeses: []string{"rogue-local-failover"},
		Dir: t.TempDir(), OutDir: t.TempDir(), MhanodeBin: mhanodeBin(t), TailMB: 16, Log: &log})
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	var txt bytes.Buffer
	rep.WriteText(&txt)
	t.Log(txt.String())
	rd := rep.RoundList[0]
	found := false
	for _, v := range rd.OneActor {
		if v.A.Actor == "harness-client" || v.B.Actor == "harness-client" {
			found = true
		}
	}
	if !found {
		t.Fatalf("one-actor checker found no overlap with the rogue mhactl (violations %d, spans %+v)", len(rd.OneActor), rd.ActorSpans)
	}
	if rep.Passed {
		t.Fatal("the campaign passed a deployment where two actors changed the servers at once")
	}
}

// TestNetworkCutAndHeal checks the harness's own partitions: a cut drops
// traffic between two hosts and nothing else, heal restores it, Close
// leaves no namespace behind.
func TestNetworkCutAndHeal(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	n, a, b := twoHosts(t, "9-", 7)
	// A listener inside b: the harness's client reaches it, and so does a.
	ln := startListener(t, b)
	reach := func(from *NetHost) bool {
		if from == nil {
			return waitTCP(ctx, ln, 300*time.Millisecond) == nil
		}
		return nsDial(from, ln) == nil
	}
	if !reach(nil) || !reach(a) {
		t.Fatal("hosts do not reach each other before the cut")
	}
	if err := n.Cut(a, b); err != nil {
		t.Fatal(err)
	}
	if reach(a) {
		t.Fatal("a still reaches b after the cut")
	}
	if !reach(nil) {
		t.Fatal("the cut between a and b also cut the harness from b")
	}
	if err := n.Isolate(b); err != nil {
		t.Fatal(err)
	}
	if reach(nil) {
		t.Fatal("the harness reaches an isolated host")
	}
	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}
	if !reach(nil) || !reach(a) {
		t.Fatal("heal did not restore traffic")
	}
	n.Close()
	if out, _ := runOut("ip", "netns", "list"); bytes.Contains(out, []byte(n.Prefix)) {
		t.Fatalf("namespaces of %s left after Close:\n%s", n.Prefix, out)
	}
}

// twoHosts is a network of its own (prefix suffix, subnet from
// freeSubnet(k)) with hosts a and b, closed when the test ends.
func twoHosts(t *testing.T, suffix string, k int) (n *Network, a, b *NetHost) {
	t.Helper()
	n, err := NewNetwork(RunPrefix()[:len(RunPrefix())-1]+suffix, freeSubnet(k))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	if a, err = n.AddHost("a", 1); err != nil {
		t.Fatal(err)
	}
	if b, err = n.AddHost("b", 2); err != nil {
		t.Fatal(err)
	}
	return n, a, b
}

// TestNetworkPowerOff checks power-off-master's mechanism: while b is
// powered off a plain connect to it fails with "no route to host" (ARP
// gave up) within a few retransmits, for a host and for the harness, while
// b's listener keeps running; Heal brings it back and restores the
// kernel's ARP timing.
func TestNetworkPowerOff(t *testing.T) {
	needRoot(t)
	n, a, b := twoHosts(t, "8-", 9)
	ln := startListener(t, b)
	if err := nsDial(a, ln); err != nil {
		t.Fatalf("before the power-off: %v", err)
	}
	if err := n.PowerOff(b); err != nil {
		t.Fatal(err)
	}
	msg, took := DialFrom(a.NS, b.IP, 9, 5*time.Second)
	if !strings.Contains(strings.ToLower(msg), "no route to host") {
		t.Fatalf("connect from a to powered-off b said %q after %s, want no route to host", msg, took)
	}
	if took > 4*PowerOffARPRetrans+time.Second {
		t.Errorf("no route to host after %s, want about 3 ARP probes of %s", took, PowerOffARPRetrans)
	}
	if c, err := net.DialTimeout("tcp", ln, 2*time.Second); err == nil || !errors.Is(err, syscall.EHOSTUNREACH) {
		if c != nil {
			c.Close()
		}
		t.Errorf("the harness's connect to powered-off b: %v, want no route to host", err)
	}
	if out, err := runOut("ip", "netns", "exec", b.NS, "ss", "-ltn"); err != nil || !strings.Contains(string(out), b.IP+":9") {
		t.Errorf("b's listener is gone while powered off (err %v):\n%s", err, out)
	}
	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := nsDial(a, ln); err != nil {
		t.Fatalf("after the heal: %v", err)
	}
	out, err := runOut("ip", "netns", "exec", a.NS, "cat", "/proc/sys/net/ipv4/neigh/eth0/retrans_time_ms")
	if err != nil || strings.TrimSpace(string(out)) != "1000" {
		t.Errorf("ARP retransmit time of a after the heal: %q (%v), want the kernel's 1000", out, err)
	}
}
