package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// dialect is what differs between the SQL of the supported databases: a
// set of named capabilities, one value per database and driver family
// (dialect_postgres.go, dialect_sqlite.go). The code that builds and runs
// statements reads a capability, never which database it is.
type dialect struct {
	// name is the database's name in messages ("postgres", "sqlite");
	// title is its proper name ("PostgreSQL", "SQLite").
	name, title string
	// dollar selects $1, $2, ... placeholders; otherwise ?.
	dollar bool
	// quoteChar encloses an identifier in SQL ('"'); a qualified name
	// has each of its parts enclosed (see quote).
	quoteChar byte
	// anyArray deletes removed children with "= ANY($n)" and one array
	// parameter; otherwise with "IN (?, ?, ...)".
	anyArray bool
	// maxParams is the most bind parameters one statement may carry.
	maxParams int
	// lockSuffix is appended to a SELECT of a root to lock its row until
	// the transaction ends (" FOR UPDATE"); empty where the database has
	// no row locks.
	lockSuffix string
	// shareSuffix and writeSuffix are appended to the SELECT of roots to
	// lock their rows against writers (" FOR SHARE"), and as a writer
	// that changes no key (" FOR NO KEY UPDATE"), where stmtSnapshot
	// makes a load lock the roots it reads.
	shareSuffix, writeSuffix string
	// lockBeforeDelete locks and checks the root of an aggregate with
	// children before its children are deleted: the root is deleted last
	// (foreign keys), and a concurrent save, which updates the root
	// first, then waits for the delete instead of deadlocking with it.
	lockBeforeDelete bool
	// stmtSnapshot reports that each statement of a transaction sees the
	// database as of its own start (PostgreSQL's READ COMMITTED), not one
	// snapshot for the whole transaction.
	stmtSnapshot bool
	// serializable reports that every transaction is serializable,
	// whatever isolation level is asked for.
	serializable bool
	// connBegin begins the transaction of a write by sending BEGIN on a
	// held connection, BEGIN IMMEDIATE for a unit of work that writes,
	// instead of through database/sql's BeginTx.
	connBegin bool
	// offsetAll is the LIMIT clause that an OFFSET without a limit needs
	// (" LIMIT -1"); empty where OFFSET may stand alone.
	offsetAll string
	// snapshot are the options of a database/sql transaction whose
	// statements read one snapshot.
	snapshot *sql.TxOptions
	// timeText reports a database without a time type, which compares
	// times as text: every time.Time is sent in one form that sorts by
	// instant (see timeval.go).
	timeText bool
	// overrideKey is the clause, before VALUES, of an INSERT that sends
	// the value of a generated key (" OVERRIDING SYSTEM VALUE", which an
	// identity column GENERATED ALWAYS needs); empty where none is needed.
	overrideKey string
	// schema reads the database's catalog and writes its DDL (schema.go).
	schema schemaDialect
	// glob runs the patterns of Like, Contains and HasPrefix with GLOB,
	// which is case-sensitive, instead of LIKE, which SQLite runs
	// case-insensitively for ASCII letters.
	glob bool
	// textArgs reports a driver that formats the arguments of a statement
	// into its text (go-sql-driver/mysql's interpolateParams), taking
	// every ? of the text for a placeholder: SQL of the caller's may hold
	// no other ? (placeholder.go).
	textArgs bool
	// backslashEscapes and hashComments read SQL of the caller's as MySQL
	// does: a backslash escapes the next character of a '...' or "..."
	// literal, and # starts a comment. The dollar signs of PostgreSQL's
	// $1 and $$...$$ are then nothing special.
	backslashEscapes, hashComments bool
	// foldASCII is the expression, with %s for a column, that lowers the
	// ASCII letters of a text, and no others, for EqualFold.
	foldASCII string
	// exactText is the clause, after the parameter of a LIKE or of
	// EqualFold, that makes the comparison exact (case- and
	// accent-sensitive) whatever the collation of the column
	// (" COLLATE utf8mb4_bin"); empty where text compares exactly.
	exactText string
	// padSpace reports that = on text ignores trailing spaces, as the
	// PAD SPACE collations of MySQL and MariaDB do (utf8mb4_bin among
	// them): EqualFold compares with a LIKE of its text escaped, which
	// does not.
	padSpace bool
	// likeEscape is the escape character of the LIKE patterns sent to the
	// database, where it is not the backslash of the patterns of Like
	// (a backslash in a string literal is itself an escape on MySQL):
	// patterns are rewritten to it (see likeFor). Zero is the backslash.
	likeEscape byte
	// returning reports that an INSERT returns the key it generated with
	// RETURNING. Without it, each row whose key is generated is inserted
	// by an INSERT of its own, whose result gives the key (stmt.lastID).
	returning bool
	// limitInSubquery reports that the subquery of an IN may have a LIMIT;
	// without it, the limited subquery is wrapped in a derived table:
	// IN (SELECT k FROM (SELECT k ... LIMIT ...) AS dddkit_page).
	limitInSubquery bool
	// lockReadsLatest reports that a locking read (lockSuffix,
	// shareSuffix) reads the latest committed rows, while a plain SELECT
	// of a transaction at REPEATABLE READ reads its snapshot, and that
	// neither fails for a row changed since (InnoDB): a load that locks
	// its root in such a transaction locks its children too (see
	// Store.kidsLock).
	lockReadsLatest bool
	// multi sends a round trip of the database/sql transport as one text
	// query of several statements (exec_multi.go), instead of one
	// statement at a time.
	multi bool
	// begin, when set, returns the statements that begin a transaction of
	// o, which the DB sends itself on a held connection, with the first
	// statements of the transaction in one round trip, instead of through
	// database/sql's BeginTx; a transaction so begun is committed by a
	// COMMIT the DB sends, with the last save when it is marked so.
	begin func(o TxOptions) []string
	// aborts reports an error after which the transaction must be rolled
	// back whole, not to a savepoint: the server rolled it back, or rolled
	// back the failed statement alone while it holds the earlier ones.
	aborts func(err error) bool
	// rolledBack, when set, reports an error after which the server has
	// rolled back the whole transaction, or left it in a state unknown,
	// where the statements sent next run outside it: in a caller's
	// transaction, which the DB does not end, the unit of work then
	// refuses further statements (see ErrTxRolledBack).
	rolledBack func(err error, srv *server) bool
	// probe, when set, reads what the DB needs to know of its server and
	// session, once, at the first use of the DB (see DB.ready).
	probe func(ctx context.Context, db *DB) (*server, error)
	// txOptions is the query that reads the isolation level and the
	// access mode of a transaction the caller began (see joinedOptions);
	// empty where the server cannot tell them.
	txOptions string
}

// server is what a DB knows of its server: the dialect its statements
// take, which its probe may refine (MariaDB has INSERT ... RETURNING,
// MySQL has not), and what bounds its round trips.
type server struct {
	d *dialect
	// maxPacket is the most bytes one round trip may carry; 0 is no
	// limit.
	maxPacket int
	// rollbackOnTimeout: a lock wait timeout rolls the whole transaction
	// back (innodb_rollback_on_timeout), not the statement alone.
	rollbackOnTimeout bool
}

// dialectFor returns the dialect of a database/sql driver name.
func dialectFor(driver string) (*dialect, error) {
	switch driver {
	case "pgx", "pgx/v5":
		return postgres, nil
	case "postgres":
		return postgresNoArray, nil
	case "sqlite", "sqlite3":
		return sqlite, nil
	case "mysql":
		return mysqlDialect, nil
	}
	return nil, fmt.Errorf("sqlstore: unknown database/sql driver %q (want pgx, postgres, sqlite, sqlite3 or mysql)", driver)
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
// schema, with each part enclosed in d's quote character: "sales"."orders"
// for PostgreSQL and SQLite.
func (d *dialect) quote(name string) string {
	var b strings.Builder
	b.Grow(len(name) + 4)
	quoteTo(&b, d.quoteChar, name)
	return b.String()
}

// quoteList returns names, quoted by d, separated by commas.
func (d *dialect) quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = d.quote(n)
	}
	return strings.Join(q, ", ")
}

// quoteTo writes name, a validated identifier optionally qualified by a
// schema, to b with each part enclosed in q. A validated name holds no
// quote character, so nothing inside needs escaping.
func quoteTo(b *strings.Builder, q byte, name string) {
	for {
		i := strings.IndexByte(name, '.')
		b.WriteByte(q)
		if i < 0 {
			b.WriteString(name)
			b.WriteByte(q)
			return
		}
		b.WriteString(name[:i])
		b.WriteByte(q)
		b.WriteByte('.')
		name = name[i+1:]
	}
}

// builder writes one statement and collects its arguments.
type builder struct {
	d    *dialect
	b    strings.Builder
	args []any
}

func (w *builder) s(str string) { w.b.WriteString(str) }

// ident writes name, an identifier optionally qualified by a schema,
// quoted as the dialect quotes it.
func (w *builder) ident(name string) { quoteTo(&w.b, w.d.quoteChar, name) }

// column writes the column name, qualified by the table qual unless qual
// is "", quoted as the dialect quotes them.
func (w *builder) column(qual, name string) {
	if qual != "" {
		w.ident(qual)
		w.b.WriteByte('.')
	}
	w.ident(name)
}

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
