package bench

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestElectionSuiteQuick runs the election suite in quick mode (3 kills of
// the leader): every kill elects a new leader that commits a command.
func TestElectionSuiteQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers and mhanode processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := electionSuite(ctx, t.TempDir(), true, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Figures {
		t.Logf("%s: %.3f %s %s", f.Name, f.Value, f.Unit, f.Note)
		if strings.HasPrefix(f.Name, "leader kill") && f.Value <= 0 {
			t.Errorf("%s not measured", f.Name)
		}
	}
	for i, r := range res.Extra.([]electionRun) {
		if r.Acting < r.Elected {
			t.Errorf("run %d: command committed at %.3f s, before the new leader at %.3f s", i+1, r.Acting, r.Elected)
		}
	}
}
