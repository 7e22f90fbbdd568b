package sqlstore

import (
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// dialect is what differs between the SQL of the supported databases.
type dialect struct {
	name string
	// dollar selects $1, $2, ... placeholders; otherwise ?.
	dollar bool
	// anyArray deletes removed children with "= ANY($n)" and one array
	// parameter; otherwise with "IN (?, ?, ...)".
	anyArray bool
	// forUpdate reports SELECT ... FOR UPDATE support, used to lock the root
	// row before its children are deleted.
	forUpdate bool
	// maxParams is the most bind parameters one statement may carry.
	maxParams int
	// snapshot are the options of a database/sql transaction whose
	// statements read one snapshot.
	snapshot *sql.TxOptions
}

var (
	// postgres is PostgreSQL through pgx, natively or as database/sql
	// driver "pgx": slices bind as arrays.
	postgres = &dialect{name: "postgres", dollar: true, anyArray: true, forUpdate: true, maxParams: 65535, snapshot: pgSnapshot}
	// postgresNoArray is PostgreSQL through a database/sql driver that does
	// not bind Go slices (lib/pq, driver "postgres").
	postgresNoArray = &dialect{name: "postgres", dollar: true, forUpdate: true, maxParams: 65535, snapshot: pgSnapshot}
	// sqlite is SQLite (SQLITE_MAX_VARIABLE_NUMBER is 32766 since 3.32),
	// whose transactions are serializable.
	sqlite = &dialect{name: "sqlite", maxParams: 32766, snapshot: &sql.TxOptions{}}
)

var pgSnapshot = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}

// dialectFor returns the dialect of a database/sql driver name.
func dialectFor(driver string) (*dialect, error) {
	switch driver {
	case "pgx", "pgx/v5":
		return postgres, nil
	case "postgres":
		return postgresNoArray, nil
	case "sqlite", "sqlite3":
		return sqlite, nil
	}
	return nil, fmt.Errorf("sqlstore: unknown database/sql driver %q (want pgx, postgres, sqlite or sqlite3)", driver)
}

var (
	tableRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)
	columnRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// maxIdent is PostgreSQL's identifier length limit (NAMEDATALEN-1): a longer
// name is truncated silently by the server, so it is refused up front.
const maxIdent = 63

func checkIdent(what, name string, re *regexp.Regexp) error {
	if !re.MatchString(name) {
		return fmt.Errorf("invalid %s name %q (want %s)", what, name, re)
	}
	for part := range strings.SplitSeq(name, ".") {
		if len(part) > maxIdent {
			return fmt.Errorf("invalid %s name %q: longer than %d bytes", what, name, maxIdent)
		}
	}
	return nil
}

// quote returns name, a validated identifier optionally qualified by a
// schema, with each part in double quotes: "sales"."orders". Both
// PostgreSQL and SQLite quote identifiers this way.
func quote(name string) string {
	var b strings.Builder
	for i, part := range strings.Split(name, ".") {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteByte('"')
		b.WriteString(part)
		b.WriteByte('"')
	}
	return b.String()
}

// builder writes one statement and collects its arguments.
type builder struct {
	d    *dialect
	b    strings.Builder
	args []any
}

func (w *builder) s(str string) { w.b.WriteString(str) }

// p appends v as the next bind parameter.
func (w *builder) p(v any) {
	w.args = append(w.args, v)
	if w.d.dollar {
		w.b.WriteByte('$')
		w.b.WriteString(strconv.Itoa(len(w.args)))
		return
	}
	w.b.WriteByte('?')
}

// stmt returns the statement built so far and resets w.
func (w *builder) stmt(c check) stmt {
	s := stmt{sql: w.b.String(), args: w.args, check: c}
	w.b.Reset()
	w.args = nil
	return s
}
