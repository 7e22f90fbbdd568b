package sqlstore

// The multi-statement round trip of the database/sql transport, on a
// dialect with multi (MySQL and MariaDB through go-sql-driver/mysql with
// multiStatements=true and interpolateParams=true): the statements of a
// round trip go as one text query, the driver formatting their arguments
// into it.
//
// The driver skips the results of statements that return no rows, and
// reports the error of a statement when the result after it is read. So
// that each statement is known by its results, every statement is
// followed by a marker, SELECT ROW_COUNT() AS dddkit_<i> (with
// LAST_INSERT_ID() when the statement's generated key is wanted): the
// statement i's own result, if any, comes before the marker i, and an
// error met on the way from the marker i-1 to the marker i is statement
// i's. The server stops at the first statement that fails, so a check
// that reads the row count after the fact would come too late, once the
// statements after it (the COMMIT among them) had run: a checked statement
// is followed by a statement that fails on the server when the count is
// wrong, setting the session's time zone to a name no zone has:
//
//	UPDATE ...; SET @dddkit_n = ROW_COUNT();
//	SET @@session.time_zone = IF(@dddkit_n = 1, @@session.time_zone, 'dddkit: check failed');
//	SELECT @dddkit_n AS dddkit_0; ...

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dddkit/dddkit/repository"
)

// multiCheckFailed is the time zone a failed check sets, which the server
// refuses with error 1298 naming it.
const multiCheckFailed = "dddkit: check failed"

// multiMarker is the prefix of the name of the column of a marker.
const multiMarker = "dddkit_"

// multiConnID reads the id of the connection, first in a round trip
// that a guard watches.
const multiConnID = "SELECT CONNECTION_ID() AS dddkit_conn"

// errNoMarker is the error of a round trip whose results do not match its
// statements.
var errNoMarker = errors.New("the results of the round trip do not match its statements")

// query reports whether s returns rows.
func (s *stmt) query() bool { return s.scan != nil || s.head != nil || s.check == checkRow }

// trailer returns the statements that follow s, the i-th of its round
// trip, in a multi-statement round trip.
func (s *stmt) trailer(i int) string {
	var b strings.Builder
	count := "ROW_COUNT()"
	if s.check == checkRow {
		count = "FOUND_ROWS()" // the rows of the SELECT before
	}
	marker := "SELECT " + count
	if s.check != noCheck {
		b.WriteString(";\nSET @dddkit_n = " + count + ";\nSET @@session.time_zone = IF(@dddkit_n ")
		if s.rows > 0 {
			b.WriteString("= " + strconv.FormatInt(s.rows, 10))
		} else {
			b.WriteString("> 0")
		}
		b.WriteString(", @@session.time_zone, '" + multiCheckFailed + "')")
		marker = "SELECT @dddkit_n"
	}
	b.WriteString(";\n" + marker + " AS " + multiMarker + strconv.Itoa(i))
	if s.lastID != nil {
		b.WriteString(", LAST_INSERT_ID()")
	}
	return b.String()
}

// isCheckFailed reports the error of a failed check of a multi-statement
// round trip.
func isCheckFailed(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1298 && strings.Contains(me.Message, multiCheckFailed)
}

// sqlMulti runs stmts on c in as few multi-statement round trips as
// max bytes allow (one, unless they are larger), and stops at the first
// failure. It returns how many succeeded. max <= 0 is no limit.
func (db *DB) sqlMulti(ctx context.Context, c sqlConn, stmts []stmt, max int) (int, error) {
	done := 0
	for done < len(stmts) {
		k, size := 0, 0
		for done+k < len(stmts) {
			s := &stmts[done+k]
			n := len(s.sql) + len(s.trailer(k)) + 2
			if k == 0 {
				n += len(multiConnID) + 2
			}
			for _, a := range s.args {
				n += argSize(a)
			}
			if max > 0 && size+n > max && k > 0 {
				break
			}
			size += n
			k++
		}
		var n int
		var err error
		if max > 0 && size > max {
			// One statement larger than a round trip may be: alone, the
			// driver sends it as a prepared statement, its long arguments
			// apart, or refuses it before sending anything.
			n, err = db.sqlExec(ctx, c, stmts[done:done+1])
		} else {
			n, err = db.multiTrip(ctx, c, stmts[done:done+k])
		}
		done += n
		if err != nil {
			db.keyColumns(ctx, c, err)
			return done, err
		}
	}
	return done, nil
}

// argSize is at most the size of v, a bind parameter, as the driver
// writes it in the text of a statement: each byte of a text or a []byte
// may take two escaped, within quotes and a prefix.
func argSize(v any) int {
	switch x := v.(type) {
	case nil:
		return 4
	case string:
		return 2*len(x) + 2
	case []byte:
		return 2*len(x) + 10
	case time.Time:
		return 40
	case driver.Valuer:
		if reflect.ValueOf(x).Kind() == reflect.Pointer && reflect.ValueOf(x).IsNil() {
			return 4
		}
		if dv, err := x.Value(); err == nil {
			if _, again := dv.(driver.Valuer); !again {
				return argSize(dv)
			}
		}
		return 64
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return 2*rv.Len() + 2
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return 2*rv.Len() + 10
		}
	case reflect.Pointer:
		if rv.IsNil() {
			return 4
		}
		return argSize(rv.Elem().Interface())
	}
	return 32
}

// multiTrip sends stmts on c as one text query and reads their results in
// order. It returns how many succeeded; the error of the first that
// failed is classified, and names it to the observer.
func (db *DB) multiTrip(ctx context.Context, c sqlConn, stmts []stmt) (int, error) {
	g, _ := ctx.Value(guardKey{}).(*tripGuard)
	var text strings.Builder
	var args []any
	if g != nil {
		// The connection's id comes first, so that the guard can
		// interrupt the first statement too.
		text.WriteString(multiConnID + ";\n")
	}
	for i := range stmts {
		if i > 0 {
			text.WriteString(";\n")
		}
		text.WriteString(stmts[i].sql)
		text.WriteString(stmts[i].trailer(i))
		args = append(args, stmts[i].args...)
	}
	var connID chan int64 // the connection's, once its first marker is read
	if g != nil {
		connID = make(chan int64, 1)
		defer g.watch(db, connID)()
	}
	trip, start := db.nextTrip(), time.Now()
	last := start
	i := 0
	fail := func(err error) (int, error) {
		s := &stmts[i]
		if isCheckFailed(err) {
			err = s.conflict()
		} else {
			err = classify(s, err)
		}
		now := time.Now()
		db.report(ctx, s.sql, s.args, trip, err, now.Sub(last))
		return i, err
	}
	rows, err := c.QueryContext(ctx, text.String(), args...)
	if err != nil {
		return fail(err)
	}
	// A scan callback may be the caller's (DB.Query) and panic: the rows
	// must still be closed, which reads what is left of the results and
	// frees the connection.
	defer rows.Close()
	if connID != nil {
		var conn int64
		if !rows.Next() {
			return fail(orNoMarker(rows.Err()))
		}
		if err := rows.Scan(&conn); err != nil {
			return fail(err)
		}
		connID <- conn
		if !rows.NextResultSet() {
			return fail(orNoMarker(rows.Err()))
		}
	}
	own := false // the result of statement i was read
	for i < len(stmts) {
		s := &stmts[i]
		cols, err := rows.Columns()
		if err != nil {
			return fail(err)
		}
		if len(cols) == 0 || cols[0] != multiMarker+strconv.Itoa(i) {
			// The result of statement i itself: the first is read, any
			// other (SQL of the caller's with several statements) skipped.
			if !own {
				own = true
				if err := readRows(rows, s); err != nil {
					return fail(err)
				}
			}
			if !rows.NextResultSet() {
				return fail(orNoMarker(rows.Err()))
			}
			continue
		}
		var n, id int64
		dest := []any{&n}
		if s.lastID != nil {
			dest = append(dest, &id)
		}
		if !rows.Next() {
			return fail(orNoMarker(rows.Err()))
		}
		if err := rows.Scan(dest...); err != nil {
			return fail(err)
		}
		if s.affected != nil && !s.query() {
			*s.affected = n
		}
		if s.lastID != nil {
			if err := s.lastID(id); err != nil {
				return fail(err)
			}
		}
		now := time.Now()
		db.report(ctx, s.sql, s.args, trip, nil, now.Sub(last))
		last = now
		i++
		own = false
		if i < len(stmts) && !rows.NextResultSet() {
			return fail(orNoMarker(rows.Err()))
		}
	}
	if err := rows.Close(); err != nil {
		// Every statement succeeded; what failed came after them.
		return len(stmts), classify(nil, err)
	}
	return len(stmts), nil
}

// orNoMarker returns err, or errNoMarker when the results ended without
// an error.
func orNoMarker(err error) error {
	if err == nil {
		return fmt.Errorf("%w: a result is missing", errNoMarker)
	}
	return err
}

// readRows reads the rows of the current result of rows, for s.
func readRows(rows rowCols, s *stmt) error {
	if s.head != nil {
		if err := s.head(rows); err != nil {
			return err
		}
	}
	for rows.Next() {
		if s.scan != nil {
			if err := s.scan(rows); err != nil {
				return err
			}
		}
	}
	return rows.Err()
}

// rowCols is what readRows needs of *sql.Rows.
type rowCols interface {
	rowScanner
	Err() error
}

// multiWrite runs stmts, a write outside a transaction, in a transaction
// of their own on t, a connection held for it, in one round trip with the
// statements that begin the transaction and its COMMIT. A statement that
// fails stops the round trip before the COMMIT: the transaction is then
// rolled back. The round trip runs with a context that ends the wait of
// [WithCancelWait] after ctx, so that a write whose ctx is done is not
// abandoned while the server runs it: its answer tells what was written.
func (db *DB) multiWrite(ctx context.Context, t *sqlTx, stmts []stmt) (err error) {
	begin := t.begin
	t.begin, t.dirty = nil, true // until the round trip says otherwise
	defer func() {
		if p := recover(); p != nil {
			t.close() // rolls back, or discards the connection
			panic(p)
		}
	}()
	life, end := db.guarded(ctx)
	n, err := db.sqlTrip(life, t.conn, begin, stmts, []string{sqlCommit})
	w := end()
	if err == nil {
		t.dirty = false
		t.close()
		return nil
	}
	total := len(begin) + len(stmts) + 1
	if n < total-1 && failed(err, false) {
		// The server refused a statement, and ran none after it: what
		// ran before it is rolled back.
		err = db.interrupted(ctx, w, err)
		if rerr := db.multiRollback(ctx, t); rerr != nil {
			return errors.Join(err, fmt.Errorf("sqlstore: rollback: %w", rerr))
		}
		return err
	}
	t.close()
	return db.outcome(ctx, w, err, n == total-1)
}

// multiRollback rolls back the transaction of t and gives its connection
// back, or discards it when the ROLLBACK fails. The ROLLBACK runs even
// when ctx is done, bounded by the wait of [WithCancelWait].
func (db *DB) multiRollback(ctx context.Context, t *sqlTx) error {
	rctx, stop := context.WithTimeout(context.WithoutCancel(ctx), db.cancelWait())
	defer stop()
	_, err := db.sqlTrip(rctx, t.conn, nil, nil, []string{sqlRollback})
	t.dirty = err != nil
	t.close()
	return err
}

// multiRead runs the queries of a load outside a transaction in one round
// trip, in a read-only transaction that reads one snapshot, on a
// connection held for it: the statements that begin it, the queries, and
// its COMMIT.
func (db *DB) multiRead(ctx context.Context, stmts []stmt) error {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return err
	}
	t := &sqlTx{conn: conn, multi: true, dirty: true}
	defer func() {
		if p := recover(); p != nil {
			t.close()
			panic(p)
		}
	}()
	o := TxOptions{Isolation: db.dialect.snapshot.Isolation, ReadOnly: db.dialect.snapshot.ReadOnly}
	_, err = db.sqlTrip(ctx, conn, db.dialect.begin(o), stmts, []string{sqlCommit})
	if err != nil {
		_ = db.multiRollback(ctx, t) // on failure, the connection is discarded
		return err
	}
	t.dirty = false
	t.close()
	return nil
}

// multiRun runs the control statements pre, stmts and post in t, a
// transaction the DB began on a held connection, in one round trip, with
// the statements that begin the transaction first when nothing was sent
// in it yet. folded says that pre begins with a rollback to the savepoint
// of a failed operation. When last, post is the COMMIT: the save is the
// last operation of the unit of work, and its answer is the transaction's
// outcome. A failure after which the transaction cannot go on (the server
// rolled it back, or the state of the connection is unknown) dooms it:
// it then refuses further statements and its COMMIT, and rolls back.
func (t *txState) multiRun(ctx context.Context, pre, post []string, stmts []stmt, atomic, last, folded bool) error {
	db, s := t.db, t.sql
	if last {
		post = []string{sqlCommit}
	}
	begin := s.begin
	if len(begin) > 0 {
		pre = append(append([]string(nil), begin...), pre...)
	}
	life, end := db.guarded(ctx)
	n, err := db.sqlTrip(life, s.conn, pre, stmts, post)
	w := end()
	if len(begin) > 0 {
		if n < len(begin) {
			// The transaction did not begin: the next operation begins it
			// on another connection.
			s.dirty = true
			s.close()
			t.sql = nil
			return err
		}
		s.begin = nil
		n -= len(begin)
		pre = pre[len(begin):]
	}
	if folded && n > 0 {
		t.restore = false
	}
	if err == nil {
		t.committed = last
		return nil
	}
	switch {
	case db.dialect.aborts(err) || !failed(err, false):
		t.doomed = err
	case last || t.staged:
		t.partial = err
	default:
		t.failedAfter(ctx, err, atomic, n, len(pre))
	}
	if last {
		return db.outcome(ctx, w, err, n == len(pre)+len(stmts))
	}
	return db.interrupted(ctx, w, err)
}

// multiEnd ends t, a transaction the DB began on a held connection: it
// commits it, first rolling back to the savepoint of a failed operation
// if need be, in one round trip with a context that ends the wait of
// [WithCancelWait] after ctx, or rolls it back. A transaction whose
// statements were never sent ends without a word.
func (t *txState) multiEnd(ctx context.Context, commit bool) error {
	db, s := t.db, t.sql
	if s.begin != nil {
		s.close() // nothing was sent
		return nil
	}
	if commit {
		if err := ctx.Err(); err != nil {
			return errors.Join(fmt.Errorf("not committed: %w", err), db.multiRollback(ctx, s))
		}
	}
	if !commit {
		return db.multiRollback(ctx, s)
	}
	var post []string
	if t.restore {
		post = append(post, sqlRollbackTo)
	}
	post = append(post, sqlCommit)
	life, end := db.guarded(ctx)
	n, err := db.sqlTrip(life, s.conn, nil, nil, post)
	w := end()
	if err == nil {
		s.close()
		return nil
	}
	if failed(err, n == len(post)-1) {
		// Refused: the transaction did not commit.
		return errors.Join(db.interrupted(ctx, w, err), db.multiRollback(ctx, s))
	}
	s.dirty = true
	s.close()
	return db.outcome(ctx, w, err, true)
}

// keyColumns fills in the columns of the key that err, a duplicate entry
// on MySQL, names: the server's message names the key alone. They are read
// from the catalog on c, once per table and key.
func (db *DB) keyColumns(ctx context.Context, c sqlConn, err error) {
	var de *repository.DataError
	if !errors.As(err, &de) || de.Column != "" || de.Constraint == "" || de.Table == "" ||
		(de.Kind != repository.ErrUnique && de.Kind != repository.ErrExists) {
		return
	}
	k := de.Table + "." + de.Constraint
	if cols, ok := db.keys.Load(k); ok {
		de.Column = cols.(string)
		return
	}
	var schema any
	table := de.Table
	if i := strings.LastIndexByte(table, '.'); i >= 0 {
		schema, table = table[:i], table[i+1:]
	}
	rows, qerr := c.QueryContext(ctx, mysqlKeyColumns, schema, table, de.Constraint)
	if qerr != nil {
		return
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var col string
		if rows.Scan(&col) != nil {
			return
		}
		cols = append(cols, col)
	}
	if rows.Err() != nil || len(cols) == 0 {
		return
	}
	de.Column = strings.Join(cols, ", ")
	db.keys.Store(k, de.Column)
}

// mysqlKeyColumns reads the columns of a key of a table, in order.
const mysqlKeyColumns = "SELECT COLUMN_NAME FROM information_schema.STATISTICS " +
	"WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND INDEX_NAME = ? ORDER BY SEQ_IN_INDEX"

// tripGuard watches the context of the caller of a write whose round
// trips run with a context that lingers past it (see guarded): once it is
// done, the statement that the server runs is interrupted with KILL QUERY,
// sent on another connection of the pool, so that a write blocked on a
// lock fails (error 1317: nothing after it runs, the COMMIT included)
// instead of running on until the wait of [WithCancelWait] is over.
type tripGuard struct {
	ctx    context.Context // the caller's
	killed atomic.Bool     // a KILL QUERY was sent
}

type guardKey struct{}

// guarded returns the context of the round trips of a write whose
// caller's context is ctx: it ends the wait of [WithCancelWait] after ctx,
// and carries a guard. end stops it and says what the guard saw and did.
func (db *DB) guarded(ctx context.Context) (life context.Context, end func() watch) {
	life, stop := linger(ctx, db.cancelWait())
	g := &tripGuard{ctx: ctx}
	life = context.WithValue(life, guardKey{}, g)
	return life, func() watch {
		w := calm
		if g.killed.Load() {
			w = cancelled
		}
		if errors.Is(context.Cause(life), context.DeadlineExceeded) {
			w = cut // the driver closed the connection
		}
		stop()
		return w
	}
}

// watch watches g's context while a round trip runs on the connection
// whose id connID gives once known, and returns what stops watching: it
// waits for a KILL QUERY under way, so that none reaches the connection
// after the round trip (the server forgets a KILL QUERY that finds its
// connection idle, at its next command).
func (g *tripGuard) watch(db *DB, connID <-chan int64) (unwatch func()) {
	if g.ctx.Done() == nil {
		return func() {}
	}
	returned, finished := make(chan struct{}), make(chan struct{})
	stop := context.AfterFunc(g.ctx, func() {
		defer close(finished)
		var id int64
		select {
		case id = <-connID:
		case <-returned:
			return
		}
		g.killed.Store(true)
		kctx, cancel := context.WithTimeout(context.Background(), db.cancelWait())
		defer cancel()
		_, _ = db.sql.ExecContext(kctx, "KILL QUERY "+strconv.FormatInt(id, 10))
	})
	return func() {
		close(returned)
		if !stop() {
			<-finished
		}
	}
}
