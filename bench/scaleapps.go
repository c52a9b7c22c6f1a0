package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mharaft/mharaft/internal/simmysql"
	"github.com/mharaft/mharaft/testbed"
)

// realApp is a real application: three mariadbd (a master and two
// replicas) holding test.t1 = 1, 2, 3.
type realApp struct {
	Name string
	Conf string
	DB   *testbed.Cluster
}

// startRealApps starts n real applications below dir, at most 3 at a
// time, all reached over one shared sshd (the failover saves the dead
// master's binlog over SSH).
func startRealApps(ctx context.Context, dir string, n int, sshd *testbed.SSHD, log func(string, ...any)) ([]*realApp, error) {
	apps := make([]*realApp, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 3)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			apps[i], errs[i] = startRealApp(ctx, dir, fmt.Sprintf("real%02d", i+1), sshd)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			stopRealApps(apps)
			return nil, fmt.Errorf("real application %d: %w", i+1, err)
		}
	}
	log("started %d real applications (%d mariadbd)", n, 3*n)
	return apps, nil
}

func startRealApp(ctx context.Context, dir, name string, sshd *testbed.SSHD) (*realApp, error) {
	db, err := testbed.New(filepath.Join(dir, name), testbed.Options{N: 3, NoSSH: true})
	a := &realApp{Name: name, DB: db}
	if err != nil {
		if db != nil {
			db.Close()
		}
		return nil, err
	}
	db.SSH = sshd // for AppConfig; stopRealApps detaches it before Close
	if err := db.Master().Exec(ctx, "CREATE DATABASE test", "CREATE TABLE test.t1 (a INT PRIMARY KEY)",
		"INSERT INTO test.t1 VALUES (1),(2),(3)"); err != nil {
		db.SSH = nil
		db.Close()
		return nil, err
	}
	work := filepath.Join(dir, name, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	a.Conf = filepath.Join(dir, "confs", name+".conf")
	if err := os.MkdirAll(filepath.Dir(a.Conf), 0o755); err != nil {
		return nil, err
	}
	return a, os.WriteFile(a.Conf, []byte(db.AppConfig(work)), 0o600)
}

func stopRealApps(apps []*realApp) {
	for _, a := range apps {
		if a != nil && a.DB != nil {
			a.DB.SSH = nil // shared: stopped by the suite
			a.DB.Close()
		}
	}
}

// simApps are simulated applications (internal/simmysql): endpoints in
// this process, each answering as a MariaDB master or replica would.
type simApps struct {
	srv   *simmysql.Server
	dir   string
	confs []string
	apps  []*simmysql.App
}

func newSimApps(dir string) *simApps {
	return &simApps{srv: simmysql.New(testbed.MHAUser, testbed.MHAPassword), dir: dir}
}

// grow makes sure n simulated applications exist and returns their files.
func (s *simApps) grow(n int) ([]string, error) {
	for len(s.confs) < n {
		a, err := s.srv.AddApp("127.0.0.1", 2, testbed.ReplUser)
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("sim%04d", len(s.confs)+1)
		work := filepath.Join(s.dir, "simwork", name)
		if err := os.MkdirAll(work, 0o755); err != nil {
			return nil, err
		}
		var b strings.Builder
		b.WriteString("# A SIMULATED application (internal/simmysql): no database behind these ports.\n")
		b.WriteString("[server default]\n")
		fmt.Fprintf(&b, "user=%s\npassword=%s\nrepl_user=%s\nrepl_password=%s\nmanager_workdir=%s\n",
			testbed.MHAUser, testbed.MHAPassword, testbed.ReplUser, testbed.ReplPassword, work)
		for i, e := range a.Servers() {
			fmt.Fprintf(&b, "\n[server%d]\nhostname=%s\nport=%s\ncandidate_master=1\n", i+1, e.Host, strconv.Itoa(e.Port))
		}
		path := filepath.Join(s.dir, "confs", name+".conf")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			return nil, err
		}
		s.confs = append(s.confs, path)
		s.apps = append(s.apps, a)
	}
	return s.confs[:n], nil
}

// realConnections sums, over the real servers, the manager user's open
// connections (information_schema.PROCESSLIST) and the Connections
// counter (connections ever accepted; the bench's own root connection is
// kept open, so it adds nothing between two samples).
func realConnections(ctx context.Context, apps []*realApp) (open, accepted int64, err error) {
	for _, a := range apps {
		for _, s := range a.DB.Servers {
			if !s.Running() {
				continue
			}
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			n, err1 := s.QueryString(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", testbed.MHAUser)
			c, err2 := s.QueryString(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'CONNECTIONS'")
			cancel()
			if err1 != nil || err2 != nil {
				return 0, 0, fmt.Errorf("count connections on %s of %s: %v %v", s.Name(), a.Name, err1, err2)
			}
			x, _ := strconv.ParseInt(n, 10, 64)
			y, _ := strconv.ParseInt(c, 10, 64)
			open += x
			accepted += y
		}
	}
	return open, accepted, nil
}
