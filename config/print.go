package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Masked replaces every non-empty password in Redacted and String, as MHA
// prints "xxx" in its logs.
const Masked = "xxx"

// Redacted returns a deep copy of a whose passwords are replaced by "xxx",
// for status and debug output.
func (a *App) Redacted() *App {
	c := *a
	c.Servers = redactServers(a.Servers)
	c.BinlogServers = redactServers(a.BinlogServers)
	return &c
}

func redactServers(servers []*Server) []*Server {
	if servers == nil {
		return nil
	}
	out := make([]*Server, len(servers))
	for i, s := range servers {
		cs := *s
		if cs.Password != "" {
			cs.Password = Masked
		}
		if cs.ReplPassword != "" {
			cs.ReplPassword = Masked
		}
		out[i] = &cs
	}
	return out
}

// String prints the effective configuration, every default filled in and
// passwords shown as "xxx", in the format of an application file: Parse
// reads it back to the same App (but for the passwords).
func (a *App) String() string {
	r := a.Redacted()
	var b strings.Builder
	fmt.Fprintf(&b, "# effective configuration of application %s (passwords shown as %s)\n", r.Name, Masked)
	if r.File != "" {
		fmt.Fprintf(&b, "# application file: %s\n", r.File)
	}
	if r.GlobalFile != "" {
		fmt.Fprintf(&b, "# global file: %s\n", r.GlobalFile)
	}
	b.WriteString("[server default]\n")
	writePairs(&b, r.pairs())
	for _, s := range r.Servers {
		fmt.Fprintf(&b, "\n[%s]\n", s.Name)
		writePairs(&b, s.pairs())
	}
	for _, s := range r.BinlogServers {
		fmt.Fprintf(&b, "\n[%s]\n", s.Name)
		var pairs [][2]string
		for _, p := range s.pairs() {
			if binlogKeys[p[0]] {
				pairs = append(pairs, p)
			}
		}
		writePairs(&b, pairs)
	}
	return b.String()
}

func writePairs(b *strings.Builder, pairs [][2]string) {
	for _, p := range pairs {
		fmt.Fprintf(b, "%s=%s\n", p[0], p[1])
	}
}

func bit(v bool) string {
	if v {
		return "1"
	}
	return "0"
}

func secs(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }

// pairs lists the application-wide keys and their effective values.
func (a *App) pairs() [][2]string {
	return [][2]string{
		{"manager_workdir", a.ManagerWorkdir},
		{"manager_log", a.ManagerLog},
		{"log_level", a.LogLevel},
		{"ping_interval", secs(a.PingInterval)},
		{"ping_type", a.PingType},
		{"connect_timeout", secs(a.ConnectTimeout)},
		{"secondary_check_script", a.SecondaryCheckScript},
		{"master_ip_failover_script", a.MasterIPFailoverScript},
		{"master_ip_online_change_script", a.MasterIPOnlineChangeScript},
		{"shutdown_script", a.ShutdownScript},
		{"report_script", a.ReportScript},
		{"init_conf_load_script", a.InitConfLoadScript},
		{"hook_timeout", secs(a.HookTimeout)},
		{"last_failover_minute", strconv.Itoa(a.LastFailoverMinute)},
		{"wait_on_monitor_error", secs(a.WaitOnMonitorError)},
		{"check_repl_filter", bit(a.CheckReplFilter)},
		{"multi_tier_slave", bit(a.MultiTierSlave)},
		{"skip_init_ssh_check", bit(a.SkipInitSSHCheck)},
		{"use_gtid_auto_pos", bit(a.UseGTIDAutoPos)},
		{"ignore_multimaster", bit(a.IgnoreMultiMaster)},
		{"prevent_cross_dc_failover", bit(a.PreventCrossDCFailover)},
		{"running_updates_limit", secs(a.RunningUpdatesLimit)},
		{"switch_max_lag", secs(a.MaxLagForSwitch)},
		{"fence_mode", a.FenceMode},
	}
}

// pairs lists the keys of one server and their effective values.
func (s *Server) pairs() [][2]string {
	return [][2]string{
		{"hostname", s.Hostname},
		{"ip", s.IP},
		{"port", strconv.Itoa(s.Port)},
		{"node_label", s.NodeLabel},
		{"datacenter", s.Datacenter},
		{"candidate_master", bit(s.CandidateMaster)},
		{"no_master", bit(s.NoMaster)},
		{"ignore_fail", bit(s.IgnoreFail)},
		{"check_repl_delay", bit(s.CheckReplDelay)},
		{"latest_priority", bit(s.LatestPriority)},
		{"multi_tier_slave", bit(s.MultiTierSlave)},
		{"user", s.User},
		{"password", s.Password},
		{"repl_user", s.ReplUser},
		{"repl_password", s.ReplPassword},
		{"ssh_user", s.SSHUser},
		{"ssh_host", s.SSHHost},
		{"ssh_ip", s.SSHIP},
		{"ssh_port", strconv.Itoa(s.SSHPort)},
		{"ssh_options", s.SSHOptions},
		{"ssh_connection_timeout", secs(s.SSHConnectTimeout)},
		{"ssh_key", s.SSHKey},
		{"ssh_known_hosts", s.SSHKnownHosts},
		{"skip_init_ssh_check", bit(s.SkipInitSSHCheck)},
		{"master_binlog_dir", s.MasterBinlogDir},
		{"remote_workdir", s.RemoteWorkdir},
		{"client_bindir", s.ClientBinDir},
		{"client_libdir", s.ClientLibDir},
		{"disable_log_bin", bit(s.DisableLogBin)},
		{"apply_method", s.ApplyMethod},
		{"handle_raw_binlog", bit(s.HandleRawBinlog)},
		{"skip_reset_slave", bit(s.SkipResetSlave)},
		{"master_pid_file", s.MasterPIDFile},
	}
}
