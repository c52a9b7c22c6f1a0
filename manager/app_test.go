package manager_test

import (
	"database/sql"

	_ "github.com/go-sql-driver/mysql"

	"github.com/mharaft/mharaft/testbed"
)

// openApp connects as the application user (no SUPER): what clients see.
func openApp(s *testbed.Server) (*sql.DB, error) {
	return sql.Open("mysql", s.DSN(testbed.AppUser, testbed.AppPassword, "test"))
}
