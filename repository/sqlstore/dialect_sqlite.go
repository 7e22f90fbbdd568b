package sqlstore

import "database/sql"

// sqlite is SQLite (SQLITE_MAX_VARIABLE_NUMBER is 32766 since 3.32),
// whose transactions are serializable. It has one writer at a time, so a
// unit of work that writes takes the write lock at its BEGIN IMMEDIATE: a
// transaction that reads and then writes cannot take it later without
// risking SQLITE_BUSY, as busy_timeout does not wait where two readers
// would each wait for the other.
var sqlite = &dialect{
	name: "sqlite", title: "SQLite", maxParams: 32766,
	serializable: true, connBegin: true, offsetAll: " LIMIT -1",
	snapshot: &sql.TxOptions{}, timeText: true,
}
