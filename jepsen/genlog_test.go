package jepsen

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// TestReadNewRecordsAcrossRotation: an incremental reader positioned in
// the current file before a restart reads the rest of that (now saved)
// part, then the new file, and never a record twice.
func TestReadNewRecordsAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	d := &DBHost{Net: &NetHost{Name: "db1"}, Server: &testbed.Server{Index: 1, DataDir: dir}}
	if err := os.MkdirAll(filepath.Join(dir, "mysql"), 0o755); err != nil {
		t.Fatal(err)
	}
	appendRows := func(rows ...string) {
		t.Helper()
		f, err := os.OpenFile(d.GeneralLogPath(), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, r := range rows {
			if _, err := f.WriteString(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	q := func(ms int, arg string) string { return glRow(ms, mgr("10.0.0.21"), 5, "Query", arg) }
	args := func(recs []GenLogRecord) string {
		var s []string
		for _, r := range recs {
			s = append(s, r.Argument)
		}
		return strings.Join(s, ",")
	}

	appendRows(q(0, "a"))
	pos := logOffsets(&Env{DBs: []*DBHost{d}})[d.Name()]
	appendRows(q(1, "b"), q(2, "c"))
	if err := d.rotateGeneralLog(); err != nil {
		t.Fatal(err)
	}
	appendRows(q(3, "d"))
	if err := d.rotateGeneralLog(); err != nil {
		t.Fatal(err)
	}
	appendRows(q(4, "e"), `"2026-11-25 12:00:00.004000","mha[mha] @  [10.0.0.21]",5,1,"Query","f`) // a row being written

	recs, pos := readNewRecords(d, pos)
	if got := args(recs); got != "b,c,d,e" {
		t.Fatalf("new records %q, want b,c,d,e", got)
	}
	appendRows("\"\n")
	if recs, _ = readNewRecords(d, pos); args(recs) != "f" {
		t.Fatalf("then %q, want f", args(recs))
	}
	all, err := readGeneralLog(d)
	if err != nil {
		t.Fatal(err)
	}
	if got := args(all); got != "a,b,c,d,e,f" {
		t.Fatalf("whole log %q, want a,b,c,d,e,f", got)
	}
	if n := len(d.GeneralLogParts()); n != 3 {
		t.Fatalf("%d general log parts, want 3 (two saved, the current)", n)
	}
}

// TestRestartKilledServerGeneralLog kills -9 a real mariadbd logging to
// mysql.general_log while clients connect, restarts it with RestartServer
// several times, and checks that it never starts on a table marked
// crashed (the state in which MariaDB 10.11 auto-repairs the log table
// and can die with signal 11) and that the log keeps every marker from
// before each kill and after each restart.
func TestRestartKilledServerGeneralLog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts mariadbd")
	}
	ctx := context.Background()
	s, err := testbed.NewServer(filepath.Join(t.TempDir(), "db1"), 1, 101,
		testbed.ServerOptions{Extra: []string{"general_log=1", "log_output=TABLE"}})
	if err != nil {
		t.Fatal(err)
	}
	d := &DBHost{Net: &NetHost{Name: "db1"}, Server: s}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	const cycles = 4
	var want []string
	for c := 0; c <= cycles; c++ {
		marker := fmt.Sprintf("SELECT 'marker-%d'", c)
		if err := s.Exec(ctx, marker); err != nil {
			t.Fatal(err)
		}
		want = append(want, marker)
		if c == cycles {
			break
		}
		if err := s.Kill9(); err != nil {
			t.Fatal(err)
		}
		// Clients knocking while it starts, as the managers do.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if conn, err := s.Root().Conn(ctx); err == nil {
						conn.ExecContext(ctx, "SELECT 1")
						conn.Close()
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
		err := d.RestartServer(ctx)
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatalf("restart %d: %v", c+1, err)
		}
	}
	if b, err := os.ReadFile(s.LogPath); err != nil {
		t.Fatal(err)
	} else if strings.Contains(string(b), "marked as crashed") {
		t.Fatalf("mariadbd opened a general log marked crashed after a restart; see %s", s.LogPath)
	}
	recs, err := readGeneralLog(d)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		if strings.HasPrefix(r.Argument, "SELECT 'marker-") {
			got = append(got, r.Argument)
		}
	}
	if strings.Join(got, ";") != strings.Join(want, ";") {
		t.Fatalf("markers in the general log %q, want %q", got, want)
	}
	if n := len(d.GeneralLogParts()); n != cycles+1 {
		t.Fatalf("%d general log parts, want %d", n, cycles+1)
	}
}
