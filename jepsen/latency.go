package jepsen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Cross-datacenter latency. The kernel here has no netem, so latency is a
// delaying TCP relay in every host's namespace: an iptables nat OUTPUT
// rule REDIRECTs every new TCP connection from the host to a host of
// another datacenter to the relay (RelayPort, in the same namespace),
// which reads the original destination (SO_ORIGINAL_DST), dials it from
// the same namespace with RelayMark set (excluded from the redirect, so
// the source address stays the host's own) and forwards every chunk of
// both directions DelayOneWay later. A connection crosses one relay (its
// initiator's), so a round trip costs 2 x the delay. Only connections
// between hosts are delayed: the clients' and the harness's (root
// namespace) are not. The partition's DROP rules (filter table) still
// apply to the relay's own connection.

// RelayPort is the relay's port inside every namespace.
const RelayPort = 7999

// RelayMark marks the relay's own connections (never redirected).
const RelayMark = 0x2131

// sysSetns is setns(2)'s number (the syscall package has no name for
// it); 0 on an architecture the harness does not know.
var sysSetns = map[string]uintptr{"amd64": 308, "arm64": 268}[runtime.GOARCH]

// soOriginalDst is SO_ORIGINAL_DST (linux/netfilter_ipv4.h).
const soOriginalDst = 80

// inNetNS runs f on an OS thread switched into namespace ns; sockets f
// creates belong to ns for good.
func inNetNS(ns string, f func() error) error {
	if sysSetns == 0 {
		return fmt.Errorf("enter network namespace %s: setns(2) number unknown on %s", ns, runtime.GOARCH)
	}
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open own network namespace: %w", err)
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open network namespace %s: %w", ns, err)
	}
	defer target.Close()
	if _, _, e := syscall.RawSyscall(sysSetns, target.Fd(), syscall.CLONE_NEWNET, 0); e != 0 {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", ns, e)
	}
	ferr := f()
	if _, _, e := syscall.RawSyscall(sysSetns, orig.Fd(), syscall.CLONE_NEWNET, 0); e != 0 {
		// The thread stays locked: the runtime ends it with the goroutine.
		return fmt.Errorf("leave network namespace %s: %w", ns, e)
	}
	runtime.UnlockOSThread()
	return ferr
}

// Relay is the delaying relay of one namespace.
type Relay struct {
	NS    string
	Delay time.Duration

	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
}

// StartRelay listens on RelayPort inside ns.
func StartRelay(ns string, delay time.Duration) (*Relay, error) {
	r := &Relay{NS: ns, Delay: delay, conns: map[net.Conn]bool{}}
	err := inNetNS(ns, func() error {
		var err error
		r.ln, err = net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", RelayPort))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("start latency relay in %s: %w", ns, err)
	}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.serve(c) }()
	}
}

func (r *Relay) track(c net.Conn, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.conns[c] = true
	} else {
		delete(r.conns, c)
	}
}

// originalDst reads where a redirected connection was going.
func originalDst(c net.Conn) (string, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return "", errors.New("not a TCP connection")
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return "", err
	}
	var addr string
	var gerr error
	err = raw.Control(func(fd uintptr) {
		m, err := syscall.GetsockoptIPv6Mreq(int(fd), syscall.SOL_IP, soOriginalDst)
		if err != nil {
			gerr = err
			return
		}
		b := m.Multiaddr
		addr = net.JoinHostPort(net.IPv4(b[4], b[5], b[6], b[7]).String(), strconv.Itoa(int(b[2])<<8|int(b[3])))
	})
	if err == nil {
		err = gerr
	}
	return addr, err
}

func (r *Relay) serve(c net.Conn) {
	r.track(c, true)
	defer r.track(c, false)
	defer c.Close()
	dst, err := originalDst(c)
	if err != nil {
		return
	}
	var up net.Conn
	err = inNetNS(r.NS, func() error {
		d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, RelayMark)
			}); err != nil {
				return err
			}
			return serr
		}}
		var err error
		up, err = d.Dial("tcp", dst)
		return err
	})
	if err != nil {
		return // the initiator sees its connection closed
	}
	r.track(up, true)
	defer r.track(up, false)
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { delayedCopy(up, c, r.Delay); done <- struct{}{} }()
	go func() { delayedCopy(c, up, r.Delay); done <- struct{}{} }()
	<-done
	<-done
}

// delayedCopy forwards every chunk read from src to dst d after it was
// read (latency, not a bandwidth limit), then half-closes dst.
func delayedCopy(dst, src net.Conn, d time.Duration) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	ch := make(chan chunk, 4096)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{buf[:n], time.Now().Add(d)}
			}
			if err != nil {
				return
			}
		}
	}()
	failed := false
	for c := range ch {
		if failed {
			continue // drain until the reader ends
		}
		if w := time.Until(c.at); w > 0 {
			t := time.NewTimer(w) // pacing: the chunk's due time
			<-t.C
		}
		if _, err := dst.Write(c.b); err != nil {
			failed = true
			src.Close()
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok && !failed {
		tc.CloseWrite()
	} else {
		dst.Close()
	}
}

// Close stops the relay and its connections.
func (r *Relay) Close() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// DelayTo redirects h's new TCP connections to the addresses in to through
// its relay (nat OUTPUT REDIRECT, RelayMark excluded).
func (n *Network) DelayTo(h *NetHost, to []string) error {
	if len(to) == 0 {
		return nil
	}
	return n.ipt(h, "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", strings.Join(to, ","), "-m", "mark", "!", "--mark", strconv.Itoa(RelayMark),
		"-j", "REDIRECT", "--to-ports", strconv.Itoa(RelayPort))
}

// NoDelay removes h's redirect rules.
func (n *Network) NoDelay(h *NetHost) error { return n.ipt(h, "-t", "nat", "-F", "OUTPUT") }
