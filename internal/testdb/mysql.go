package testdb

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// mysqlDatabase returns dsn pointing to database, or, when database is
// empty, to none.
func mysqlDatabase(dsn, database string) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", err
	}
	cfg.DBName = database
	return cfg.FormatDSN(), nil
}

// MySQLURL returns dsn, a DSN of go-sql-driver/mysql over TCP, as a
// mysql:// URL, the form of a DATABASE_URL: the user, the password, the
// address, the database and the parameters.
func MySQLURL(dsn string) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", err
	}
	if cfg.Net != "tcp" {
		return "", fmt.Errorf("a DSN over %s has no mysql:// URL", cfg.Net)
	}
	u := url.URL{Scheme: "mysql", Host: cfg.Addr, Path: "/" + cfg.DBName}
	if cfg.Passwd != "" {
		u.User = url.UserPassword(cfg.User, cfg.Passwd)
	} else if cfg.User != "" {
		u.User = url.User(cfg.User)
	}
	if i := strings.LastIndexByte(dsn, '?'); i >= 0 {
		u.RawQuery = dsn[i+1:] // the DSN's parameters are a query string
	}
	return u.String(), nil
}
