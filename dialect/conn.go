package dialect

import (
	"github.com/go-sql-driver/mysql"

	"github.com/mharaft/mharaft/config"
)

// DriverConfig is the go-sql-driver configuration for the manager's user
// on s over TCP, with client-side parameter interpolation. Callers set the
// timeouts their use needs. It holds the password: never log it or its DSN.
func DriverConfig(s *config.Server) *mysql.Config {
	c := mysql.NewConfig()
	c.User, c.Passwd = s.User, s.Password
	c.Net, c.Addr = "tcp", s.Addr()
	c.InterpolateParams = true
	return c
}
