package sqlstore

import "database/sql"

var (
	// postgres is PostgreSQL through pgx, natively or as database/sql
	// driver "pgx": slices bind as arrays.
	postgres = &dialect{
		name: "postgres", title: "PostgreSQL", dollar: true, anyArray: true, maxParams: 65535,
		lockSuffix: " FOR UPDATE", lockBeforeDelete: true, stmtSnapshot: true,
		snapshot: pgSnapshot,
	}
	// postgresNoArray is PostgreSQL through a database/sql driver that does
	// not bind Go slices (lib/pq, driver "postgres").
	postgresNoArray = &dialect{
		name: "postgres", title: "PostgreSQL", dollar: true, maxParams: 65535,
		lockSuffix: " FOR UPDATE", lockBeforeDelete: true, stmtSnapshot: true,
		snapshot: pgSnapshot,
	}
)

// pgSnapshot are the options of a read-only transaction that reads one
// snapshot on PostgreSQL.
var pgSnapshot = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
