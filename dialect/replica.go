package dialect

import (
	"fmt"
	"strconv"
	"strings"
)

// ReplFilters are a replica's replication filters (Replicate_* columns).
type ReplFilters struct {
	DoDB, IgnoreDB               string
	DoTable, IgnoreTable         string
	WildDoTable, WildIgnoreTable string
}

// IsEmpty reports whether no filter is set.
func (f ReplFilters) IsEmpty() bool { return f == ReplFilters{} }

// Equal reports whether both have the same filters, ignoring the order of
// the comma-separated entries.
func (f ReplFilters) Equal(o ReplFilters) bool { return f.normalized() == o.normalized() }

func (f ReplFilters) normalized() ReplFilters {
	n := func(s string) string {
		parts := strings.Split(s, ",")
		out := parts[:0]
		for _, p := range parts {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		sortStrings(out)
		return strings.Join(out, ",")
	}
	return ReplFilters{n(f.DoDB), n(f.IgnoreDB), n(f.DoTable), n(f.IgnoreTable), n(f.WildDoTable), n(f.WildIgnoreTable)}
}

// String lists the filters that are set, e.g. "replicate_do_db=app", or "none".
func (f ReplFilters) String() string {
	var parts []string
	for _, kv := range [][2]string{
		{"replicate_do_db", f.DoDB}, {"replicate_ignore_db", f.IgnoreDB},
		{"replicate_do_table", f.DoTable}, {"replicate_ignore_table", f.IgnoreTable},
		{"replicate_wild_do_table", f.WildDoTable}, {"replicate_wild_ignore_table", f.WildIgnoreTable},
	} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// ReplicaStatus is one row of SHOW SLAVE STATUS / SHOW REPLICA STATUS.
type ReplicaStatus struct {
	MasterHost     string
	MasterPort     int
	MasterUser     string
	MasterServerID uint32
	MasterUUID     string // MySQL only

	MasterLogFile      string // binlog file of the master the IO thread reads
	ReadMasterLogPos   uint64
	RelayLogFile       string
	RelayLogPos        uint64
	RelayMasterLogFile string // binlog file of the master the SQL thread executes
	ExecMasterLogPos   uint64

	IORunning  string // "Yes", "No" or "Connecting"
	SQLRunning bool
	// SecondsBehindMaster is nil when the server reports NULL.
	SecondsBehindMaster *int64

	UsingGTID        string // MariaDB: "No", "Slave_Pos", "Current_Pos"
	GTIDIOPos        string // MariaDB Gtid_IO_Pos
	RetrievedGTIDSet string // MySQL
	ExecutedGTIDSet  string // MySQL
	AutoPosition     bool   // MySQL

	Filters ReplFilters

	LastIOErrno  int
	LastIOError  string
	LastSQLErrno int
	LastSQLError string
	SQLState     string // Slave_SQL_Running_State
}

// ReadPos is where the IO thread has read the master's binlog up to.
func (r *ReplicaStatus) ReadPos() Pos { return Pos{File: r.MasterLogFile, Pos: r.ReadMasterLogPos} }

// ExecPos is where the SQL thread has executed the master's binlog up to.
func (r *ReplicaStatus) ExecPos() Pos {
	return Pos{File: r.RelayMasterLogFile, Pos: r.ExecMasterLogPos}
}

// IOThreadRunning reports whether the IO thread is connected (Yes).
func (r *ReplicaStatus) IOThreadRunning() bool { return r.IORunning == "Yes" }

// UsesGTID reports whether the replica positions itself by GTID
// (MariaDB Using_Gtid other than No, MySQL Auto_Position=1).
func (r *ReplicaStatus) UsesGTID() bool {
	return r.AutoPosition || (r.UsingGTID != "" && !strings.EqualFold(r.UsingGTID, "No"))
}

// ParseReplicaStatus reads one row of SHOW SLAVE STATUS (MariaDB, MySQL <
// 8.0.22) or SHOW REPLICA STATUS (MySQL >= 8.0.22) given as column name ->
// value, NULL as "" or absent. Both spellings of every column are accepted.
func ParseReplicaStatus(row map[string]string) (*ReplicaStatus, error) {
	p := rowParser{row: row}
	r := &ReplicaStatus{
		MasterHost:         p.str("Master_Host", "Source_Host"),
		MasterPort:         int(p.uint("Master_Port", "Source_Port")),
		MasterUser:         p.str("Master_User", "Source_User"),
		MasterServerID:     uint32(p.uint("Master_Server_Id", "Source_Server_Id")),
		MasterUUID:         p.str("Master_UUID", "Source_UUID"),
		MasterLogFile:      p.str("Master_Log_File", "Source_Log_File"),
		ReadMasterLogPos:   p.uint("Read_Master_Log_Pos", "Read_Source_Log_Pos"),
		RelayLogFile:       p.str("Relay_Log_File"),
		RelayLogPos:        p.uint("Relay_Log_Pos"),
		RelayMasterLogFile: p.str("Relay_Master_Log_File", "Relay_Source_Log_File"),
		ExecMasterLogPos:   p.uint("Exec_Master_Log_Pos", "Exec_Source_Log_Pos"),
		IORunning:          p.str("Slave_IO_Running", "Replica_IO_Running"),
		SQLRunning:         p.str("Slave_SQL_Running", "Replica_SQL_Running") == "Yes",
		UsingGTID:          p.str("Using_Gtid"),
		GTIDIOPos:          p.str("Gtid_IO_Pos"),
		RetrievedGTIDSet:   p.gtidSet("Retrieved_Gtid_Set"),
		ExecutedGTIDSet:    p.gtidSet("Executed_Gtid_Set"),
		AutoPosition:       p.str("Auto_Position") == "1",
		Filters: ReplFilters{
			DoDB:            p.str("Replicate_Do_DB"),
			IgnoreDB:        p.str("Replicate_Ignore_DB"),
			DoTable:         p.str("Replicate_Do_Table"),
			IgnoreTable:     p.str("Replicate_Ignore_Table"),
			WildDoTable:     p.str("Replicate_Wild_Do_Table"),
			WildIgnoreTable: p.str("Replicate_Wild_Ignore_Table"),
		},
		LastIOErrno:  int(p.uint("Last_IO_Errno")),
		LastIOError:  p.str("Last_IO_Error"),
		LastSQLErrno: int(p.uint("Last_SQL_Errno")),
		LastSQLError: p.str("Last_SQL_Error"),
		SQLState:     p.str("Slave_SQL_Running_State", "Replica_SQL_Running_State"),
	}
	if s := p.str("Seconds_Behind_Master", "Seconds_Behind_Source"); s != "" && !strings.EqualFold(s, "NULL") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			p.fail("Seconds_Behind_Master", s, err)
		} else {
			r.SecondsBehindMaster = &n
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	if r.MasterHost == "" {
		return nil, fmt.Errorf("parse replica status: no Master_Host/Source_Host column")
	}
	return r, nil
}

type rowParser struct {
	row map[string]string
	err error
}

func (p *rowParser) lookup(names ...string) (string, string) {
	for _, n := range names {
		if v, ok := p.row[n]; ok {
			return n, v
		}
	}
	return names[0], ""
}

func (p *rowParser) str(names ...string) string {
	_, v := p.lookup(names...)
	if strings.EqualFold(v, "NULL") {
		return ""
	}
	return v
}

// gtidSet removes the newlines MySQL puts after the commas of long sets.
func (p *rowParser) gtidSet(name string) string {
	return strings.ReplaceAll(strings.ReplaceAll(p.str(name), "\n", ""), " ", "")
}

func (p *rowParser) uint(names ...string) uint64 {
	name, v := p.lookup(names...)
	if v == "" || strings.EqualFold(v, "NULL") {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		p.fail(name, v, err)
	}
	return n
}

func (p *rowParser) fail(name, v string, err error) {
	if p.err == nil {
		p.err = fmt.Errorf("parse replica status column %s=%q: %w", name, v, err)
	}
}

// SQLThreadIdle reports whether a Slave_SQL_Running_State (Replica_SQL_
// Running_State on MySQL 8) says the SQL thread has executed everything its
// relay log holds and waits for more: "Slave has read all relay log;
// waiting for more updates" (MariaDB, MySQL 5.x), "Replica has read all
// relay log; ..." (MySQL 8.0.26+). With Exec_Master_Log_Pos still below
// Read_Master_Log_Pos, the relay log ends inside a transaction.
func SQLThreadIdle(state string) bool {
	return strings.Contains(strings.ToLower(state), "has read all relay log")
}
