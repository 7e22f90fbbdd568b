package sqlstore

import (
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dddkit/dddkit/repository"
)

var (
	// postgres is PostgreSQL through pgx, natively or as database/sql
	// driver "pgx": slices bind as arrays.
	postgres = &dialect{
		name: "postgres", title: "PostgreSQL", dollar: true, quoteChar: '"', anyArray: true, maxParams: 65535,
		lockSuffix: " FOR UPDATE", shareSuffix: " FOR SHARE", writeSuffix: " FOR NO KEY UPDATE",
		lockBeforeDelete: true, stmtSnapshot: true,
		snapshot: pgSnapshot, overrideKey: " OVERRIDING SYSTEM VALUE", schema: pgCatalog{},
		foldASCII: pgFoldASCII, returning: true, limitInSubquery: true,
		txOptions: sqlTxOptions,
	}
	// postgresNoArray is PostgreSQL through a database/sql driver that does
	// not bind Go slices (lib/pq, driver "postgres").
	postgresNoArray = &dialect{
		name: "postgres", title: "PostgreSQL", dollar: true, quoteChar: '"', maxParams: 65535,
		lockSuffix: " FOR UPDATE", shareSuffix: " FOR SHARE", writeSuffix: " FOR NO KEY UPDATE",
		lockBeforeDelete: true, stmtSnapshot: true,
		snapshot: pgSnapshot, overrideKey: " OVERRIDING SYSTEM VALUE", schema: pgCatalog{},
		foldASCII: pgFoldASCII, returning: true, limitInSubquery: true,
		txOptions: sqlTxOptions,
	}
)

// pgFoldASCII lowers ASCII letters alone, as SQLite's lower() does:
// PostgreSQL's lower() folds every letter its locale knows.
const pgFoldASCII = "translate(%s, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"

// pgSnapshot are the options of a read-only transaction that reads one
// snapshot on PostgreSQL.
var pgSnapshot = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}

// SQLSTATE codes that sqlstore maps to the sentinels of package
// repository.
const (
	pgUniqueViolation      = "23505"
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
)

// pgInvalidValue are the SQLSTATE codes of a value that its column cannot
// hold.
var pgInvalidValue = map[string]bool{
	"22001": true, // string_data_right_truncation: longer than varchar(n)
	"22003": true, // numeric_value_out_of_range
	"22008": true, // datetime_field_overflow
	"22021": true, // character_not_in_repertoire: a NUL, invalid UTF-8
	"22P05": true, // untranslatable_character
	"54000": true, // program_limit_exceeded: an index row over 2,704 bytes
}

// pgClassify classifies pe, the error of PostgreSQL in err, raised by
// statement s on table (both may be unknown).
func pgClassify(s *stmt, pe *pgconn.PgError, table string, err error) error {
	if pe.TableName != "" {
		table = pe.TableName
	}
	switch {
	case pe.Code == pgSerializationFailure || pe.Code == pgDeadlockDetected:
		return fmt.Errorf("%w: %w", repository.ErrConflict, err)
	case pe.Code == pgUniqueViolation:
		// Detail names the columns of the violated key: "Key (id)=(1)
		// already exists."
		cols := pgKeyColumns(pe.Detail)
		kind := repository.ErrUnique
		if s != nil && s.rootKey != "" && cols == s.rootKey {
			kind = repository.ErrExists
		}
		return dataError(kind, table, cols, pe.ConstraintName, err)
	case pe.Code == "23502" || pe.Code == "23503" || pe.Code == "23514":
		// not_null_violation, foreign_key_violation, check_violation
		return dataError(repository.ErrConstraint, table, pe.ColumnName, pe.ConstraintName, err)
	case pgInvalidValue[pe.Code]:
		return dataError(repository.ErrInvalidValue, table, pe.ColumnName, pe.ConstraintName, err)
	}
	return err
}
