package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTLSCreate: `mhactl tls ca create` and `mhactl tls cert create` write
// a CA and a manager certificate that verify for server and client use at
// every host of --addr, with P-256 keys in 0600 files; the certificate
// loads as mhanode loads it (tls.LoadX509KeyPair); nothing is overwritten.
func TestTLSCreate(t *testing.T) {
	dir := t.TempDir()
	if r := runClusterCLI(t, "tls", "ca", "create", "--dir", dir); r.code != 0 {
		t.Fatal(r)
	}
	ca, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	r := runClusterCLI(t, "tls", "cert", "create", "--ca-cert", ca, "--ca-key", caKey, "--name", "m1", "--dir", dir,
		"--addr", "10.0.0.1:8080,10.0.0.1:7000,m1.example.net:7000,[::1]:8080")
	if r.code != 0 {
		t.Fatal(r)
	}
	if !strings.Contains(r.stdout, "--tls-cert "+filepath.Join(dir, "m1.pem")) {
		t.Errorf("the output does not say how to start the manager:\n%s", r)
	}
	for _, f := range []string{caKey, filepath.Join(dir, "m1-key.pem")} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o, want 0600", f, st.Mode().Perm())
		}
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "m1.pem"), filepath.Join(dir, "m1-key.pem"))
	if err != nil {
		t.Fatalf("mhanode could not load the certificate: %v", err)
	}
	if k, ok := pair.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", pair.PrivateKey)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(ca)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	for _, host := range []string{"10.0.0.1", "m1.example.net", "::1"} {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("verify for %s usage %v: %v", host, usage, err)
			}
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "10.0.0.2", Roots: pool}); err == nil {
		t.Error("the certificate verifies for a host not in --addr")
	}
	if leaf.Subject.CommonName != "m1" || slices.Contains(leaf.DNSNames, "localhost") {
		t.Errorf("subject %q names %v: want CN m1 and only the given hosts", leaf.Subject.CommonName, leaf.DNSNames)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "m1-key.pem")); !strings.Contains(string(b), "PRIVATE KEY") {
		t.Error("key file is not a PEM private key")
	} else if blk, _ := pem.Decode(b); blk == nil {
		t.Error("key file does not decode")
	}

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no overwrite of the CA", []string{"tls", "ca", "create", "--dir", dir}, exitProblem, "ca.pem already exists"},
		{"no overwrite of a certificate", []string{"tls", "cert", "create", "--ca-cert", ca, "--ca-key", caKey, "--name", "m1", "--dir", dir, "--addr", "10.0.0.1"}, exitProblem, "m1.pem already exists"},
		{"no address", []string{"tls", "cert", "create", "--ca-cert", ca, "--ca-key", caKey, "--name", "m2", "--dir", dir}, exitUsage, "--addr is required"},
		{"wildcard address", []string{"tls", "cert", "create", "--ca-cert", ca, "--ca-key", caKey, "--name", "m2", "--dir", dir, "--addr", "0.0.0.0:7000"}, exitUsage, "not an address a client can verify"},
		{"no CA", []string{"tls", "cert", "create", "--name", "m2", "--dir", dir, "--addr", "10.0.0.2"}, exitUsage, "--ca-cert and --ca-key are required"},
		{"key of another CA", []string{"tls", "cert", "create", "--ca-cert", ca, "--ca-key", filepath.Join(dir, "m1-key.pem"), "--name", "m2", "--dir", dir, "--addr", "10.0.0.2"}, exitInternal, "does not belong to the CA certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runClusterCLI(t, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("want exit %d and %q:\n%s", tc.code, tc.want, r)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "m2-key.pem")); err == nil {
		t.Error("a refused command left a key behind")
	}
}
