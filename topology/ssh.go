package topology

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/remote"
)

// CheckSSH dials every configured server's SSH in parallel, verifying its
// host key, and checks that master_binlog_dir (when set) is a directory
// there; binlog servers ([binlogN]) too, whose master_binlog_dir must also
// hold binlog files (<base>.<number>). It returns one problem per failure;
// none when all is well.
func CheckSSH(ctx context.Context, app *config.App) []Problem {
	all := append(append([]*config.Server{}, app.Servers...), app.BinlogServers...)
	results := make([][]Problem, len(all))
	var wg sync.WaitGroup
	for i, srv := range all {
		wg.Add(1)
		go func(i int, srv *config.Server) {
			defer wg.Done()
			results[i] = checkSSHServer(ctx, srv)
		}(i, srv)
	}
	wg.Wait()
	var ps []Problem
	for _, r := range results {
		ps = append(ps, r...)
	}
	return ps
}

func checkSSHServer(ctx context.Context, srv *config.Server) []Problem {
	cfg := remote.ConfigFor(srv)
	p := func(code, what, fix string) []Problem {
		return []Problem{{Server: srv.Name, Addr: srv.String(), Severity: Error, Code: code, What: what, Fix: fix}}
	}
	c, err := remote.Dial(ctx, cfg)
	if err != nil {
		switch {
		case errors.Is(err, remote.ErrHostKeyMismatch):
			return p(CodeSSHHostKey,
				fmt.Sprintf("the SSH host key of %s does not match the one in %s (possible man-in-the-middle, or the host was re-keyed): %v", cfg.Addr(), cfg.KnownHostsFile, err),
				fmt.Sprintf("verify the host key of %s out of band, then update its entry in %s (ssh_known_hosts)", cfg.Addr(), cfg.KnownHostsFile))
		case errors.Is(err, remote.ErrUnknownHost):
			return p(CodeSSHHostKey,
				fmt.Sprintf("the SSH host key of %s is not in %s: %v", cfg.Addr(), cfg.KnownHostsFile, err),
				fmt.Sprintf("verify the host key of %s out of band and add it to %s (ssh_known_hosts)", cfg.Addr(), cfg.KnownHostsFile))
		case errors.Is(err, remote.ErrAuth):
			return p(CodeSSHAuth,
				fmt.Sprintf("SSH authentication as %s at %s failed: %v", cfg.User, cfg.Addr(), err),
				"check ssh_user and ssh_key, and that the key's public half is in the user's authorized_keys on the host")
		case errors.Is(err, remote.ErrUnreachable):
			return p(CodeSSHUnreachable,
				fmt.Sprintf("cannot reach SSH at %s: %v", cfg.Addr(), err),
				"start sshd on the host or fix ssh_host/ssh_port and the network")
		default:
			return p(CodeSSHUnreachable, fmt.Sprintf("SSH to %s failed: %v", cfg.Addr(), err),
				"check ssh_user, ssh_key, ssh_known_hosts and sshd on the host")
		}
	}
	defer c.Close()
	if srv.MasterBinlogDir == "" {
		return nil
	}
	if srv.BinlogServer {
		return checkBinlogServerDir(ctx, c, srv, p)
	}
	if _, err := c.Run(ctx, "test -d "+remote.Quote(srv.MasterBinlogDir)); err != nil {
		return p(CodeSSHCommand,
			fmt.Sprintf("master_binlog_dir %s is not a directory on %s: %v", srv.MasterBinlogDir, cfg.Addr(), err),
			"set master_binlog_dir to the directory that holds the binary logs (log_bin_basename's directory)")
	}
	return nil
}

// checkBinlogServerDir checks that every directory of a binlog server's
// master_binlog_dir exists and that one of them holds binlog files: the
// failover reads the dead master's tail there.
func checkBinlogServerDir(ctx context.Context, c *remote.Client, srv *config.Server, p func(code, what, fix string) []Problem) []Problem {
	const fix = "set master_binlog_dir of this binlog server block to the directory its binlog copy is written to " +
		"(mariadb-binlog --raw --result-file=<dir>/), and check that the copy is running"
	found := 0
	for _, dir := range strings.Split(srv.MasterBinlogDir, ",") {
		names, err := binlog.ListBinlogDir(ctx, c, dir, "")
		if err != nil {
			return p(CodeSSHCommand, fmt.Sprintf("binlog server [%s]: master_binlog_dir %s on %s: %v", srv.Name, dir, c.Host(), err), fix)
		}
		found += len(names)
	}
	if found == 0 {
		return p(CodeSSHCommand, fmt.Sprintf("binlog server [%s]: master_binlog_dir %s on %s holds no binlog file (<base>.<number>)",
			srv.Name, srv.MasterBinlogDir, c.Host()), fix)
	}
	return nil
}
