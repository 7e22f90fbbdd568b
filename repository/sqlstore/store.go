package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/internal/diffat"
	"github.com/dddkit/dddkit/internal/lastwrite"
	"github.com/dddkit/dddkit/internal/typeinfo"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/tracking"
)

// Store implements [repository.Hooks] for aggregates of type T (a pointer
// to the root struct) identified by ID, on a [DB] with a [Mapping]. It is
// safe for concurrent use.
type Store[T any, ID comparable] struct {
	db   *DB
	m    *Mapping[T]
	d    *dialect
	wrap bool // pgx: checked statements raise division_by_zero

	selectRoot string
	lockSelect string // selectRoot that locks the row, where the dialect can
	// shareSelect and writeSelect are selectRoot with FOR SHARE and FOR
	// NO KEY UPDATE, where the dialect can lock rows: the root's SELECT of
	// a load in a transaction whose statements each read their own
	// snapshot (see rootLock).
	shareSelect string
	writeSelect string
	selectChild []string
	// insertRoot is the root's INSERT; insertRootRet, where the root's
	// key is generated, the same with RETURNING the key.
	insertRoot    string
	insertRootRet string
	deleteChild   []string
	// deleteRoot is the root's DELETE: checked, unless lockRoot (the
	// checked SELECT ... FOR UPDATE that precedes the children's DELETEs)
	// is set.
	deleteRoot string
	lockRoot   string
	// deleteRootAny and lockRootAny are deleteRoot and lockRoot without
	// the version check, for DeleteByID without a version.
	deleteRootAny string
	lockRootAny   string
	// lockRootTell and deleteRootTell are lockRoot and deleteRoot that,
	// on pgx, tell a missing root row (errMissing) from one at another
	// version (errConflict) in the same statement, for DeleteByID with a
	// version.
	lockRootTell   string
	deleteRootTell string
	// existsRoot tells a missing root row from a conflict where the
	// statements cannot (not on pgx).
	existsRoot string
	// err is why the mapping cannot be used on db, if it cannot.
	err error
	// cache is the state of the cache codec (cachecodec.go), made on
	// first use.
	cache atomic.Pointer[cacheState]
}

// NewStore returns the store of m on db. A nil db or m makes every method
// fail.
func NewStore[T any, ID comparable](db *DB, m *Mapping[T]) *Store[T, ID] {
	s := &Store[T, ID]{db: db, m: m}
	if db.check() != nil || m == nil {
		return s
	}
	s.d, s.wrap = db.dialect, db.pgx != nil
	// The store's statements name the tables and columns as its dialect
	// quotes them, once here: m holds names only.
	m = m.quotedBy(s.d)
	s.m = m
	if !s.d.anyArray {
		for _, tb := range m.tables() {
			for i := range tb.cols {
				if tb.cols[i].codec == codecArray {
					s.err = fmt.Errorf("%w %v: field %s: the array option is PostgreSQL's, and this DB is %s: use `db:\"%s,json\"`", ErrMapping, reflect.TypeFor[T](), tb.cols[i].field, s.d.name, tb.cols[i].name)
					return s
				}
			}
		}
	}
	w := &builder{d: s.d}
	rt := &m.root
	key := rt.cols[rt.key].quoted

	w.s("SELECT ")
	columnList(w, rt.cols)
	w.s(" FROM " + rt.quoted + " WHERE " + key + " = ")
	w.p(nil)
	s.selectRoot = w.stmt(noCheck).sql
	s.lockSelect = s.selectRoot + s.d.lockSuffix
	s.shareSelect = s.selectRoot + s.d.shareSuffix
	s.writeSelect = s.selectRoot + s.d.writeSuffix

	w.s("INSERT INTO " + rt.quoted + " (")
	columnList(w, rt.insertCols())
	w.s(") VALUES (")
	for i := range rt.insertCols() {
		if i > 0 {
			w.s(", ")
		}
		w.p(nil)
	}
	w.s(")")
	s.insertRoot = w.stmt(noCheck).sql
	if rt.generated {
		s.insertRootRet = s.insertRoot + " RETURNING " + key
	}

	// The rows of each child table under the root with key $1, at any
	// depth; the children are deleted deepest first.
	theRoot := func(w *builder, cols []string) error {
		w.s(cols[0] + " = ")
		w.p(nil)
		return nil
	}
	for _, c := range m.children {
		// The first level needs no parent key column: it holds the key.
		var refs []string
		if c.parent != nil {
			refs = c.refCols
		}
		w.s("SELECT ")
		columnList(w, append(refColumns(refs), c.cols...))
		w.s(" FROM " + c.quoted + " WHERE ")
		_ = under(w, c, nil, theRoot)
		w.s(" ORDER BY " + strings.Join(append(refs[:len(refs):len(refs)], c.order()...), ", "))
		s.selectChild = append(s.selectChild, w.stmt(noCheck).sql)
	}
	for i := len(m.children) - 1; i >= 0; i-- {
		c := m.children[i]
		w.s("DELETE FROM " + c.quoted + " WHERE ")
		_ = under(w, c, nil, theRoot)
		s.deleteChild = append(s.deleteChild, w.stmt(noCheck).sql)
	}

	// The root of an aggregate with children is deleted last (foreign
	// keys), so on PostgreSQL it is locked and checked first: a concurrent
	// save, which updates the root first, then waits for this delete
	// instead of deadlocking with it.
	w.s("SELECT 1 FROM " + rt.quoted + " WHERE " + key + " = ")
	w.p(nil)
	s.existsRoot = w.stmt(noCheck).sql
	s.lockRoot, s.deleteRoot = s.deleteSQL(w, rt.version >= 0, false)
	s.lockRootAny, s.deleteRootAny = s.lockRoot, s.deleteRoot
	if rt.version >= 0 {
		s.lockRootAny, s.deleteRootAny = s.deleteSQL(w, false, false)
		s.lockRootTell, s.deleteRootTell = s.deleteSQL(w, true, s.wrap)
	}
	return s
}

// quotedBy returns a copy of m whose tables, columns and parent key and
// position columns carry their names as d quotes them, for the statements
// of a store on d. m itself holds names only, and may serve databases that
// quote otherwise.
func (m *Mapping[T]) quotedBy(d *dialect) *Mapping[T] {
	out := *m
	out.root = m.root.quotedBy(d)
	out.children = make([]*child, len(m.children))
	for i, c := range m.children {
		k := new(child)
		*k = *c
		k.table = c.table.quotedBy(d)
		if c.parent != nil {
			k.parent = out.children[c.parent.index] // parents come first
		}
		k.parentKey = d.quote(c.spec.ParentKey)
		k.refCols = make([]string, len(c.refNames))
		for j, n := range c.refNames {
			k.refCols[j] = d.quote(n)
		}
		if c.spec.Position != "" {
			k.position = d.quote(c.spec.Position)
		}
		out.children[i] = k
	}
	relink := func(kids []*child) []*child {
		if kids == nil {
			return nil
		}
		to := make([]*child, len(kids))
		for i, k := range kids {
			to[i] = out.children[k.index]
		}
		return to
	}
	out.top = relink(m.top)
	out.root.colls = relink(m.root.colls)
	for i, c := range m.children {
		k := out.children[i]
		k.kids = relink(c.kids)
		k.table.colls = relink(c.table.colls)
	}
	return &out
}

// quotedBy returns a copy of tb whose name and columns carry their names
// as d quotes them.
func (tb table) quotedBy(d *dialect) table {
	tb.quoted = d.quote(tb.name)
	tb.cols = slices.Clone(tb.cols)
	for i := range tb.cols {
		tb.cols[i].quoted = d.quote(tb.cols[i].name)
	}
	return tb
}

// deleteSQL returns the statements that lock (where the dialect locks
// before deleting, and there are children) and delete the root row of key
// $1, of version $2 when versioned.
//
// When tell (on pgx, versioned), the check tells a missing row from one at
// another version: it ends
//
//	SELECT CASE WHEN count(*) > 0 THEN 1
//	WHEN EXISTS (SELECT 1 FROM root WHERE key = $3) THEN 1/count(*)
//	ELSE ln(count(*)) END FROM r
//
// so that another version raises division_by_zero (a conflict) and no row
// invalid_argument_for_logarithm (not found); its arguments are the key,
// the version and the key again.
func (s *Store[T, ID]) deleteSQL(w *builder, versioned, tell bool) (lock, del string) {
	rt := &s.m.root
	key := rt.cols[rt.key].quoted
	where := func() {
		w.s(" WHERE " + key + " = ")
		w.p(nil)
		if versioned {
			w.s(" AND " + rt.cols[rt.version].quoted + " = ")
			w.p(nil)
		}
	}
	if len(s.m.children) > 0 && s.d.lockBeforeDelete {
		s.checked(w, func() {
			w.s("SELECT 1 FROM " + rt.quoted)
			where()
			w.s(s.d.lockSuffix)
		}, false, tell)
		lock = w.stmt(checkRow).sql
		w.s("DELETE FROM " + rt.quoted)
		where()
		return lock, w.stmt(noCheck).sql
	}
	s.checked(w, func() {
		w.s("DELETE FROM " + rt.quoted)
		where()
	}, true, tell)
	return "", w.stmt(checkRows).sql
}

// checked writes the statement of body so that finding no row fails it:
// on pgx, wrapped as WITH r AS (body) SELECT 1/count(*) FROM r. When
// tell, the root row is looked up by key (the next placeholder) to tell a
// missing row from one at another version: see deleteSQL.
func (s *Store[T, ID]) checked(w *builder, body func(), dml, tell bool) {
	if !s.wrap {
		body()
		return
	}
	w.s("WITH r AS (")
	body()
	if dml {
		w.s(" RETURNING 1")
	}
	if !tell {
		w.s(") SELECT 1/count(*) FROM r")
		return
	}
	rt := &s.m.root
	w.s(") SELECT CASE WHEN count(*) > 0 THEN 1 WHEN EXISTS (SELECT 1 FROM " + rt.quoted + " WHERE " + rt.cols[rt.key].quoted + " = ")
	w.p(nil)
	w.s(") THEN 1/count(*) ELSE ln(count(*)) END FROM r")
}

// refColumns returns quoted column names as columns, for columnList.
func refColumns(quoted []string) []column {
	out := make([]column, len(quoted))
	for i, q := range quoted {
		out[i] = column{quoted: q}
	}
	return out
}

func columnList(w *builder, cols []column) {
	for i := range cols {
		if i > 0 {
			w.s(", ")
		}
		w.s(cols[i].quoted)
	}
}

func (s *Store[T, ID]) ready() error {
	if err := s.db.check(); err != nil {
		return err
	}
	if s.m == nil {
		return errors.New("nil *sqlstore.Mapping")
	}
	return s.err
}

// fail wraps err with the operation and the root table, unless err, the
// error of a statement on the root table, names them already.
func (s *Store[T, ID]) fail(op string, err error) error {
	if s.m == nil {
		return fmt.Errorf("sqlstore: %s ?: %w", op, err)
	}
	head := op + " " + s.m.root.name + ": "
	if strings.HasPrefix(err.Error(), head) {
		head = ""
	}
	return fmt.Errorf("sqlstore: %s%w%s", head, err, positionHint(s.m.children, err))
}

// Select loads the aggregate with key id: the root row, then each child
// table's rows of that root in key order, in one round trip on pgx and on
// MySQL. It
// returns an error wrapping [repository.ErrNotFound] when there is no root
// row. The aggregate is not tracked: to save a change of it, load it with
// Find, or attach it with Attach before changing it (saving it untracked
// fails with [repository.ErrUntracked] when its key is generated).
//
// The aggregate is returned as it stood at one commit. Outside a
// transaction the statements read one snapshot. In a transaction of
// PostgreSQL, MySQL or MariaDB at READ COMMITTED, where each statement
// reads the database as of its own start, the root row is locked as it is
// read, in the same batch, before its children are: FOR SHARE (LOCK IN
// SHARE MODE on MySQL), or FOR NO KEY UPDATE (FOR UPDATE on MySQL) for
// the load of [repository.AggregateRepositorySupport.Update], which writes
// the root anyway. Every write of an aggregate locks its root first, so
// none can commit between the root's SELECT and its children's. At
// REPEATABLE READ and above, and on SQLite, the transaction reads one
// snapshot, and nothing is locked. In a caller's transaction on MySQL,
// whose level the server cannot tell, the children of the locked root are
// read with LOCK IN SHARE MODE too (see [Store.SelectForUpdate]).
func (s *Store[T, ID]) Select(ctx context.Context, id ID) (T, error) {
	root := s.selectRoot
	lk, err := s.rootLock(ctx, lastwrite.IsForWrite(ctx))
	if err != nil {
		var zero T
		return zero, s.fail("select", err)
	}
	kids := ""
	switch lk {
	case lockShare:
		root, kids = s.shareSelect, s.kidsLock(ctx)
	case lockWrite:
		root, kids = s.writeSelect, s.kidsLock(ctx)
	}
	return s.selectAgg(ctx, "select", root, kids, id)
}

// kidsLock returns what ends the children's SELECTs of a load, in the
// transaction of ctx, whose root row is read with a lock: where a locking
// read reads the latest committed rows while a plain SELECT of the
// transaction reads its snapshot, taken maybe before (InnoDB at
// REPEATABLE READ, which raises no serialization failure as PostgreSQL
// does), the children are read with a shared lock too, or the aggregate
// could be the latest root with older children. Where each statement
// reads the database as of its own start (READ COMMITTED), the locked root
// keeps every writer of the aggregate out, and the children are read
// plainly. A caller's transaction joined ([DB.JoinSQL]) may be at any
// level, which MySQL cannot tell (it reports the session's, not that of a
// transaction begun with SET TRANSACTION): its children are locked.
func (s *Store[T, ID]) kidsLock(ctx context.Context) string {
	if s.ready() != nil || !s.d.lockReadsLatest {
		return ""
	}
	if t := s.db.txFrom(ctx); t != nil && (pgRank(t.opts.Isolation) >= 2 || t.guessed) {
		return s.d.shareSuffix
	}
	return ""
}

// lock is how the root rows of a load are locked.
type lock uint8

const (
	lockNone  lock = iota
	lockShare      // FOR SHARE
	lockWrite      // FOR NO KEY UPDATE
)

// rootLock returns how a load in ctx locks its root rows, for it to return
// aggregates as they stood at one commit: in a transaction whose
// statements each read their own snapshot (PostgreSQL at READ COMMITTED),
// the roots of a load of several statements (an aggregate with children)
// are locked FOR SHARE, so that no writer of the aggregate (a save locks
// the root with its first statement, a delete too) can commit between
// the roots' SELECT and the children's. The load of an aggregate about to
// be written (write) locks it FOR NO KEY UPDATE, children or not, the lock
// the save takes: a save that followed a shared lock would take a
// stronger one, and two of them deadlock. Outside a transaction, a load
// reads one snapshot; so does every statement of a transaction at
// REPEATABLE READ and above, and of SQLite. A shared lock in a read-only
// transaction (a caller's, joined) fails with [ErrReadOnlyLoad] before it
// is sent, which would have aborted the transaction.
func (s *Store[T, ID]) rootLock(ctx context.Context, write bool) (lock, error) {
	if s.ready() != nil || !s.d.stmtSnapshot {
		return lockNone, nil
	}
	t := s.db.txFrom(ctx)
	switch {
	case t == nil || t.snapshotted():
		return lockNone, nil
	case write:
		return lockWrite, nil
	case len(s.m.children) > 0 && t.opts.ReadOnly:
		return lockNone, ErrReadOnlyLoad
	case len(s.m.children) > 0:
		return lockShare, nil
	}
	return lockNone, nil
}

// SelectForUpdate is [Store.Select] that also locks the root row until the
// end of the transaction of ctx: SELECT ... FOR UPDATE on PostgreSQL, MySQL
// and MariaDB. On SQLite, whose write transactions hold the database's
// write lock from their start, it is Select. In a transaction of MySQL or
// MariaDB at REPEATABLE READ, where a locking read reads the latest rows
// and a plain one the transaction's snapshot, the children are read with
// LOCK IN SHARE MODE too, so that they are those of the root read. It
// fails when ctx carries no transaction of the store's DB ([DB.InTx]),
// where the lock would be released at once. It implements
// [repository.Locker].
func (s *Store[T, ID]) SelectForUpdate(ctx context.Context, id ID) (T, error) {
	if s.ready() == nil && s.db.txFrom(ctx) == nil {
		var zero T
		return zero, s.fail("select for update", errors.New("not in a transaction of this DB: the lock would be released at once"))
	}
	return s.selectAgg(ctx, "select for update", s.lockSelect, s.kidsLock(ctx), id)
}

// selectAgg loads the aggregate with key id, its root by the query root,
// its children by their SELECTs ended by kids (see kidsLock).
func (s *Store[T, ID]) selectAgg(ctx context.Context, op, root, kids string, id ID) (T, error) {
	var zero T
	if err := s.ready(); err != nil {
		return zero, s.fail(op, err)
	}
	rt := &s.m.root
	rv := reflect.New(rt.typ)
	base := rv.UnsafePointer()
	found := 0
	dests := make([]any, len(rt.cols))
	for i := range rt.cols {
		dests[i] = rt.cols[i].dest(base, s.wrap)
	}
	stmts := make([]stmt, 0, 1+len(s.m.children))
	l := newLoader(s.m.children, s.wrap, true)
	stmts = append(stmts, stmt{sql: root, args: []any{id}, scan: func(r rowScanner) error {
		if found++; found > 1 {
			return fmt.Errorf("more than one row has key %v", id)
		}
		if err := r.Scan(dests...); err != nil {
			return err
		}
		rt.inUTC(base)
		l.root(base, rt.cols[rt.key].value(base))
		return nil
	}})
	for i, c := range s.m.children {
		stmts = append(stmts, stmt{sql: s.selectChild[i] + kids, args: []any{id}, scan: l.scan(c)})
	}
	if err := s.db.run(ctx, stmts, false); err != nil {
		return zero, s.fail(op, err)
	}
	if found == 0 {
		return zero, s.fail(op, fmt.Errorf("%w: key %v", repository.ErrNotFound, id))
	}
	l.assemble(s.m.top)
	return rv.Interface().(T), nil
}

// Insert writes a new aggregate: the root row, then for each child table
// one multi-row INSERT of all its rows (more when the dialect's parameter
// limit, or on MySQL the server's max_allowed_packet, requires), all or
// nothing. When the root's key is generated, an
// aggregate whose key is set is stored already, and Insert refuses it with
// an error wrapping [repository.ErrUntracked], writing nothing.
func (s *Store[T, ID]) Insert(ctx context.Context, agg T) error {
	if err := s.ready(); err != nil {
		return s.fail("insert", err)
	}
	base := typeinfo.PtrOf(agg)
	if base == nil {
		return s.fail("insert", fmt.Errorf("%w: nil aggregate", repository.ErrUnsupported))
	}
	if rt := &s.m.root; rt.generated {
		if k := reflect.NewAt(rt.cols[rt.key].typ, unsafe.Add(base, rt.cols[rt.key].offset)).Elem(); !k.IsZero() {
			// Stored already: the database made the key.
			return s.fail("insert", fmt.Errorf("%w: key %v", repository.ErrUntracked, k.Interface()))
		}
	}
	if err := s.planned(ctx); err != nil {
		return s.fail("insert", err)
	}
	pl, err := s.insertStmts(base)
	if err != nil {
		return s.fail("insert", err)
	}
	return s.save(ctx, "insert", nil, pl)
}

// save sends the plan of a save of the aggregate with key key, op naming it
// (insert, update, delete): the one place where every write of an
// aggregate is sent. The plan runs all or nothing; when it is the last
// operation of a unit of work that began its transaction (see package
// lastwrite, and [DB.CommitWith]), it carries the COMMIT on pgx. A
// conflict is reported with the aggregate's key, and the version checked.
func (s *Store[T, ID]) save(ctx context.Context, op string, key any, pl *savePlan) error {
	if len(pl.first) == 0 {
		return nil
	}
	if err := pl.run(ctx); err != nil {
		if pl.checked {
			err = keyed(err, key, pl.versioned, pl.version)
		}
		return s.fail(op, err)
	}
	return nil
}

// WritesBack reports whether a save may write into the aggregate: keys
// that the database generated. It implements [repository.WritesBack].
func (s *Store[T, ID]) WritesBack() bool {
	if s.m == nil {
		return false
	}
	for _, tb := range s.m.tables() {
		if tb.generated {
			return true
		}
	}
	return false
}

// savePlan is the statements of a save, in round trips: first, at once,
// then the inserts of each later stage, built once the keys that the
// stage before generated are known.
type savePlan struct {
	db *DB
	d  *dialect
	// srv is what the DB knew of its server when the plan was made: its
	// INSERT ... RETURNING, and the size a statement may take.
	srv    *server
	native bool
	first  []stmt
	rows   [][]*childRow
	tables []*child
	stages int
	root   func() any // reads the root's key
	gen    []genKey   // keys the database generated, to put back on failure
	// checked: the plan checks the root row (and its version, when
	// versioned), which must be found: a conflict names the key, and the
	// version that was expected.
	checked   bool
	versioned bool
	version   int64
}

// genKey is a generated key written into the aggregate, and what it held.
type genKey struct {
	at  reflect.Value // the field
	old reflect.Value
}

// stage returns the inserts of round trip k: for each table, parents
// first, one multi-row INSERT, or one INSERT per row where the key is
// generated (with RETURNING, where the server has it).
func (pl *savePlan) stage(k int) []stmt {
	var out []stmt
	for _, c := range pl.tables {
		var rows []*childRow
		for _, r := range pl.rows[c.index] {
			if r.stage == k {
				rows = append(rows, r)
			}
		}
		if len(rows) == 0 {
			continue
		}
		if !c.generated {
			out = inserts(pl.d, pl.srv.maxPacket, out, c, rows, pl.root)
			continue
		}
		var keep []*childRow
		for _, r := range rows {
			if r.keep {
				keep = append(keep, r)
				continue
			}
			out = append(out, pl.generated(c, r))
		}
		if len(keep) > 0 {
			// Stored before under another parent: inserted with its key.
			out = inserts(pl.d, pl.srv.maxPacket, out, c, keep, pl.root)
		}
	}
	return out
}

// generated returns the INSERT of r, whose key the database generates and
// which is read back into the element.
func (pl *savePlan) generated(c *child, r *childRow) stmt {
	w := &builder{d: pl.d}
	cols := c.insertCols()
	c.insertHead(w, cols, "")
	c.insertRow(w, cols, r, pl.root)
	if !pl.srv.d.returning {
		st := w.stmt(noCheck)
		st.lastID = pl.lastKey(&c.cols[c.key], r.p)
		return st
	}
	w.s(" RETURNING " + c.cols[c.key].quoted)
	st := w.stmt(noCheck)
	st.scan = pl.readKey(&c.cols[c.key], r.p)
	return st
}

// insertHead writes "INSERT INTO t (parent keys, position, cols) VALUES ",
// with override before VALUES.
func (c *child) insertHead(w *builder, cols []column, override string) {
	w.s("INSERT INTO " + c.quoted + " (" + strings.Join(c.refCols, ", "))
	if c.position != "" {
		w.s(", " + c.position)
	}
	for i := range cols {
		w.s(", " + cols[i].quoted)
	}
	w.s(")" + override + " VALUES ")
}

// insertRow writes the values of r for insertHead's columns, in
// parentheses; root reads the root's key.
func (c *child) insertRow(w *builder, cols []column, r *childRow, root func() any) {
	writeRow(w, c.rowValues(cols, r, root))
}

// rowValues returns the values of r for insertHead's columns: the parent
// key values, the position, then cols.
func (c *child) rowValues(cols []column, r *childRow, root func() any) []any {
	vals := append(make([]any, 0, len(c.refCols)+1+len(cols)), r.refVals(root)...)
	if c.position != "" {
		vals = append(vals, r.pos)
	}
	for i := range cols {
		vals = append(vals, cols[i].value(r.p))
	}
	return vals
}

// writeRow writes vals as the parameters of a row of VALUES, in
// parentheses.
func writeRow(w *builder, vals []any) {
	w.s("(")
	for i, v := range vals {
		if i > 0 {
			w.s(", ")
		}
		w.p(v)
	}
	w.s(")")
}

// readKey returns the scan of a generated key, returned by RETURNING,
// into column kc of the struct at p.
func (pl *savePlan) readKey(kc *column, p unsafe.Pointer) func(rowScanner) error {
	return func(r rowScanner) error {
		return pl.setKey(kc, p, func(dest any) error { return r.Scan(dest) })
	}
}

// lastKey returns the lastID of an INSERT of one row whose key the
// database generated, without RETURNING: it sets column kc of the struct
// at p to the id, the row's AUTO_INCREMENT value.
func (pl *savePlan) lastKey(kc *column, p unsafe.Pointer) func(id int64) error {
	return func(id int64) error {
		if id <= 0 {
			// LAST_INSERT_ID() is 0 after an INSERT that generated no
			// value: the key column has no AUTO_INCREMENT.
			return fmt.Errorf("the INSERT generated no key for %s: is column %s AUTO_INCREMENT?", kc.field, kc.name)
		}
		return pl.setKey(kc, p, func(dest any) error { return assignID(dest, id) })
	}
}

// setKey sets column kc of the struct at p with read, given the column's
// destination, remembering what the field held.
func (pl *savePlan) setKey(kc *column, p unsafe.Pointer, read func(dest any) error) error {
	at := reflect.NewAt(kc.typ, unsafe.Add(p, kc.offset)).Elem()
	old := reflect.New(kc.typ).Elem()
	old.Set(at)
	if err := read(kc.dest(p, pl.native)); err != nil {
		return err
	}
	pl.gen = append(pl.gen, genKey{at: at, old: old})
	return nil
}

// assignID stores id, a generated key, in dest, a pointer to a key field:
// a sql.Scanner scans it, an integer field of any size takes it if it
// fits.
func assignID(dest any, id int64) error {
	if sc, ok := dest.(sql.Scanner); ok {
		return sc.Scan(id)
	}
	v := reflect.ValueOf(dest).Elem()
	switch {
	case v.CanInt() && !v.OverflowInt(id):
		v.SetInt(id)
	case v.CanUint() && id >= 0 && !v.OverflowUint(uint64(id)):
		v.SetUint(uint64(id))
	default:
		return fmt.Errorf("the generated key %d does not fit a key of type %v", id, v.Type())
	}
	return nil
}

// restore puts back what the generated keys replaced.
func (pl *savePlan) restore() {
	for i := len(pl.gen) - 1; i >= 0; i-- {
		pl.gen[i].at.Set(pl.gen[i].old)
	}
	pl.gen = nil
}

// run sends the plan, all or nothing, and puts the generated keys back when
// it fails, or when the unit of work it ran in rolls back.
func (pl *savePlan) run(ctx context.Context) error {
	var err error
	if pl.stages <= 1 {
		err = pl.db.runSave(ctx, pl.first, true, true)
	} else {
		err = pl.db.runStages(ctx, pl.first, pl.stages, pl.stage)
	}
	if err != nil {
		pl.restore()
		return err
	}
	if sc, ok := tracking.FromContext(ctx); ok && len(pl.gen) > 0 {
		sc.OnRollback(pl.restore)
	}
	return nil
}

// planned makes the store's DB ready to plan a save (see DB.ready, which
// probes its server once), and checks that its server can make the keys
// that the mapping leaves to it: without INSERT ... RETURNING (MySQL), a
// generated key is read from LAST_INSERT_ID(), an AUTO_INCREMENT integer,
// and a key of another type, or an integer narrower than 64 bits, is
// refused before anything is sent: the client reads the key once the
// server ran the whole round trip, its COMMIT included, and a key it
// cannot hold would leave the row committed with its key unread.
func (s *Store[T, ID]) planned(ctx context.Context) error {
	srv, err := s.db.ready(ctx)
	if err != nil || srv.d.returning {
		return err
	}
	for _, tb := range s.m.tables() {
		if kc := &tb.cols[tb.key]; tb.generated && !intKind(kc.typ) {
			return fmt.Errorf("%w %v: the key %s of %s is generated, and of type %v: %s has no INSERT ... RETURNING, and reads a generated key with LAST_INSERT_ID(), an AUTO_INCREMENT integer: make the key an integer, or make it in Go", ErrMapping, reflect.TypeFor[T](), kc.field, tb.name, kc.typ, srv.d.title)
		}
		if kc := &tb.cols[tb.key]; tb.generated && kc.typ.Size() < 8 {
			return fmt.Errorf("%w %v: the key %s of %s is generated, and of type %v: %s has no INSERT ... RETURNING, and reads a generated key with LAST_INSERT_ID(), a 64-bit integer, after the round trip that may commit its row: make the key a 64-bit integer (int64 or uint64)", ErrMapping, reflect.TypeFor[T](), kc.field, tb.name, kc.typ, srv.d.title)
		}
	}
	return nil
}

// intKind reports whether t is an integer type, named or not.
func intKind(t reflect.Type) bool {
	return sameKindFamily(t.Kind(), reflect.Int64)
}

// server returns what the store's DB knows of its server, once its probe
// ran (see DB.ready, which Insert and Update call before they plan), or
// else its dialect alone.
func (s *Store[T, ID]) server() *server {
	if srv := s.db.srv.Load(); srv != nil {
		return srv
	}
	return &server{d: s.d}
}

// newPlan returns an empty save plan for the aggregate at base.
func (s *Store[T, ID]) newPlan(base unsafe.Pointer) *savePlan {
	rt := &s.m.root
	return &savePlan{db: s.db, d: s.d, srv: s.server(), native: s.wrap, tables: s.m.children, stages: 1,
		rows: make([][]*childRow, len(s.m.children)),
		root: func() any { return rt.cols[rt.key].value(base) }}
}

// insertStmts builds the statements of Insert.
func (s *Store[T, ID]) insertStmts(base unsafe.Pointer) (*savePlan, error) {
	rt := &s.m.root
	pl := s.newPlan(base)
	cols := rt.insertCols()
	args := make([]any, len(cols))
	for i := range cols {
		args[i] = cols[i].value(base)
	}
	st := stmt{sql: s.insertRoot, args: args, rootKey: rt.cols[rt.key].name}
	stage := 0
	if rt.generated {
		if pl.srv.d.returning {
			st.sql, st.scan = s.insertRootRet, pl.readKey(&rt.cols[rt.key], base)
		} else {
			st.lastID = pl.lastKey(&rt.cols[rt.key], base)
		}
		stage = 1 // the children need the root's key
	}
	for _, c := range s.m.top {
		elems, err := c.elements(base)
		if err != nil {
			return nil, err
		}
		if err := c.unique(elems); err != nil {
			return nil, err
		}
		for i, e := range elems {
			if pl.rows, err = c.subtree(pl.rows, nil, nil, stage, i, e, nil); err != nil {
				return nil, err
			}
		}
	}
	pl.count()
	pl.first = append([]stmt{st}, pl.stage(0)...)
	return pl, nil
}

// count sets pl.stages from its rows.
func (pl *savePlan) count() {
	for _, rows := range pl.rows {
		for _, r := range rows {
			pl.stages = max(pl.stages, r.stage+1)
		}
	}
}

// unique checks that no two of elems, elements of c's collection, have the
// same identity: they would be two rows of one key, refused by a unique key
// or, without one, stored and then unusable.
func (c *child) unique(elems []unsafe.Pointer) error {
	if len(elems) < 2 || c.generated {
		// A generated key is made unique by the database; until then it
		// may be a placeholder.
		return nil
	}
	seen := make(map[any]struct{}, len(elems))
	for _, p := range elems {
		at := p
		if c.ptr {
			at = unsafe.Pointer(&p)
		}
		id, _ := c.ident.Read(at)
		if _, dup := seen[id]; dup {
			return fmt.Errorf("%s[id=%v]: %w", c.spec.Field, id, repository.ErrDuplicateID)
		}
		seen[id] = struct{}{}
	}
	return nil
}

// elements returns pointers to the elements of c's collection in the root
// at base, in collection order.
func (c *child) elements(base unsafe.Pointer) ([]unsafe.Pointer, error) {
	v := reflect.NewAt(c.collType, unsafe.Add(base, c.offset)).Elem()
	out := make([]unsafe.Pointer, 0, v.Len())
	add := func(e reflect.Value) error {
		if c.ptr {
			if e.IsNil() {
				return fmt.Errorf("%s: %w", c.spec.Field, repository.ErrNilEntity)
			}
			out = append(out, e.UnsafePointer())
			return nil
		}
		if !e.CanAddr() { // a map value: copy it
			cp := reflect.New(c.elem)
			cp.Elem().Set(e)
			e = cp.Elem()
		}
		out = append(out, e.Addr().UnsafePointer())
		return nil
	}
	if v.Kind() == reflect.Map {
		for it := v.MapRange(); it.Next(); {
			if err := add(it.Value()); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	for i := range v.Len() {
		if err := add(v.Index(i)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// inserts appends the multi-row INSERTs of rows into c's table; root reads
// the root's key. A statement takes as many rows as the dialect's
// parameter limit allows and, where maxBytes is not zero (the server
// bounds the size of a statement with its arguments formatted into it),
// as fit in maxBytes (see argBytes).
func inserts(d *dialect, maxBytes int, stmts []stmt, c *child, rows []*childRow, root func() any) []stmt {
	width := len(c.refCols) + len(c.cols)
	if c.position != "" {
		width++
	}
	per := d.maxParams / width
	override := ""
	if c.generated {
		override = d.overrideKey
	}
	for len(rows) > 0 {
		w := &builder{d: d, args: make([]any, 0, min(per, len(rows))*width)}
		c.insertHead(w, c.cols, override)
		size, n := w.b.Len(), 0
		for ; n < per && n < len(rows); n++ {
			vals := c.rowValues(c.cols, rows[n], root)
			if maxBytes > 0 {
				rb := len(", ()")
				for _, v := range vals {
					rb += len(", ") + argBytes(v)
				}
				if n > 0 && size+rb > maxBytes-stmtMargin {
					break
				}
				size += rb
			}
			if n > 0 {
				w.s(", ")
			}
			writeRow(w, vals)
		}
		stmts = append(stmts, w.stmt(noCheck))
		rows = rows[n:]
	}
	return stmts
}

// stmtMargin is what a statement leaves of the bound of its size for
// its text around the rows or keys that are counted, and the packet's
// header.
const stmtMargin = 4 << 10

// argBytes is the most bytes that v, an argument, takes once the driver
// has formatted it into the text of a statement (go-sql-driver/mysql's
// interpolateParams): a string or a byte slice twice its length (each
// byte may be escaped) and its quotes, a number its longest form, a time
// 'YYYY-MM-DD HH:MM:SS.ffffff'. A driver.Valuer is asked for its value.
func argBytes(v any) int {
	if vr, ok := v.(driver.Valuer); ok {
		dv, err := vr.Value()
		if err != nil {
			return 0 // the statement fails with err when it is sent
		}
		v = dv
	}
	switch v := v.(type) {
	case nil:
		return len("NULL")
	case string:
		return 2*len(v) + len("''")
	case []byte:
		return 2*len(v) + len("_binary''")
	case time.Time:
		return len("'0000-00-00 00:00:00.000000'")
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return len("NULL")
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.String:
		return 2*rv.Len() + len("''")
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return 2*rv.Len() + len("_binary''")
		}
	case reflect.Bool:
		return 1
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return len("-9223372036854775808")
	case reflect.Float32, reflect.Float64:
		return len("-1.2345678901234567e-308")
	case reflect.Struct:
		if rv.Type() == timeType {
			return len("'0000-00-00 00:00:00.000000'")
		}
	}
	return 2*len(fmt.Sprint(rv.Interface())) + len("''")
}

// elemPtr returns a pointer to the struct of an element value of a diff
// (v points to it, and must stay alive while the pointer is used).
func (c *child) elemPtr(v *any) (unsafe.Pointer, error) {
	if *v == nil {
		return nil, fmt.Errorf("%s: %w", c.spec.Field, repository.ErrNilEntity)
	}
	if t := reflect.TypeOf(*v); t != c.elem {
		return nil, fmt.Errorf("%s: element of type %v in the diff, want %v", c.spec.Field, t, c.elem)
	}
	if c.ptr {
		p := (*typeinfo.Eface)(unsafe.Pointer(v)).Data
		if p == nil {
			return nil, fmt.Errorf("%s: %w", c.spec.Field, repository.ErrNilEntity)
		}
		return p, nil
	}
	return typeinfo.DataOf(v, c.elem), nil
}

// childWork is what a save does to one child table.
type childWork struct {
	removed  []group // rows removed from their parent's collection
	gone     []gone  // rows under removed rows of a table above
	modified []modified
	moved    []moved
	moves    []move
}

// move is an element moved from another parent to an existing one, which
// keeps its row: its new parent key values, the element, its index, and
// the columns that changed.
type move struct {
	refs []any
	p    unsafe.Pointer
	pos  int
	mark []bool
}

// moved is an element whose index in its collection changed: the row's
// position is rewritten.
type moved struct {
	refs []any
	p    unsafe.Pointer
	pos  int
}

// gone is the rows of a table under the rows g of the table above.
type gone struct {
	above *child
	g     group
}

// modified is a modified element, with its parent key values.
type modified struct {
	refs []any
	e    *diff.Element
}

// Update writes the changes of a tracked aggregate, all or nothing, in
// this order: the root UPDATE of the changed columns only, with the version
// check and bump (a change of children alone still bumps the version); per
// child table, one DELETE of the removed rows; per modified child, an
// UPDATE of its changed columns only; per child table, one multi-row INSERT
// of the added rows. A change that maps to no column is skipped. When the
// version check finds no row, Update fails with an error wrapping
// [repository.ErrConflict] and writes nothing; so it does when the UPDATE
// of a modified child, or the DELETE of removed ones, finds fewer rows than
// it changes: rows deleted behind the aggregate's back, or keys stored in
// a form that the bound key does not equal (see the package doc, "Times"),
// whose change would otherwise be lost.
func (s *Store[T, ID]) Update(ctx context.Context, agg T, ch repository.Changes) error {
	if err := s.ready(); err != nil {
		return s.fail("update", err)
	}
	base := typeinfo.PtrOf(agg)
	if base == nil {
		return s.fail("update", fmt.Errorf("%w: nil aggregate", repository.ErrUnsupported))
	}
	if err := s.planned(ctx); err != nil {
		return s.fail("update", err)
	}
	pl, err := s.updates(base, &ch)
	if err != nil {
		return s.fail("update", err)
	}
	return s.save(ctx, "update", s.m.root.cols[s.m.root.key].value(base), pl)
}

// keyed adds the key and version to a conflict.
func keyed(err error, key any, versioned bool, version int64) error {
	if !errors.Is(err, repository.ErrConflict) {
		return err
	}
	if versioned {
		return fmt.Errorf("key %v, version %d: %w", key, version, err)
	}
	return fmt.Errorf("key %v: %w", key, err)
}

// updates builds the statements of Update: it plans what the changes do
// to each table, then emits the statements of the plan.
func (s *Store[T, ID]) updates(base unsafe.Pointer, ch *repository.Changes) (*savePlan, error) {
	up, err := s.planUpdate(base, ch)
	if err != nil {
		return nil, err
	}
	return s.emitUpdate(up)
}

// update is the plan of an Update: what its changes do to the root row
// and to each child table, before any statement is built.
type update struct {
	base unsafe.Pointer
	ch   *repository.Changes
	key  any
	mark []bool // the root's changed columns
	work []childWork
	pl   *savePlan // its rows: the inserts
}

// planUpdate plans the changes ch of the aggregate at base.
func (s *Store[T, ID]) planUpdate(base unsafe.Pointer, ch *repository.Changes) (*update, error) {
	rt := &s.m.root
	if ch.Versioned && rt.version < 0 {
		return nil, errors.New("the changes are versioned but the mapping has no version column")
	}
	up := &update{base: base, ch: ch, key: rt.cols[rt.key].value(base)}
	up.mark = rt.changedColumns(ch.Diff.Fields)
	if up.mark[rt.key] {
		return nil, fmt.Errorf("the key %s changed", rt.cols[rt.key].field)
	}
	if rt.version >= 0 {
		up.mark[rt.version] = false
	}
	up.work = make([]childWork, len(s.m.children))
	up.pl = s.newPlan(base)
	up.pl.checked, up.pl.versioned, up.pl.version = true, ch.Versioned, ch.OldVersion
	old, _ := ch.Old.(T)
	op := typeinfo.PtrOf(old)
	ix := &identities{oldBase: op, newBase: base}
	if err := s.walk(&ch.Diff.Changes, s.m.top, []any{up.key}, base, up.work, &up.pl.rows, ix); err != nil {
		return nil, err
	}
	s.removals(up.work, ix)
	if s.m.posBelow() {
		if op == nil {
			return nil, fmt.Errorf("%w: the mapping has position columns, and the changes carry no snapshot (Changes.Old) to tell what moved", repository.ErrUnsupported)
		}
		s.reorders(s.m.top, []any{up.key}, op, base, func(c *child, refs []any, p unsafe.Pointer, pos int) bool {
			up.work[c.index].moved = append(up.work[c.index].moved, moved{refs: refs, p: p, pos: pos})
			return true
		})
	}
	return up, nil
}

// emitUpdate builds the statements of the plan up.
func (s *Store[T, ID]) emitUpdate(up *update) (*savePlan, error) {
	rt := &s.m.root
	ch, base, key, mark, work, pl := up.ch, up.base, up.key, up.mark, up.work, up.pl
	var stmts []stmt
	w := &builder{d: s.d}
	if ch.Versioned || anyTrue(mark) {
		s.checked(w, func() {
			sep := w.updateSet(rt, mark, base)
			if ch.Versioned {
				w.s(sep + rt.cols[rt.version].quoted + " = ")
				w.p(ch.NewVersion)
			}
			w.s(" WHERE " + rt.cols[rt.key].quoted + " = ")
			w.p(key)
			if ch.Versioned {
				w.s(" AND " + rt.cols[rt.version].quoted + " = ")
				w.p(ch.OldVersion)
			}
		}, true, false)
		stmts = append(stmts, w.stmt(checkRows))
	}

	// Moves first, parents first, so that a moved row (and the parent key
	// columns of its descendants) leave an old parent before it is
	// deleted, for a new parent that exists already. Then deletes,
	// deepest tables first, so that foreign keys hold and a unique value a
	// removed row held can be taken by a modified or an added one; then
	// updates, then inserts, parents before children.
	for i, c := range s.m.children {
		for _, mv := range work[i].moves {
			stmts = s.moveStmts(w, stmts, c, &mv)
		}
	}
	for i := len(s.m.children) - 1; i >= 0; i-- {
		c, cw := s.m.children[i], &work[i]
		for _, gn := range cw.gone {
			for _, g := range gn.g.chunks(s.d, pl.srv.maxPacket, gn.above) {
				w.s("DELETE FROM " + c.quoted + " WHERE ")
				if err := under(w, c, gn.above, g.sel(gn.above)); err != nil {
					return nil, err
				}
				stmts = append(stmts, w.stmt(noCheck))
			}
		}
		own := append(c.refCols[:len(c.refCols):len(c.refCols)], c.cols[c.key].quoted)
		for _, rg := range cw.removed {
			for _, g := range rg.chunks(s.d, pl.srv.maxPacket, c) {
				st, err := s.childDelete(w, c, own, g)
				if err != nil {
					return nil, err
				}
				stmts = append(stmts, st)
			}
		}
	}
	for i, c := range s.m.children {
		for _, mv := range work[i].moved {
			s.checked(w, func() {
				w.s("UPDATE " + c.quoted + " SET " + c.position + " = ")
				w.p(mv.pos)
				w.s(" WHERE ")
				for j, v := range mv.refs {
					w.s(c.refCols[j] + " = ")
					w.p(v)
					w.s(" AND ")
				}
				w.s(c.cols[c.key].quoted + " = ")
				w.p(c.keyOf(mv.p))
			}, true, false)
			stmts = append(stmts, rowStmt(w, c, c.keyOf(mv.p)))
		}
		for _, md := range work[i].modified {
			st, ok, err := s.childUpdate(w, c, md.refs, md.e)
			if err != nil {
				return nil, err
			}
			if ok {
				stmts = append(stmts, st)
			}
		}
	}
	pl.count()
	pl.first = append(stmts, pl.stage(0)...)
	if len(pl.first) > 0 && !ch.Versioned && !anyTrue(mark) {
		// A change of children alone of an aggregate without a version
		// writes no root row: the root is locked (and checked) first all
		// the same, as every write of an aggregate locks it, so that a
		// load that locked it reads the aggregate as of one commit, and a
		// removed aggregate is not given children.
		s.checked(w, func() {
			w.s("SELECT 1 FROM " + rt.quoted + " WHERE " + rt.cols[rt.key].quoted + " = ")
			w.p(key)
			w.s(s.d.writeSuffix)
		}, false, false)
		pl.first = append([]stmt{w.stmt(checkRow)}, pl.first...)
	}
	return pl, nil
}

// walk records in work and rows what the changes ch of an entity (the
// root, or an element) do to the tables kids of its collections; idv are
// the entity's identifying values (its parent key values, then its key).
// An element added whose key is generated and was stored before, under
// another parent, is a move (see identities).
func (s *Store[T, ID]) walk(ch *diff.Changes, kids []*child, idv []any, newP unsafe.Pointer, work []childWork, rows *[][]*childRow, ix *identities) error {
	for i := range ch.Collections {
		col := &ch.Collections[i]
		idx, ok := col.Path.FieldIndex()
		if !ok || len(idx) != 1 {
			continue
		}
		var c *child
		for _, k := range kids {
			if k.fieldIdx == idx[0] {
				c = k
			}
		}
		if c == nil {
			continue // not mapped
		}
		refs := c.refsFor(idv)
		var removed group
		for j := range col.Elements {
			e := &col.Elements[j]
			switch e.Kind {
			case diff.Removed:
				p, err := c.elemPtr(&e.Old)
				if err != nil {
					return err
				}
				removed.keys = append(removed.keys, c.keyOf(p))
			case diff.Added:
				p, err := c.elemPtr(&e.New)
				if err != nil {
					return err
				}
				pos := 0
				if c.position != "" || !c.ptr {
					// An element stored by value is the diff's copy: the
					// live one, in the aggregate, is where a generated key
					// is written back.
					pos, p = c.find(newP, p)
				}
				var known []map[any]unsafe.Pointer
				if c.genBelow && c.keySet(p) {
					// It, or an element below it, may have been stored.
					if err := s.known(ix); err != nil {
						return err
					}
					known = ix.old
				}
				if c.generated && known != nil {
					if oldP, ok := known[c.index][c.keyOf(p)]; ok {
						if err := s.move(c, refs, oldP, p, pos, work, rows, ix); err != nil {
							return err
						}
						continue
					}
				}
				if *rows, err = c.subtree(*rows, nil, refs, 0, pos, p, known); err != nil {
					return err
				}
			case diff.Modified:
				p, err := c.elemPtr(&e.New)
				if err != nil {
					return err
				}
				work[c.index].modified = append(work[c.index].modified, modified{refs: refs, e: e})
				if len(c.kids) > 0 {
					if err := s.walk(&e.Changes, c.kids, c.ids(refs, p), p, work, rows, ix); err != nil {
						return err
					}
				}
			}
		}
		if len(removed.keys) > 0 {
			removed.refs = refs
			work[c.index].removed = append(work[c.index].removed, removed)
		}
	}
	return nil
}

// removals drops from the removed rows of work those that moved to
// another parent and keep their row, and records the rows below the
// others, which go with them.
func (s *Store[T, ID]) removals(work []childWork, ix *identities) {
	for i, c := range s.m.children {
		cw := &work[i]
		if ix.moved != nil && len(ix.moved[i]) > 0 {
			for j := range cw.removed {
				cw.removed[j].keys = slices.DeleteFunc(cw.removed[j].keys, func(k any) bool { return ix.moved[i][k] })
			}
			cw.removed = slices.DeleteFunc(cw.removed, func(g group) bool { return len(g.keys) == 0 })
		}
		for _, g := range cw.removed {
			for _, d := range s.m.children[i+1:] {
				if d.below(c) {
					work[d.index].gone = append(work[d.index].gone, gone{above: c, g: g})
				}
			}
		}
	}
}

// identities is what a save knows of the elements whose key the database
// generates. An element added to a collection whose key was stored before
// is an element moved from another parent, which keeps its key: with an
// UPDATE of its row's parent key columns when its new parent exists
// already (the row, and what its columns that are not mapped hold, stays),
// or else inserted with its key, its old row being deleted.
type identities struct {
	// oldBase is the snapshot (nil when the changes carry none), newBase
	// the aggregate.
	oldBase, newBase unsafe.Pointer
	// old holds, per table whose key is generated, the elements of the
	// snapshot by key; nil until known builds it.
	old []map[any]unsafe.Pointer
	// moved holds, per table, the keys of the elements moved by an UPDATE.
	moved []map[any]bool
}

// known builds ix.old, once, and checks that no element of a stored key
// is held twice in the aggregate (by two parents).
func (s *Store[T, ID]) known(ix *identities) error {
	if ix.old != nil {
		return nil
	}
	if ix.oldBase == nil {
		return fmt.Errorf("%w: the mapping has generated child keys, and the changes carry no snapshot (Changes.Old) to tell a moved element from a new one", repository.ErrUnsupported)
	}
	n := len(s.m.children)
	ix.old, ix.moved = make([]map[any]unsafe.Pointer, n), make([]map[any]bool, n)
	for _, c := range s.m.children {
		if c.generated {
			ix.old[c.index] = map[any]unsafe.Pointer{}
		}
	}
	if err := generatedElems(s.m.top, ix.oldBase, func(c *child, k any, p unsafe.Pointer) error {
		ix.old[c.index][k] = p
		return nil
	}); err != nil {
		return err
	}
	seen := make([]map[any]bool, n)
	return generatedElems(s.m.top, ix.newBase, func(c *child, k any, _ unsafe.Pointer) error {
		if _, ok := ix.old[c.index][k]; !ok {
			return nil // new: its key is a placeholder
		}
		if seen[c.index] == nil {
			seen[c.index] = map[any]bool{}
		}
		if seen[c.index][k] {
			return fmt.Errorf("%s[id=%v]: %w: the element is held by two parents", c.path, k, repository.ErrDuplicateID)
		}
		seen[c.index][k] = true
		return nil
	})
}

// keySet reports whether the element at p of c, or an element below it,
// holds a key that is generated and set: an element that may have been
// stored. A new element's generated key is zero, or a placeholder.
func (c *child) keySet(p unsafe.Pointer) bool {
	if c.generated && !reflect.ValueOf(c.keyOf(p)).IsZero() {
		return true
	}
	for _, k := range c.kids {
		if !k.genBelow {
			continue
		}
		elems, err := k.elements(p)
		if err != nil {
			return true // the error is met again, and reported, later
		}
		for _, e := range elems {
			if k.keySet(e) {
				return true
			}
		}
	}
	return false
}

// generatedElems calls f with every element, and its key, of a table with
// a generated key, below the entity at base whose collections are kids.
func generatedElems(kids []*child, base unsafe.Pointer, f func(c *child, key any, p unsafe.Pointer) error) error {
	for _, c := range kids {
		if !c.genBelow {
			continue
		}
		elems, err := c.elements(base)
		if err != nil {
			return err
		}
		for _, e := range elems {
			if c.generated {
				if err := f(c, c.keyOf(e), e); err != nil {
					return err
				}
			}
			if err := generatedElems(c.kids, e, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// move records the move of the element at p, of c, stored at oldP in the
// snapshot under another parent, to the existing parent whose key values
// are refs, at index pos: an UPDATE of its row, and the changes below it.
func (s *Store[T, ID]) move(c *child, refs []any, oldP, p unsafe.Pointer, pos int, work []childWork, rows *[][]*childRow, ix *identities) error {
	r, err := diffat.Compare(c.typ, oldP, p)
	if err != nil {
		return fmt.Errorf("%s: %w", c.spec.Field, err)
	}
	d := r.(diff.Result)
	if ix.moved[c.index] == nil {
		ix.moved[c.index] = map[any]bool{}
	}
	ix.moved[c.index][c.keyOf(p)] = true
	work[c.index].moves = append(work[c.index].moves, move{refs: refs, p: p, pos: pos, mark: c.changedColumns(d.Fields)})
	if len(c.kids) == 0 {
		return nil
	}
	ids := c.ids(refs, p)
	if err := s.walk(&d.Changes, c.kids, ids, p, work, rows, ix); err != nil {
		return err
	}
	if c.posBelow {
		s.reorders(c.kids, ids, oldP, p, func(k *child, krefs []any, kp unsafe.Pointer, kpos int) bool {
			work[k.index].moved = append(work[k.index].moved, moved{refs: krefs, p: kp, pos: kpos})
			return true
		})
	}
	return nil
}

// moveStmts appends to stmts the statements of mv, a move of an element
// of c: the UPDATE of its row's parent key columns, position and changed
// columns, found by its generated key, which is unique in its table; then,
// for each table below that refers to it by every level's parent key, the
// UPDATE of those of its descendants' rows.
func (s *Store[T, ID]) moveStmts(w *builder, stmts []stmt, c *child, mv *move) []stmt {
	key := c.keyOf(mv.p)
	setRefs(w, c, mv.refs)
	if c.position != "" {
		w.s(", " + c.position + " = ")
		w.p(mv.pos)
	}
	for j, m := range mv.mark {
		if m && j != c.key {
			w.s(", " + c.cols[j].quoted + " = ")
			w.p(c.cols[j].value(mv.p))
		}
	}
	w.s(" WHERE " + c.cols[c.key].quoted + " = ")
	w.p(key)
	stmts = append(stmts, w.stmt(noCheck))
	for _, d := range s.m.children[c.index+1:] {
		if !d.keyedThrough(c) {
			continue
		}
		setRefs(w, d, mv.refs)
		w.s(" WHERE " + d.refCols[len(c.refCols)] + " = ")
		w.p(key)
		stmts = append(stmts, w.stmt(noCheck))
	}
	return stmts
}

// setRefs writes `UPDATE table SET ref = ?, ...`: the first len(refs)
// parent key columns of c's table set to refs.
func setRefs(w *builder, c *child, refs []any) {
	w.s("UPDATE " + c.quoted + " SET ")
	for j, v := range refs {
		if j > 0 {
			w.s(", ")
		}
		w.s(c.refCols[j] + " = ")
		w.p(v)
	}
}

// keyedThrough reports whether d is a table below c whose rows hold the
// parent key columns of c's rows: no level from d up to c refers to its
// parent by its key alone.
func (d *child) keyedThrough(c *child) bool {
	for k := d; k.parent != nil; k = k.parent {
		if k.spec.ParentKeyOnly {
			return false
		}
		if k.parent == c {
			return true
		}
	}
	return false
}

func anyTrue(b []bool) bool {
	for _, v := range b {
		if v {
			return true
		}
	}
	return false
}

// changedColumns marks the columns of tb that the field changes touch.
func (tb *table) changedColumns(fields []diff.Change) []bool {
	mark := make([]bool, len(tb.cols))
	for i := range fields {
		if idx, ok := fields[i].Path.FieldIndex(); ok && len(idx) > 0 {
			tb.changed(idx, mark)
		}
	}
	return mark
}

// updateSet writes `UPDATE "table" SET "col" = $n, ...` for the marked
// columns of tb, read from the struct at base, and returns the separator
// that continues the list.
func (w *builder) updateSet(tb *table, mark []bool, base unsafe.Pointer) string {
	w.s("UPDATE " + tb.quoted + " SET ")
	sep := ""
	for i, m := range mark {
		if m {
			w.s(sep + tb.cols[i].quoted + " = ")
			w.p(tb.cols[i].value(base))
			sep = ", "
		}
	}
	return sep
}

// childUpdate builds the UPDATE of the changed columns of a modified
// child, or reports false when no mapped column changed.
func (s *Store[T, ID]) childUpdate(w *builder, c *child, refs []any, e *diff.Element) (stmt, bool, error) {
	mark := c.changedColumns(e.Fields)
	if !anyTrue(mark) {
		return stmt{}, false, nil
	}
	if mark[c.key] {
		return stmt{}, false, fmt.Errorf("%s: the key %s of element %v changed", c.spec.Field, c.cols[c.key].field, e.ID)
	}
	p, err := c.elemPtr(&e.New)
	if err != nil {
		return stmt{}, false, err
	}
	s.checked(w, func() {
		w.updateSet(&c.table, mark, p)
		w.s(" WHERE ")
		for i, v := range refs {
			w.s(c.refCols[i] + " = ")
			w.p(v)
			w.s(" AND ")
		}
		w.s(c.cols[c.key].quoted + " = ")
		w.p(c.cols[c.key].value(p))
	}, true, false)
	return rowStmt(w, c, c.cols[c.key].value(p)), true, nil
}

// rowStmt returns the statement built in w, an UPDATE of the row of c
// with key key, checked: a save whose change of a row finds no row to
// change (removed behind the aggregate's back, or whose key is stored in
// a form that the key bound does not equal) fails with a conflict, and
// writes nothing, rather than report as saved a change that was lost.
func rowStmt(w *builder, c *child, key any) stmt {
	st := w.stmt(checkRows)
	st.missing = fmt.Sprintf("%s: no row has key %v", c.name, key)
	return st
}

// childDelete builds the DELETE of the rows g of c, own being c's parent
// key columns and key column, checked: it must delete as many rows as g
// has keys. One it does not find is a row removed behind the aggregate's
// back, or one whose key is stored in a form that the key bound does not
// equal, which would stay: the save fails with a conflict and writes
// nothing.
func (s *Store[T, ID]) childDelete(w *builder, c *child, own []string, g group) (stmt, error) {
	if s.wrap {
		w.s("WITH r AS (")
	}
	w.s("DELETE FROM " + c.quoted + " WHERE ")
	if err := g.sel(c)(w, own); err != nil {
		return stmt{}, err
	}
	n := len(g.keys)
	if s.wrap {
		switch {
		case n == 1:
			w.s(" RETURNING 1) SELECT 1/count(*) FROM r")
		case s.d.anyArray && plainKind(c.cols[c.key].typ):
			// The keys are the last parameter, an array.
			w.s(" RETURNING 1) SELECT 1/(count(*) = cardinality($" + strconv.Itoa(len(w.args)) + "))::int FROM r")
		default:
			w.s(" RETURNING 1) SELECT 1/(count(*) = " + strconv.Itoa(n) + ")::int FROM r")
		}
	}
	st := w.stmt(checkRows)
	st.rows = int64(n)
	st.missing = fmt.Sprintf("%s: of the %d rows to delete, keys %v, some were not found", c.name, n, g.keys)
	return st, nil
}

// Delete removes the aggregate, all or nothing: each child table's rows of
// the root, then the root row, which must have the given version (when
// the root has one). On PostgreSQL the root row is first locked and checked
// with SELECT ... FOR UPDATE. When the root row is missing or has another
// version, Delete fails with an error wrapping [repository.ErrConflict].
func (s *Store[T, ID]) Delete(ctx context.Context, agg T, version int64) error {
	if err := s.ready(); err != nil {
		return s.fail("delete", err)
	}
	base := typeinfo.PtrOf(agg)
	if base == nil {
		return s.fail("delete", fmt.Errorf("%w: nil aggregate", repository.ErrUnsupported))
	}
	pl := s.newPlan(base)
	pl.first = s.deleteStmts(base, version)
	pl.checked, pl.versioned, pl.version = true, s.m.root.version >= 0, version
	return s.save(ctx, "delete", s.m.root.cols[s.m.root.key].value(base), pl)
}

// deleteStmts builds the statements of Delete.
func (s *Store[T, ID]) deleteStmts(base unsafe.Pointer, version int64) []stmt {
	rt := &s.m.root
	return s.deleteKey(rt.cols[rt.key].value(base), rt.version >= 0, version, false)
}

// deleteKey builds the statements that delete the aggregate with key key,
// of the given version when versioned (the root has a version column).
// When tell, the root's check tells a missing row from one at another
// version where it can (on pgx, see deleteSQL).
func (s *Store[T, ID]) deleteKey(key any, versioned bool, version int64, tell bool) []stmt {
	lock, del := s.lockRootAny, s.deleteRootAny
	keyArgs := []any{key}
	checkArgs := keyArgs
	if versioned {
		lock, del = s.lockRoot, s.deleteRoot
		keyArgs = []any{key, version}
		checkArgs = keyArgs
		if tell && s.wrap {
			lock, del = s.lockRootTell, s.deleteRootTell
			checkArgs = []any{key, version, key}
		}
	}
	stmts := make([]stmt, 0, len(s.deleteChild)+2)
	if lock != "" {
		stmts = append(stmts, stmt{sql: lock, args: checkArgs, check: checkRow})
	}
	for _, q := range s.deleteChild {
		stmts = append(stmts, stmt{sql: q, args: []any{key}})
	}
	if lock != "" {
		return append(stmts, stmt{sql: del, args: keyArgs})
	}
	return append(stmts, stmt{sql: del, args: checkArgs, check: checkRows})
}

// DeleteByID removes the aggregate with key id, as [Store.Delete] does,
// without loading it: of the given version when version is not nil (the
// mapping must then have a version column), whatever its version
// otherwise. When no row has key id, it fails with an error wrapping
// [repository.ErrNotFound]; when the root row has another version, with
// one wrapping [repository.ErrConflict]. It is one round trip on pgx,
// where the statement that checks the root row tells the two apart;
// elsewhere, a failure with a version costs one more, a SELECT that tells
// them apart.
func (s *Store[T, ID]) DeleteByID(ctx context.Context, id ID, version *int64) error {
	if err := s.ready(); err != nil {
		return s.fail("delete", err)
	}
	rt := &s.m.root
	if version != nil && rt.version < 0 {
		return s.fail("delete", fmt.Errorf("%w: a version is given, and the mapping has no version column", repository.ErrUnsupported))
	}
	pl := &savePlan{db: s.db, d: s.d, srv: s.server(), native: s.wrap, stages: 1, checked: true}
	if version != nil {
		pl.versioned, pl.version = true, *version
	}
	pl.first = s.deleteKey(any(id), pl.versioned, pl.version, true)
	err := s.save(ctx, "delete", any(id), pl)
	if errors.Is(err, errMissing) {
		return s.fail("delete", fmt.Errorf("%w: key %v", repository.ErrNotFound, id))
	}
	if err == nil || !errors.Is(err, repository.ErrConflict) || errors.Is(err, repository.ErrOutcomeUnknown) {
		return err
	}
	if version == nil {
		// Whatever its version, the row would have been deleted: there
		// is none.
		return s.fail("delete", fmt.Errorf("%w: key %v", repository.ErrNotFound, id))
	}
	if s.wrap {
		// The statement would have told a missing row.
		return err
	}
	// The root row was not found, or not at that version: which, a
	// SELECT tells (the failure rolled back what it did, and left a
	// transaction usable). When it cannot be told, the conflict stands.
	found := 0
	if qerr := s.db.run(ctx, []stmt{{sql: s.existsRoot, args: []any{id}, scan: func(rowScanner) error {
		found++
		return nil
	}}}, false); qerr != nil || found > 0 {
		return err
	}
	return s.fail("delete", fmt.Errorf("%w: key %v", repository.ErrNotFound, id))
}

// Repository is the repository of aggregates of type T on a [DB]: the
// [repository.AggregateRepositorySupport] over a [Store] (Find, Save,
// Remove, Update, ...), with queries that return tracked aggregates.
type Repository[T any, ID comparable] struct {
	*repository.AggregateRepositorySupport[T, ID]
	store *Store[T, ID]
}

// NewRepository returns the repository of aggregates of type T on db with
// mapping m, with db as its [repository.Transactor], so that
// [repository.AggregateRepositorySupport.Update] runs in a transaction of
// db. opts are passed to [repository.NewSupport] after that one: with
// [repository.WrapHooks], Find, Save, Remove, Update and the others of the
// support go through a wrapper of the store (a cache, say), which finds
// the store's abilities through its Unwrap. FindAll, FindByIDs, FindEach,
// Count and Exists query the store itself, and Store returns it unwrapped.
//
// The root's identity is its method ID() ID (T implements
// ddd.Aggregate[ID]), or, for a root whose accessor has another name (UUID,
// say), its field tagged `ddd:"id"`, which must then be the key column's
// field: see package ddd.
func NewRepository[T any, ID comparable](db *DB, m *Mapping[T], opts ...repository.Option) (*Repository[T, ID], error) {
	if err := db.check(); err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	if m == nil {
		return nil, errors.New("sqlstore: nil *sqlstore.Mapping")
	}
	if err := m.identityIsKey(); err != nil {
		return nil, fmt.Errorf("sqlstore: %w %v: %w", ErrMapping, reflect.TypeFor[T](), err)
	}
	st := NewStore[T, ID](db, m)
	if st.err != nil {
		return nil, fmt.Errorf("sqlstore: %w", st.err)
	}
	sup, err := repository.NewSupport[T, ID](st, append([]repository.Option{repository.WithTransactor(db)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return &Repository[T, ID]{AggregateRepositorySupport: sup, store: st}, nil
}

// Store returns the repository's store.
func (r *Repository[T, ID]) Store() *Store[T, ID] { return r.store }

// FindAll returns the aggregates that q selects, children included, in q's
// order, tracked as [repository.AggregateRepositorySupport.Find] tracks
// the one it returns: within a unit of work, an aggregate already loaded
// in it is returned as that same instance. See [Store.SelectWhere] for the
// statements and round trips.
func (r *Repository[T, ID]) FindAll(ctx context.Context, q Query) ([]T, error) {
	found, err := r.store.SelectWhere(ctx, q)
	if err != nil {
		return nil, err
	}
	return r.Track(ctx, found)
}

// FindByIDs returns the aggregates with the given identities, tracked, in
// the order of ids; identities that no aggregate has are left out.
func (r *Repository[T, ID]) FindByIDs(ctx context.Context, ids []ID) ([]T, error) {
	found, err := r.store.SelectByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	return r.Track(ctx, found)
}

// Count returns how many aggregates q's conditions select.
func (r *Repository[T, ID]) Count(ctx context.Context, q Query) (int64, error) {
	return r.store.Count(ctx, q)
}

// Exists reports whether q's conditions select any aggregate.
func (r *Repository[T, ID]) Exists(ctx context.Context, q Query) (bool, error) {
	return r.store.Exists(ctx, q)
}

// Ordered reports whether a table of the mapping has a position column.
// It implements [repository.Orderer].
func (s *Store[T, ID]) Ordered() bool { return s.m != nil && s.m.posBelow() }

// Reordered reports whether an element of a collection with a position
// column changed its index between old and new, at any depth: a reorder,
// which is not a change to package diff, but which the position column
// stores. It implements [repository.Orderer].
func (s *Store[T, ID]) Reordered(old, new T) bool {
	if s.ready() != nil || !s.m.posBelow() {
		return false
	}
	op, np := typeinfo.PtrOf(old), typeinfo.PtrOf(new)
	if op == nil || np == nil {
		return false
	}
	rt := &s.m.root
	found := false
	s.reorders(s.m.top, []any{rt.cols[rt.key].value(np)}, op, np, func(*child, []any, unsafe.Pointer, int) bool {
		found = true
		return false
	})
	return found
}

// reorders calls moved for every element of a collection with a position
// column, below the entity at oldP (the snapshot's) and newP (the live
// one), of identifying values idv, whose index changed, with its parent
// key values, until moved returns false. It reports whether to go on.
func (s *Store[T, ID]) reorders(kids []*child, idv []any, oldP, newP unsafe.Pointer, moved func(c *child, refs []any, p unsafe.Pointer, pos int) bool) bool {
	for _, c := range kids {
		if !c.posBelow {
			continue
		}
		olds, err := c.elements(oldP)
		if err != nil {
			continue
		}
		news, err := c.elements(newP)
		if err != nil {
			continue
		}
		at := make(map[any]int, len(olds))
		for i, p := range olds {
			at[c.keyOf(p)] = i
		}
		refs := c.refsFor(idv)
		for i, p := range news {
			j, ok := at[c.keyOf(p)]
			if !ok {
				continue // added: inserted at its index
			}
			if c.position != "" && i != j && !moved(c, refs, p, i) {
				return false
			}
			if len(c.kids) > 0 && !s.reorders(c.kids, c.ids(refs, p), olds[j], p, moved) {
				return false
			}
		}
	}
	return true
}

// find returns the index, in the collection of c in the struct at base,
// of the element with the identity of the element at p, and a pointer to
// it there; p itself when it is not found.
func (c *child) find(base, p unsafe.Pointer) (int, unsafe.Pointer) {
	elems, _ := c.elements(base)
	key := c.keyOf(p)
	for i, e := range elems {
		if c.keyOf(e) == key {
			return i, e
		}
	}
	return 0, p
}
