package sqlstore

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dddkit/dddkit/repository"
)

// classify wraps err, the error of statement s (nil for a control
// statement such as COMMIT), so that errors.Is matches the sentinel that
// describes it, keeping the driver's error in the chain, and names the
// statement's operation and table ("insert order_items: ..."):
//
//   - a serialization failure or a deadlock on PostgreSQL, and SQLITE_BUSY
//     (another writer holds the database) match [repository.ErrConflict]:
//     the transaction lost a race with a concurrent one, and running the
//     unit of work again on freshly loaded aggregates may succeed;
//   - a violation of the root's key by the INSERT of a root row matches
//     [repository.ErrExists];
//   - a violation of another unique key matches [repository.ErrUnique], of
//     a CHECK, NOT NULL or foreign key constraint [repository.ErrConstraint],
//     and a value the column cannot hold [repository.ErrInvalidValue]; all
//     these are a [*repository.DataError].
func classify(s *stmt, err error) error {
	if err == nil || errors.Is(err, repository.ErrConflict) || errors.Is(err, repository.ErrExists) {
		return err
	}
	var de *repository.DataError
	if errors.As(err, &de) {
		return err
	}
	var pb pgx.ErrPreprocessingBatch
	if errors.As(err, &pb) {
		// pgx prepares and encodes a whole batch before sending it: the
		// failing statement is the one pgx names, not the first.
		s = &stmt{sql: pb.SQL()}
	}
	op, table := s.target()
	var pe *pgconn.PgError
	var se sqliteCoder
	var me *mysql.MySQLError
	switch {
	case errors.As(err, &pe):
		err = pgClassify(s, pe, table, err)
	case errors.As(err, &me):
		err = mysqlClassify(s, me, table, err)
	case errors.As(err, &se):
		err = sqliteClassify(s, se.Code(), table, err)
	default:
		err = encodeClassify(s, table, err)
	}
	if table != "" {
		return fmt.Errorf("%s %s: %w", op, table, err)
	}
	return err
}

// target returns the operation of s (insert, update, delete or select) and
// the table it names first, both empty for a statement that sqlstore did
// not build.
func (s *stmt) target() (op, table string) {
	if s == nil {
		return "", ""
	}
	q := strings.TrimPrefix(s.sql, "WITH r AS (")
	var rest string
	switch {
	case strings.HasPrefix(q, "INSERT INTO "):
		op, rest = "insert", q[len("INSERT INTO "):]
	case strings.HasPrefix(q, "UPDATE "):
		op, rest = "update", q[len("UPDATE "):]
	case strings.HasPrefix(q, "DELETE FROM "):
		op, rest = "delete", q[len("DELETE FROM "):]
	case strings.HasPrefix(q, "SELECT "):
		i := strings.Index(q, ` FROM "`)
		if i < 0 {
			i = strings.Index(q, " FROM `")
		}
		if i < 0 {
			return "", ""
		}
		op, rest = "select", q[i+len(" FROM "):]
	default:
		return "", ""
	}
	// A quoted name, qualified by a quoted schema or not: "sales"."orders",
	// or `sales`.`orders` on MySQL.
	if rest == "" || (rest[0] != '"' && rest[0] != '`') {
		return "", ""
	}
	mark := rest[:1]
	var b strings.Builder
	for {
		name, ok := strings.CutPrefix(rest, mark)
		if !ok {
			return "", ""
		}
		end := strings.Index(name, mark)
		if end <= 0 {
			return "", ""
		}
		b.WriteString(name[:end])
		rest = name[end+1:]
		if !strings.HasPrefix(rest, "."+mark) {
			return op, b.String()
		}
		b.WriteByte('.')
		rest = rest[1:]
	}
}

// dataError returns the error of a write refused because of its data.
func dataError(kind error, table, column, constraint string, err error) error {
	return &repository.DataError{Kind: kind, Table: table, Column: column, Constraint: constraint, Err: err}
}

// encodeRE matches the error of pgx when a bind parameter does not fit the
// parameter's type: a client-side refusal, before anything is sent.
var encodeRE = regexp.MustCompile(`failed to encode args\[(\d+)\]: .*(?:greater than maximum|less than minimum|out of range|overflow)`)

// encodeClassify classifies the errors that the driver raises before the
// statement reaches the database.
func encodeClassify(s *stmt, table string, err error) error {
	m := encodeRE.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	i, _ := strconv.Atoi(m[1])
	return dataError(repository.ErrInvalidValue, table, s.paramColumn(i), "", err)
}

// paramColumn returns the column that the i-th parameter (from 0) of s,
// a statement with $n placeholders, is bound to, or "".
func (s *stmt) paramColumn(i int) string {
	if s == nil {
		return ""
	}
	ph := "$" + strconv.Itoa(i+1)
	q := s.sql
	if strings.HasPrefix(q, "INSERT INTO ") {
		// INSERT INTO "t" ("a", "b") VALUES ($1, $2), ($3, $4)
		open, end := strings.IndexByte(q, '('), strings.Index(q, ") VALUES (")
		if open < 0 || end < open {
			return ""
		}
		cols := strings.Split(q[open+1:end], ", ")
		row := q[end+len(") VALUES ("):]
		row, _, _ = strings.Cut(row, ")")
		if len(strings.Split(row, ", ")) != len(cols) {
			return ""
		}
		return strings.Trim(cols[i%len(cols)], `"`)
	}
	// UPDATE "t" SET "a" = $1, ... WHERE "k" = $2
	for rest := q; ; {
		at := strings.Index(rest, " = "+ph)
		if at < 0 {
			return ""
		}
		after := rest[at+len(" = "+ph):]
		if after == "" || after[0] < '0' || after[0] > '9' {
			head := rest[:at]
			if j := strings.LastIndexByte(head[:max(len(head)-1, 0)], '"'); j >= 0 && strings.HasSuffix(head, `"`) {
				return head[j+1 : len(head)-1]
			}
			return ""
		}
		rest = after
	}
}

// pgKeyColumns returns the columns of a key as PostgreSQL's Detail of a
// unique violation lists them: "Key (list_id, pos)=(1, 2) already exists."
func pgKeyColumns(detail string) string {
	rest, ok := strings.CutPrefix(detail, "Key (")
	if !ok {
		return ""
	}
	cols, _, ok := strings.Cut(rest, ")=")
	if !ok {
		return ""
	}
	return cols
}

// positionHint returns advice to add to err when it is a unique violation
// of a key that holds the position column of a mapped child table: a
// reorder rewrites the positions one row at a time, so such a key is
// violated in between unless it is checked at the commit.
func positionHint(children []*child, err error) string {
	var de *repository.DataError
	if !errors.As(err, &de) || de.Kind != repository.ErrUnique || de.Column == "" {
		return ""
	}
	for _, c := range children {
		if c.spec.Position == "" || (de.Table != c.name && !strings.HasSuffix(c.name, "."+de.Table)) {
			continue
		}
		pos := c.spec.Position
		for col := range strings.SplitSeq(de.Column, ", ") {
			if col == pos {
				return fmt.Sprintf(" (a unique key on the position column %s of %s must be DEFERRABLE INITIALLY DEFERRED on PostgreSQL, and cannot be used on SQLite: a reorder moves one row at a time)", pos, c.name)
			}
		}
	}
	return ""
}
