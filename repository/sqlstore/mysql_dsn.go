package sqlstore

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// mysqlTimeZone is the session time zone a DB needs on MySQL and MariaDB,
// as the driver's DSN parameter time_zone sets it (SET time_zone='+00:00'
// on every new connection).
const mysqlTimeZone = "'+00:00'"

// mysqlDriverPacket is the driver's default limit of a packet (its
// Config.MaxAllowedPacket, 64 MiB): a round trip of a DB never exceeds it
// nor the server's max_allowed_packet.
const mysqlDriverPacket = 64 << 20

// mysqlNeeds are the boolean options of go-sql-driver/mysql that a DB
// needs, with why, in the order they are checked.
var mysqlNeeds = []struct {
	name string
	get  func(*mysql.Config) bool
	set  func(*mysql.Config)
	why  string
}{
	{"multiStatements", func(c *mysql.Config) bool { return c.MultiStatements }, func(c *mysql.Config) { c.MultiStatements = true },
		"the statements of an operation go in one round trip"},
	{"interpolateParams", func(c *mysql.Config) bool { return c.InterpolateParams }, func(c *mysql.Config) { c.InterpolateParams = true },
		"statements go as text, without a prepare and a close each, and several in one round trip"},
	{"parseTime", func(c *mysql.Config) bool { return c.ParseTime }, func(c *mysql.Config) { c.ParseTime = true },
		"DATETIME and TIMESTAMP columns scan into time.Time"},
	{"clientFoundRows", func(c *mysql.Config) bool { return c.ClientFoundRows }, func(c *mysql.Config) { c.ClientFoundRows = true },
		"an UPDATE reports the rows it matched, not only those it changed, which the checks of a save read"},
}

// MySQLDSN returns the DSN of go-sql-driver/mysql (the driver "mysql") that
// a [DB] of [NewSQL] needs on MySQL or MariaDB, made from dsn: a DSN of
// that driver ("user:pass@tcp(host:3306)/db?param=value") or a URL
// ("mysql://user:pass@host:3306/db?param=value", or mariadb://, with the
// driver's parameters; a missing port is 3306). It keeps every setting of dsn, and
// sets those that are missing:
//
//   - multiStatements=true and interpolateParams=true: the statements of
//     an operation go as text, with their arguments formatted and escaped
//     by the driver, several in one round trip (see the package doc,
//     MySQL and MariaDB);
//   - parseTime=true: DATETIME and TIMESTAMP columns scan into time.Time;
//   - clientFoundRows=true: an UPDATE reports the rows it matched, as
//     PostgreSQL and SQLite do, not only those whose values it changed;
//     the checks of a save read that count;
//   - loc=UTC (the driver's default) and time_zone='+00:00', the
//     session's time zone, set on each connection: a time is written and
//     read as UTC, and the server's NOW() and TIMESTAMP columns agree.
//
// It refuses, with an error that names the setting, a dsn that sets one of
// these otherwise (clientFoundRows=false, loc=Local, a time_zone other than
// UTC), a charset or collation in which the driver cannot escape values it
// interpolates (big5, cp932, gb2312, gbk, sjis), and a maxAllowedPacket
// below the driver's default of 64 MiB, on which a DB plans the size of
// its round trips (0, the server's value read at each connection, is
// accepted). A DB checks the settings of the session once, on one of its
// connections, the first time it is used, whatever DSN it was opened with
// (see the package's documentation).
func MySQLDSN(dsn string) (string, error) {
	cfg, explicit, err := parseMySQLDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("sqlstore: MySQLDSN: %w", err)
	}
	for _, n := range mysqlNeeds {
		if _, set := explicit[n.name]; set && !n.get(cfg) {
			return "", fmt.Errorf("sqlstore: MySQLDSN: %s=%s: sqlstore needs %s=true: %s (leave the parameter out)", n.name, explicit[n.name], n.name, n.why)
		}
		n.set(cfg)
	}
	if cfg.Loc != time.UTC {
		return "", fmt.Errorf("sqlstore: MySQLDSN: loc=%s: sqlstore needs loc=UTC, the session's time zone being '+00:00' (leave the parameter out)", cfg.Loc)
	}
	switch tz, set := cfg.Params["time_zone"]; {
	case !set:
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		cfg.Params["time_zone"] = mysqlTimeZone
	case !utcZone(tz):
		return "", fmt.Errorf("sqlstore: MySQLDSN: time_zone=%s: sqlstore needs the session's time zone to be '+00:00' (leave the parameter out)", tz)
	}
	if p := cfg.MaxAllowedPacket; p > 0 && p < mysqlDriverPacket {
		return "", fmt.Errorf("sqlstore: MySQLDSN: maxAllowedPacket=%d: a DB sizes its round trips by the server's max_allowed_packet, up to %d bytes, and the driver would refuse to send them (leave the parameter out, or set 0 to use the server's)", p, mysqlDriverPacket)
	}
	out := cfg.FormatDSN()
	// The driver checks the charset and collation when it parses a DSN
	// with interpolateParams=true.
	if _, err := mysql.ParseDSN(out); err != nil {
		cs := strings.Trim(explicit["charset"]+" "+explicit["collation"], " ")
		return "", fmt.Errorf("sqlstore: MySQLDSN: %s: %w: the driver cannot escape the values it interpolates in big5, cp932, gb2312, gbk or sjis (use utf8mb4)", cs, err)
	}
	return out, nil
}

// utcZone reports whether tz, the value of the DSN parameter time_zone,
// sets the session's time zone to UTC.
func utcZone(tz string) bool {
	switch strings.ToUpper(strings.Trim(tz, `'"`)) {
	case "+00:00", "+0:00", "-00:00", "UTC":
		return true
	}
	return false
}

// parseMySQLDSN parses dsn, a DSN of go-sql-driver/mysql or a mysql:// URL,
// with the driver's parser, and returns the parameters it sets explicitly,
// as written.
func parseMySQLDSN(dsn string) (*mysql.Config, map[string]string, error) {
	if strings.HasPrefix(dsn, "mysql://") || strings.HasPrefix(dsn, "mariadb://") {
		return parseMySQLURL(dsn)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid DSN: %w", err)
	}
	// The parameters follow the first '?' after the last '/', as the
	// driver reads them.
	explicit := map[string]string{}
	if i := strings.LastIndexByte(dsn, '/'); i >= 0 {
		if _, params, ok := strings.Cut(dsn[i+1:], "?"); ok {
			for kv := range strings.SplitSeq(params, "&") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					explicit[k] = v
				}
			}
		}
	}
	return cfg, explicit, nil
}

// parseMySQLURL parses dsn, a URL "mysql://user:pass@host:port/db?params"
// (or mariadb://).
func parseMySQLURL(dsn string) (*mysql.Config, map[string]string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid URL: %w", err)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid URL parameters: %w", err)
	}
	explicit := map[string]string{}
	for k, vs := range q {
		explicit[k] = vs[len(vs)-1]
	}
	// The driver's parser reads the parameters, escaped as it expects: it
	// unescapes the values of session variables, but not the list of
	// charsets, whose commas stay as they are.
	cfg, err := mysql.ParseDSN("/?" + strings.ReplaceAll(q.Encode(), "%2C", ","))
	if err != nil {
		return nil, nil, fmt.Errorf("invalid URL parameters: %w", err)
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.Net, cfg.Addr = "tcp", u.Host
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1"
	}
	if u.Port() == "" {
		cfg.Addr = strings.TrimSuffix(cfg.Addr, ":") + ":3306"
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if strings.Contains(cfg.DBName, "/") {
		return nil, nil, fmt.Errorf("invalid URL %q: the database name has a slash", u.Redacted())
	}
	// The driver's DSN cannot hold every user name and password (it
	// splits them at the first ':', the address at the last '@' before
	// the last '/'): refuse one it would read back otherwise.
	back, err := mysql.ParseDSN(cfg.FormatDSN())
	if err != nil || back.User != cfg.User || back.Passwd != cfg.Passwd || back.Addr != cfg.Addr || back.DBName != cfg.DBName {
		return nil, nil, errors.New("the user name, password or database of the URL cannot be written in a DSN of go-sql-driver/mysql: build a mysql.Config and use sql.OpenDB(mysql.NewConnector(cfg)) with the options of MySQLDSN")
	}
	return cfg, explicit, nil
}
