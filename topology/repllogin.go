package topology

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
)

// CodeReplLogin: the replication user cannot log in to a server that could
// become the master.
const CodeReplLogin = "repl-login"

// CheckReplLogin logs in as repl_user with repl_password to every server
// that could become the master (every server without no_master), in
// parallel, as the replicas would after a failover or a switch. A refused
// login (wrong password, missing account) is an Error naming the server
// and the server's own message (which holds no password). A server that
// does not answer is left to Check (CodeUnreachable). connectTimeout <= 0
// uses the app's connect_timeout or 2 s.
func CheckReplLogin(ctx context.Context, app *config.App, connectTimeout time.Duration) []Problem {
	if connectTimeout <= 0 {
		connectTimeout = app.ConnectTimeout
	}
	if connectTimeout <= 0 {
		connectTimeout = 2 * time.Second
	}
	results := make([][]Problem, len(app.Servers))
	var wg sync.WaitGroup
	for i, srv := range app.Servers {
		if srv.NoMaster || srv.ReplUser == "" {
			continue
		}
		wg.Add(1)
		go func(i int, srv *config.Server) {
			defer wg.Done()
			results[i] = checkReplLogin(ctx, srv, connectTimeout)
		}(i, srv)
	}
	wg.Wait()
	var ps []Problem
	for _, r := range results {
		ps = append(ps, r...)
	}
	return ps
}

func checkReplLogin(ctx context.Context, srv *config.Server, timeout time.Duration) []Problem {
	err := ReplLogin(ctx, srv, timeout)
	if err == nil {
		return nil
	}
	return []Problem{{Server: srv.Name, Addr: srv.String(), Severity: Error, Code: CodeReplLogin,
		What: fmt.Sprintf("the replication user %q (repl_user) cannot log in with repl_password: %v; "+
			"after a failover or a switch to this server its replicas could not connect", srv.ReplUser, err),
		Fix: ReplLoginFix(srv)}}
}

// ReplLogin logs in to srv as repl_user with repl_password, as its replicas
// would once it is their master. It returns the server's refusal (which
// holds no password), or nil when the login works or when srv does not
// answer at all (reported as unreachable by whoever asks).
func ReplLogin(ctx context.Context, srv *config.Server, timeout time.Duration) error {
	c := dialect.DriverConfig(srv)
	c.User, c.Passwd = srv.ReplUser, srv.ReplPassword
	c.Timeout, c.ReadTimeout, c.WriteTimeout = timeout, timeout, timeout
	db, err := sql.Open("mysql", c.FormatDSN())
	if err == nil {
		defer db.Close()
		pctx, cancel := context.WithTimeout(ctx, 2*timeout)
		err = db.PingContext(pctx)
		cancel()
	}
	if err == nil {
		return nil
	}
	if kind, reachable := dialect.Classify(err); !reachable && kind != dialect.KindError {
		return nil
	}
	return err
}

// ReplLoginFix says what to do when repl_user cannot log in to srv.
func ReplLoginFix(srv *config.Server) string {
	return fmt.Sprintf("set repl_user and repl_password in the configuration to an account of this server with REPLICATION SLAVE "+
		"(e.g. ALTER USER '%s'@'%%' IDENTIFIED BY '...'); the account must accept logins from the replicas' hosts and from the manager's",
		srv.ReplUser)
}
