package main

// mhactl tls ca create / mhactl tls cert create: a private CA and one
// certificate per manager (as `consul tls ca create` and `consul tls cert
// create`), so that `mhanode --tls-cert --tls-key --tls-ca` takes three
// files this command wrote. Keys are ECDSA P-256, written 0600 and never
// overwritten; certificates are for server and client use (the Raft
// transport is mutual TLS) and name the hosts of the manager's addresses.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func init() {
	ca := &cobra.Command{Use: "ca", Short: "Create the CA that signs the managers' certificates"}
	ca.AddCommand(newTLSCACreateCmd())
	cert := &cobra.Command{Use: "cert", Short: "Create a manager's certificate"}
	cert.AddCommand(newTLSCertCreateCmd())
	tlsCmd := &cobra.Command{Use: "tls", Short: "Create a CA and the managers' TLS certificates (for mhanode --tls-*)"}
	tlsCmd.AddCommand(ca, cert)
	rootCmd.AddCommand(tlsCmd)
}

func newTLSCACreateCmd() *cobra.Command {
	var dir, name string
	var days int
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Write ca.pem and ca-key.pem (keep ca-key.pem offline: whoever holds it can join the cluster)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if days <= 0 {
				return withCode(exitUsage, fmt.Errorf("--days %d: want a positive number of days", days))
			}
			key, serial, err := newKeyAndSerial()
			if err != nil {
				return withCode(exitInternal, err)
			}
			now := time.Now()
			tmpl := &x509.Certificate{
				SerialNumber: serial, Subject: pkix.Name{CommonName: name},
				NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 0, days),
				IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
				KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
			if err != nil {
				return withCode(exitInternal, fmt.Errorf("create CA certificate: %w", err))
			}
			certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
			if err := writeKeyPair(certPath, keyPath, der, key); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (give it to every manager as --tls-ca and to mhactl as --cacert)\nwrote %s (private key, 0600: keep it off the managers)\n", certPath, keyPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".", "directory to write ca.pem and ca-key.pem to")
	cmd.Flags().StringVar(&name, "name", "mharaft CA", "common name of the CA")
	cmd.Flags().IntVar(&days, "days", 1825, "validity of the CA in days")
	return cmd
}

func newTLSCertCreateCmd() *cobra.Command {
	var dir, caCert, caKey, name, addrs string
	var days int
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Write NAME.pem and NAME-key.pem: a manager's certificate for its API and Raft addresses, signed by the CA",
		Example: "  mhactl tls cert create --ca-cert ca.pem --ca-key ca-key.pem --name m1 --addr 10.0.0.1:8080,10.0.0.1:7000\n" +
			"  mhanode ... --tls-cert m1.pem --tls-key m1-key.pem --tls-ca ca.pem",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" || strings.ContainsAny(name, `/\`) {
				return withCode(exitUsage, fmt.Errorf("--name %q: want the manager's ID (m1), it names the files", name))
			}
			if caCert == "" || caKey == "" {
				return withCode(exitUsage, errors.New("--ca-cert and --ca-key are required (written by `mhactl tls ca create`)"))
			}
			if days <= 0 {
				return withCode(exitUsage, fmt.Errorf("--days %d: want a positive number of days", days))
			}
			ips, dnsNames, err := certHosts(addrs)
			if err != nil {
				return withCode(exitUsage, err)
			}
			ca, signer, err := loadCA(caCert, caKey)
			if err != nil {
				return withCode(exitInternal, err)
			}
			key, serial, err := newKeyAndSerial()
			if err != nil {
				return withCode(exitInternal, err)
			}
			now := time.Now()
			notAfter := now.AddDate(0, 0, days)
			if notAfter.After(ca.NotAfter) {
				notAfter = ca.NotAfter
			}
			tmpl := &x509.Certificate{
				SerialNumber: serial, Subject: pkix.Name{CommonName: name},
				NotBefore: now.Add(-time.Hour), NotAfter: notAfter,
				KeyUsage:    x509.KeyUsageDigitalSignature,
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
				IPAddresses: ips, DNSNames: dnsNames,
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, signer)
			if err != nil {
				return withCode(exitInternal, fmt.Errorf("sign the certificate of %s with %s: %w", name, caCert, err))
			}
			certPath, keyPath := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
			if err := writeKeyPair(certPath, keyPath, der, key); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s for %s (valid until %s)\nwrote %s (private key, 0600)\nstart the manager with: --tls-cert %s --tls-key %s --tls-ca %s\n",
				certPath, strings.Join(append(ipStrings(ips), dnsNames...), ", "), notAfter.Format("2006-01-02"), keyPath, certPath, keyPath, caCert)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", ".", "directory to write NAME.pem and NAME-key.pem to")
	f.StringVar(&caCert, "ca-cert", "", "the CA certificate (ca.pem)")
	f.StringVar(&caKey, "ca-key", "", "the CA private key (ca-key.pem)")
	f.StringVar(&name, "name", "", "the manager's ID (m1): common name and file names")
	f.StringVar(&addrs, "addr", "", "the manager's addresses as HOST:PORT or HOST, comma separated: its --http-addr and --raft-addr (every host is named in the certificate)")
	f.IntVar(&days, "days", 365, "validity in days (at most the CA's)")
	return cmd
}

// certHosts splits "H:P,H,..." into the IPs and DNS names a certificate
// must name; ports do not matter to certificates.
func certHosts(addrs string) ([]net.IP, []string, error) {
	var ips []net.IP
	var names []string
	seen := map[string]bool{}
	for _, a := range strings.Split(addrs, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		host := a
		if h, _, err := net.SplitHostPort(a); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if host == "" {
			return nil, nil, fmt.Errorf("--addr %q: no host (give the address the other managers and mhactl use, not :PORT)", a)
		}
		if seen[host] {
			continue
		}
		seen[host] = true
		if ip := net.ParseIP(host); ip != nil {
			if ip.IsUnspecified() {
				return nil, nil, fmt.Errorf("--addr %q: %s is not an address a client can verify; give the manager's own address", a, host)
			}
			ips = append(ips, ip)
		} else {
			names = append(names, host)
		}
	}
	if len(ips)+len(names) == 0 {
		return nil, nil, errors.New("--addr is required: the manager's API and Raft addresses (HOST:PORT, comma separated)")
	}
	return ips, names, nil
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

// newKeyAndSerial is a new ECDSA P-256 key and a random certificate serial.
func newKeyAndSerial() (*ecdsa.PrivateKey, *big.Int, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	return key, serial, nil
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// loadCA reads the CA certificate and its private key.
func loadCA(certPath, keyPath string) (*x509.Certificate, any, error) {
	b, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read CA certificate: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("CA certificate %s: no PEM CERTIFICATE in it", certPath)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("CA certificate %s: %w", certPath, err)
	}
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("%s is not a CA certificate (use the ca.pem of `mhactl tls ca create`)", certPath)
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read CA key: %w", err)
	}
	kblock, _ := pem.Decode(kb)
	if kblock == nil {
		return nil, nil, fmt.Errorf("CA key %s: no PEM block in it", keyPath)
	}
	var key any
	switch kblock.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(kblock.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(kblock.Bytes)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("CA key %s: %w", keyPath, err)
	}
	priv, ok := key.(*ecdsa.PrivateKey)
	if !ok || !priv.PublicKey.Equal(ca.PublicKey) {
		return nil, nil, fmt.Errorf("CA key %s does not belong to the CA certificate %s", keyPath, certPath)
	}
	return ca, key, nil
}

// writeKeyPair writes the certificate (0644) and the key (0600), refusing
// to overwrite either.
func writeKeyPair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return withCode(exitInternal, err)
	}
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return withCode(exitProblem, fmt.Errorf("%s already exists: not overwritten (move it away, or choose another --dir)", p))
		}
	}
	if err := writeNew(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	if err := writeNew(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		os.Remove(keyPath)
		return err
	}
	return nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return withCode(exitInternal, fmt.Errorf("write %s: %w", path, err))
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return withCode(exitInternal, fmt.Errorf("write %s: %w", path, err))
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return withCode(exitInternal, fmt.Errorf("write %s: %w", path, err))
	}
	return nil
}
