// Command mhanode is the mharaft manager daemon: one per manager host, a
// member of the managers' Raft group. It watches the configured
// applications and fails over a dead master under the group's lock, and it
// keeps running (and watching the new master) after a failover.
//
//	mhanode --id m1 --data-dir /var/lib/mhanode --raft-addr 10.0.0.1:7000 \
//	  --http-addr 10.0.0.1:7080 --peers m1=10.0.0.1:7000,m2=10.0.0.2:7000,m3=10.0.0.3:7000 \
//	  --conf /etc/mha/app1.conf [--conf app2.conf] [--global-conf /etc/masterha_default.cnf] \
//	  --token-file /etc/mharaft/token [--datacenter dc1] [--gossip-addr HOST:PORT] [--log-level info] \
//	  [--tls-cert node.crt --tls-key node.key --tls-ca ca.crt] [--metrics-open] \
//	  [--detection fast|mha] [--rejoin]
//
// --rejoin starts a manager that joins an existing group instead of
// founding one (a new manager, or one removed with `mhactl members remove`
// and restarted): an empty data dir is not bootstrapped from --peers and
// the stored peers are not checked against --peers; run `mhactl members
// add ID RAFT_ADDR` once it runs. A removed manager that kept running needs
// no restart: `mhactl members add` alone brings it back.
//
// The log goes to standard error, or to manager_log when the configuration
// files set it (the same file in every one: one mhanode writes one log),
// created 0600 and reopened on SIGHUP (logrotate's postrotate: kill -HUP).
//
// --detection mha reproduces MHA's detection cadence (4 failed pings at
// ping_interval) as the baseline of the chaos benchmark; it is not for
// production.
//
// This command parses flags and wires package manager; the logic lives there.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/detector"
	"github.com/mharaft/mharaft/internal/secret"
	"github.com/mharaft/mharaft/manager"
	"github.com/mharaft/mharaft/metrics"
)

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1 // it ran and stopped on an error
	exitUsage   = 2 // bad flags, bad configuration: nothing was started
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("mhanode", flag.ContinueOnError)
	var (
		id         = fs.String("id", "", "this manager's ID, as named in --peers (required)")
		dataDir    = fs.String("data-dir", "", "directory for the Raft log and snapshots (required)")
		raftAddr   = fs.String("raft-addr", "", "HOST:PORT of the Raft transport (required)")
		httpAddr   = fs.String("http-addr", "", "HOST:PORT of the HTTP API (required)")
		peers      = fs.String("peers", "", "every manager as ID=HOST:PORT (Raft address), comma separated, this one included")
		globalConf = fs.String("global-conf", "", "MHA global configuration file (masterha_default.cnf)")
		tokenFile  = fs.String("token-file", "", "file holding the bearer token of the API and of forwarding (required)")
		acceptFile = fs.String("accept-token-file", "", "file of tokens (one per line) accepted besides --token-file's, never sent: the middle steps of a token rotation (docs/SECURITY.md)")
		dc         = fs.String("datacenter", "", "this manager's datacenter")
		gossipAddr = fs.String("gossip-addr", "", "HOST:PORT of the gossip ring (default: raft port + 1)")
		logLevel   = fs.String("log-level", "info", "debug, info, warn or error")
		logJSON    = fs.Bool("log-json", false, "log as JSON lines instead of text")
		confs      multi
	)
	// TLS and metrics.
	var (
		tlsCert     = fs.String("tls-cert", "", "PEM certificate: serve the API over HTTPS and secure the Raft transport with TLS (with --tls-key)")
		tlsKey      = fs.String("tls-key", "", "PEM private key of --tls-cert")
		tlsCA       = fs.String("tls-ca", "", "PEM CA that signs every manager's certificate (verifies the peers; default: system roots)")
		metricsOpen = fs.Bool("metrics-open", false, "serve GET /metrics without the token (for scrapers that cannot send one)")
	)
	detection := fs.String("detection", detector.ModeFast, "how the master is probed: fast (mharaft's detector), or mha: MHA's cadence "+
		"(one ping every ping_interval, unreachable after 4 failed pings), a benchmark baseline, not for production")
	clockOffset := fs.Duration("test-clock-offset", 0, "TEST ONLY (chaos tests): shift this manager's wall clock by this much (e.g. 45s or -45s) "+
		"in everything it stamps, to prove that no decision depends on managers' clocks agreeing; never set it in production")
	verdictDelay := fs.Duration("test-verdict-delay", 0, "TEST ONLY (safety tests): wait this long between an actionable verdict and taking "+
		"the failover lock, to prove that a lock taken on a verdict the state has moved past is refused; never set it in production")
	rejoin := fs.Bool("rejoin", false, "join an existing group instead of founding one (a new manager, or a removed one restarted): "+
		"do not bootstrap an empty data dir from --peers, do not check the stored peers; then run `mhactl members add ID RAFT_ADDR`")
	fs.Var(&confs, "conf", "application configuration file (app1.conf); repeat for more applications")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "mhanode: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	if _, err := detector.ParseMode(*detection); err != nil {
		fmt.Fprintln(os.Stderr, "mhanode: --detection:", err)
		return exitUsage
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "mhanode: --log-level %q: want debug, info, warn or error\n", *logLevel)
		return exitUsage
	}
	peerMap, err := parsePeers(*peers)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mhanode:", err)
		return exitUsage
	}
	if len(confs) == 0 {
		fmt.Fprintln(os.Stderr, "mhanode: at least one --conf application file is required")
		return exitUsage
	}
	var apps []*config.App
	for _, f := range confs {
		app, err := config.Load(f, *globalConf)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mhanode: configuration %s is not valid, nothing started:\n%v\n", f, err)
			return exitUsage
		}
		apps = append(apps, app)
	}
	token, err := api.ServerConfig{TokenFile: *tokenFile}.LoadToken()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mhanode: --token-file:", err)
		return exitUsage
	}
	var acceptTokens []string
	if *acceptFile != "" {
		if acceptTokens, err = secret.AcceptTokens(*acceptFile); err != nil {
			fmt.Fprintln(os.Stderr, "mhanode: --accept-token-file:", err)
			return exitUsage
		}
	}
	if *tlsKey != "" {
		if err := secret.File("TLS key", *tlsKey); err != nil {
			fmt.Fprintln(os.Stderr, "mhanode: --tls-key:", err)
			return exitUsage
		}
	}

	// The log: manager_log of the configuration files when set (0600,
	// reopened on SIGHUP for logrotate), else standard error. Errors
	// before this point go to standard error.
	logPath, err := managerLog(apps)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mhanode:", err)
		return exitUsage
	}
	var out io.Writer = os.Stderr
	var lf *logFile
	if logPath != "" {
		if lf, err = openLogFile(logPath); err != nil {
			fmt.Fprintln(os.Stderr, "mhanode:", err)
			return exitUsage
		}
		defer lf.Close()
		out = lf
		fmt.Fprintf(os.Stderr, "mhanode: logging to %s (manager_log); send SIGHUP to reopen it after rotation\n", logPath)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(out, hopts)
	if *logJSON {
		h = slog.NewJSONHandler(out, hopts)
	}
	log := slog.New(h)
	if *clockOffset != 0 {
		log.Warn("TEST ONLY: --test-clock-offset shifts this manager's clock", "offset", clockOffset.String())
	}
	if *verdictDelay != 0 {
		log.Warn("TEST ONLY: --test-verdict-delay delays every automatic failover lock", "delay", verdictDelay.String())
	}
	if lf != nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for range hup {
				if err := lf.Reopen(); err != nil {
					// The old file stays open: nothing is lost.
					log.Error("SIGHUP: cannot reopen the log file; still writing to the previous one", "err", err)
					continue
				}
				log.Info("SIGHUP: reopened the log file", "path", logPath)
			}
		}()
	}

	m, err := manager.New(manager.Config{
		ID: *id, DataDir: *dataDir, RaftAddr: *raftAddr, HTTPAddr: *httpAddr, GossipAddr: *gossipAddr,
		Datacenter: *dc, Peers: peerMap, Token: token, AcceptTokens: acceptTokens, Apps: apps, Logger: log, RaftLogOutput: out, LogLevel: *logLevel,
		Metrics: metrics.New(), MetricsOpen: *metricsOpen, TLSCert: *tlsCert, TLSKey: *tlsKey, TLSCAFile: *tlsCA,
		DetectionMode: *detection, TestClockOffset: *clockOffset, TestVerdictDelay: *verdictDelay, Rejoin: *rejoin,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "mhanode: cannot start:", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := m.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "mhanode:", err)
		return exitRuntime
	}
	return exitOK
}

// parsePeers reads "m1=host:port,m2=host:port".
func parsePeers(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, p := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("--peers: %q is not ID=HOST:PORT", p)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("--peers: %s is listed twice", id)
		}
		out[id] = addr
	}
	return out, nil
}
