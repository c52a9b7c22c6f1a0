package consensus

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/mharaft/mharaft/fsm"
)

// selfSignedTLS returns a config whose one self-signed certificate for
// 127.0.0.1 serves as server and client certificate and as the CA.
func selfSignedTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mharaft test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		RootCAs:      pool,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}
}

func TestTLSRaft(t *testing.T) {
	c := newTCPCluster(t, 3)
	c.tls = selfSignedTLS(t)
	for _, tn := range c.nodes {
		if err := c.start(tn); err != nil {
			t.Fatal(err)
		}
	}
	leader := c.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reg := fsm.EncodeRegisterApp(fsm.RegisterAppCmd{App: "tls", At: t0})
	if _, err := leader.current.Load().Apply(ctx, reg); err != nil {
		t.Fatal(err)
	}
	for _, tn := range c.nodes {
		eventually(t, 5*time.Second, tn.id+" applied over TLS", func() bool {
			_, ok := tn.fsm.App("tls")
			return ok
		})
	}
	// A plain TCP client cannot speak to the TLS transport.
	conn, err := net.DialTimeout("tcp", leader.raft, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	conn.Write([]byte("GET / HTTP/1.0\r\n\r\n")) // not a TLS ClientHello
	buf := make([]byte, 16)
	n, _ := conn.Read(buf)
	if n > 0 && buf[0] != 0x15 { // anything but a TLS alert is wrong
		t.Fatalf("plain TCP got %x from the TLS raft port", buf[:n])
	}
}
