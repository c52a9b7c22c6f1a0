// Command mhanode is the mharaft manager daemon: one per manager host, a
// member of the managers' Raft group. It watches the configured
// applications and fails over a dead master under the group's lock, and it
// keeps running (and watching the new master) after a failover.
//
//	mhanode --id m1 --data-dir /var/lib/mharaft/raft --raft-addr 10.0.0.1:7000 \
//	  --http-addr 10.0.0.1:7080 --peers m1=10.0.0.1:7000,m2=10.0.0.2:7000,m3=10.0.0.3:7000 \
//	  --conf /etc/mha/app1.conf [--conf app2.conf] [--global-conf /etc/masterha_default.cnf] \
//	  --token-file /etc/mharaft/token [--datacenter dc1] [--gossip-addr HOST:PORT] [--log-level info] \
//	  [--tls-cert node.crt --tls-key node.key --tls-ca ca.crt] [--metrics-open] \
//	  [--detection fast|mha] [--rejoin] [--flags-file /etc/mharaft/mhanode.flags]
//	mhanode version
//
// --flags-file reads the flags not given on the command line from a file,
// one `name = value` per line (internal/cli: ParseFlagsFile), so that the
// systemd unit of dist/ stays one line: the command line wins over the
// file. Go's single-dash spelling (-id m1) is still read as --id m1.
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
// Exit status: 0 stopped by SIGINT/SIGTERM (and --help, version), 1 stopped
// on an error, 2 bad flags or configuration, nothing was started.
//
// This command parses flags (cobra, like mhactl) and wires package manager;
// the logic lives there.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/detector"
	"github.com/mharaft/mharaft/internal/cli"
	"github.com/mharaft/mharaft/internal/secret"
	"github.com/mharaft/mharaft/manager"
	"github.com/mharaft/mharaft/metrics"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1 // it ran and stopped on an error
	exitUsage   = 2 // bad flags, bad configuration: nothing was started
)

const long = `mhanode is the mharaft manager daemon: one per manager host, a member of the
managers' Raft group. It watches the configured applications, fails over a dead
master under the group's lock, and keeps watching the new master afterwards.

Flags come from the command line and from --flags-file FILE: one flag per line
as "name = value" (the long name without dashes, the rest of the line is the
value, no quoting), blank lines and lines starting with # ignored, one line per
value of --conf. A flag given on the command line wins over the file.

  # /etc/mharaft/mhanode.flags
  id = m1
  data-dir = /var/lib/mharaft/raft
  raft-addr = 10.0.0.1:7000
  http-addr = 10.0.0.1:7080
  peers = m1=10.0.0.1:7000,m2=10.0.0.2:7000,m3=10.0.0.3:7000
  conf = /etc/mharaft/app1.conf
  token-file = /etc/mharaft/token

The log goes to standard error, or to manager_log when the configuration files
set it (reopened on SIGHUP). Exit status: 0 stopped by SIGINT/SIGTERM, 1 stopped
on an error, 2 bad flags or configuration (nothing was started).`

// options are mhanode's flags.
type options struct {
	id, dataDir, raftAddr, httpAddr, peers, globalConf string
	tokenFile, acceptFile, dc, gossipAddr, logLevel    string
	logJSON                                            bool
	confs                                              []string
	tlsCert, tlsKey, tlsCA                             string
	metricsOpen                                        bool
	detection                                          string
	clockOffset, verdictDelay                          time.Duration
	rejoin                                             bool
	raftMultiplier                                     int
	flagsFile                                          string
	cpuProfile                                         string
}

// register defines the flags on fs, with the names, defaults and meaning
// they had when mhanode used package flag (tests, jepsen and operators'
// units pass them).
func (o *options) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.id, "id", "", "this manager's ID, as named in --peers (required)")
	fs.StringVar(&o.dataDir, "data-dir", "", "directory for the Raft log and snapshots (required)")
	fs.StringVar(&o.raftAddr, "raft-addr", "", "HOST:PORT of the Raft transport (required)")
	fs.StringVar(&o.httpAddr, "http-addr", "", "HOST:PORT of the HTTP API (required)")
	fs.StringVar(&o.peers, "peers", "", "every manager as ID=HOST:PORT (Raft address), comma separated, this one included")
	fs.StringVar(&o.globalConf, "global-conf", "", "MHA global configuration file (masterha_default.cnf)")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the bearer token of the API and of forwarding (required)")
	fs.StringVar(&o.acceptFile, "accept-token-file", "", "file of tokens (one per line) accepted besides --token-file's, never sent: the middle steps of a token rotation (docs/SECURITY.md)")
	fs.StringVar(&o.dc, "datacenter", "", "this manager's datacenter")
	fs.StringVar(&o.gossipAddr, "gossip-addr", "", "HOST:PORT of the gossip ring (default: raft port + 1)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&o.logJSON, "log-json", false, "log as JSON lines instead of text")
	fs.StringArrayVar(&o.confs, "conf", nil, "application configuration file (app1.conf); repeat for more applications")
	// TLS and metrics.
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate: serve the API over HTTPS and secure the Raft transport with TLS (with --tls-key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "PEM CA that signs every manager's certificate (verifies the peers; default: system roots)")
	fs.BoolVar(&o.metricsOpen, "metrics-open", false, "serve GET /metrics without the token (for scrapers that cannot send one)")
	fs.StringVar(&o.detection, "detection", detector.ModeFast, "how the master is probed: fast (mharaft's detector), or mha: MHA's cadence "+
		"(one ping every ping_interval, unreachable after 4 failed pings), a benchmark baseline, not for production")
	fs.DurationVar(&o.clockOffset, "test-clock-offset", 0, "TEST ONLY (chaos tests): shift this manager's wall clock by this much (e.g. 45s or -45s) "+
		"in everything it stamps, to prove that no decision depends on managers' clocks agreeing; never set it in production")
	fs.DurationVar(&o.verdictDelay, "test-verdict-delay", 0, "TEST ONLY (safety tests): wait this long between an actionable verdict and taking "+
		"the failover lock, to prove that a lock taken on a verdict the state has moved past is refused; never set it in production")
	fs.BoolVar(&o.rejoin, "rejoin", false, "join an existing group instead of founding one (a new manager, or a removed one restarted): "+
		"do not bootstrap an empty data dir from --peers, do not check the stored peers; then run 'mhactl members add ID RAFT_ADDR'")
	fs.IntVar(&o.raftMultiplier, "raft-multiplier", 1, "scale the Raft heartbeat, election and leader-lease timeouts (250 ms each at 1, for managers on one LAN); "+
		"across datacenters about 1 + round trip / 50 ms, the same on every manager (docs/MULTI-DC.md)")
	fs.StringVar(&o.cpuProfile, "cpu-profile", "", "write a Go CPU profile of the whole run to `FILE` (0600, written at shutdown; read it with 'go tool pprof'): "+
		"where the time of a manager watching many applications goes")
	fs.StringVar(&o.flagsFile, cli.FlagsFileFlag, "", "read the flags not given on the command line from `FILE`, one 'name = value' per line (see above)")
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run runs mhanode with args and returns its exit status.
func run(args []string) int {
	var o options
	code := exitOK
	root := &cobra.Command{
		Use:           "mhanode",
		Short:         "The mharaft manager daemon: one member of the managers' Raft group",
		Long:          long,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			code = serve(cmd.Flags(), &o)
			return nil
		},
	}
	o.register(root.Flags())
	root.AddCommand(cli.VersionCmd("mhanode"))
	root.InitDefaultHelpFlag()
	root.SetArgs(cli.NormalizeArgs(root.Flags(), args))
	if err := root.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "mhanode: %v (mhanode --help lists the flags)\n", err)
		return exitUsage
	}
	return code
}

// serve starts the manager with the flags of fs (o) and runs it until
// SIGINT or SIGTERM; it returns the exit status.
func serve(fs *pflag.FlagSet, o *options) (code int) {
	if o.flagsFile != "" {
		if err := cli.ApplyFlagsFile(fs, o.flagsFile); err != nil {
			fmt.Fprintln(os.Stderr, "mhanode:", err)
			return exitUsage
		}
		// A usage error names a flag: say where the flags came from.
		defer func() {
			if code == exitUsage {
				fmt.Fprintf(os.Stderr, "mhanode: the flags came from the command line and %s\n", o.flagsFile)
			}
		}()
	}
	if _, err := detector.ParseMode(o.detection); err != nil {
		fmt.Fprintln(os.Stderr, "mhanode: --detection:", err)
		return exitUsage
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "mhanode: --log-level %q: want debug, info, warn or error\n", o.logLevel)
		return exitUsage
	}
	peerMap, err := parsePeers(o.peers)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mhanode:", err)
		return exitUsage
	}
	if len(o.confs) == 0 {
		fmt.Fprintln(os.Stderr, "mhanode: at least one --conf application file is required")
		return exitUsage
	}
	var apps []*config.App
	for _, f := range o.confs {
		app, err := config.Load(f, o.globalConf)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mhanode: configuration %s is not valid, nothing started:\n%v\n", f, err)
			return exitUsage
		}
		apps = append(apps, app)
	}
	token, err := api.ServerConfig{TokenFile: o.tokenFile}.LoadToken()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mhanode: --token-file:", err)
		return exitUsage
	}
	var acceptTokens []string
	if o.acceptFile != "" {
		if acceptTokens, err = secret.AcceptTokens(o.acceptFile); err != nil {
			fmt.Fprintln(os.Stderr, "mhanode: --accept-token-file:", err)
			return exitUsage
		}
	}
	if o.tlsKey != "" {
		if err := secret.File("TLS key", o.tlsKey); err != nil {
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
	if o.logJSON {
		h = slog.NewJSONHandler(out, hopts)
	}
	log := slog.New(h)
	if o.clockOffset != 0 {
		log.Warn("TEST ONLY: --test-clock-offset shifts this manager's clock", "offset", o.clockOffset.String())
	}
	if o.verdictDelay != 0 {
		log.Warn("TEST ONLY: --test-verdict-delay delays every automatic failover lock", "delay", o.verdictDelay.String())
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

	if o.cpuProfile != "" {
		stopProfile, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mhanode: --cpu-profile:", err)
			return exitUsage
		}
		defer stopProfile()
	}

	m, err := manager.New(manager.Config{
		ID: o.id, DataDir: o.dataDir, RaftAddr: o.raftAddr, HTTPAddr: o.httpAddr, GossipAddr: o.gossipAddr,
		Datacenter: o.dc, Peers: peerMap, Token: token, AcceptTokens: acceptTokens, Apps: apps, Logger: log, RaftLogOutput: out, LogLevel: o.logLevel,
		Metrics: metrics.New(), MetricsOpen: o.metricsOpen, TLSCert: o.tlsCert, TLSKey: o.tlsKey, TLSCAFile: o.tlsCA,
		DetectionMode: o.detection, TestClockOffset: o.clockOffset, TestVerdictDelay: o.verdictDelay, Rejoin: o.rejoin,
		RaftMultiplier: o.raftMultiplier,
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

// startCPUProfile starts a CPU profile into path (created 0600: a profile
// names functions, not secrets, but it is ours alone) and returns the
// function that ends and writes it.
func startCPUProfile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
