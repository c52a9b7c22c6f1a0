package jepsen

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The "one actor" checker reads what the MySQL servers themselves recorded:
// each mariadbd of a round runs with general_log=1 and log_output=TABLE, so
// every statement lands in mysql.general_log, a CSV table whose file
// (<datadir>/mysql/general_log.CSV) is written as each statement arrives
// and survives kill -9 (a restart after a kill starts a new file and keeps
// the old one as a saved part, see genlog.go). Every row names the connection's user and client
// address, and every manager has its own address in its own namespace, so
// the rows tell which manager sent which statement. See doc.go for the rule.

// GenLogRecord is one row of a server's general log.
type GenLogRecord struct {
	At       time.Time
	User     string // account name of the connection ("mha")
	IP       string // client address ("" for the local socket)
	Thread   int64  // connection id
	Command  string // Connect, Query, Execute, Quit, Shutdown, Kill, ...
	Argument string
}

// ParseGeneralLogCSV parses the CSV file of mysql.general_log (MariaDB's
// CSV engine: every field quoted except the numbers, backslash escapes,
// one record per line). Times are the server's local time (loc). A last
// record cut short by a kill is ignored. Rows without a user/address (a
// Connect row carries it in its argument) take the address from their
// connection's Connect row.
func ParseGeneralLogCSV(data []byte, loc *time.Location) ([]GenLogRecord, error) {
	var out []GenLogRecord
	ipOf := map[int64]string{}
	userOf := map[int64]string{}
	for len(data) > 0 {
		fields, rest, complete := csvRecord(data)
		data = rest
		if !complete {
			break
		}
		if len(fields) == 0 || (len(fields) == 1 && fields[0] == "") {
			continue
		}
		if len(fields) != 6 {
			return out, fmt.Errorf("general log record with %d fields, want 6: %q", len(fields), strings.Join(fields, ","))
		}
		at, err := time.ParseInLocation("2006-01-02 15:04:05.999999", fields[0], loc)
		if err != nil {
			return out, fmt.Errorf("general log time %q: %w", fields[0], err)
		}
		thread, _ := strconv.ParseInt(fields[2], 10, 64)
		rec := GenLogRecord{At: at, Thread: thread, Command: fields[4], Argument: fields[5]}
		rec.User, rec.IP = parseUserHost(fields[1])
		if rec.Command == "Connect" {
			// "mha@10.213.5.21 on  using TCP/IP"
			if u, rest, ok := strings.Cut(rec.Argument, "@"); ok {
				host, _, _ := strings.Cut(rest, " ")
				if rec.User == "" {
					rec.User = u
				}
				if rec.IP == "" && host != "localhost" {
					rec.IP = host
				}
			}
			ipOf[thread], userOf[thread] = rec.IP, rec.User
		}
		if rec.IP == "" {
			rec.IP = ipOf[thread]
		}
		if rec.User == "" {
			rec.User = userOf[thread]
		}
		out = append(out, rec)
	}
	return out, nil
}

// csvRecord splits off one record: its fields, the rest of data, and
// whether the record ended with a newline.
func csvRecord(data []byte) (fields []string, rest []byte, complete bool) {
	var cur bytes.Buffer
	inQuotes := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inQuotes {
			switch c {
			case '\\':
				if i+1 >= len(data) {
					return nil, nil, false
				}
				i++
				switch data[i] {
				case 'n':
					cur.WriteByte('\n')
				case 'r':
					cur.WriteByte('\r')
				case 't':
					cur.WriteByte('\t')
				case '0':
					cur.WriteByte(0)
				default:
					cur.WriteByte(data[i])
				}
			case '"':
				inQuotes = false
			default:
				cur.WriteByte(c)
			}
			continue
		}
		switch c {
		case '"':
			inQuotes = true
		case ',':
			fields = append(fields, cur.String())
			cur.Reset()
		case '\n':
			fields = append(fields, cur.String())
			return fields, data[i+1:], true
		case '\r':
		default:
			cur.WriteByte(c)
		}
	}
	return nil, nil, false
}

// parseUserHost splits general_log.user_host, "mha[mha] @  [10.213.5.21]"
// or "root[root] @ localhost []", into the account and the address.
func parseUserHost(s string) (user, ip string) {
	if i := strings.IndexByte(s, '['); i > 0 {
		user = s[:i]
	} else if i := strings.Index(s, "]"); i > 0 && strings.HasPrefix(s, "[") {
		user = s[1:i]
	}
	if i := strings.LastIndexByte(s, '['); i >= 0 && strings.HasSuffix(s, "]") && strings.Contains(s, "@") {
		ip = s[i+1 : len(s)-1]
	}
	return user, ip
}

// stateChangingPrefixes start the statements that change a server: its
// replication, its writability, its data or its process.
var stateChangingPrefixes = []string{
	"CHANGE MASTER", "CHANGE REPLICATION", "START SLAVE", "START REPLICA", "START ALL", "STOP SLAVE", "STOP REPLICA",
	"STOP ALL", "RESET SLAVE", "RESET REPLICA", "RESET MASTER", "FLUSH", "UNLOCK TABLES", "KILL", "BINLOG",
	"INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD DATA", "LOAD XML", "XA ", "SHUTDOWN", "CREATE", "DROP",
	"ALTER", "TRUNCATE", "RENAME", "PURGE", "GRANT", "REVOKE", "INSTALL", "UNINSTALL",
}

// IsStateChange reports whether a general log row changes the server: a
// SHUTDOWN, KILL or REFRESH command, or a query (or prepared statement)
// of which any statement — a row may hold many, separated by ";" —
// starts with one of stateChangingPrefixes or SETs a GLOBAL variable.
// The detector's ping_type=INSERT writes (infra.chk_masterha) are
// monitoring, not acting.
func IsStateChange(command, arg string) bool {
	switch command {
	case "Shutdown", "Kill", "Refresh":
		return true
	case "Query", "Execute":
	default:
		return false
	}
	for rest := arg; rest != ""; {
		var stmt string
		stmt, rest = nextStatement(rest)
		if statementChanges(stmt) {
			return true
		}
	}
	return false
}

// statementChanges classifies one statement by its first words.
func statementChanges(stmt string) bool {
	s := stripLeadingComments(stmt)
	if len(s) > 200 {
		s = s[:200]
	}
	s = strings.Join(strings.Fields(strings.ToUpper(s)), " ")
	if strings.Contains(s, "INFRA.CHK_MASTERHA") || strings.Contains(s, "EXISTS INFRA") {
		return false
	}
	if strings.HasPrefix(s, "SET ") {
		return strings.Contains(s, "GLOBAL ") || strings.Contains(s, "@@GLOBAL.")
	}
	for _, p := range stateChangingPrefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// nextStatement splits s at its first ";" outside quotes and comments.
func nextStatement(s string) (stmt, rest string) {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote != '`' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			if j := strings.Index(s[i+2:], "*/"); j >= 0 {
				i += j + 3
			} else {
				return s, ""
			}
		case c == ';':
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// ActorSpan is what one run of one actor (a manager, named by its
// address) changed on one server: the times of its first and last
// state-changing statements there.
type ActorSpan struct {
	Actor     string    `json:"actor"`         // manager ID, or the client address when it is no manager's
	Run       string    `json:"run,omitempty"` // the run's tag (see RunTag); "" for untagged connections
	Server    string    `json:"server"`
	First     time.Time `json:"first"`
	Last      time.Time `json:"last"`
	N         int       `json:"statements"`
	FirstStmt string    `json:"first_statement"`
	LastStmt  string    `json:"last_statement"`
}

// Name is the span's actor, with its run when it has one.
func (s ActorSpan) Name() string {
	if s.Run == "" {
		return s.Actor
	}
	return s.Actor + " (run " + s.Run + ")"
}

// RunTag returns the run tag of a statement that carries one: the failover
// package's fencing starts every connection of a run with a statement
// holding the comment "/* mharaft run <tag> */".
func RunTag(arg string) string {
	const marker = "/* mharaft run "
	i := strings.Index(arg, marker)
	if i < 0 {
		return ""
	}
	tag, _, ok := strings.Cut(arg[i+len(marker):], " */")
	if !ok {
		return ""
	}
	return tag
}

// ActorSpans computes, for one server's general log, the span of
// state-changing statements of every run of every client that logged in
// as user (the managers' account) over the network. actors maps a client
// address to its manager's ID; an address that is in no map entry is an
// actor of its own (named by the address). A connection belongs to the run
// named by the first tagged statement on it (RunTag); the statements of
// untagged connections form one span per actor.
func ActorSpans(server string, recs []GenLogRecord, user string, actors map[string]string) []ActorSpan {
	runOf := map[int64]string{} // connection id -> run tag
	by := map[[2]string]*ActorSpan{}
	var order [][2]string
	for _, r := range recs {
		if r.User != user || r.IP == "" || r.IP == "127.0.0.1" || r.IP == "::1" {
			continue
		}
		if _, tagged := runOf[r.Thread]; !tagged {
			if tag := RunTag(r.Argument); tag != "" {
				runOf[r.Thread] = tag
			}
		}
		if !IsStateChange(r.Command, r.Argument) {
			continue
		}
		name := actors[r.IP]
		if name == "" {
			name = r.IP
		}
		key := [2]string{name, runOf[r.Thread]}
		s := by[key]
		if s == nil {
			s = &ActorSpan{Actor: name, Run: key[1], Server: server, First: r.At, Last: r.At, FirstStmt: short(r.Command, r.Argument)}
			by[key] = s
			order = append(order, key)
		}
		if r.At.Before(s.First) {
			s.First, s.FirstStmt = r.At, short(r.Command, r.Argument)
		}
		if !r.At.Before(s.Last) {
			s.Last, s.LastStmt = r.At, short(r.Command, r.Argument)
		}
		s.N++
	}
	out := make([]ActorSpan, 0, len(order))
	for _, k := range order {
		s := by[k]
		if s.LastStmt == "" {
			s.LastStmt = s.FirstStmt
		}
		out = append(out, *s)
	}
	return out
}

func short(command, arg string) string {
	s := strings.Join(strings.Fields(arg), " ")
	if command != "Query" {
		s = command + " " + s
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// OneActorViolation is two runs (of different actors, or two runs of one
// actor) that changed servers of the same application in overlapping
// intervals.
type OneActorViolation struct {
	A      ActorSpan `json:"a"`
	B      ActorSpan `json:"b"`
	Detail string    `json:"detail"`
}

// CheckOneActor takes the spans of every server of ONE application and
// returns every pair of spans of different runs that overlap in time
// (closed intervals: [First, Last] of A and of B share an instant). See
// sameRun and doc.go.
func CheckOneActor(spans []ActorSpan) []OneActorViolation {
	s := append([]ActorSpan(nil), spans...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].First.Before(s[j].First) })
	var out []OneActorViolation
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			a, b := s[i], s[j]
			if sameRun(a, b) || b.First.After(a.Last) {
				continue
			}
			out = append(out, OneActorViolation{A: a, B: b, Detail: fmt.Sprintf(
				"%s changed %s from %s to %s (%d statements, last %q) while %s changed %s from %s to %s (%d statements, first %q)",
				a.Name(), a.Server, a.First.Format("15:04:05.000000"), a.Last.Format("15:04:05.000000"), a.N, a.LastStmt,
				b.Name(), b.Server, b.First.Format("15:04:05.000000"), b.Last.Format("15:04:05.000000"), b.N, b.FirstStmt)})
		}
	}
	return out
}

// sameRun: spans of one actor are of one run when their run tags are equal
// or either has none (an untagged connection cannot be told apart from the
// actor's runs, so it is judged as per actor).
func sameRun(a, b ActorSpan) bool {
	return a.Actor == b.Actor && (a.Run == b.Run || a.Run == "" || b.Run == "")
}

// Duplicates returns the values that occur more than once in vals, sorted.
func Duplicates(vals []int64) []int64 {
	seen := map[int64]int{}
	for _, v := range vals {
		seen[v]++
	}
	var out []int64
	for v, n := range seen {
		if n > 1 {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func stripLeadingComments(s string) string {
	for {
		s = strings.TrimLeft(s, " \t\r\n(")
		switch {
		case strings.HasPrefix(s, "/*"):
			i := strings.Index(s, "*/")
			if i < 0 {
				return ""
			}
			s = s[i+2:]
		case strings.HasPrefix(s, "-- "), strings.HasPrefix(s, "#"):
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				return ""
			}
			s = s[i+1:]
		default:
			return s
		}
	}
}
