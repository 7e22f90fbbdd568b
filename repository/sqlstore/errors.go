package sqlstore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dddkit/dddkit/repository"
)

// SQLSTATE codes and SQLite result codes that sqlstore maps to the
// sentinels of package repository.
const (
	pgUniqueViolation      = "23505"
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"

	sqliteBusy                 = 5
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

// sqliteCoder is the error of the modernc SQLite driver (and of others that
// report the extended result code), without importing it.
type sqliteCoder interface{ Code() int }

// classify wraps err, the error of statement s, so that errors.Is matches
// the sentinel that describes it, keeping the driver's error in the chain:
//
//   - a serialization failure or a deadlock on PostgreSQL, and SQLITE_BUSY
//     (another writer holds the database) match [repository.ErrConflict]:
//     the transaction lost a race with a concurrent one, and running the
//     unit of work again on freshly loaded aggregates may succeed;
//   - a violation of the root's key by the INSERT of a root row matches
//     [repository.ErrExists]; a violation of another unique key (an
//     e-mail column, say) is reported as it is.
func classify(s *stmt, err error) error {
	if err == nil || errors.Is(err, repository.ErrConflict) || errors.Is(err, repository.ErrExists) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case pgSerializationFailure, pgDeadlockDetected:
			return fmt.Errorf("%w: %w", repository.ErrConflict, err)
		case pgUniqueViolation:
			// Detail names the columns of the violated key: "Key (id)=(1)
			// already exists."
			if s != nil && s.rootKey != "" && strings.HasPrefix(pe.Detail, "Key ("+s.rootKey+")=") {
				return fmt.Errorf("%w: %w", repository.ErrExists, err)
			}
		}
		return err
	}
	var se sqliteCoder
	if errors.As(err, &se) {
		switch code := se.Code(); {
		case code&0xff == sqliteBusy:
			return fmt.Errorf("%w: %w", repository.ErrConflict, err)
		case code == sqliteConstraintPrimaryKey || code == sqliteConstraintUnique:
			// The message names the columns of the violated key:
			// "UNIQUE constraint failed: orders.id".
			if s != nil && s.rootKey != "" && sqliteKeyViolated(err.Error(), s.rootKey) {
				return fmt.Errorf("%w: %w", repository.ErrExists, err)
			}
		}
	}
	return err
}

// sqliteKeyViolated reports whether msg, the message of a SQLite
// constraint error, names the key column key alone ("... failed:
// table.key"), not a unique key of several columns or of another column.
func sqliteKeyViolated(msg, key string) bool {
	_, cols, ok := strings.Cut(msg, "constraint failed: ")
	if !ok {
		return false
	}
	cols, _, _ = strings.Cut(cols, " (")
	return !strings.Contains(cols, ",") && strings.HasSuffix(cols, "."+key)
}
