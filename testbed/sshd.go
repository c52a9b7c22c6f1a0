package testbed

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SSHD is a real OpenSSH server on a loopback port that accepts one key.
type SSHD struct {
	Dir        string
	Host       string
	Port       int
	User       string // the user to log in as (the one running the tests)
	ClientKey  string // private key file accepted by the server
	KnownHosts string // known_hosts file holding the server's host key
	HostKeyPub string // the host public key line ("ssh-ed25519 AAAA...")
	NetNS      string
	proc       *Proc // nil until started
}

// Addr is host:port.
func (d *SSHD) Addr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) }

// StartSSHD generates keys below dir and starts sshd on host.
func StartSSHD(dir, host string) (*SSHD, error) { return startSSHD(dir, host, "") }

// StartSSHDInNetNS starts sshd on port 22 of host inside a network namespace.
func StartSSHDInNetNS(dir, host, netns string) (*SSHD, error) { return startSSHD(dir, host, netns) }

func startSSHD(dir, host, netns string) (*SSHD, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, fmt.Errorf("create sshd privilege separation dir /run/sshd: %w", err)
	}
	d := &SSHD{Dir: dir, Host: host, NetNS: netns, User: sshUser()}
	hostKey := filepath.Join(dir, "host_ed25519")
	d.ClientKey = filepath.Join(dir, "client_ed25519")
	for _, k := range []string{hostKey, d.ClientKey} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mharaft-testbed", "-f", k).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ssh-keygen %s: %w: %s", k, err, out)
		}
	}
	pub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(pub))
	d.HostKeyPub = f[0] + " " + f[1]
	clientPub, err := os.ReadFile(d.ClientKey + ".pub")
	if err != nil {
		return nil, err
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, clientPub, 0o600); err != nil {
		return nil, err
	}
	if netns != "" {
		d.Port = 22
	} else if d.Port, err = FreePort(host); err != nil {
		return nil, err
	}
	d.KnownHosts = filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(d.KnownHosts, []byte(fmt.Sprintf("[%s]:%d %s\n", host, d.Port, d.HostKeyPub)), 0o644); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "sshd_config")
	conf := fmt.Sprintf(`Port %d
ListenAddress %s
HostKey %s
PidFile %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
StrictModes no
UsePAM no
MaxStartups 100:30:200
MaxSessions 100
LogLevel ERROR
Subsystem sftp /usr/lib/openssh/sftp-server
`, d.Port, host, hostKey, filepath.Join(dir, "sshd.pid"), authKeys)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	args := []string{"-D", "-e", "-f", cfg}
	var cmd *exec.Cmd
	if netns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", netns, "/usr/sbin/sshd"}, args...)...)
	} else {
		cmd = exec.Command("/usr/sbin/sshd", args...)
	}
	logf, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if d.proc, err = StartProc(cmd, logf); err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	if netns != "" {
		return d, nil // the caller polls: the namespace's address is not ours to dial
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", d.Addr(), time.Second)
		if err == nil {
			c.Close()
			return d, nil
		}
		select {
		case <-d.proc.Done():
			log, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			return d, fmt.Errorf("sshd exited during start-up: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			return d, fmt.Errorf("sshd not listening on %s after 10s: %w", d.Addr(), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills sshd and its connections' processes (its process group).
func (d *SSHD) Stop() {
	if d.proc != nil {
		d.proc.Kill()
	}
}

// SSHLoginUser is the account the test bed's sshd is logged into. It is an
// alias of root (uid 0, so it can read the datadirs) whose shell is /bin/sh:
// root's own shell here is bash with a .bashrc that takes ~0.5 s per
// command, which would make every remote step look slow. Production DB hosts
// have their own accounts; this only keeps the test bed honest about our
// own cost.
const SSHLoginUser = "mharaft-ssh"

var sshUserOnce sync.Once
var sshUserName string

func sshUser() string {
	sshUserOnce.Do(func() {
		sshUserName = currentUser()
		if os.Geteuid() != 0 {
			return
		}
		if exec.Command("getent", "passwd", SSHLoginUser).Run() != nil {
			if exec.Command("useradd", "-o", "-u", "0", "-g", "0", "-M", "-N", "-d", "/root", "-s", "/bin/sh", SSHLoginUser).Run() != nil {
				return
			}
		}
		// "*": no password, but not locked ("!"), which sshd would refuse.
		if exec.Command("usermod", "-p", "*", SSHLoginUser).Run() == nil {
			sshUserName = SSHLoginUser
		}
	})
	return sshUserName
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if os.Geteuid() == 0 {
		return "root"
	}
	return strconv.Itoa(os.Geteuid())
}
