package manager_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/consensus"
	"github.com/mharaft/mharaft/manager/managertest"
)

// The intruder tests start three real mhanode processes as the README
// shows (the same command lines, no database needed: the application's
// servers are unreachable) and send each of them a forged AppendEntries
// (a term far above the cluster's, one no-op entry) with hashicorp/raft's
// own NetworkTransport, as an attacker on the network would. Every
// manager must drop the connection before raft decodes the RPC, log who
// tried, and keep its leader and term.
//
// MHARAFT_TEST_MHANODE_BIN runs them against another mhanode binary (an
// older one, to show that it accepted the forged RPC).

// intruderBin is the mhanode under test.
func intruderBin(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("MHARAFT_TEST_MHANODE_BIN"); b != "" {
		return b
	}
	return mhanodeBinary(t)
}

// unreachableConf writes an application whose servers nobody listens on.
func unreachableConf(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "app1.conf")
	conf := "[server default]\nuser=mha\npassword=secret-pw\nping_interval=1\n\n[server1]\nhostname=127.0.0.1\nport=9\n\n[server2]\nhostname=127.0.0.1\nport=7\n"
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// raftView is one manager's (leader, term) through its API.
type raftView struct {
	leader string
	term   uint64
}

// intruderCluster is three managers and how to read their status.
type intruderCluster struct {
	t    *testing.T
	mc   *managertest.Cluster
	http *http.Client
	tls  bool
}

// startIntruderCluster starts three managers; prepare (when set) runs
// once the ports are chosen, before the processes start.
func startIntruderCluster(t *testing.T, extraArgs func(i int) []string, httpClient *http.Client, prepare func(*managertest.Cluster)) *intruderCluster {
	t.Helper()
	dir := t.TempDir()
	conf := unreachableConf(t, dir)
	mc, err := managertest.New(intruderBin(t), dir, 3, func(int) []string { return []string{conf} })
	if err != nil {
		t.Fatal(err)
	}
	ic := &intruderCluster{t: t, mc: mc, http: httpClient, tls: extraArgs != nil}
	for i, n := range mc.Nodes {
		if extraArgs != nil {
			n.ExtraArgs = extraArgs(i)
		}
	}
	t.Cleanup(func() {
		mc.Close()
		if t.Failed() || os.Getenv("MHARAFT_TEST_SHOW_LOGS") != "" {
			for i, n := range mc.Nodes {
				t.Logf("==== log of %s ====\n%s", n.ID, tail(mc.Log(i), 20000))
			}
		}
	})
	if prepare != nil {
		prepare(mc)
	}
	if err := mc.StartAll(); err != nil {
		t.Fatal(err)
	}
	return ic
}

func (ic *intruderCluster) client(i int) *api.Client {
	return &api.Client{Addrs: []string{api.BaseURL(ic.mc.Nodes[i].HTTPAddr, ic.tls)}, Token: ic.mc.Token, HTTP: ic.http, ProbeTimeout: 500 * time.Millisecond}
}

// views reads every manager's (leader, term); ok is false when one does
// not answer or knows no leader.
func (ic *intruderCluster) views() ([]raftView, bool, error) {
	var out []raftView
	for i := range ic.mc.Nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := ic.client(i).Status(ctx)
		cancel()
		if err != nil {
			return nil, false, err
		}
		if st.Leader == "" {
			return nil, false, nil
		}
		out = append(out, raftView{st.Leader, st.Term})
	}
	return out, true, nil
}

// stable waits until the three managers agree on a leader and a term.
func (ic *intruderCluster) stable() []raftView {
	ic.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		v, ok, err := ic.views()
		if err != nil {
			last = err
		}
		if ok && v[0] == v[1] && v[1] == v[2] {
			return v
		}
		time.Sleep(100 * time.Millisecond)
	}
	ic.t.Fatalf("the managers do not agree on a leader and a term within 30s (last error: %v)", last)
	return nil
}

// unchanged checks for 2 s that every manager keeps its leader and term.
func (ic *intruderCluster) unchanged(before []raftView, what string) {
	ic.t.Helper()
	end := time.Now().Add(2 * time.Second)
	for time.Now().Before(end) {
		after, ok, err := ic.views()
		if err != nil || !ok {
			ic.t.Fatalf("%s: a manager lost its leader or stopped answering: %v", what, err)
		}
		for i := range before {
			if after[i] != before[i] {
				ic.t.Fatalf("%s: %s went from leader %s term %d to leader %s term %d", what, ic.mc.Nodes[i].ID,
					before[i].leader, before[i].term, after[i].leader, after[i].term)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// forge sends every manager a forged AppendEntries through trans and
// returns the intruder's errors (nil where a manager answered).
func (ic *intruderCluster) forge(trans *raft.NetworkTransport, term uint64) []error {
	var errs []error
	for _, n := range ic.mc.Nodes {
		req := &raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("intruder"), Addr: []byte(trans.LocalAddr())},
			Term:      term + 100,
			Entries:   []*raft.Log{{Index: 1, Term: term + 100, Type: raft.LogNoop}},
		}
		var resp raft.AppendEntriesResponse
		err := trans.AppendEntries(raft.ServerID(n.ID), raft.ServerAddress(n.RaftAddr), req, &resp)
		if err == nil {
			ic.t.Logf("%s answered the forged AppendEntries: term %d success %v", n.ID, resp.Term, resp.Success)
		}
		errs = append(errs, err)
	}
	return errs
}

// attack runs one intruder against every manager and checks the outcome.
func (ic *intruderCluster) attack(name string, trans *raft.NetworkTransport, wantLog string) {
	ic.t.Helper()
	before := ic.stable()
	errs := ic.forge(trans, before[0].term)
	for i, err := range errs {
		if err == nil {
			ic.t.Errorf("%s: %s accepted the forged AppendEntries", name, ic.mc.Nodes[i].ID)
		}
	}
	ic.unchanged(before, name)
	for i, n := range ic.mc.Nodes {
		log := ic.mc.Log(i)
		if !strings.Contains(log, "refused a raft connection") || !strings.Contains(log, wantLog) {
			ic.t.Errorf("%s: %s did not log the refused intruder with %q", name, n.ID, wantLog)
		}
		if strings.Contains(log, ic.mc.Token) {
			ic.t.Errorf("%s: %s logged the token", name, n.ID)
		}
	}
}

func intruderTransport(t *testing.T, layer raft.StreamLayer) *raft.NetworkTransport {
	t.Helper()
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: layer, MaxPool: 1, Timeout: 3 * time.Second, Logger: hclog.NewNullLogger()})
	t.Cleanup(func() { trans.Close() })
	return trans
}

// TestIntruderNoTLS: managers started as the README shows (no TLS) refuse
// a forged AppendEntries from a plain raft client and from one that runs
// the handshake with a wrong token; leader and term stay.
func TestIntruderNoTLS(t *testing.T) {
	ic := startIntruderCluster(t, nil, &http.Client{}, nil)

	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 3*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	ic.attack("raft client without the handshake", plain, "did not start the token handshake")

	wrong, err := consensus.NewStreamLayer("127.0.0.1:0", nil, []string{"a-wrong-token-0123456789"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ic.attack("raft client with a wrong token", intruderTransport(t, wrong), "does not know the cluster token")
}

// TestIntruderTLS: a CA and certificates made with `mhactl tls`, three
// managers started with them (--tls-*), `mhactl status --cacert` works;
// an intruder with the right token but a certificate of another CA, and
// one without TLS, are refused; leader and term stay.
func TestIntruderTLS(t *testing.T) {
	dir := t.TempDir()
	mhactl := mhactlBinary(t)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(mhactl, args...)
		cmd.Env = append(os.Environ(), "MHACTL_ADDR=", "MHACTL_TOKEN_FILE=", "MHACTL_CACERT=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mhactl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	certs, other := filepath.Join(dir, "certs"), filepath.Join(dir, "other")
	os.MkdirAll(certs, 0o700)
	os.MkdirAll(other, 0o700)
	run("tls", "ca", "create", "--dir", certs)
	run("tls", "ca", "create", "--dir", other, "--name", "someone else's CA")
	ca, caKey := filepath.Join(certs, "ca.pem"), filepath.Join(certs, "ca-key.pem")
	run("tls", "cert", "create", "--ca-cert", filepath.Join(other, "ca.pem"), "--ca-key", filepath.Join(other, "ca-key.pem"),
		"--name", "intruder", "--dir", other, "--addr", "127.0.0.1")

	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(ca)
	pool.AppendCertsFromPEM(caPEM)
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}

	ic := startIntruderCluster(t, func(i int) []string {
		id := fmt.Sprintf("m%d", i+1)
		return []string{"--tls-cert", filepath.Join(certs, id+".pem"), "--tls-key", filepath.Join(certs, id+"-key.pem"), "--tls-ca", ca}
	}, httpClient, func(mc *managertest.Cluster) {
		for _, n := range mc.Nodes {
			run("tls", "cert", "create", "--ca-cert", ca, "--ca-key", caKey, "--name", n.ID, "--dir", certs, "--addr", n.HTTPAddr+","+n.RaftAddr)
		}
	})
	ic.stable()
	out := run("status", "--addr", ic.mc.Nodes[0].HTTPAddr, "--token-file", ic.mc.TokenFile, "--cacert", ca)
	if !strings.Contains(out, "m1") {
		t.Fatalf("mhactl status --cacert:\n%s", out)
	}

	pair, err := tls.LoadX509KeyPair(filepath.Join(other, "intruder.pem"), filepath.Join(other, "intruder-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	foreign := &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	layer, err := consensus.NewStreamLayer("127.0.0.1:0", nil, []string{ic.mc.Token}, foreign, nil)
	if err != nil {
		t.Fatal(err)
	}
	ic.attack("right token, certificate of another CA", intruderTransport(t, layer), "TLS handshake")

	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 3*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	ic.attack("raft client without TLS", plain, "TLS handshake")
}
