package jepsen

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"reflect"
	"testing"
	"time"
)

func TestNewLayout(t *testing.T) {
	for _, tc := range []struct {
		name          string
		dbs, managers int
		want          map[string]string
		clientDCs     []string
	}{
		{LayoutThreeDC, 3, 3, map[string]string{"db1": "dc1", "db2": "dc2", "db3": "dc3", "m1": "dc1", "m2": "dc2", "m3": "dc3"}, []string{"dc1", "dc2", "dc3"}},
		{LayoutThreeDC, 4, 3, map[string]string{"db1": "dc1", "db2": "dc2", "db3": "dc2", "db4": "dc3", "m1": "dc1", "m2": "dc2", "m3": "dc3"}, []string{"dc1", "dc2", "dc3"}},
		{LayoutThreeDC, 2, 5, map[string]string{"db1": "dc1", "db2": "dc2", "m1": "dc1", "m2": "dc2", "m3": "dc3", "m4": "dc1", "m5": "dc2"}, []string{"dc1", "dc2"}},
		{LayoutTieBreaker, 3, 3, map[string]string{"db1": "dc1", "db2": "dc2", "db3": "dc2", "m1": "dc1", "m2": "dc2", "m3": "dc3"}, []string{"dc1", "dc2"}},
		{LayoutTieBreaker, 3, 5, map[string]string{"db1": "dc1", "db2": "dc2", "db3": "dc2", "m1": "dc1", "m2": "dc2", "m3": "dc3", "m4": "dc1", "m5": "dc2"}, []string{"dc1", "dc2"}},
	} {
		l, err := NewLayout(tc.name, tc.dbs, tc.managers)
		if err != nil {
			t.Fatalf("%s %d/%d: %v", tc.name, tc.dbs, tc.managers, err)
		}
		if !reflect.DeepEqual(l.Of, tc.want) {
			t.Errorf("%s %d/%d: %v, want %v", tc.name, tc.dbs, tc.managers, l.Of, tc.want)
		}
		if got := l.ClientDCs(); !reflect.DeepEqual(got, tc.clientDCs) {
			t.Errorf("%s %d/%d: client datacenters %v, want %v", tc.name, tc.dbs, tc.managers, got, tc.clientDCs)
		}
	}
	if _, err := NewLayout("4dc", 3, 3); err == nil {
		t.Error("an unknown layout was accepted")
	}
}

// TestReconcileListedIDs reads the divergence report's JSON contract
// (mhactl reconcile --json): inserted jepsen.w ids and jepsen.nk values
// are listed; other tables, other row types and other columns are not.
func TestReconcileListedIDs(t *testing.T) {
	js := `{"app":"app1","server":"server1","epoch":2,"file":"/x/divergent.sql","state":"pending","transactions":[
	 {"gtid":"0-1-40","binlog":"mysql-bin.000001:1234","time":"2026-12-07T15:00:00Z","tables":["jepsen.w"],"sql":["INSERT ..."],
	  "rows":[{"table":"jepsen.w","type":"insert","columns":["id","writer","at"],"values":["101","0","2026-12-07 15:00:00"]},
	          {"table":"jepsen.w","type":"insert","columns":["id","writer","at"],"values":["102","2","x"]}]},
	 {"gtid":"0-1-41","binlog":"mysql-bin.000001:2000","time":"2026-12-07T15:00:01Z","tables":["jepsen.nk","jepsen.probe"],"sql":[],
	  "rows":[{"table":"jepsen.nk","type":"insert","columns":["v","writer","at"],"values":["103","1","x"]},
	          {"table":"jepsen.probe","type":"insert","columns":["id","srv"],"values":["104","server1"]},
	          {"table":"jepsen.w","type":"delete","columns":["id"],"values":["105"]}]}],
	 "applied":0,"conflict":null}`
	var rp ReconcileReport
	if err := json.Unmarshal([]byte(js), &rp); err != nil {
		t.Fatal(err)
	}
	got := rp.ListedIDs()
	want := map[int64]bool{101: true, 102: true, 103: true}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	n, unlisted := SplitListed([]int64{103, 101, 106, 104}, got)
	if n != 2 || !reflect.DeepEqual(unlisted, []int64{104, 106}) {
		t.Fatalf("SplitListed: %d listed, unlisted %v; want 2 and [104 106]", n, unlisted)
	}
	if rawString(rp.Conflict) != "" || rawString(rp.Applied) != "0" {
		t.Errorf("applied %q conflict %q", rawString(rp.Applied), rawString(rp.Conflict))
	}
}

func TestDivergenceVerdicts(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sb := []SplitBrain{{A: "server1", B: "server2", From: t0}, {A: "server2", B: "server3", From: t0}}
	rest, exp := splitExpected(sb, "server1")
	if len(rest) != 1 || rest[0].A != "server2" || len(exp) != 1 || exp[0].A != "server1" {
		t.Fatalf("splitExpected: rest %v expected %v", rest, exp)
	}
	for _, tc := range []struct {
		name     string
		d        *DivergenceCheck
		semiSync bool
		ok       bool
	}{
		{"not run", nil, false, true},
		{"skipped", &DivergenceCheck{Skipped: "no reconcile", Unlisted: []int64{1}}, false, true},
		{"all listed and replayed", &DivergenceCheck{Listed: 3}, false, true},
		{"unlisted", &DivergenceCheck{Listed: 2, Unlisted: []int64{7}}, false, false},
		{"missing after apply", &DivergenceCheck{Listed: 3, MissingAfterApply: []int64{7}}, false, false},
		{"rejoin failed", &DivergenceCheck{Errors: []string{"rejoin: holds what the new master lacks"}}, true, false},
	} {
		if got := tc.d.ok(tc.semiSync); got != tc.ok {
			t.Errorf("%s: ok %v, want %v", tc.name, got, tc.ok)
		}
	}
	writes := []Op{{ID: 1, DC: "dc1"}, {ID: 2, DC: "dc1"}, {ID: 3, DC: "dc2"}}
	if got := lostByDC(writes, []int64{1, 2, 3}); !reflect.DeepEqual(got, map[string]int{"dc1": 2, "dc2": 1}) {
		t.Errorf("lostByDC %v", got)
	}
}

// TestNetworkCutGroup checks the datacenter partition's mechanism: hosts
// a and c and the client address .241 form one datacenter, b another;
// the cut drops traffic between them (the client address included) and
// nothing else; the harness's own address still reaches everyone; Heal
// restores it all.
func TestNetworkCutGroup(t *testing.T) {
	needRoot(t)
	n, a, b := twoHosts(t, "7-", 11)
	c, err := n.AddHost("e", 3)
	if err != nil {
		t.Fatal(err)
	}
	client := fmt.Sprintf("10.213.%d.241", n.Subnet)
	if err := n.AddClientAddr(client); err != nil {
		t.Fatal(err)
	}
	lnA, lnB := startListener(t, a), startListener(t, b)
	fromClient := func(addr string) error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(client)}, Timeout: 500 * time.Millisecond}
		conn, err := d.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err
	}
	fromHarness := func(addr string) error { return waitTCP(t.Context(), addr, 300*time.Millisecond) }
	type path struct {
		name string
		dial func() error
		cut  bool // dropped while the groups are cut
	}
	paths := []path{
		{"a -> b", func() error { return nsDial(a, lnB) }, true},
		{"c -> b", func() error { return nsDial(c, lnB) }, true},
		{"c -> a (same group)", func() error { return nsDial(c, lnA) }, false},
		{"client -> a (same group)", func() error { return fromClient(lnA) }, false},
		{"client -> b", func() error { return fromClient(lnB) }, true},
		{"harness -> a", func() error { return fromHarness(lnA) }, false},
		{"harness -> b", func() error { return fromHarness(lnB) }, false},
	}
	check := func(when string, cut bool) {
		t.Helper()
		for _, p := range paths {
			err := p.dial()
			if want := cut && p.cut; (err != nil) != want {
				t.Errorf("%s: %s: err %v, want dropped=%v", when, p.name, err, want)
			}
		}
	}
	check("before the cut", false)
	if err := n.CutGroup([]*NetHost{a, c}, []string{client}, []*NetHost{b}, nil); err != nil {
		t.Fatal(err)
	}
	check("during the cut", true)
	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}
	check("after the heal", false)
}

// TestDelayRelay checks the cross-datacenter latency mechanism: with b's
// address delayed in a's namespace, a request/answer from a to b takes at
// least two one-way delays and reaches b from a's own address; without
// the rule it is fast; a cut still drops it.
func TestDelayRelay(t *testing.T) {
	needRoot(t)
	n, a, b := twoHosts(t, "6-", 13)
	const delay = 150 * time.Millisecond
	relay, err := StartRelay(a.NS, delay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(relay.Close)
	// An echo server in b that answers with the peer's address.
	cmd := exec.Command("ip", "netns", "exec", b.NS, "python3", "-c",
		fmt.Sprintf("import socket\ns=socket.socket()\ns.bind(('%s',9))\ns.listen(64)\nwhile True:\n  c,p=s.accept(); c.recv(10); c.sendall(p[0].encode()); c.close()", b.IP))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := waitTCP(t.Context(), b.IP+":9", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	ask := func() (string, time.Duration, error) {
		var conn net.Conn
		start := time.Now()
		if err := inNetNS(a.NS, func() error {
			var err error
			conn, err = net.DialTimeout("tcp", b.IP+":9", 2*time.Second)
			return err
		}); err != nil {
			return "", 0, err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := conn.Write([]byte("hi")); err != nil {
			return "", 0, err
		}
		buf := make([]byte, 64)
		k, err := io.ReadFull(conn, buf[:len(a.IP)])
		return string(buf[:k]), time.Since(start), err
	}
	peer, fast, err := ask()
	if err != nil || peer != a.IP {
		t.Fatalf("without the relay: peer %q err %v", peer, err)
	}
	if err := n.DelayTo(a, []string{b.IP}); err != nil {
		t.Fatal(err)
	}
	peer, slow, err := ask()
	if err != nil {
		t.Fatalf("through the relay: %v", err)
	}
	if peer != a.IP {
		t.Errorf("through the relay b saw %q, want a's own address %s", peer, a.IP)
	}
	if slow < 2*delay || slow > 2*delay+time.Second {
		t.Errorf("round trip through the relay %s, want about 2 x %s (without it %s)", slow, delay, fast)
	}
	t.Logf("round trip without the relay %s, through it %s", fast, slow)
	if err := n.Cut(a, b); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ask(); err == nil {
		t.Error("a reached b through the relay across a cut")
	}
	if err := n.NoDelay(a); err != nil {
		t.Fatal(err)
	}
}
