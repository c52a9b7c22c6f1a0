package jepsen

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// markerDir holds one file per live network of this harness, named after
// its prefix and holding the owner's full pid: the start-up sweep deletes
// namespaces and links whose owner is gone.
const markerDir = "/run/mhajepsen"

// NamePrefixRoot starts the name of every namespace and link the harness
// creates.
const NamePrefixRoot = "mhj"

var prefixRE = regexp.MustCompile(`^(mhj[0-9]+-)`)

// Network is one run's private network: a "switch" namespace holding a
// Linux bridge, one namespace per host linked to the bridge by a veth
// pair, and one veth from the root namespace for the harness's own client.
// Addresses are 10.213.<Subnet>.0/24 and exist only inside namespaces the
// harness made (plus the client's veth), so nothing leaves the machine.
type Network struct {
	Prefix   string // "mhj123-": every namespace and link name starts with it
	Subnet   int    // third octet of 10.213.x.0/24
	SwitchNS string
	ClientIP string // the harness's address in the root namespace

	mu    sync.Mutex
	hosts map[string]*NetHost
}

// NetHost is one namespace with one address.
type NetHost struct {
	Name string // short name: db1, m2
	NS   string // namespace name
	IP   string
}

// run executes a command and returns a readable error with its output.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// RunPrefix is the prefix of this process's networks.
func RunPrefix() string { return fmt.Sprintf("%s%d-", NamePrefixRoot, os.Getpid()%1000) }

// Sweep deletes namespaces and links of earlier runs whose owner process
// is gone (found by name prefix and marker file). It never touches a
// network whose owner is alive.
func Sweep() (removed []string) {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if p := prefixRE.FindString(f[0]); p != "" && !ownerAlive(p) {
			if run("ip", "netns", "del", f[0]) == nil {
				removed = append(removed, f[0])
			}
		}
	}
	out, _ = exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(f[1], ":")
		if i := strings.Index(name, "@"); i >= 0 {
			name = name[:i]
		}
		if p := prefixRE.FindString(name); p != "" && !ownerAlive(p) {
			if run("ip", "link", "del", name) == nil {
				removed = append(removed, name)
			}
		}
	}
	entries, _ := os.ReadDir(markerDir)
	for _, e := range entries {
		if !ownerAlive(e.Name()) {
			os.Remove(filepath.Join(markerDir, e.Name()))
		}
	}
	return removed
}

// ownerAlive reports whether the process that created prefix still runs.
func ownerAlive(prefix string) bool {
	b, err := os.ReadFile(filepath.Join(markerDir, prefix))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return true
	}
	return syscall.Kill(pid, 0) == nil
}

// NewNetwork creates the switch namespace, its bridge and the client veth.
// prefix must be unique on the machine (RunPrefix plus a counter); subnet
// is the third octet. On error everything created so far is removed.
func NewNetwork(prefix string, subnet int) (*Network, error) {
	if len(prefix)+4 > 15 {
		return nil, fmt.Errorf("network prefix %q too long for interface names", prefix)
	}
	if err := os.MkdirAll(markerDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", markerDir, err)
	}
	if err := os.WriteFile(filepath.Join(markerDir, prefix), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("write network marker: %w", err)
	}
	n := &Network{Prefix: prefix, Subnet: subnet, SwitchNS: prefix + "sw",
		ClientIP: fmt.Sprintf("10.213.%d.254", subnet), hosts: map[string]*NetHost{}}
	cli, cliPeer := prefix+"c", prefix+"cs"
	steps := [][]string{
		{"ip", "netns", "add", n.SwitchNS},
		{"ip", "-n", n.SwitchNS, "link", "set", "lo", "up"},
		{"ip", "-n", n.SwitchNS, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", n.SwitchNS, "link", "set", "br0", "up"},
		{"ip", "link", "add", cli, "type", "veth", "peer", "name", cliPeer},
		{"ip", "link", "set", cliPeer, "netns", n.SwitchNS},
		{"ip", "-n", n.SwitchNS, "link", "set", cliPeer, "master", "br0"},
		{"ip", "-n", n.SwitchNS, "link", "set", cliPeer, "up"},
		{"ip", "addr", "add", n.ClientIP + "/24", "dev", cli},
		{"ip", "link", "set", cli, "up"},
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			n.Close()
			return nil, fmt.Errorf("create network %s: %w", prefix, err)
		}
	}
	return n, nil
}

// AddHost creates namespace prefix+name with address 10.213.<subnet>.<octet>
// linked to the bridge.
func (n *Network) AddHost(name string, octet int) (*NetHost, error) {
	h := &NetHost{Name: name, NS: n.Prefix + name, IP: fmt.Sprintf("10.213.%d.%d", n.Subnet, octet)}
	tmp, peer := n.Prefix+name+"t", n.Prefix+name
	steps := [][]string{
		{"ip", "netns", "add", h.NS},
		{"ip", "-n", h.NS, "link", "set", "lo", "up"},
		{"ip", "link", "add", tmp, "type", "veth", "peer", "name", peer},
		{"ip", "link", "set", tmp, "netns", h.NS},
		{"ip", "-n", h.NS, "link", "set", tmp, "name", "eth0"},
		{"ip", "link", "set", peer, "netns", n.SwitchNS},
		{"ip", "-n", n.SwitchNS, "link", "set", peer, "master", "br0"},
		{"ip", "-n", n.SwitchNS, "link", "set", peer, "up"},
		{"ip", "-n", h.NS, "addr", "add", h.IP + "/24", "dev", "eth0"},
		{"ip", "-n", h.NS, "link", "set", "eth0", "up"},
	}
	n.mu.Lock()
	n.hosts[name] = h
	n.mu.Unlock()
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return nil, fmt.Errorf("add host %s to network %s: %w", name, n.Prefix, err)
		}
	}
	return h, nil
}

// Host returns the host called name, or nil.
func (n *Network) Host(name string) *NetHost {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hosts[name]
}

func (n *Network) ipt(h *NetHost, args ...string) error {
	if err := run("ip", append([]string{"netns", "exec", h.NS, "iptables", "-w"}, args...)...); err != nil {
		return fmt.Errorf("iptables on %s: %w", h.Name, err)
	}
	return nil
}

// Isolate drops every packet to and from h except loopback: nobody,
// the harness included, reaches it.
func (n *Network) Isolate(h *NetHost) error {
	if err := n.ipt(h, "-A", "INPUT", "!", "-i", "lo", "-j", "DROP"); err != nil {
		return err
	}
	return n.ipt(h, "-A", "OUTPUT", "!", "-o", "lo", "-j", "DROP")
}

// Cut drops traffic between a and b in both directions (the rules live in
// a's namespace).
func (n *Network) Cut(a, b *NetHost) error {
	if err := n.ipt(a, "-A", "INPUT", "-s", b.IP, "-j", "DROP"); err != nil {
		return err
	}
	return n.ipt(a, "-A", "OUTPUT", "-d", b.IP, "-j", "DROP")
}

// PowerOffARPRetrans is how far apart, while a host is powered off, the
// other hosts' ARP probes go (net.ipv4.neigh.<dev>.retrans_time_ms; the
// kernel's default is 1000). Linux gives up after mcast_solicit (3)
// probes and fails every connect waiting for that address with
// EHOSTUNREACH ("no route to host"): 3 s by default, below MHA's default
// connect_timeout of 4 s. The harness runs connect_timeout=1, so it
// scales ARP to 3 x 250 ms = 0.75 s to keep that order.
const PowerOffARPRetrans = 250 * time.Millisecond

// defaultARPRetrans is the kernel's retrans_time_ms, restored by Heal.
const defaultARPRetrans = time.Second

// PowerOff makes h vanish from the LAN the way a machine whose power is
// cut does: its link goes down inside its namespace (its processes keep
// running but neither send nor receive anything), every other host
// forgets its MAC (neighbour entry flushed) and resolves it again with
// PowerOffARPRetrans probes, so a connect to h fails with "no route to
// host" once ARP gives up, not with a timeout as under Isolate. Heal
// brings the link back.
func (n *Network) PowerOff(h *NetHost) error {
	if err := run("ip", "-n", h.NS, "link", "set", "eth0", "down"); err != nil {
		return fmt.Errorf("power off %s: %w", h.Name, err)
	}
	for _, p := range n.peers(h) {
		if err := setARPRetrans(p.NS, "eth0", PowerOffARPRetrans); err != nil {
			return fmt.Errorf("power off %s: %w", h.Name, err)
		}
		if err := run("ip", "-n", p.NS, "neigh", "flush", "to", h.IP); err != nil {
			return fmt.Errorf("power off %s: forget its MAC on %s: %w", h.Name, p.Name, err)
		}
	}
	if err := setARPRetrans("", n.Prefix+"c", PowerOffARPRetrans); err != nil {
		return fmt.Errorf("power off %s: %w", h.Name, err)
	}
	if err := run("ip", "neigh", "flush", "to", h.IP, "dev", n.Prefix+"c"); err != nil {
		return fmt.Errorf("power off %s: forget its MAC on the harness's veth: %w", h.Name, err)
	}
	return nil
}

// peers returns every host but h.
func (n *Network) peers(h *NetHost) []*NetHost {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*NetHost
	for _, p := range n.hosts {
		if p != h {
			out = append(out, p)
		}
	}
	return out
}

// setARPRetrans sets net.ipv4.neigh.<dev>.retrans_time_ms in namespace ns
// ("" is the root namespace, used only for the harness's own veth).
func setARPRetrans(ns, dev string, d time.Duration) error {
	path := fmt.Sprintf("/proc/sys/net/ipv4/neigh/%s/retrans_time_ms", dev)
	cmd := []string{"sh", "-c", fmt.Sprintf("echo %d > %s", d.Milliseconds(), path)}
	if ns != "" {
		cmd = append([]string{"ip", "netns", "exec", ns}, cmd...)
	}
	if err := run(cmd[0], cmd[1:]...); err != nil {
		return fmt.Errorf("set ARP retransmit time of %s in namespace %q: %w", dev, ns, err)
	}
	return nil
}

// DialFrom connects to ip:port from namespace ns with a plain TCP connect
// (bash's /dev/tcp, at most timeout) and returns what the connect said
// ("" when it succeeded) and how long it took.
func DialFrom(ns, ip string, port int, timeout time.Duration) (string, time.Duration) {
	start := time.Now()
	out, err := exec.Command("timeout", fmt.Sprintf("%.1f", timeout.Seconds()), "ip", "netns", "exec", ns,
		"bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", ip, port)).CombinedOutput()
	d := time.Since(start)
	if err == nil {
		return "", d
	}
	if msg := strings.TrimSpace(string(out)); msg != "" {
		return msg, d
	}
	return err.Error(), d
}

// Heal removes every rule of every host, brings every powered-off link
// back and restores the kernel's ARP timing.
func (n *Network) Heal() error {
	n.mu.Lock()
	var hs []*NetHost
	for _, h := range n.hosts {
		hs = append(hs, h)
	}
	n.mu.Unlock()
	var errs []string
	for _, h := range hs {
		if err := n.ipt(h, "-F"); err != nil {
			errs = append(errs, err.Error())
		}
		if err := run("ip", "-n", h.NS, "link", "set", "eth0", "up"); err != nil {
			errs = append(errs, err.Error())
		}
		if err := setARPRetrans(h.NS, "eth0", defaultARPRetrans); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if err := setARPRetrans("", n.Prefix+"c", defaultARPRetrans); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("heal network %s: %s", n.Prefix, strings.Join(errs, "; "))
	}
	return nil
}

// Close deletes every namespace (their veths go with them), the client
// veth and the marker. It is safe to call more than once.
func (n *Network) Close() {
	n.mu.Lock()
	hosts := n.hosts
	n.hosts = map[string]*NetHost{}
	n.mu.Unlock()
	for _, h := range hosts {
		run("ip", "netns", "del", h.NS)
	}
	run("ip", "link", "del", n.Prefix+"c")
	run("ip", "netns", "del", n.SwitchNS)
	os.Remove(filepath.Join(markerDir, n.Prefix))
}

func runOut(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}

// AddClientAddr adds ip (10.213.<subnet>.x) to the harness's veth in the
// root namespace: a second client source address (one per datacenter's
// clients), used as the local address of their connections so that a
// partition can cut them (the rules live in the hosts' namespaces).
func (n *Network) AddClientAddr(ip string) error {
	if err := run("ip", "addr", "add", ip+"/24", "dev", n.Prefix+"c"); err != nil {
		return fmt.Errorf("add client address %s to the harness's veth: %w", ip, err)
	}
	return nil
}

// CutGroup drops every packet between the hosts and addresses of one
// group (in, inAddrs) and those of the other (out, outAddrs), both ways.
// Addresses are client addresses of the root namespace: their traffic is
// dropped by the rules of the hosts they talk to. Heal removes it all.
func (n *Network) CutGroup(in []*NetHost, inAddrs []string, out []*NetHost, outAddrs []string) error {
	ips := func(hs []*NetHost, extra []string) string {
		var s []string
		for _, h := range hs {
			s = append(s, h.IP)
		}
		return strings.Join(append(s, extra...), ",")
	}
	// Every host's rules go in at once (one goroutine per host): applied
	// one after the other they would leave a partial partition for up to
	// a second on a loaded machine.
	var wg sync.WaitGroup
	errs := make(chan error, len(in)+len(out))
	cut := func(hs []*NetHost, others string) {
		if others == "" {
			return
		}
		for _, h := range hs {
			wg.Add(1)
			go func(h *NetHost) {
				defer wg.Done()
				if err := n.ipt(h, "-A", "INPUT", "-s", others, "-j", "DROP"); err != nil {
					errs <- err
					return
				}
				if err := n.ipt(h, "-A", "OUTPUT", "-d", others, "-j", "DROP"); err != nil {
					errs <- err
				}
			}(h)
		}
	}
	cut(in, ips(out, outAddrs))
	cut(out, ips(in, inAddrs))
	wg.Wait()
	close(errs)
	return <-errs // nil when the channel is empty
}
