package demo

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	_ "github.com/go-sql-driver/mysql" // the MySQL driver of database/sql

	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/testbed"
)

// openApp connects to s as the application user (no SUPER: read_only
// stops it), over TCP like an application.
func openApp(s *testbed.Server) (*sql.DB, error) {
	db, err := sql.Open("mysql", s.DSN(testbed.AppUser, testbed.AppPassword, ""))
	if err != nil {
		return nil, fmt.Errorf("open a connection to %s as %s: %w", s.Name(), testbed.AppUser, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// execAll runs statements in turn.
func execAll(ctx context.Context, db *sql.DB, stmts ...string) error {
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// reportText reads a failover report JSON file and prints it in MHA's
// words, as the leader printed it to its log.
func reportText(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var rep failover.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return "", fmt.Errorf("decode report %s: %w", path, err)
	}
	if rep.Kind == "" {
		rep.Kind = "failover"
	}
	var w strings.Builder
	rep.Print(&w)
	return strings.TrimLeft(w.String(), "\n"), nil
}
