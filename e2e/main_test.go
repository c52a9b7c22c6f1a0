package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/manager/managertest"
	"github.com/mharaft/mharaft/testbed"
)

// The package's shared world, built once by TestMain.
var (
	mhanodeBin string
	mhactlBin  string
	db         *testbed.Cluster
	mc         *managertest.Cluster
	caFile     string       // CA of the managers' certificate (mhactl --cacert)
	httpc      *http.Client // trusts caFile
	openNode   = 2          // index of the node started with --metrics-open
	hookLog    string       // arguments of every IP hook call, one line each
)

func TestMain(m *testing.M) {
	if testbed.ListingOnly() {
		os.Exit(m.Run()) // go test -list: no world needed
	}
	if testing.Short() {
		// Every test here needs the world: none runs in the unit lane.
		flag.Set("test.run", "^$")
		os.Exit(m.Run())
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// run sets up the world, runs the tests and tears everything down; node
// logs are printed when something failed (or MHARAFT_TEST_SHOW_LOGS is set).
func run(m *testing.M) (code int, err error) {
	dir, err := os.MkdirTemp("", "mharaft-e2e-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	defer func() {
		if mc != nil {
			mc.Close()
			if code != 0 || err != nil || os.Getenv("MHARAFT_TEST_SHOW_LOGS") != "" {
				for i, n := range mc.Nodes {
					fmt.Fprintf(os.Stderr, "==== log of %s ====\n%s\n", n.ID, tail(mc.Log(i), 40000))
				}
			}
		}
		if db != nil {
			db.Close()
		}
	}()

	if err := build(dir); err != nil {
		return 1, err
	}
	built := time.Now()
	db, err = testbed.New(filepath.Join(dir, "db"), testbed.Options{N: 3})
	if err != nil {
		return 1, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := db.Master().Exec(ctx, "CREATE DATABASE test", "CREATE TABLE test.t1 (a INT PRIMARY KEY)", "INSERT INTO test.t1 VALUES (1)"); err != nil {
		return 1, err
	}
	if err := db.WaitCaughtUp(ctx, 20*time.Second); err != nil {
		return 1, err
	}
	// The IP hooks receive the passwords as arguments (MHA's interface):
	// they record them, so TestLogsRedactSecrets knows a logged command
	// line really carried a secret.
	hookLog = filepath.Join(dir, "hook.log")
	hook := filepath.Join(dir, "ip_hook.sh")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho \"$@\" >> "+hookLog+"\nexit 0\n"), 0o755); err != nil {
		return 1, err
	}
	conf, err := db.WriteAppConfig(filepath.Join(dir, "conf"), "ping_interval=1",
		"master_ip_failover_script="+hook, "master_ip_online_change_script="+hook)
	if err != nil {
		return 1, err
	}
	certDir := filepath.Join(dir, "tls")
	certs, err := testbed.WriteCerts(certDir)
	if err != nil {
		return 1, err
	}
	cert, key := certs.CertFile, certs.KeyFile
	caFile = certs.CAFile
	pool, err := api.LoadCertPool(caFile)
	if err != nil {
		return 1, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	httpc = &http.Client{Transport: tr, Timeout: 10 * time.Second}

	if err := os.MkdirAll(filepath.Join(dir, "managers"), 0o700); err != nil {
		return 1, err
	}
	mc, err = managertest.New(mhanodeBin, filepath.Join(dir, "managers"), 3, func(int) []string { return []string{conf} })
	if err != nil {
		return 1, err
	}
	for i, n := range mc.Nodes {
		n.ExtraArgs = []string{"--tls-cert", cert, "--tls-key", key, "--tls-ca", caFile}
		if i == openNode {
			n.ExtraArgs = append(n.ExtraArgs, "--metrics-open")
		}
	}
	if err := mc.StartAll(); err != nil {
		return 1, err
	}
	// Healthy and discovered: the tests start from a monitored cluster.
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if _, err := waitApp(wctx, func(a *api.AppStatus) bool {
		return a.Verdict == "Healthy" && a.Master == db.Master().Addr() && replicasOf(a, db.Master().Addr()) == 2
	}); err != nil {
		return 1, err
	}
	fmt.Fprintf(os.Stderr, "e2e setup: binaries built in %s, clusters healthy after %s\n",
		built.Sub(start).Round(time.Millisecond), time.Since(built).Round(time.Millisecond))
	return m.Run(), nil
}

// build compiles mhanode and mhactl into dir from the module root.
func build(dir string) error {
	if err := testbed.BuildBinaries(context.Background(), dir, "./cmd/mhanode", "./cmd/mhactl"); err != nil {
		return err
	}
	mhanodeBin, mhactlBin = filepath.Join(dir, "mhanode"), filepath.Join(dir, "mhactl")
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

// url is node i's API base URL (https).
func url(i int) string { return "https://" + mc.Nodes[i].HTTPAddr }

// allAddrs is every node's API address, comma separated (mhactl --addr).
func allAddrs() string {
	var a []string
	for _, n := range mc.Nodes {
		a = append(a, n.HTTPAddr)
	}
	return strings.Join(a, ",")
}

// nodeStatus reads GET /v1/status of node i with the token.
func nodeStatus(ctx context.Context, i int) (*api.Status, error) {
	c := &api.Client{Addrs: []string{url(i)}, Token: mc.Token, HTTP: httpc, ProbeTimeout: time.Second}
	return c.Status(ctx)
}

// leader polls until a running node names a running leader and returns
// the leader's index and a running follower's index.
func leader(t *testing.T) (li, fi int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		for i := range mc.Nodes {
			if !mc.Running(i) {
				continue
			}
			st, err := nodeStatus(ctx, i)
			if err != nil {
				continue
			}
			if li = mc.Index(st.Leader); li >= 0 && mc.Running(li) {
				for fi = range mc.Nodes {
					if fi != li && mc.Running(fi) {
						return li, fi
					}
				}
			}
		}
		if !pause(ctx, 50*time.Millisecond) {
			t.Fatalf("no raft leader among the running managers: %v", ctx.Err())
		}
	}
}

// waitApp polls the leader's view of app1 (the leader alone evaluates
// verdicts) until cond holds.
func waitApp(ctx context.Context, cond func(*api.AppStatus) bool) (*api.AppStatus, error) {
	last := "no answer"
	for {
		for i := range mc.Nodes {
			if !mc.Running(i) {
				continue
			}
			st, err := nodeStatus(ctx, i)
			if err != nil {
				last = err.Error()
				continue
			}
			if st.Leader != mc.Nodes[i].ID {
				continue
			}
			if a := st.App("app1"); a != nil {
				if cond(a) {
					return a, nil
				}
				b, _ := json.Marshal(a)
				last = string(b)
			}
		}
		if !pause(ctx, 100*time.Millisecond) {
			return nil, fmt.Errorf("wait for app1 on the leader: %w (last: %s)", ctx.Err(), last)
		}
	}
}

// pause waits d, or returns false when ctx ends first.
func pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// replicasOf counts the servers of a replicating (role replica) from master.
func replicasOf(a *api.AppStatus, master string) int {
	n := 0
	for _, s := range a.Servers {
		if s.Role == "replica" && s.ReplicatingFrom == master {
			n++
		}
	}
	return n
}

// result of one mhactl run.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// mhactl runs the built mhactl against addrs with the cluster's token and
// CA, as an operator's shell would; extra flags come first in args.
func mhactl(t *testing.T, addrs string, args ...string) result {
	t.Helper()
	return mhactlAs(t, addrs, mc.TokenFile, args...)
}

// mhactlAs is mhactl with another token file ("" for none).
func mhactlAs(t *testing.T, addrs, tokenFile string, args ...string) result {
	t.Helper()
	full := []string{"--addr", addrs, "--cacert", caFile}
	if tokenFile != "" {
		full = append(full, "--token-file", tokenFile)
	}
	full = append(full, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mhactlBin, full...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MHACTL_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run mhactl %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// request sends a raw HTTP request to node i; token "" sends no
// Authorization header. It returns the status and the body.
func request(t *testing.T, i int, method, path, token string, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url(i)+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, mc.Nodes[i].ID, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// apiError decodes the API's JSON error body.
func apiError(t *testing.T, body []byte) api.Error {
	t.Helper()
	var e api.Error
	if err := json.Unmarshal(body, &e); err != nil || e.Msg == "" {
		t.Fatalf("error body %q is not the API's JSON error {\"error\": ...}: %v", body, err)
	}
	return e
}

// scrape reads /metrics of node i with the token and parses it.
func scrape(t *testing.T, i int) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := request(t, i, "GET", "/metrics", mc.Token, "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics on %s: %d %s", mc.Nodes[i].ID, code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics of %s: %v", mc.Nodes[i].ID, err)
	}
	return fams
}

// series returns the metrics of family name whose labels include want.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	var out []*dto.Metric
	for _, m := range f.Metric {
		ok := true
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// value is a gauge's or counter's value.
func value(m *dto.Metric) float64 {
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return 0
}
