package topology

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/remote"
)

// CheckSSH dials every configured server's SSH in parallel, verifying its
// host key, and checks that master_binlog_dir (when set) is a directory
// there. It returns one problem per failure; none when all is well.
func CheckSSH(ctx context.Context, app *config.App) []Problem {
	results := make([][]Problem, len(app.Servers))
	var wg sync.WaitGroup
	for i, srv := range app.Servers {
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
	if _, err := c.Run(ctx, "test -d "+remote.Quote(srv.MasterBinlogDir)); err != nil {
		return p(CodeSSHCommand,
			fmt.Sprintf("master_binlog_dir %s is not a directory on %s: %v", srv.MasterBinlogDir, cfg.Addr(), err),
			"set master_binlog_dir to the directory that holds the binary logs (log_bin_basename's directory)")
	}
	return nil
}
