package testdb

import (
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
