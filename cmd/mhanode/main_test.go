package main

import "testing"

func TestParsePeers(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"", nil, false},
		{"m1=127.0.0.1:7000", map[string]string{"m1": "127.0.0.1:7000"}, false},
		{"m1=a:1, m2=b:2,m3=c:3", map[string]string{"m1": "a:1", "m2": "b:2", "m3": "c:3"}, false},
		{"m1", nil, true},
		{"=a:1", nil, true},
		{"m1=a:1,m1=b:2", nil, true},
	}
	for _, tc := range tests {
		got, err := parsePeers(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("parsePeers(%q) error %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("parsePeers(%q) = %v, want %v", tc.in, got, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("parsePeers(%q)[%s] = %q, want %q", tc.in, k, got[k], v)
			}
		}
	}
}
