package manager

import (
	"strings"
	"testing"

	"github.com/mharaft/mharaft/config"
)

func TestValidateTLSFlags(t *testing.T) {
	tests := []struct {
		name, cert, key string
		wantErr         bool
	}{
		{"no TLS", "", "", false},
		{"both", "node.crt", "node.key", false},
		{"cert only", "node.crt", "", true},
		{"key only", "", "node.key", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{ID: "m1", DataDir: t.TempDir(), Token: "t", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2",
				Apps: []*config.App{{Name: "app1"}}, TLSCert: tc.cert, TLSKey: tc.key}
			err := validate(&cfg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("validate: %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "--tls-cert and --tls-key") {
				t.Errorf("error %q does not name the flags", err)
			}
		})
	}
}

func TestValidateRaftMultiplier(t *testing.T) {
	tests := []struct {
		give, want int // want 0: refused
	}{{0, 1}, {1, 1}, {4, 4}, {10, 10}, {11, 0}, {-1, 0}}
	for _, tc := range tests {
		cfg := Config{ID: "m1", DataDir: t.TempDir(), Token: "t", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2",
			Apps: []*config.App{{Name: "app1"}}, RaftMultiplier: tc.give}
		err := validate(&cfg)
		switch {
		case tc.want == 0 && (err == nil || !strings.Contains(err.Error(), "--raft-multiplier")):
			t.Errorf("--raft-multiplier %d: %v, want an error naming the flag", tc.give, err)
		case tc.want != 0 && (err != nil || cfg.RaftMultiplier != tc.want):
			t.Errorf("--raft-multiplier %d: %v, multiplier %d, want %d", tc.give, err, cfg.RaftMultiplier, tc.want)
		}
	}
}

func TestRaftTLSUnreadableCertificate(t *testing.T) {
	m := &Manager{cfg: Config{TLSCert: "/nonexistent/node.crt", TLSKey: "/nonexistent/node.key"}}
	if _, err := m.raftTLS(); err == nil || !strings.Contains(err.Error(), "/nonexistent/node.crt") {
		t.Fatalf("raftTLS with missing files: %v, want an error naming the certificate", err)
	}
	if cfg, err := (&Manager{}).raftTLS(); cfg != nil || err != nil {
		t.Fatalf("raftTLS without TLS: %v %v, want nil nil", cfg, err)
	}
}
