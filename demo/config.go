package demo

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/mharaft/mharaft/testbed"
)

//go:embed app1.conf.tmpl
var appConfTemplate string

// confServer is one [serverN] block of the template.
type confServer struct {
	Name, Host string
	Port       int
	BinlogDir  string
}

// confData fills the template.
type confData struct {
	User, Password, ReplUser, ReplPassword string
	ManagerWorkdir, RemoteWorkdir          string
	SSHUser                                string
	SSHPort                                int
	SSHKey, SSHKnownHosts                  string
	PingInterval                           int
	Servers                                []confServer
}

// sandboxConf is the template's data for a testbed cluster whose files live
// below dir.
func sandboxConf(c *testbed.Cluster, dir string) (confData, error) {
	if c.SSH == nil {
		return confData{}, fmt.Errorf("the sandbox has no sshd")
	}
	d := confData{
		User: testbed.MHAUser, Password: testbed.MHAPassword,
		ReplUser: testbed.ReplUser, ReplPassword: testbed.ReplPassword,
		ManagerWorkdir: filepath.Join(dir, "work"), RemoteWorkdir: filepath.Join(dir, "work", "remote"),
		SSHUser: c.SSH.User, SSHPort: c.SSH.Port, SSHKey: c.SSH.ClientKey, SSHKnownHosts: c.SSH.KnownHosts,
		PingInterval: 1,
	}
	for _, s := range c.Servers {
		d.Servers = append(d.Servers, confServer{Name: s.Name(), Host: s.Host, Port: s.Port, BinlogDir: s.DataDir})
	}
	return d, nil
}

// renderConf renders the embedded app1.conf template.
func renderConf(d confData) (string, error) {
	t, err := template.New("app1.conf").Option("missingkey=error").Parse(appConfTemplate)
	if err != nil {
		return "", fmt.Errorf("parse the embedded app1.conf template: %w", err)
	}
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("render app1.conf: %w", err)
	}
	return b.String(), nil
}

// writeConf renders app1.conf into dir (mode 0600: it holds passwords) and
// creates its manager_workdir.
func writeConf(dir string, d confData) (string, error) {
	text, err := renderConf(d)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(d.ManagerWorkdir, 0o755); err != nil {
		return "", fmt.Errorf("create manager_workdir %s: %w", d.ManagerWorkdir, err)
	}
	path := filepath.Join(dir, "app1.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

// passwordLine matches a key=value line whose key names a password.
var passwordLine = regexp.MustCompile(`(?m)^(\s*[A-Za-z_]*password\s*=\s*).*$`)

// redact replaces the value of every *password key by <redacted>.
func redact(conf string) string {
	return passwordLine.ReplaceAllString(conf, "${1}<redacted>")
}
