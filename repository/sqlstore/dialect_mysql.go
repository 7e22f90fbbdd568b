package sqlstore

import (
	"database/sql"
	"strings"
)

var (
	// mysqlDialect is MySQL (and MariaDB before it is known to be one, or
	// run on MySQL's path) through go-sql-driver/mysql, the driver
	// "mysql", with the DSN options of [MySQLDSN]. Its transactions run at
	// READ COMMITTED, not InnoDB's default REPEATABLE READ: each statement
	// reads the latest committed rows, and a load in a unit of work locks
	// the roots it reads, as on PostgreSQL.
	mysqlDialect = &dialect{
		name: "mysql", title: "MySQL", quoteChar: '`', maxParams: 65535,
		lockSuffix: " FOR UPDATE", shareSuffix: " LOCK IN SHARE MODE", writeSuffix: " FOR UPDATE",
		lockBeforeDelete: true, stmtSnapshot: true,
		offsetAll: " LIMIT 18446744073709551615", // MySQL's own advice for an OFFSET alone
		snapshot:  &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
		foldASCII: mysqlFoldASCII, exactText: " COLLATE utf8mb4_bin", likeEscape: '!', padSpace: true,
		lockReadsLatest: true,
		schema:          mysqlCatalog{},
	}
)

// mysqlFoldASCII lowers the 26 ASCII letters alone: LOWER() folds every
// letter the column's collation knows. REPLACE matches case-sensitively
// whatever the collation.
var mysqlFoldASCII = func() string {
	s := "%s"
	for c := 'A'; c <= 'Z'; c++ {
		s = "REPLACE(" + s + ", '" + string(c) + "', '" + strings.ToLower(string(c)) + "')"
	}
	return s
}()
