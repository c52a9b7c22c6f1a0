package topology

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/testbed"
)

// check-ssh on a binlog server ([binlog1] in the application file, read by
// config.Load): a directory holding a copy of the master's binlog passes;
// a directory that does not exist, and one without binlog files, are
// errors naming the block.
func TestCheckSSHBinlogServer(t *testing.T) {
	c := testbed.Start(t, testbed.Options{N: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	good := t.TempDir()
	b, err := os.ReadFile(filepath.Join(c.Master().DataDir, "mysql-bin.000001"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(good, "mysql-bin.000001"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	load := func(dir string) *config.App {
		t.Helper()
		work := t.TempDir()
		path := filepath.Join(work, "app1.conf")
		text := c.AppConfig(work) + "\n[binlog1]\nhostname=127.0.0.1\nmaster_binlog_dir=" + dir + "\n"
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		app, err := config.Load(path, "")
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		if len(app.BinlogServers) != 1 {
			t.Fatalf("binlog servers: %d, want 1", len(app.BinlogServers))
		}
		return app
	}
	if ps := CheckSSH(ctx, load(good)); len(ps) != 0 {
		t.Fatalf("a binlog server with a binlog copy has problems:\n%s", dump(ps))
	}
	ps := CheckSSH(ctx, load("/nonexistent/binlogs"))
	wantProblem(t, ps, CodeSSHCommand, "binlog1", Error, "binlog server [binlog1]", "master_binlog_dir /nonexistent/binlogs", "not a readable directory", "--result-file")
	ps = CheckSSH(ctx, load(empty))
	wantProblem(t, ps, CodeSSHCommand, "binlog1", Error, "binlog server [binlog1]", "holds no binlog file")
	if len(ps) != 1 {
		t.Errorf("want one problem (the binlog server's), got:\n%s", dump(ps))
	}
}
