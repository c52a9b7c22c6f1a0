package config

import (
	"net"
	"strconv"
	"time"
)

// Server is one [serverN] block after [server default] values of the global
// and the application file were applied to it.
type Server struct {
	Name     string // section name: "server1"
	Hostname string // hostname= (required)
	IP       string // ip=, defaults to Hostname resolved (or Hostname when it is an address)
	Port     int    // port=, default 3306

	User         string // user=, default root
	Password     string // password=
	ReplUser     string // repl_user=, default repl
	ReplPassword string // repl_password=

	SSHUser           string        // ssh_user= or -l/-o User in ssh_options, default: the current user
	SSHHost           string        // ssh_host=, default Hostname
	SSHIP             string        // ssh_ip=, default SSHHost resolved
	SSHPort           int           // ssh_port= or -p/-o Port in ssh_options, default 22
	SSHOptions        string        // ssh_options= as written, quotes removed; what it sets is in the fields around
	SSHKey            string        // ssh_key= (new) or -i: private key file
	SSHKnownHosts     string        // ssh_known_hosts= (new) or -o UserKnownHostsFile: default ~/.ssh/known_hosts
	SSHConnectTimeout time.Duration // ssh_connection_timeout= or -o ConnectTimeout, default 5s
	SSHAliveInterval  time.Duration // -o ServerAliveInterval in ssh_options; 0: no keepalive
	SSHAliveCountMax  int           // -o ServerAliveCountMax in ssh_options; 0: ssh's default, 3

	CandidateMaster bool // candidate_master=
	NoMaster        bool // no_master=
	IgnoreFail      bool // ignore_fail=
	CheckReplDelay  bool // check_repl_delay=, default true
	LatestPriority  bool // latest_priority=, default true

	MasterBinlogDir string // master_binlog_dir=; "" means use what discovery saw
	RemoteWorkdir   string // remote_workdir=, default /var/tmp
	ClientBinDir    string // client_bindir= (accepted, unused: we ship no tools to DB hosts)
	ClientLibDir    string // client_libdir= (accepted, unused)
	DisableLogBin   bool   // disable_log_bin=: apply recovered events with sql_log_bin=0
	ApplyMethod     string // apply_method= (new): auto (default), statements or replication
	Datacenter      string // datacenter= (new)
	MultiTierSlave  bool   // multi_tier_slave=

	NodeLabel        string // node_label=: shown next to the server in reports
	SkipInitSSHCheck bool   // skip_init_ssh_check=: skip this server in the start-up SSH check
	SkipResetSlave   bool   // skip_reset_slave=: do not RESET SLAVE ALL on the new master
	HandleRawBinlog  bool   // handle_raw_binlog=, default true (recorded for MHA compatibility)
	MasterPIDFile    string // master_pid_file=: passed to shutdown_script as --pid_file

	// BinlogServer: this is a [binlogN] block (App.BinlogServers), a host
	// that keeps a copy of the master's binlog in MasterBinlogDir, not a
	// database server.
	BinlogServer bool
}

// Addr is ip:port, the address used for MySQL connections.
func (s *Server) Addr() string { return net.JoinHostPort(s.IP, strconv.Itoa(s.Port)) }

// SSHAddr is ssh_ip:ssh_port.
func (s *Server) SSHAddr() string { return net.JoinHostPort(s.SSHIP, strconv.Itoa(s.SSHPort)) }

// String prints the server the way MHA does: host(ip:port).
func (s *Server) String() string { return s.Hostname + "(" + s.Addr() + ")" }

// App is one application (one replication group), from app1.conf plus the
// global file.
type App struct {
	// defaults is [server default] (application, global, init script
	// output) as loaded: ServerFromDefaults builds servers from it.
	defaults resolver

	Name       string // base name of the application file without extension: "app1"
	File       string // path of the application file
	GlobalFile string // path of the global file, "" when none

	ManagerWorkdir string // manager_workdir=, default /var/log/masterha/<app>
	ManagerLog     string // manager_log=

	PingInterval time.Duration // ping_interval= (seconds), default 3s
	PingType     string        // ping_type=: CONNECT, SELECT (default) or INSERT
	// ConnectTimeout for MySQL health probes (new: connect_timeout=, seconds), default 1s.
	ConnectTimeout time.Duration

	SecondaryCheckScript       string        // secondary_check_script=
	MasterIPFailoverScript     string        // master_ip_failover_script=
	MasterIPOnlineChangeScript string        // master_ip_online_change_script=
	ShutdownScript             string        // shutdown_script=
	ReportScript               string        // report_script=
	InitConfLoadScript         string        // init_conf_load_script= (accepted, unused)
	HookTimeout                time.Duration // hook_timeout= (new), default 60s

	LastFailoverMinute     int  // last_failover_minute=, default 480
	MultiTierSlave         bool // multi_tier_slave=
	IgnoreMultiMaster      bool // ignore_multimaster=
	SkipInitSSHCheck       bool // skip_init_ssh_check=
	PreventCrossDCFailover bool // prevent_cross_dc_failover= (new)
	// UseGTIDAutoPos: use_gtid_auto_pos= (recorded for MHA compatibility).
	UseGTIDAutoPos bool
	// RunningUpdatesLimit for online switch (seconds), default 1 (MHA's --running_updates_limit).
	RunningUpdatesLimit time.Duration
	// MaxLagForSwitch: online switch refuses replicas further behind (new: switch_max_lag=, seconds), default 1.
	MaxLagForSwitch time.Duration
	// FenceMode for the old master: "read_only_ftwrl" (default), "read_only" or "shutdown" (new: fence_mode=).
	FenceMode string

	LogLevel        string // log_level=: debug, info (default), notice, warning, error, critical, alert, emergency
	CheckReplFilter bool   // check_repl_filter=, default true: replication filters must agree
	// WaitOnMonitorError: MHA's --wait_on_monitor_error (seconds), default 0; also accepted as a key.
	WaitOnMonitorError time.Duration

	// Servers in MHA's order: sorted by block name, and by the number in
	// the name when every name has one (server2 before server10).
	Servers []*Server

	// BinlogServers are the [binlogN] blocks (MHA's binlog servers), by
	// block name: hosts that keep a copy of the master's binlog (e.g.
	// `mariadb-binlog --read-from-remote-server --raw --stop-never`) in
	// their master_binlog_dir, with the master's file names and positions.
	// A dead-master failover reads the tail from them when the dead
	// master's binlog cannot be read over SSH.
	BinlogServers []*Server
}

// Server returns the server whose Name, Hostname, "ip:port" or "hostname:port" equals key.
func (a *App) Server(key string) *Server {
	for _, s := range a.Servers {
		if s.Name == key || s.Addr() == key || s.Hostname == key ||
			net.JoinHostPort(s.Hostname, strconv.Itoa(s.Port)) == key {
			return s
		}
	}
	return nil
}
