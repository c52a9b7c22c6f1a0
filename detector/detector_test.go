package detector

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
)

// TestRecordPublishes checks when an observation is queued for publishing:
// on every change of kind at once, and otherwise once per refresh period.
func TestRecordPublishes(t *testing.T) {
	d := New(Config{Manager: "m1"}, nil, nil)
	refresh := time.Second
	var lastPub time.Time
	steps := []struct {
		at      time.Duration
		kind    string
		publish bool
		changed bool
	}{
		{0, KindOK, true, true},
		{200 * time.Millisecond, KindOK, false, false},
		{900 * time.Millisecond, KindOK, false, false},
		{1000 * time.Millisecond, KindOK, true, false}, // refresh
		{1100 * time.Millisecond, KindRefused, true, true},
		{1150 * time.Millisecond, KindRefused, false, false},
		{1200 * time.Millisecond, KindTimeout, true, true},
	}
	for i, s := range steps {
		at := t0.Add(s.at)
		o := Observation{Manager: "m1", Server: "server1", Kind: s.kind, Reachable: s.kind == KindOK, Since: at, At: at}
		changed := d.record(o, refresh, &lastPub)
		d.pubMu.Lock()
		pending := d.pending
		d.pending = nil
		d.pubMu.Unlock()
		if (pending != nil) != s.publish || changed != s.changed {
			t.Fatalf("step %d (%s at %s): published %v changed %v, want %v %v", i, s.kind, s.at, pending != nil, changed, s.publish, s.changed)
		}
		if pending != nil && pending.At != at {
			t.Fatalf("step %d: published At %s, want %s", i, pending.At, at)
		}
	}
	local := d.Local()[0]
	if local.Since != t0.Add(1200*time.Millisecond) {
		t.Fatalf("Since of the current kind = %s", local.Since)
	}
	select {
	case <-d.Changed():
	default:
		t.Fatal("no change signal")
	}
}

// TestRecordKeepsSince checks that an unchanged kind keeps its Since.
func TestRecordKeepsSince(t *testing.T) {
	d := New(Config{Manager: "m1"}, nil, nil)
	var lastPub time.Time
	d.record(Observation{Kind: KindRefused, Since: t0, At: t0}, time.Second, &lastPub)
	d.record(Observation{Kind: KindRefused, Since: t0.Add(time.Second), At: t0.Add(time.Second)}, time.Second, &lastPub)
	if o := d.Local()[0]; !o.Since.Equal(t0) || !o.At.Equal(t0.Add(time.Second)) {
		t.Fatalf("Since %s At %s", o.Since, o.At)
	}
}

// TestSecondaryCheck runs a real script: exit 0 confirms, anything else does
// not, and the password is in the environment, not on the command line.
func TestSecondaryCheck(t *testing.T) {
	dir := t.TempDir()
	args := filepath.Join(dir, "args")
	script := filepath.Join(dir, "check.sh")
	body := "#!/bin/sh\necho \"$@\" > " + args + "\necho \"$MHA_MASTER_PASSWORD\" >> " + args + "\nexit ${EXIT_CODE:-0}\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	master := &config.Server{Name: "server1", Hostname: "db1", IP: "10.0.0.1", Port: 3306, User: "mha", Password: "s3cret", SSHUser: "root"}
	for _, tc := range []struct {
		code string
		want bool
	}{{"0", true}, {"2", false}, {"3", false}} {
		t.Run("exit "+tc.code, func(t *testing.T) {
			app := &config.App{Name: "app1", SecondaryCheckScript: "EXIT_CODE=" + tc.code + " " + script, PingType: "SELECT"}
			got, _, err := SecondaryCheck(context.Background(), app, master, 5*time.Second)
			if err != nil || got != tc.want {
				t.Fatalf("SecondaryCheck = %v, %v; want %v", got, err, tc.want)
			}
			out, err := os.ReadFile(args)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			want := "--user=root --master_host=db1 --master_ip=10.0.0.1 --master_port=3306 --master_user=mha --ping_type=SELECT"
			if len(lines) != 2 || lines[0] != want || lines[1] != "s3cret" {
				t.Fatalf("script saw %q, want args %q and the password in the environment", lines, want)
			}
		})
	}
	t.Run("timeout does not confirm", func(t *testing.T) {
		app := &config.App{Name: "app1", SecondaryCheckScript: "sleep 5"}
		start := time.Now()
		got, _, err := SecondaryCheck(context.Background(), app, master, 200*time.Millisecond)
		if err != nil || got || time.Since(start) > 3*time.Second {
			t.Fatalf("SecondaryCheck = %v, %v after %s", got, err, time.Since(start))
		}
	})
}
