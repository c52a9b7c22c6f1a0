package bench

import (
	"context"
	"io"
	"testing"
	"time"
)

// TestRelayDiffSuiteQuick runs the relaydiff suite in quick mode (2 runs,
// without the file-by-file path).
func TestRelayDiffSuiteQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers and an sshd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := relayDiffSuite(ctx, t.TempDir(), true, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Figures {
		t.Logf("%s: %.3f %s %s", f.Name, f.Value, f.Unit, f.Note)
		if f.Value <= 0 {
			t.Errorf("%s not measured", f.Name)
		}
	}
}
