package detector

import (
	"fmt"
	"os"
	"testing"
)

// TestMain gives this package's processes (mariadb-install-db and mariadbd
// take their tmpdir from TMPDIR) a private temporary directory: on the
// shared machine, bootstrap temp tables in /tmp were seen to vanish while
// other packages' tests ran ("Could not remove temporary table
// '/tmp/#sql-temptable-...'", then mariadb-install-db failed).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "detector-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
