package sqlstore

import (
	"database/sql"
	"fmt"
	"regexp"
	"strings"

	"github.com/dddkit/dddkit/repository"
)

// sqlite is SQLite (SQLITE_MAX_VARIABLE_NUMBER is 32766 since 3.32),
// whose transactions are serializable. It has one writer at a time, so a
// unit of work that writes takes the write lock at its BEGIN IMMEDIATE: a
// transaction that reads and then writes cannot take it later without
// risking SQLITE_BUSY, as busy_timeout does not wait where two readers
// would each wait for the other.
var sqlite = &dialect{
	name: "sqlite", title: "SQLite", quoteChar: '"', maxParams: 32766,
	serializable: true, connBegin: true, offsetAll: " LIMIT -1",
	snapshot: &sql.TxOptions{}, timeText: true, schema: sqliteCatalog{},
	glob: true, foldASCII: "lower(%s)", // SQLite's lower() folds ASCII alone
	returning: true, limitInSubquery: true,
}

// SQLite result codes, primary and extended, that sqlstore maps to the
// sentinels of package repository.
const (
	sqliteBusy                 = 5
	sqliteTooBig               = 18
	sqliteMismatch             = 20
	sqliteConstraintCheck      = 275
	sqliteConstraintForeignKey = 787
	sqliteConstraintNotNull    = 1299
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
	sqliteConstraintDatatype   = 3091
)

// sqliteCoder is the error of the modernc SQLite driver (and of others that
// report the extended result code), without importing it.
type sqliteCoder interface{ Code() int }

var (
	// sqliteFailedRE reads the message of a constraint error: "UNIQUE
	// constraint failed: t.a, t.b", "NOT NULL constraint failed: t.c",
	// "CHECK constraint failed: name", the driver adding " (code)".
	sqliteFailedRE = regexp.MustCompile(`(?:UNIQUE|NOT NULL|CHECK) constraint failed: (.+?)(?: \(\d+\))?$`)
	// sqliteDatatypeRE reads the message of a value refused by a STRICT
	// table: "cannot store TEXT value in INTEGER column t.c".
	sqliteDatatypeRE = regexp.MustCompile(`cannot store \S+ value in \S+ column (\S+?)(?: \(\d+\))?$`)
)

// sqliteClassify classifies the SQLite error err of result code code,
// raised by statement s on table (both may be unknown).
func sqliteClassify(s *stmt, code int, table string, err error) error {
	switch code {
	case sqliteConstraintPrimaryKey, sqliteConstraintUnique:
		t, cols := sqliteColumns(err.Error(), table)
		kind := repository.ErrUnique
		if s != nil && s.rootKey != "" && cols == s.rootKey {
			kind = repository.ErrExists
		}
		return dataError(kind, t, cols, "", err)
	case sqliteConstraintNotNull:
		t, col := sqliteColumns(err.Error(), table)
		return dataError(repository.ErrConstraint, t, col, "", err)
	case sqliteConstraintCheck:
		var name string
		if m := sqliteFailedRE.FindStringSubmatch(err.Error()); m != nil {
			name = m[1]
		}
		return dataError(repository.ErrConstraint, table, "", name, err)
	case sqliteConstraintForeignKey:
		return dataError(repository.ErrConstraint, table, "", "", err)
	case sqliteConstraintDatatype:
		t, col := table, ""
		if m := sqliteDatatypeRE.FindStringSubmatch(err.Error()); m != nil {
			t, col = splitColumn(m[1], table)
		}
		return dataError(repository.ErrInvalidValue, t, col, "", err)
	}
	switch code & 0xff {
	case sqliteBusy:
		return fmt.Errorf("%w: %w", repository.ErrConflict, err)
	case sqliteTooBig, sqliteMismatch:
		return dataError(repository.ErrInvalidValue, table, "", "", err)
	}
	return err
}

// sqliteColumns returns the table and the columns that msg, the message
// of a UNIQUE or NOT NULL constraint error, names ("t.a, t.b" gives t and
// "a, b"), or table and "" when it names none.
func sqliteColumns(msg, table string) (string, string) {
	m := sqliteFailedRE.FindStringSubmatch(msg)
	if m == nil {
		return table, ""
	}
	var cols []string
	for tc := range strings.SplitSeq(m[1], ", ") {
		var c string
		table, c = splitColumn(tc, table)
		cols = append(cols, c)
	}
	return table, strings.Join(cols, ", ")
}

// splitColumn splits "t.c" into t and c; a name without a table is c of
// table.
func splitColumn(tc, table string) (string, string) {
	if i := strings.LastIndexByte(tc, '.'); i >= 0 {
		return tc[:i], tc[i+1:]
	}
	return table, tc
}
