package topology

import (
	"testing"

	"github.com/mharaft/mharaft/testbed"
)

// TestCheckReplBinlogFilters: check-repl compares the binlog filters of
// every server with log_bin (SHOW MASTER STATUS's Binlog_Do_DB and
// Binlog_Ignore_DB) with the master's, and a replica's replicate_do_db
// with the master's binlog-do-db, as masterha_check_repl does; with
// check_repl_filter=0 it does not.
func TestCheckReplBinlogFilters(t *testing.T) {
	c := testbed.Start(t, testbed.Options{N: 3, Servers: []testbed.ServerOptions{
		{Extra: []string{"binlog-do-db=test"}}, {}, {Extra: []string{"binlog-do-db=test"}},
	}})
	s3 := c.Servers[2]
	app := loadApp(t, c)

	ps := Check(discover(t, app))
	wantProblem(t, ps, CodeBinlogFilters, "server2", Error, "binlog filters differ", "server2 has none", "server1 (the master) has binlog-do-db=test", "binlog-ignore-db")
	if p := findProblem(ps, CodeBinlogFilters, "server3"); p != nil {
		t.Errorf("server3 logs what the master logs, yet: %s", p)
	}

	run(t, s3, "STOP SLAVE", "SET GLOBAL replicate_do_db='other'", "START SLAVE")
	ps = Check(discover(t, app))
	wantProblem(t, ps, CodeBinlogFilters, "server3", Error, "replicate_do_db=other here but server1 (the master) logs binlog-do-db=test")

	ps = Check(discover(t, loadApp(t, c, "check_repl_filter=0")))
	for _, p := range ps {
		if p.Code == CodeBinlogFilters {
			t.Errorf("check_repl_filter=0, yet: %s", p)
		}
	}
	run(t, s3, "STOP SLAVE", "SET GLOBAL replicate_do_db=''", "START SLAVE")
}
