package bench

import (
	"context"
	"io"
	"testing"
	"time"
)

// TestBinlogSuiteQuick runs the binlog suite in quick mode (50 MB).
func TestBinlogSuiteQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four servers and writes 50 MB")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := binlogSuite(ctx, t.TempDir(), true, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range res.Figures {
		got[f.Name] = f.Value
		t.Logf("%s: %.3f %s %s", f.Name, f.Value, f.Unit, f.Note)
	}
	for _, name := range []string{"header scan", "full decode", "Apply", "Apply through replication", "server SQL thread apply"} {
		if got[name] <= 0 {
			t.Errorf("%s not measured", name)
		}
	}
}
