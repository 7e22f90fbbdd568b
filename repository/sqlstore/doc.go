// Package sqlstore persists aggregates in SQL tables: it implements the
// hooks of [repository.AggregateRepositorySupport] for PostgreSQL (through
// pgx, natively or through database/sql), SQLite, MySQL and MariaDB
// (through database/sql), writing only what changed, in one transaction,
// in as few round trips as the driver allows.
//
// A program builds a [DB] once per connection pool, a [Mapping] once per
// aggregate type, and a repository from both:
//
//	db := sqlstore.NewPGX(pool)
//	m, err := sqlstore.NewMapping[*Order](
//		sqlstore.Table{Name: "orders"},
//		sqlstore.Child{Field: "items", Table: "order_items", ParentKey: "order_id"},
//	)
//	orders, err := sqlstore.NewRepository[*Order, OrderID](db, m)
//	err = orders.Update(ctx, id, func(_ context.Context, o *Order) error { return o.AddItem(...) })
//
// # Connections and dialects
//
// [NewPGX] takes anything with pgx's SendBatch (a *pgxpool.Pool or a
// *pgx.Conn, never a pgx.Tx: transactions are begun by [DB.InTx]) and sends
// every operation as one pgx.Batch; it returns no error, and [DB.Err] says
// whether the DB it built can run statements. [NewSQL] takes a *sqlx.DB and picks the
// dialect from its driver name ([NewSQLDB] takes a *sql.DB and the name): "pgx" (and "pgx/v5") and "postgres" are
// PostgreSQL, "sqlite" and "sqlite3" SQLite, "mysql" MySQL and MariaDB
// (see MySQL and MariaDB), anything else is an error.
// Only these differences are dialect-specific: placeholders ($1 or ?, in
// the SQL sqlstore writes; SQL of your own takes ? on every database); the
// DELETE of removed children ("id" = ANY($2) with one array parameter with
// pgx, an IN (?, ?, ...) list on SQLite and with lib/pq, which cannot bind
// a Go slice); the parameter limit that splits multi-row INSERTs and IN
// lists (65535 on PostgreSQL, 32766 on SQLite); row locks (SELECT ... FOR
// UPDATE, FOR NO KEY UPDATE, FOR SHARE: PostgreSQL only, see "Loads see
// one commit"); the isolation of a load's snapshot; the form in which
// times are sent (see Times); how a transaction begins (BEGIN IMMEDIATE for
// a unit of work on SQLite); the errors of the database (see Errors about
// the data). Identifiers are quoted the same way on both ("sales"."orders").
//
// # SQLite
//
// On SQLite, sqlstore runs on modernc.org/sqlite (the driver "sqlite") and
// expects a database file opened with three pragmas, which the driver sets
// on every connection of the pool:
//
//	x, err := sqlx.Open("sqlite", "file:app.db?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)")
//	db, err := sqlstore.NewSQL(x)
//
// Each of them matters:
//
//   - busy_timeout(5000): a unit of work that meets the write lock of
//     another waits for it, up to 5 s, so that writers queue. Without
//     it, the second writer fails at once with SQLITE_BUSY, which
//     matches [repository.ErrConflict].
//   - foreign_keys(1): SQLite checks REFERENCES only when told, on each
//     connection. Without it, a row that refers to no row is stored
//     without a word; with it, the save fails with
//     [repository.ErrConstraint] and writes nothing.
//   - journal_mode(WAL): a write commits while other connections read,
//     and a read transaction keeps seeing what it began with. With the
//     default rollback journal, a commit waits, under busy_timeout, until
//     every open read transaction has ended, and fails with
//     [repository.ErrConflict] if they do not end in time. WAL is a property of
//     the file, kept once set.
//
// An in-memory database (":memory:") is one database per connection of
// the pool, each empty: use a file, in a temporary directory for tests.
// With another SQLite driver, set the same pragmas in its own DSN syntax.
//
// # MySQL and MariaDB
//
// On MySQL and MariaDB, sqlstore runs on github.com/go-sql-driver/mysql
// (the driver "mysql"), opened with the DSN that [MySQLDSN] makes of a DSN
// of the driver or of a mysql:// URL:
//
//	dsn, err := sqlstore.MySQLDSN("mysql://app:secret@db:3306/shop") // or "app:secret@tcp(db:3306)/shop"
//	x, err := sqlx.Open("mysql", dsn)
//	db, err := sqlstore.NewSQL(x)
//
// It keeps the DSN's settings, adds those sqlstore needs, and refuses one
// that sets them otherwise:
//
//   - multiStatements=true and interpolateParams=true: the statements of
//     an operation go as one text query, one round trip. Without
//     interpolateParams each statement with arguments is a prepare, an
//     execute and a close, three round trips.
//   - clientFoundRows=true: an UPDATE reports the rows it matched, as
//     PostgreSQL and SQLite do, not only those whose values it changed.
//     The root's UPDATE always changes the version, but the UPDATE of a
//     child that writes the values its row already holds (another writer
//     wrote them meanwhile) would otherwise count no row, and the save
//     would fail as a conflict.
//   - parseTime=true: DATETIME and TIMESTAMP columns scan into time.Time.
//   - loc=UTC and time_zone='+00:00' (the session's time zone, set on each
//     connection): a time is written and read as UTC, and the server's
//     NOW() and TIMESTAMP columns agree with it. DATETIME keeps whole
//     seconds and DATETIME(6) microseconds; MySQL rounds what is finer.
//
// The first use of a DB reads its session, once, in one round trip, and
// fails with an error that names what is missing and MySQLDSN: the
// options above, a strict sql_mode (STRICT_TRANS_TABLES or
// STRICT_ALL_TABLES: without one the server cuts a value too long for
// its column, or out of its range, with a warning, and the save
// succeeds), autocommit on, and a session charset (character_set_client
// and character_set_connection) in which values can be escaped byte by
// byte (see below). The UPDATE that checks clientFoundRows runs on a
// temporary table, and is skipped without the privilege to create one, or
// when the DSN names no database to create it in. The same round trip
// reads the server's version (MariaDB 10.5 and later has INSERT ...
// RETURNING) and max_allowed_packet. A failed read is tried again by the
// next use.
//
// Values in the text of statements. The package sends every value as a
// bind parameter, never as SQL it writes; on MySQL the driver then formats
// the parameters into the statement's text on the client
// (interpolateParams), which is what lets several statements travel in
// one round trip. A number is written in decimal, a time as a quoted
// literal, a text or []byte in quotes, with every quote, backslash, NUL,
// newline, carriage return and Ctrl-Z escaped: by a backslash, or, when
// the session's sql_mode has NO_BACKSLASH_ESCAPES (which the server
// reports in the status of every answer, and the driver follows), by a
// doubled quote. Byte-wise escaping is sound only in a charset in which no
// byte of a multibyte character is an ASCII byte, as utf8mb4 and latin1
// are: in big5, cp932, gb18030, gb2312, gbk and sjis a character's second
// byte may be a backslash, and the driver refuses interpolateParams with
// those charsets and their collations (so does MySQLDSN). A server may
// still give the session one of them (init_connect='SET NAMES gbk', or
// skip-character-set-client-handshake with such a default): the first use
// of a DB refuses a session whose character_set_client or
// character_set_connection is one of them. Do not change the charset of a
// connection with SET NAMES: the driver would not know it.
// An operation whose text, its values escaped, could exceed the server's
// max_allowed_packet is sent in several round trips of one transaction;
// a single statement larger than that goes alone, as the driver sends it
// (as a prepared statement, its long values apart, when it exceeds the
// driver's own limit), and fails when the server refuses its size.
//
// Round trips. Each statement of a round trip is followed by a SELECT of
// its row count (ROW_COUNT(), and LAST_INSERT_ID() where its generated key
// is wanted): the DB reads affected rows, generated keys and which
// statement failed from the results in order. A checked statement (the
// version check of a save, an UPDATE or a DELETE that must find its rows)
// is followed by one that fails on the server when the count is wrong, so
// that nothing after it runs, the COMMIT included. Counted on the wire
// (the commands the client sends, on MariaDB 10.11): a save outside a
// unit of work is one round trip (SET TRANSACTION ISOLATION LEVEL READ
// COMMITTED, START TRANSACTION, its statements, COMMIT); a load of
// aggregates with their children outside a transaction is one (START
// TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY at REPEATABLE READ, the
// SELECTs, COMMIT); a remove is one; Update is two, its load with the
// BEGIN and its save with the COMMIT, as on pgx; [DB.InTx] with a load and
// a save is three, and two with the save marked by [DB.CommitWith]. The
// ROLLBACK TO SAVEPOINT after a failed save in a unit of work goes with
// the next operation.
//
// Isolation. InnoDB's default level is REPEATABLE READ; the units of work
// of a DB run at READ COMMITTED, as on PostgreSQL (each begins with SET
// TRANSACTION ISOLATION LEVEL READ COMMITTED, or the level of its
// [TxOptions]), and their loads lock the roots they read (LOCK IN SHARE
// MODE, or FOR UPDATE for Update's); see "Loads see one commit". At
// REPEATABLE READ a load locks the children it reads too: a locking read
// of InnoDB reads the latest committed rows, while a plain SELECT reads
// the transaction's snapshot. SERIALIZABLE makes every read of InnoDB a
// locking read: readers then hold back writers. MySQL does not tell a
// session the level of its transaction: for [DB.JoinSQL], declare the
// options of the caller's transaction with [WithTxOptions]; without them
// its loads lock roots and children alike, which fails in a read-only
// transaction.
//
// Deadlocks and lock waits. A deadlock (error 1213: the server rolled the
// transaction back), a lock wait timeout (1205: the server rolled back the
// statement alone, and keeps the earlier ones) and MariaDB's write
// conflict under innodb_snapshot_isolation (1020) match
// [repository.ErrConflict], and roll the unit of work back whole: its
// further operations and its COMMIT fail with that error, so that no part
// of it is ever committed, and [repository.WithRetry] runs it again.
//
// Cancellation. The round trips of a write run with a context that ends
// the wait of [WithCancelWait] after the caller's (the driver closes the
// connection of a statement whose context is done). Once the caller's
// context is done, the DB sends KILL QUERY for the connection, on another
// connection of the pool: the statement that the server runs fails (error
// 1317), and none after it runs. A round trip that carried the COMMIT and
// got no answer (the connection killed or broken, or the wait over)
// returns an error matching [repository.ErrOutcomeUnknown].
//
// MySQL and MariaDB differ in one thing that sqlstore uses: MariaDB 10.5
// and later has INSERT ... RETURNING, which returns the keys of the rows
// it inserts, and MySQL has not; neither has UPDATE ... RETURNING. The
// first use of a DB tells them apart by the server's version.
//
// # Mapping
//
// [NewMapping] reads the struct tags of the aggregate once and validates
// everything up front, with errors that name the field or table at fault:
//
//   - A column is a field tagged `db:"name"`, exported or not (the sqlx
//     convention). Fields tagged `db:"-"` or `ddd:"-"` are excluded.
//   - A field tagged `db:"-"` is transient: it is neither loaded (it
//     reads back zero) nor saved, though it is still snapshotted and
//     compared. A change confined to such fields, at any depth, is no
//     change to the store: Save writes nothing, leaves the version as it
//     was, and returns nil (see [repository.Partial]); made with a change
//     of a column, it is not saved either. A field tagged `ddd:"-"` is
//     also left out of snapshots and comparison: a func, chan or
//     unsafe.Pointer, which can be neither stored nor snapshotted, must
//     be excluded that way, and NewMapping refuses it otherwise.
//   - An untagged field of a struct type is a value object and flattened:
//     its fields are columns of the same table, recursively, unless the
//     type is time.Time or implements driver.Valuer or sql.Scanner (such
//     types are values: tag them to make them a column).
//   - A value object used more than once in a table takes a column
//     prefix: `db:"price_,prefix"` on the field maps its columns amount
//     and currency to price_amount and price_currency, so that two Money
//     fields tagged `db:"price_,prefix"` and `db:"cost_,prefix"` share a
//     table (GORM calls it embeddedPrefix). Prefixes of nested value
//     objects compose (box_width_amount); the prefixed names are checked
//     like any other, and are the names that [Table.Key] and the
//     conditions of a [Query] use. Without prefixes, NewMapping refuses
//     the second use: its columns would be mapped twice.
//   - Mapping is strict: every other field of the root, of its value
//     objects and of its entities is refused, with its path and the
//     fixes that work for its type,
//     and so is a value object that maps to no column. A change of such a
//     field could not be saved, and would be lost without a word. A
//     column's type must be one the drivers both write and read back:
//     booleans, numbers, strings, []byte, time.Time, pointers to those
//     (NULL for nil), and types implementing driver.Valuer whose pointer
//     implements sql.Scanner; func, chan, interface and plain struct
//     columns are refused.
//   - A collection of values ([]Address, []string, map[string]string) is
//     stored whole in one column, rewritten when anything in it changes,
//     and compared and snapshotted as a value: `db:"name,json"` stores it
//     as JSON text (jsonb or json on PostgreSQL, TEXT on SQLite) with
//     encoding/json, so every struct field inside must be exported (or the
//     type implement json.Marshaler); `db:"name,array"` stores a slice in a
//     PostgreSQL array (text[], bigint[], ...), read back on pgx and on
//     database/sql alike; a DB on SQLite refuses it when the repository is
//     built. A nil and an empty collection are equal to package diff, so
//     a change from one to the other is not saved.
//   - The root table has a key column ([Table.Key], "id" by default), and
//     the root's version field (tagged `ddd:"version"`), if any, must be a
//     column. Child elements cannot have a version. The repository knows
//     the root's identity by its method ID() or, for a root whose accessor
//     has another name (UUID(), say), by its field tagged `ddd:"id"`,
//     which must be the key column's field ([NewRepository] checks it).
//   - Every entity collection of the root (a slice or map whose element is
//     an entity, see package ddd) must be mapped by a [Child] (or tagged
//     `ddd:"-"`), with its own table, key column, and parent key column
//     filled from the parent's key; and so must every entity collection of
//     a child's element, by a Child in [Child.Children], at any depth. The
//     parent key columns must not be fields of the element: sqlstore owns
//     them. A map collection must be keyed by the element's identity.
//   - Table names may be qualified by a schema; all names must be plain
//     identifiers (at most 63 bytes, PostgreSQL's limit) and are always
//     quoted. Every value is a bind parameter: no value is ever formatted
//     into SQL text.
//
// Fields are read and written at their offsets (reflect.NewAt), which is
// how unexported fields are scanned into.
//
// # Nested children
//
// A row of a child table is keyed by its parent's key and its own key
// (see [Child] for the layout of the key columns):
//
//	sqlstore.Child{Field: "lines", Table: "invoice_lines", ParentKey: "invoice_id",
//		Children: []sqlstore.Child{
//			{Field: "taxes", Table: "line_taxes", Key: "code", ParentKey: "line_id"},
//		}}
//
// maps invoice_lines (invoice_id, id, ...) and line_taxes (invoice_id,
// line_id, code, ...). With ParentKeyOnly, a table refers to its parent by
// the parent's key alone ("line_id" alone), for parents whose keys are
// unique in their table. Every level is loaded in one batch on pgx (one
// SELECT per table, each restricted to the selected roots, through its
// parents' tables in a subquery where a level refers to its parent by key
// alone), inserted from the top down with one multi-row INSERT per table,
// and deleted from the bottom up: removing an element removes its
// descendants first, whatever the schema's ON DELETE rules. A modified
// element at any depth gets an UPDATE of its changed columns only, keyed
// by every level's key. A grandchild moved from one parent to another is a
// removal and an addition, unless its key is generated (see Moves). A
// change at any depth checks and bumps the root's version.
//
// # Moves
//
// An entity keeps its identity when it moves to another parent. One whose
// key is the application's is deleted under its old parent and inserted,
// with the same key, under the new one. One whose key is generated is
// known by its key: an element added to a collection whose key some
// element of the same table had in the snapshot is that element, moved.
// When its new parent exists already, its row is kept: an UPDATE, found by
// the key (which the database made unique in its table), sets its parent
// key columns, its position and its changed columns, so that columns the
// mapping does not know keep their values; in a layout that keys a table
// by every level's parent key, the parent key columns of its descendants'
// rows are updated after it (a composite foreign key on them must then be
// DEFERRABLE INITIALLY DEFERRED, or ON UPDATE CASCADE, or refer to the
// parent's key alone). These UPDATEs come first in the save, so that the
// row leaves its old parent before that one is deleted (and so a moved row
// cannot take a unique value that a row removed in the same save held).
// When its
// new parent is new, the element is inserted with its key (INSERT ...
// OVERRIDING SYSTEM VALUE on PostgreSQL, which an identity column
// GENERATED ALWAYS needs), its descendants with theirs, after its old row
// was deleted with its descendants. One key held by two parents at once is
// refused with [repository.ErrDuplicateID] before anything is written.
// An element moved to another aggregate is not known by the one it joins,
// and is inserted there as new.
//
// # Order of children
//
// Rows of a child table load in key order, unless the Child names a
// Position column: each element's index in its collection (a slice) is
// then stored in it, and the rows load in that order. Package diff
// matches elements by identity, so a reorder is no change to it; the
// store reports it to the repository ([repository.Orderer]), which saves
// an aggregate whose only change is an order: the rows whose index changed
// get an UPDATE of their position (and the root its version bump), at any
// depth. An added element is inserted at its index, and the elements after
// it are moved. With a position column the snapshot is taken anew after
// each save, so that it holds the order saved.
//
// A reorder moves one row at a time, so a unique key on the position
// column (UNIQUE (list_id, pos)) is violated in between: on PostgreSQL it
// must be DEFERRABLE INITIALLY DEFERRED, checked at the COMMIT; SQLite
// cannot defer a unique key, so there it cannot be used. A save that
// violates such a key fails with [repository.ErrUnique] naming the child's
// table, and says so.
//
// # Composite root keys
//
// A root's key is one column. A composite key (tenant_id, id) is not
// supported: the repository's identity is one value (the root's ID(), or
// its field tagged `ddd:"id"`), which Find, the identity map and the version check
// bind as one parameter, and each level of children refers to its parent
// by one column per level. A multi-tenant schema maps tenant_id as a plain
// column of the root, selects by it with queries (Where(Eq("tenant_id",
// t))), and keys the root by a column unique across tenants: a generated
// key, or a UUID.
//
// # Generated keys
//
// A key tagged `db:"id,generated"`, of the root or of a child, is made by
// the database (BIGSERIAL, GENERATED ... AS IDENTITY, a DEFAULT such as
// gen_random_uuid(), SQLite's INTEGER PRIMARY KEY, MySQL's
// AUTO_INCREMENT): the INSERT leaves it out and reads it back with
// RETURNING, on PostgreSQL, SQLite and MariaDB 10.5 and later alike, and
// it is written into the aggregate before the snapshot is taken. Rows of a
// table with a generated key are inserted one INSERT ... RETURNING each
// (RETURNING does not promise the order of a multi-row INSERT); on pgx
// they still share the batch. MySQL has no INSERT ... RETURNING: there
// each such row is inserted by an INSERT of its own, and its key is that
// statement's LAST_INSERT_ID(), never one guessed from the first key of a
// multi-row INSERT, whose keys need not follow each other
// (innodb_autoinc_lock_mode 2, Galera). A level below a new parent whose
// key is generated needs that key: it is inserted in the next round trip,
// and the save runs in a transaction (its own, the COMMIT sent with its
// last round trip, or the unit of work's, in one savepoint). So a new aggregate with
// a generated root key and children costs two round trips on pgx, one
// more for each further level below a generated key; a change that adds
// rows under existing parents costs none more. When the save fails, or the
// unit of work it ran in rolls back, the keys are put back as they were,
// so that a retry inserts again. That includes a failure that matches
// [repository.ErrOutcomeUnknown]: the rows may then be stored, and as a
// generated key is never sent, a blind retry would insert them a second
// time under new keys (with keys of the application's, it fails with
// [repository.ErrExists] instead); look before retrying such an insert. The value a generated key holds before
// the insert is not sent: new elements of one collection saved together
// need distinct identities (placeholders such as -1, -2) only because
// package diff matches elements by identity.
//
// A root whose key is generated and set is stored already: Save of such an
// aggregate that is not tracked (read with [Store.Select] or
// [Store.SelectWhere], which do not track, or detached) is refused with an
// error wrapping [repository.ErrUntracked], and nothing is written, instead
// of storing a copy under a new key. Load the aggregate with Find or
// [Repository.FindAll], or attach what a store's select returned with
// Attach as soon as it is read (a change made before attaching is not
// seen), and save that. With keys of the application's, the same mistake
// fails with [repository.ErrExists].
//
// # The schema: a check at startup, and DDL
//
// sqlstore runs no migrations: the schema is the application's, applied
// with a migration tool such as golang-migrate, goose or Atlas.
// [Mapping.DDL] writes the CREATE TABLE statements of a mapping for
// PostgreSQL or SQLite, to paste into a migration: the mapped columns,
// the parent key and position columns of the child tables, the primary
// keys, a foreign key from each child table to its parent's (DEFERRABLE
// INITIALLY DEFERRED when it holds the parent's own parent key columns,
// so that a move passes), and identity
// columns (INTEGER PRIMARY KEY on SQLite) for generated keys. It is a
// starting point: add the constraints, indexes and defaults of the
// domain.
//
// [Mapping.Check] compares a mapping with the live database, at startup,
// and returns one error that lists every mismatch, a [*SchemaError]
// wrapping [ErrSchema]: a missing table or column, parent key and position
// columns included, at every level; a column whose type cannot hold its
// field's (on SQLite, one whose affinity would change the values, such as
// a string in a NUMERIC column, or a time in a column not declared DATE,
// DATETIME or TIMESTAMP, which the driver would not read back as a time);
// a generated key that the database does not make; a unique index
// holding a position column that is not deferred (on PostgreSQL) or at all
// (on SQLite), which would fail a reorder; and a composite foreign key
// holding the parent key columns of a level whose key is generated that
// is neither deferred nor ON UPDATE CASCADE, which would fail a move. A column typo then stops the
// service at startup rather than at its first query.
//
// # Statements
//
// [Store.Insert] writes the root row, then for each child table, parents
// first, one multi-row INSERT of all its rows. [Store.Update] turns the diff of a save
// ([repository.Changes]) into, in this order: the root UPDATE that sets the
// changed columns only (a change inside a value object maps to its
// flattened column; a value object replaced as a whole sets all of its
// columns) and the new version, on the condition of the key and the old
// version; per element moved to an existing parent, the UPDATE of its row
// (see Moves); per child table, one DELETE of the removed rows (also
// scoped to the parent); per modified child, an UPDATE of its changed columns only,
// keyed by parent and key; per child table, one multi-row INSERT of the
// added rows. A change of children alone still writes the root's version
// bump, and so does a change of unmapped fields, because the repository
// advanced the version in memory. Parents are inserted before children and
// children deleted before parents (foreign keys), and deletes come before
// updates and inserts, so that a row added (or changed) in a save may take
// a unique value that a row removed in the same save held. A diff path that
// maps to no column is skipped; a change of a key column is an error. An
// aggregate without a version and without changed root columns gets no
// root UPDATE, only the lock of its root (see Optimistic locking). [Store.Delete] deletes each child table's rows of the
// root, then the root row with the version check. [Store.Select] reads the
// root row by key, then each child table's rows of that root in key order.
//
// # Queries
//
// A [Query] ([Where], [Eq], [In], ..., [Query.After] for keyset paging) is
// checked against the mapping before anything is sent, the same way on
// every backend: an unknown column, and a value that the column's Go type
// cannot hold, fail with an error wrapping [ErrQuery]. A string compared
// with an integer column, a fraction or a number too large for it, and a
// nil compared with anything (Eq("coupon", nil), a nil in an In list)
// are refused, where the databases would differ: PostgreSQL fails on some
// and SQLite matches no row. A comparison with NULL never holds in SQL:
// select NULL with [IsNull]. Limit(0) means no limit; a negative limit or
// offset is refused.
//
// Conditions combine with [And], [Or] and [Not]; Not selects exactly the
// rows its condition does not, those where the condition is NULL too.
// [Has] puts conditions on a child collection, named by its Child.Field,
// as EXISTS on the child table, and nests for the collections below, at
// any depth and in either layout of [Child]; the columns inside are the
// element's, checked against its mapping like the root's:
//
//	// orders with a line of more than 10 teas, or with no line at all
//	q := Where(Or(
//		Has("items", Eq("product", "tea"), Gt("quantity", 10)),
//		Not(Has("items")),
//	))
//
// Text matches run the same on every backend. [Contains] and [HasPrefix]
// take their text as it is (%, _ and \ included) and are case-sensitive.
// [Like] takes a pattern in which % matches any run of characters, _ any
// one, and a backslash makes the next character literal, as LIKE ...
// ESCAPE '\' does: Like("code", `50\%`) selects "50%" alone, and
// [EscapeLike] escapes a text for a pattern. Like is case-sensitive too:
// on SQLite, whose LIKE ignores the case of ASCII letters, it runs as the
// equivalent GLOB; on MySQL and MariaDB, whose LIKE follows the column's
// collation (a _ci one ignores case and accents), it compares under
// utf8mb4_bin, with the pattern's escape rewritten to one that no
// sql_mode changes. [EqualFold] ignores the case of the ASCII letters A to
// Z, and of no other: SQLite's lower() folds ASCII alone, and on
// PostgreSQL, whose lower() folds every letter of its locale, the column
// is folded with translate() to match, on MySQL and MariaDB with 26
// REPLACE()s compared under utf8mb4_bin (an expression index on
// PostgreSQL is on that translate(), on SQLite on lower(column)).
//
// # Streaming
//
// [Repository.FindEach] yields the aggregates of a query one at a time, as
// an iter.Seq2, for exports and other passes over more aggregates than
// memory should hold: it loads them a page at a time ([PageSize], by
// default [DefaultPageSize]), each page after the last aggregate of the one
// before by key ([Query.After]), in the query's order and then the key:
//
//	for o, err := range orders.FindEach(ctx, Where(Has("items", Eq("product", "tea"))), PageSize(200)) {
//		if err != nil {
//			return err
//		}
//		write(o)
//	}
//
// Each page is one load, every aggregate in it whole, as it stood at one
// commit; the pages are separate reads, so the export as a whole is one
// snapshot only inside a unit of work at REPEATABLE READ or above
// ([DB.InTxWith]; a SQLite transaction is one snapshot). The aggregates are
// not tracked unless [Tracked] is given, and then each as it is yielded.
// Nothing stays open between pages: breaking out of the loop needs no
// cleanup, and a done context ends the iteration with ctx.Err().
//
// # Projections
//
// The read side of a service (a list page, a report) need not load
// aggregates. [Select] and [SelectPage] read the rows that a [Query]
// selects from the root table of a [Mapping] into a struct of your own, by
// its db tags; [SelectSQL] reads the rows of SQL of your own:
//
//	type OrderRow struct {
//		ID       int64  `db:"id"`
//		Customer string `db:"customer"`
//		Total    int64  `db:"total"`
//	}
//	rows, total, err := sqlstore.SelectPage[OrderRow](ctx, db, orders,
//		sqlstore.Where(sqlstore.Eq("customer", "ada")).OrderByDesc("id").Limit(20))
//	top, err := sqlstore.SelectSQL[OrderRow](ctx, db,
//		"SELECT id, customer, total FROM orders WHERE total > ? ORDER BY total DESC LIMIT 10", 1000)
//
// A projection of a Query selects the columns of the row type's fields,
// each checked against the root table of the mapping before anything is
// sent: a field that names no column fails with an error wrapping
// [ErrQuery] that names it. The columns of the result are matched with
// the fields by one rule on every backend: a field reads the column named
// exactly by its db tag, else by its name in lower case (CustomerName
// reads "customername"), every column of the result has a field, and every
// field a column, or the call fails with [ErrQuery], even when the result
// has no rows. Each row is scanned by the driver into the fields. Times are set to UTC, as in loaded aggregates. Columns
// stored with the json or array option are read as the driver reads them
// (pgx decodes JSON into the field; database/sql needs a field that
// implements sql.Scanner).
//
// Projections are never tracked: a row is a value, and saving goes through
// the aggregate. They run in the unit of work of the context: in its
// transaction when it carries one, where they see its writes; else on the
// pool. SelectPage adds the count of the query's conditions (its total,
// without limit, offset or keyset) and reads both in one snapshot: on pgx
// outside a transaction, BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY,
// the page, the count and COMMIT go in one batch, one round trip; on
// database/sql, a read-only transaction of their own, four round trips. In
// a transaction of PostgreSQL at READ COMMITTED, the page and the count
// are two statements, each of its own snapshot. Their statements are
// reported to the observer.
//
// # Recipes
//
// A list endpoint pages by key: order by a unique column (or end the order
// with one), ask for one row more than the page to know whether another
// follows, and pass the last row's values of the order's columns to
// [Query.After] for the next page. Unlike an offset, a page costs the same
// at any depth, and rows inserted before the cursor shift nothing:
//
//	q := sqlstore.Where(sqlstore.Eq("customer", customer)).OrderBy("id").Limit(limit + 1)
//	if after > 0 {
//		q = q.After(after)
//	}
//	rows, total, err := sqlstore.SelectPage[OrderRow](ctx, db, orders, q)
//	if len(rows) > limit {
//		rows, next = rows[:limit], rows[limit-1].ID // next: the cursor
//	}
//
// The total counts the conditions, without the cursor. See
// ExampleQuery_After, and GET /orders in the order example.
//
// pgx or sqlx next to a repository, in one transaction: inside [DB.InTx],
// [DB.PGXTx] (on [NewPGX]) or [DB.SQLTx] (on [NewSQL]) returns the
// transaction of the unit of work, for what [DB.Exec] cannot do:
//
//	err := db.InTx(ctx, func(ctx context.Context) error {
//		if err := orders.Save(ctx, o); err != nil {
//			return err
//		}
//		tx, err := db.PGXTx(ctx)
//		if err != nil {
//			return err
//		}
//		_, err = tx.CopyFrom(ctx, pgx.Identifier{"order_events"},
//			[]string{"order_id", "what"}, pgx.CopyFromRows(events))
//		return err
//	})
//
// Statements sent on it bypass the DB: they take the driver's own
// placeholders ($1 on PostgreSQL), and are neither observed nor enclosed
// in a savepoint. [DB.Exec], [DB.Query], [DB.QueryRow] and [SelectSQL] run
// in the same transaction with ? placeholders, observed. For a transaction
// the service began itself (pool.Begin, sqlx's BeginTxx), [DB.InPGXTx] and
// [DB.InSQLTx] run the repositories in it and end it:
//
//	tx, err := x.BeginTxx(ctx, nil)
//	if err != nil {
//		return err
//	}
//	err = db.InSQLTx(ctx, tx.Tx, func(ctx context.Context) error {
//		if err := orders.Save(ctx, o); err != nil { // in tx, in a savepoint
//			return err
//		}
//		_, err := tx.ExecContext(ctx, tx.Rebind("INSERT INTO audit (order_id) VALUES (?)"), o.ID())
//		return err
//	}) // committed when nil, else rolled back
//
// # Times
//
// A time.Time is compared by its instant on every backend, whatever its
// location: found as a key (or a part of one), compared in conditions
// ([Ge], [In], ...), ordered and paged by [Query.After]. On PostgreSQL,
// store times in timestamptz columns, which compare instants (a timestamp
// column without time zone keeps the wall clock pgx sends and loses the
// zone), and keep microseconds. SQLite has no time type: it compares
// times as text. Every time sent to SQLite, by stores and by [DB.Exec]
// and [DB.Query] alike (a time.Time, a *time.Time, or a driver.Valuer
// whose value is a time, such as sql.NullTime), is therefore written in
// one form, UTC with nine fractional digits, "2026-03-29
// 00:30:00.123456789Z": fixed in width, so that text order is instant
// order, and read by SQLite's date and time functions. Declare such
// columns DATETIME (or TIMESTAMP, or DATE): the modernc driver reads them
// back as times only with such a declared type. Times written in another
// form, by other programs or by a column's DEFAULT (CURRENT_TIMESTAMP
// writes "2026-03-29 00:30:00"), do not compare with it as instants:
// write them in the same form, for example with strftime('%Y-%m-%d
// %H:%M:%f000000Z', 'now') (nanoseconds padded with zeros). Years
// outside 0 to 9999 have no such form and are refused.
//
// Times already stored in another form, by other programs or by versions
// of sqlstore that let the driver write them (modernc writes t.String(),
// "2026-01-01 10:00:00 +0000 UTC"), load as times but do not compare as
// instants: a key in such a form is not found, and a save that changes or
// removes a child row keyed by one finds no row, and fails with
// [repository.ErrConflict], writing nothing. Rewrite them once, column by
// column, reading each time through the driver (the column declared
// DATETIME) and writing it back:
//
//	err := db.InTx(ctx, func(ctx context.Context) error {
//		// Keys referenced by foreign keys, and their references, are
//		// rewritten in one transaction, checked at its commit.
//		if _, err := db.Exec(ctx, "PRAGMA defer_foreign_keys = ON"); err != nil {
//			return err
//		}
//		type row struct {
//			old string
//			at  time.Time
//		}
//		var rows []row
//		err := db.Query(ctx, "SELECT DISTINCT CAST(start AS TEXT), start FROM slots WHERE start IS NOT NULL").
//			Each(func(scan func(...any) error) error {
//				var r row
//				if err := scan(&r.old, &r.at); err != nil {
//					return err
//				}
//				rows = append(rows, r)
//				return nil
//			})
//		if err != nil {
//			return err
//		}
//		for _, r := range rows {
//			if _, err := db.Exec(ctx, "UPDATE slots SET start = ? WHERE start = ?", r.at, r.old); err != nil {
//				return err
//			}
//		}
//		return nil // repeated for each time column: slots.event_at, events.at, ...
//	})
//
// The time.Time and *time.Time fields of loaded aggregates are in UTC on
// every backend (pgx reads a timestamptz in time.Local, and the SQLite
// driver in the location of the text, or that of its _timezone option).
// [DB.Query] and [DB.QueryRow] scan as the driver does; [Select],
// [SelectPage] and [SelectSQL] set the times of their rows to UTC too. Package diff
// compares times by instant, so a time loaded in UTC is no change. A time
// used as an identity is hashed by Go with its location (time.Time values
// of one instant in two locations are different map keys): keep such
// identities in UTC.
//
// # Optimistic locking
//
// The root statement of a save is checked: when no row has the key and
// the old version (the aggregate was changed or removed since it was
// loaded), the save fails with an error wrapping [repository.ErrConflict],
// and nothing of it persists. The version covers the whole aggregate.
// The statements on child rows are checked too, so that no change is lost
// without a word: an UPDATE of a child row (its changed columns, or its
// position) must find its row, and the DELETE of removed children must
// delete as many rows as were removed. One that finds fewer (rows deleted
// behind the aggregate's back, or keys stored in a form that the bound
// key does not equal, see Times) fails the save the same way, with
// [repository.ErrConflict] naming the table and the keys, and nothing of
// it persists. Without a version field the root statement still requires
// the row to exist; a save that changes only children of such an
// aggregate, which writes no root row, begins with SELECT 1 ... FOR NO
// KEY UPDATE of the root (a plain SELECT on SQLite),
// checked the same way: every write of an aggregate locks its root first,
// and a removed aggregate is never given children.
//
// On database/sql the check is the statement's RowsAffected, and a failed
// check rolls the save back. A pgx batch cannot stop half way on a client
// decision, so on pgx the check is made to fail inside the server: the
// root statement is sent as
//
//	WITH r AS (UPDATE "orders" SET ... WHERE "id" = $n AND "version" = $m RETURNING 1)
//	SELECT 1/count(*) FROM r
//
// which raises division_by_zero (SQLSTATE 22012) when no row matched; a
// child's UPDATE the same way, and the DELETE of removed children with
// SELECT 1/(count(*) = n)::int, n the number of keys (cardinality($k)
// when they go as one array). That
// error aborts the batch's transaction, so nothing of the save persists,
// and the error on that statement is reported as the conflict (a 22012
// raised by any other statement, or by a trigger, is reported as it is).
// The root statement comes first in a save, so that it also takes the
// root's row lock before any child row is touched: concurrent saves of one
// aggregate queue on the root instead of deadlocking. A delete, which must
// delete the children first, locks and checks the root first on
// PostgreSQL with SELECT 1 ... FOR UPDATE (wrapped the same way on pgx).
//
// # Errors about the data
//
// The error of a failed statement names the statement's operation and its
// own table, after the operation and the root table of the save: "sqlstore:
// update orders: insert order_items: ...". When the database refuses the
// data, the error is a [*repository.DataError], the same on every backend,
// that errors.Is matches with one sentinel of package repository, so that a
// service can answer 409 or 422 without importing a driver:
//
//   - [repository.ErrExists]: the INSERT of a root row violated the root's
//     key;
//   - [repository.ErrUnique]: any other unique key;
//   - [repository.ErrConstraint]: a CHECK, NOT NULL or foreign key
//     constraint, a deferred one included, at the COMMIT;
//   - [repository.ErrInvalidValue]: a value the column cannot hold. On
//     PostgreSQL: a number out of the column type's range (an int above
//     2,147,483,647 for an int4 column, which pgx refuses before sending
//     anything; SQLSTATE 22003 from the server), a string longer than
//     varchar(n) (22001), a NUL or invalid UTF-8 in text (22021, 22P05), a
//     time out of range (22008), and an index entry over 2,704 bytes
//     (54000). On SQLite, whose INTEGER holds 64 bits and whose TEXT holds
//     NUL: a value of the wrong type for a STRICT table's column, and a
//     string or blob over its size limit.
//
// errors.As opens the DataError to read Table, Column and Constraint,
// where the database reports them: PostgreSQL names the constraint and,
// for a NOT NULL, the column; a unique key's columns are read from its
// detail ("list_id, pos" for a key of two). SQLite names the table and the
// columns of a UNIQUE or NOT NULL violation and a CHECK by its name (or
// its expression), but nothing of a foreign key violation; a deferred one
// fails at the COMMIT with no table. The driver's error stays in the chain,
// for errors.As with *pgconn.PgError or the SQLite driver's error.
//
// # Atomicity and round trips
//
// Every write is all or nothing:
//
//   - pgx, outside a transaction: the whole operation is one pgx.Batch,
//     one round trip, which PostgreSQL runs as one implicit transaction.
//   - database/sql, outside a transaction: every write, even of a single
//     statement, runs in a transaction of its own (BEGIN ... COMMIT), one
//     round trip per statement; on MySQL and MariaDB one round trip in
//     all, BEGIN and COMMIT included.
//   - Inside a transaction of [DB.InTx]: the statements are enclosed in
//     SAVEPOINT dddkit_save ... RELEASE SAVEPOINT dddkit_save (on pgx in
//     the same batch), so that a failed save leaves the transaction usable
//     and as it was before the save. The ROLLBACK TO SAVEPOINT is sent
//     lazily, before the next statement or the COMMIT, and not at all when
//     the transaction rolls back, which is the usual outcome of a failed
//     save; it is sent alone because PostgreSQL refuses to prepare most
//     other statements in an aborted transaction. Loads are not enclosed:
//     on PostgreSQL a load that fails in a transaction aborts it, and the
//     unit of work has to roll back.
//   - The last save of [repository.AggregateRepositorySupport.Update],
//     when Update began the transaction itself: nothing follows it but the
//     COMMIT, so it needs no savepoint (if it fails, the whole transaction
//     rolls back), and on pgx the COMMIT is queued in the save's batch. An
//     Update on pgx is thus two round trips, the floor: the load (with
//     BEGIN) and the save with COMMIT. Its outcome is that of a COMMIT: nil
//     only when the transaction committed, an error matching
//     [repository.ErrOutcomeUnknown] when the answer was lost. An Update
//     that joins a unit of work begun before (an enclosing InTx, another
//     Update's change, a caller's transaction) never commits it: its save
//     keeps the savepoint.
//   - A save marked with [DB.CommitWith] in the function of the InTx that
//     began the transaction is a last save too: InTx with a load and a
//     save costs two round trips on pgx, as Update does. Every save
//     (insert, update, delete, [Store.DeleteByID]) is sent through one
//     entry point, so any of them can carry the COMMIT.
//
// So on database/sql a save inside a unit of work that is not its last
// costs the two round trips of SAVEPOINT and RELEASE besides its
// statements: on PostgreSQL a failed statement aborts the transaction,
// and only a savepoint lets the unit of work go on after a failed save.
// They are kept on SQLite too, where they are calls within the process
// (microseconds), and where some errors (an I/O error, a full disk, an
// interrupt) roll the whole transaction back: a missing savepoint then
// says so at the next statement, instead of letting later statements run
// outside any transaction. Use pgx to have each save in one round trip.
//
// # Loads see one commit
//
// Every load ([Store.Select], [Store.SelectWhere], and so Find, FindAll,
// FindByIDs and the load of Update) returns each aggregate as it stood at
// one commit, root and children alike, inside a unit of work or not, on
// every backend: a function is never handed a state that never existed.
// (The version check cannot be relied on to catch a torn load: the
// function sees it first, and the diff of its save may fail before the
// version is checked.)
//
//   - Outside a transaction a load reads one snapshot: on pgx its batch is
//     BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY, the SELECTs, COMMIT,
//     still one round trip; on database/sql it runs in a read-only
//     transaction of that level (on SQLite, a deferred BEGIN).
//   - In a transaction at REPEATABLE READ or SERIALIZABLE, and in every
//     transaction of SQLite, all the statements read one snapshot, and
//     nothing is locked. A read-only unit of work ([TxOptions].ReadOnly)
//     runs at least at REPEATABLE READ on PostgreSQL for that reason: it
//     could not lock rows.
//   - In a transaction at READ COMMITTED, PostgreSQL's default, each
//     statement reads the database as of its own start, so the root's
//     SELECT and the children's could see different commits. There the
//     root rows are locked as they are read, in the same batch, before the
//     children are read: every write of an aggregate locks its root with
//     its first statement (the version bump or the root's UPDATE, the lock
//     of a save of children alone, the lock of a delete), so none can
//     commit between the roots' SELECT and the children's. The load of
//     [repository.AggregateRepositorySupport.Update] takes SELECT ... FOR
//     NO KEY UPDATE, the lock its save takes anyway: concurrent Updates of
//     one aggregate queue on its row instead of failing with a conflict,
//     and Update stays at two round trips on pgx. Other loads of
//     aggregates with children take FOR SHARE on their roots (an aggregate
//     without children is one SELECT, and locks nothing); a query reads
//     the roots first, locked, and then the children by the keys read, in
//     a second round trip, so that no root comes without its children.
//     A caller's transaction joined ([DB.JoinPGX], [DB.JoinSQL]) runs at
//     the level the server reports for it at the join. A read-only one
//     at READ COMMITTED cannot lock: there a load of aggregates with
//     children fails with [ErrReadOnlyLoad] before it sends anything;
//     begin such a transaction at REPEATABLE READ.
//
// What the locks cost under contention: a load in a READ COMMITTED unit of
// work waits for the unit of work of any writer of the aggregates it
// reads to end, and writers wait for it; Update holds its aggregate's row
// lock from its load to its COMMIT, so that concurrent Updates of one
// aggregate run one after the other instead of all but one failing and
// being retried. A unit of work that loads an aggregate with Find (FOR
// SHARE) and then saves it takes the stronger lock at its save: two such
// units of work on one aggregate deadlock, and PostgreSQL ends one after
// its deadlock_timeout (one second by default) with an error matching
// [repository.ErrConflict]. Load the aggregates a unit of work will change
// with Update, or with FindForUpdate, which lock them for writing from the
// start. The alternative is a unit of work at REPEATABLE READ
// ([WithTxOptions], [DB.InTxWith]): its loads lock nothing and read one
// snapshot, and a concurrent change of what it saves fails the save with
// a serialization failure, matching ErrConflict, which [repository.WithRetry]
// retries; Update keeps its two round trips.
//
// pgx prepares a statement text the first time a connection sees it (its
// default QueryExecModeCacheStatement), which costs one extra round trip
// for the whole batch; the statements sqlstore generates are deterministic
// (columns in field order), so repeated saves of the same shape hit the
// cache.
//
// # Transactions and units of work
//
// [DB.InTx] implements [repository.Transactor]. It carries a transaction
// and a new [tracking.Scope] in the context; the scope commits (the saved
// snapshots advance) only after the database committed, and rolls back
// otherwise, so that a retry sends the same changes again. An error or a
// panic of fn rolls back (a panic is re-raised after the rollback); errors
// of COMMIT and ROLLBACK are returned, joined with fn's, never dropped
// (the rollback that follows a panic is reported to the observer, and the
// panic goes on). A
// call inside another joins it. The transaction begins lazily, with the
// first statement sent in it: on pgx the BEGIN is queued as the first
// statement of that batch (pgx.Batch.BeginTx) and costs no round trip, and
// a unit of work that sends nothing costs nothing. The statements of one
// transaction are serialized. Transactions use the database's default
// isolation level, unless the context carries [TxOptions] ([WithTxOptions],
// which reaches the transaction of Update too) or [DB.InTxWith] gives them.
//
// On SQLite a unit of work begins with BEGIN IMMEDIATE, which takes the
// database's write lock at once: units of work that read and then write
// wait for each other under busy_timeout instead of failing with
// SQLITE_BUSY (a wait that times out matches [repository.ErrConflict]).
// Loads outside a transaction keep their read transaction (BEGIN). When
// the context of [DB.InTx] is done by the time fn returns nil, nothing is
// committed: the transaction rolls back and the error wraps the context's
// error.
//
// # Cancellation and unknown outcomes
//
// A write tells the truth about what it wrote, even when its context is
// done while the database runs it: it returns nil only when the change
// was committed, an error that does not match
// [repository.ErrOutcomeUnknown] only when nothing of it was written, and
// an error that matches it, wrapping the underlying error, only when the
// answer was lost.
//
// On pgx, a batch that reached the server runs to its end whatever
// becomes of the client's connection, so a write whose context is done is
// not abandoned but cancelled. With a *pgxpool.Pool or a *pgx.Conn, the
// batch of a write outside a transaction, and each batch and the COMMIT of
// a transaction, run on a connection held for them with a context that is
// never cancelled, while the DB watches the caller's. Once it is done, the
// DB sends the server cancel requests (pgconn.PgConn.CancelRequest) for
// that connection, again while the statements run, and waits for the
// answer at most the wait of [WithCancelWait] ([DefaultCancelWait], 5
// seconds). An error from the server (the statement cancelled, or failed)
// means nothing was written, and the error wraps the context's error; a
// batch that had completed took effect, and the write returns nil; no
// answer within the wait closes the connection, and the error matches
// ErrOutcomeUnknown. A pool's connection for which a cancel request was
// sent is closed rather than reused.
//
// On database/sql, the statements of a write run with the caller's
// context, and the COMMIT is not sent when that context is done: the
// transaction rolls back (on MySQL and MariaDB, whose COMMIT may travel
// with the statements, see Cancellation there). The COMMIT runs with a context that ends the
// wait of WithCancelWait after the caller's; a COMMIT without an answer by
// then matches ErrOutcomeUnknown. On SQLite the COMMIT is not cut short:
// its wait for a lock is bounded by busy_timeout, and its error always
// means that nothing was committed. (database/sql over pgx cannot send a
// cancel request: the driver closes the connection of a cancelled
// statement, and the server notices later; pass
// pgconn.CancelRequestContextWatcherHandler in the pgx configuration given
// to stdlib.OpenDB to have it cancel instead.)
//
// The outcome is unknown when the connection broke after the statements
// were sent, when PostgreSQL ended the session once every statement had
// succeeded, or when the wait expired. A retry of Save then applies the
// change at most once: if the lost write was committed, the retry's
// version check fails with [repository.ErrConflict].
//
// A pooled connection that breaks while it is idle (the server restarted,
// a network device dropped it) is found broken only when it is next used,
// unless the driver pings it first: pgxpool and pgx's database/sql driver
// ping a connection that has been idle for more than a second, and
// pgxpool.Config.ShouldPing and stdlib.OptionShouldPing ask for more. An
// operation that meets such a connection fails, a write with an outcome
// unknown when its statements were sent on it; the connection is then
// discarded, and a new one takes its place.
//
// # Your own SQL
//
// [DB.Exec], [DB.Query], [DB.QueryRow], [SelectSQL] and [RawWhere] take
// SQL of your own, with the same shape: the SQL, then its arguments, each
// bound to a ? placeholder, in order, on every database, as sqlx writes
// them (sqlstore numbers them $1, $2, ... for PostgreSQL):
//
//	n, err := db.Exec(ctx, "UPDATE orders SET status = ? WHERE id = ?", "paid", id)
//	err = db.QueryRow(ctx, "SELECT count(*) FROM orders WHERE customer = ?", who).Scan(&count)
//	err = db.Query(ctx, "SELECT id FROM orders WHERE total > ?", 100).Each(func(scan func(dest ...any) error) error { ... })
//
// A ? inside a string literal, a quoted identifier, a dollar-quoted string
// or a comment is not a placeholder; ?? sends a literal ? (PostgreSQL's
// jsonb operator: "data ?? 'key'"). The database's numbered placeholders
// ($1 on PostgreSQL, ?1 on SQLite) are refused with an error wrapping
// [ErrQuery] that names them, and so is a statement whose ? count differs
// from its arguments': nothing is sent. With the context of a unit of work of [DB.InTx] they run in its
// transaction, in order with the operations of the repositories, and commit
// or roll back with them; otherwise they run on the pool (Exec as a write
// of its own). They are reported to the observer, and their errors are
// classified like those of stores; QueryRow returns [ErrNoRows]
// (sql.ErrNoRows) when there is no row.
//
// For what these cannot do (COPY, large objects), [DB.PGXTx] and
// [DB.SQLTx] return the transaction of the unit of work itself, begun if
// need be. Statements sent on it bypass the observer and the savepoints,
// are not watched for cancellation, must not run concurrently with the
// unit of work's other operations, and must not end the transaction.
//
// [DB.InTxWith] begins the transaction with [TxOptions]: an isolation level
// and read-only mode (on SQLite, a read-only transaction begins with a
// deferred BEGIN). A NewPGX given a pgx.Tx is refused, where it is built
// by [DB.Err] and then by every use: pass the pool, and let InTx begin the
// transaction, or join the transaction.
//
// # A transaction of the caller's
//
// When the service begins and ends the transaction itself (a pgx.Tx from
// the pool, an *sql.Tx or *sqlx.Tx), [DB.JoinPGX] and [DB.JoinSQL] return a
// context whose operations run in it, with a tracking scope of their own,
// and a [Joined] that the service tells how the transaction ended:
//
//	tx, err := pool.Begin(ctx)
//	...
//	jctx, j, err := db.JoinPGX(ctx, tx)
//	...
//	err = orders.Save(jctx, o)       // in tx, in a savepoint
//	_, err = tx.Exec(ctx, "...")    // the service's own statements
//	if err := tx.Commit(ctx); err != nil {
//		j.RolledBack() // the snapshots stay where they were
//		return err
//	}
//	j.Committed() // the snapshots advance
//
// The DB never commits or rolls back such a transaction. A failed save is
// rolled back to its savepoint at once, so that the transaction stays
// usable for the service's statements. Unless the server rolled back the
// whole transaction: on MySQL and MariaDB a deadlock (error 1213) does,
// where PostgreSQL aborts the savepoint alone, and so do a write conflict
// under snapshot isolation, a lock wait timeout under
// innodb_rollback_on_timeout, and an error that ends the session. Then
// what the transaction held is gone, the service's statements and the
// earlier saves alike, and what is sent on it next runs outside any
// transaction: the operation fails with an error matching
// [ErrTxRolledBack] (and [repository.ErrConflict] after a conflict), the
// further operations of the context fail with it, [Joined.Committed]
// drops the snapshots instead of advancing them, and [DB.InSQLTx] rolls
// back and returns it. Roll the transaction back, and run the unit of
// work again. Once told, the context's operations,
// and [DB.InTx] and Update with it, fail with [ErrTxDone]. Until told, the
// aggregates saved in it cannot be saved or removed elsewhere: Save and
// Remove fail with an error wrapping [repository.ErrUnfinished], rather
// than write their changes (or insert them, under new generated keys) a
// second time. On PostgreSQL the join asks the server, in one query, for
// the transaction's isolation level and whether it is read-only, so that
// its loads lock exactly as in a transaction of the DB's own (see "Loads
// see one commit").
//
// The safe form is [DB.InPGXTx] or [DB.InSQLTx]: it runs a function in the
// caller's transaction, then commits the transaction when the function
// returns nil and rolls it back otherwise, and tells the unit of work
// which, so that there is nothing left to forget:
//
//	tx, err := x.BeginTxx(ctx, nil) // an *sqlx.Tx
//	...
//	err = db.InSQLTx(ctx, tx.Tx, func(ctx context.Context) error {
//		if err := orders.Save(ctx, o); err != nil {
//			return err
//		}
//		_, err := tx.ExecContext(ctx, "...") // the service's own statements
//		return err
//	})
//
// # Observing statements
//
// [WithObserver] reports every statement sent, BEGIN, COMMIT, ROLLBACK and
// the savepoint statements included, with its arguments, outcome, duration
// and round trip: round trips are numbered per [DB], and the statements of
// one batch share a number. [SlogObserver] logs them with log/slog.
//
// # Caching aggregates
//
// A cache holds what the mapping reads: [Store.Encode] writes an
// aggregate, as a load returned it, as the rows of its tables (each
// column's value as the store writes it, in a compact binary form), and
// [Store.Decode] reads those rows back, with database/sql's conversions,
// into an aggregate equal to the load, its unexported fields, value
// objects, JSON and array columns included: straight into the fields for
// the field types whose conversion it knows (a 100-item order in about 10
// µs, a tenth of the replay), and otherwise by replaying them through
// database/sql and the store's own loader.
// [Store.Fingerprint] digests the mapping, for a cache to key its entries
// by: a deploy that changes the mapping reads none of the entries written
// before it. An entry is about a third of the size of the rows in
// PostgreSQL (a 100-item order: 1.6 kB against 5.7 kB). Package
// cache/rediscache is such a cache, in front of the repository.
package sqlstore
