package testbed

import (
	"fmt"
	"net"
	"sync"
)

var portMu sync.Mutex
var handedOut = map[int]bool{}

// FreePort returns a TCP port on host that nothing listens on right now and
// that this process has not handed out before.
func FreePort(host string) (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
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
