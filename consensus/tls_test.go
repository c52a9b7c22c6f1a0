package consensus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"testing"
	"time"

	"github.com/mharaft/mharaft/fsm"
	"github.com/mharaft/mharaft/testbed"
)

// testTLS returns a mutual-TLS config for 127.0.0.1: the testbed's
// certificate as server and client certificate, its CA as the only root.
func testTLS(t *testing.T) *tls.Config {
	t.Helper()
	certs, err := testbed.WriteCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certs.CertFile, certs.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("no certificate in %s", certs.CAFile)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool, MinVersion: tls.VersionTLS12}
}

func TestTLSRaft(t *testing.T) {
	c := newTCPCluster(t, 3)
	c.tls = testTLS(t)
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
