package testbed

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

var (
	portMu    sync.Mutex
	handedOut = map[int]bool{}
	portLocks []*os.File // held until the process exits
)

// lowestPort is the bottom of the range FreePort picks from; the top is
// the start of the kernel's ephemeral range.
const lowestPort = 10000

// FreePort returns a TCP port on host that nothing listens on right now and
// that no test process has been handed (this one, or another one using
// this package at the same time: a lock file per port under
// os.TempDir()/mharaft-ports, held until the process exits).
//
// Ports come from below the kernel's ephemeral range: a port from that
// range (what listening on port 0 gives) may be taken, between FreePort
// and the caller's bind, by any outgoing connection or port-0 listener of
// another process, which made mariadbd fail to start now and then when
// test packages run in parallel.
func FreePort(host string) (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	top := ephemeralStart()
	if top-lowestPort < 1000 {
		return kernelPort(host) // an unusual ephemeral range: the old way
	}
	for i := 0; i < 500; i++ {
		port := lowestPort + rand.IntN(top-lowestPort)
		if handedOut[port] || !lockPort(port) {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			continue // something else listens there (the lock stays: harmless)
		}
		l.Close()
		handedOut[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("find a free port on %s between %d and %d: none after 500 tries", host, lowestPort, top)
}

// ephemeralStart is the first port of the kernel's ephemeral range.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// lockPort takes the lock file of port for this process; false if another
// process holds it.
func lockPort(port int) bool {
	dir := filepath.Join(os.TempDir(), "mharaft-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return true // no lock files: rely on the bind check alone
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false
	}
	portLocks = append(portLocks, f)
	return true
}

// kernelPort asks the kernel for a free port (listening on port 0).
func kernelPort(host string) (int, error) {
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, fmt.Errorf("find a free port on %s: %w", host, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut[port] {
			handedOut[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("find a free port on %s: no new port after 50 tries", host)
}

// FreePortPair returns a port p on host such that p (TCP) and p+1 (TCP and
// UDP: a manager's Raft and gossip ports) are free and handed out to this
// process only, chosen as FreePort chooses.
func FreePortPair(host string) (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	top := ephemeralStart()
	if top-lowestPort < 1000 {
		return 0, fmt.Errorf("find a free port pair on %s: the ephemeral range starts at %d, too low", host, top)
	}
	for i := 0; i < 500; i++ {
		port := lowestPort + rand.IntN(top-lowestPort-1)
		if handedOut[port] || handedOut[port+1] || !lockPort(port) || !lockPort(port+1) {
			continue
		}
		if !bindable(host, port, false) || !bindable(host, port+1, true) {
			continue // something else uses one of them (the locks stay: harmless)
		}
		handedOut[port], handedOut[port+1] = true, true
		return port, nil
	}
	return 0, fmt.Errorf("find a free port pair on %s between %d and %d: none after 500 tries", host, lowestPort, top)
}

// bindable tells whether TCP (and, with udp, UDP) port can be bound on host now.
func bindable(host string, port int, udp bool) bool {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	if udp {
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		u.Close()
	}
	return true
}

// SilentListener listens on a loopback port that accepts TCP connections
// and never sends a byte: a frozen mysqld or a host whose packets vanish,
// as a client sees it until its timeout. It returns the port; everything
// is closed when the test ends.
func SilentListener(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}
