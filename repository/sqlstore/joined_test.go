package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/tracking"
)

// callerTx is a transaction begun by the test, as a service would begin
// one, and joined by the DB.
type callerTx struct {
	exec     func(sql string, args ...any) error
	commit   func() error
	rollback func()
	join     func(ctx context.Context) (context.Context, *Joined, error)
	// pgx or sql is the transaction itself.
	pgx pgx.Tx
	sql *sql.Tx
}

func (b *backend) begin(t *testing.T) callerTx {
	t.Helper()
	return b.beginWith(t, sql.TxOptions{})
}

// beginWith is begin with the isolation level and access mode of opts.
func (b *backend) beginWith(t *testing.T, opts sql.TxOptions) callerTx {
	t.Helper()
	ctx := context.Background()
	switch r := b.raw.(type) {
	case pgxRaw:
		po := pgx.TxOptions{}
		switch opts.Isolation {
		case sql.LevelRepeatableRead:
			po.IsoLevel = pgx.RepeatableRead
		case sql.LevelSerializable:
			po.IsoLevel = pgx.Serializable
		case sql.LevelReadCommitted:
			po.IsoLevel = pgx.ReadCommitted
		}
		if opts.ReadOnly {
			po.AccessMode = pgx.ReadOnly
		}
		tx, err := r.p.BeginTx(ctx, po)
		require.NoError(t, err)
		t.Cleanup(func() { _ = tx.Rollback(ctx) })
		return callerTx{
			exec: func(q string, args ...any) error {
				_, err := tx.Exec(ctx, sqlx.Rebind(sqlx.DOLLAR, q), args...)
				return err
			},
			commit:   func() error { return tx.Commit(ctx) },
			rollback: func() { require.NoError(t, tx.Rollback(ctx)) },
			join:     func(ctx context.Context) (context.Context, *Joined, error) { return b.db.JoinPGX(ctx, tx) },
			pgx:      tx,
		}
	case sqlRaw:
		tx, err := r.x.BeginTxx(ctx, &opts)
		require.NoError(t, err)
		t.Cleanup(func() { _ = tx.Rollback() })
		return callerTx{
			exec: func(q string, args ...any) error {
				_, err := tx.Exec(r.sql(t, q), args...)
				return err
			},
			commit:   tx.Commit,
			rollback: func() { require.NoError(t, tx.Rollback()) },
			join: func(ctx context.Context) (context.Context, *Joined, error) {
				if b.mysql() && opts != (sql.TxOptions{}) {
					// MySQL does not tell the options of a transaction.
					ctx = WithTxOptions(ctx, TxOptions{Isolation: opts.Isolation, ReadOnly: opts.ReadOnly})
				}
				return b.db.JoinSQL(ctx, tx.Tx)
			},
			sql: tx.Tx,
		}
	}
	t.Fatalf("no transaction for %T", b.raw)
	return callerTx{}
}

// TestJoinCallerTx runs saves in a transaction the caller began, with
// statements of the caller's in between, and checks that what the caller
// does with its transaction decides what is kept, in the database and in
// the snapshots.
func TestJoinCallerTx(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := b.repo(t)

		// Committed: the insert, the caller's row and the update are kept,
		// and the snapshot advanced: the next save sends only what changed
		// after it.
		tx := b.begin(t)
		jctx, j, err := tx.join(ctx)
		require.NoError(t, err)
		o := newOrder(1, "alice", threeItems()...)
		require.NoError(t, repo.Save(jctx, o))
		require.NoError(t, tx.exec("INSERT INTO customers (name) VALUES (?)", "carol"))
		o.setQuantity(1, 4)
		require.NoError(t, repo.Save(jctx, o))
		n, err := b.db.Exec(jctx, "UPDATE customers SET name = ? WHERE name = ?", "dave", "carol")
		require.NoError(t, err)
		assert.EqualValues(t, 1, n, "DB.Exec runs in the caller's transaction, which sees its own row")
		assert.False(t, b.exists(t, 1), "nothing is visible before the caller commits")
		require.NoError(t, tx.commit())
		j.Committed()
		assert.Equal(t, 4, b.load(t, 1).item(1).quantity)
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM customers WHERE name = ?", "dave"))
		b.log.take()
		o.setQuantity(2, 6)
		require.NoError(t, repo.Save(ctx, o))
		assert.Len(t, dml(b.log.take()), 2, "the version check and the one changed item, after the snapshot advanced at Committed")

		_, err = repo.Find(jctx, 1)
		assert.ErrorIs(t, err, ErrTxDone, "the joined context ends with the caller's transaction")
		err = b.db.InTx(jctx, func(context.Context) error { return nil })
		assert.ErrorIs(t, err, ErrTxDone, "a unit of work on the ended context would run outside the caller's transaction")
		err = repo.Update(jctx, 1, func(_ context.Context, o *order) error {
			o.setQuantity(1, 99)
			return nil
		})
		assert.ErrorIs(t, err, ErrTxDone)
		assert.Equal(t, 4, b.load(t, 1).item(1).quantity, "nothing was written outside the caller's transaction")

		// Rolled back: the change is gone from the database, and the
		// snapshot did not advance, so saving again sends it again.
		tx = b.begin(t)
		jctx, j, err = tx.join(ctx)
		require.NoError(t, err)
		q3 := o.item(3).quantity
		o.setQuantity(3, 9)
		require.NoError(t, repo.Save(jctx, o))
		tx.rollback()
		j.RolledBack()
		j.Committed() // only the first counts
		assert.Equal(t, q3, b.load(t, 1).item(3).quantity)
		require.NoError(t, repo.Save(ctx, o))
		assert.Equal(t, 9, b.load(t, 1).item(3).quantity, "the change was sent again")

		// A save that fails leaves the caller's transaction usable: it
		// is rolled back to its savepoint at once.
		tx = b.begin(t)
		jctx, j, err = tx.join(ctx)
		require.NoError(t, err)
		o.setQuantity(1, 0) // CHECK (quantity > 0)
		require.Error(t, repo.Save(jctx, o))
		require.NoError(t, tx.exec("INSERT INTO customers (name) VALUES (?)", "erin"), "the caller's transaction is sound")
		require.NoError(t, tx.commit())
		j.Committed()
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM customers WHERE name = ?", "erin"))
		assert.Equal(t, 4, b.load(t, 1).item(1).quantity)

		// Update joins the caller's transaction, and never commits it.
		b.log.take()
		tx = b.begin(t)
		jctx, j, err = tx.join(ctx)
		require.NoError(t, err)
		require.NoError(t, repo.Update(jctx, 1, func(_ context.Context, o *order) error {
			o.setQuantity(1, 5)
			return nil
		}))
		assert.Zero(t, count(b.log.take(), sqlCommit), "the caller commits")
		tx.rollback()
		j.RolledBack()
		assert.Equal(t, 4, b.load(t, 1).item(1).quantity)
	})
}

// TestJoinReadOnly loads in a read-only transaction the caller began: at
// REPEATABLE READ the loads read one snapshot and lock nothing; at READ
// COMMITTED, where a load of an aggregate with children would lock its
// root, it fails with ErrReadOnlyLoad before sending anything, and the
// caller's transaction stays usable.
func TestJoinReadOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := b.repo(t)
		require.NoError(t, repo.Save(ctx, newOrder(1, "alice", threeItems()...)))

		for _, level := range []sql.IsolationLevel{sql.LevelRepeatableRead, sql.LevelSerializable} {
			tx := b.beginWith(t, sql.TxOptions{Isolation: level, ReadOnly: true})
			jctx, j, err := tx.join(ctx)
			require.NoError(t, err)
			b.log.take()
			o, err := repo.Find(jctx, 1)
			require.NoError(t, err, "a read-only %v transaction loads", level)
			q := o.item(1).quantity
			for _, s := range b.log.take() {
				assert.False(t, b.locks(s.SQL), "a snapshot needs no lock: %s", s.SQL)
			}
			// A commit outside, between two loads: the transaction still
			// reads the commit it started at, on SQLite too (its reader
			// holds the database as it was). InnoDB runs SERIALIZABLE
			// as REPEATABLE READ whose reads lock what they read: there
			// the write outside would wait for the transaction.
			if b.db.dialect.stmtSnapshot && !(b.mysql() && level == sql.LevelSerializable) {
				u, err := repo.Find(ctx, 1)
				require.NoError(t, err)
				u.setQuantity(1, q+1)
				require.NoError(t, repo.Save(ctx, u))
				again, err := repo.Find(jctx, 1)
				require.NoError(t, err)
				assert.Equal(t, q, again.item(1).quantity, "one snapshot for the whole transaction")
				assert.Equal(t, q+1, b.load(t, 1).item(1).quantity)
			}
			err = repo.Save(jctx, o)
			require.NoError(t, err, "nothing changed: nothing to write")
			tx.rollback()
			j.RolledBack()
		}

		if !b.db.dialect.stmtSnapshot {
			return // SQLite has one level, serializable
		}
		tx := b.beginWith(t, sql.TxOptions{Isolation: sql.LevelReadCommitted, ReadOnly: true})
		jctx, j, err := tx.join(ctx)
		require.NoError(t, err)
		_, err = repo.Find(jctx, 1)
		require.ErrorIs(t, err, ErrReadOnlyLoad)
		assert.Contains(t, err.Error(), "REPEATABLE READ", "the error says what to do")
		_, err = repo.FindAll(jctx, Query{})
		require.ErrorIs(t, err, ErrReadOnlyLoad, "a query too")
		require.NoError(t, tx.exec("SELECT 1"), "nothing was sent: the transaction is not aborted")
		tx.rollback()
		j.RolledBack()

		// Read-write at REPEATABLE READ: the loads lock nothing either.
		tx = b.beginWith(t, sql.TxOptions{Isolation: sql.LevelRepeatableRead})
		jctx, j, err = tx.join(ctx)
		require.NoError(t, err)
		b.log.take()
		_, err = repo.Find(jctx, 1)
		require.NoError(t, err)
		for _, s := range b.log.take() {
			assert.False(t, b.locks(s.SQL), s.SQL)
		}
		tx.rollback()
		j.RolledBack()
	})
}

// TestJoinBadInput checks the refusals of JoinPGX and JoinSQL, and that
// a zero or nil Joined is harmless.
func TestJoinBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		if b.pgx {
			_, _, err := b.db.JoinSQL(ctx, nil)
			assert.ErrorContains(t, err, "not of NewSQL")
			_, _, err = b.db.JoinPGX(ctx, nil)
			assert.ErrorContains(t, err, "nil transaction")
		} else {
			_, _, err := b.db.JoinPGX(ctx, nil)
			assert.ErrorContains(t, err, "not of NewPGX")
			_, _, err = b.db.JoinSQL(ctx, nil)
			assert.ErrorContains(t, err, "nil transaction")
		}
		tx := b.begin(t)
		err := b.db.InTx(ctx, func(ctx context.Context) error {
			_, _, err := tx.join(ctx)
			return err
		})
		assert.ErrorContains(t, err, "already carries a unit of work")
		var zero Joined
		zero.Committed()
		(*Joined)(nil).RolledBack()

		// A nested InTx joins the caller's transaction: its error does
		// not end it.
		jctx, j, err := tx.join(ctx)
		require.NoError(t, err)
		err = b.db.InTx(jctx, func(ctx context.Context) error {
			return repository.ErrConflict
		})
		assert.ErrorIs(t, err, repository.ErrConflict)
		require.NoError(t, tx.exec("INSERT INTO customers (name) VALUES (?)", "frank"))
		require.NoError(t, tx.commit())
		j.Committed()
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM customers WHERE name = ?", "frank"))
	})
}

// TestJoinUnfinished checks that the aggregates saved in a joined unit of
// work whose end is never told cannot be saved again outside it: the save
// fails with ErrUnfinished and writes nothing, where it would otherwise
// insert a child, or the whole aggregate, a second time under new
// generated keys. Once told, they save as usual.
func TestJoinUnfinished(t *testing.T) {
	forEachBackendAndMySQLPath(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		b.raw.exec(t, `CREATE TABLE flats (id BIGINT PRIMARY KEY)`)
		if !b.sqlite() {
			b.raw.exec(t, `CREATE TABLE flat_lines (id BIGSERIAL PRIMARY KEY, flat_id BIGINT NOT NULL REFERENCES flats (id), label TEXT NOT NULL)`)
		} else {
			b.raw.exec(t, `CREATE TABLE flat_lines (id INTEGER PRIMARY KEY, flat_id BIGINT NOT NULL REFERENCES flats (id), label TEXT NOT NULL)`)
		}
		m, err := NewMapping[*genFlat](Table{Name: "flats"}, Child{Field: "lines", Table: "flat_lines", ParentKey: "flat_id"})
		require.NoError(t, err)
		repo, err := NewRepository[*genFlat, int64](b.db, m)
		require.NoError(t, err)
		require.NoError(t, repo.Save(ctx, &genFlat{id: 1, lines: []genFlatLine{{label: "x"}}}))

		// An element added in the caller's transaction, which commits;
		// the unit of work is never told.
		tx := b.begin(t)
		jctx, j, err := tx.join(ctx)
		require.NoError(t, err)
		g, err := repo.Find(jctx, 1)
		require.NoError(t, err)
		g.lines = append(g.lines, genFlatLine{id: -1, label: "y"})
		require.NoError(t, repo.Save(jctx, g))
		require.NoError(t, tx.commit())
		err = repo.Save(ctx, g)
		require.ErrorIs(t, err, repository.ErrUnfinished)
		assert.ErrorIs(t, err, tracking.ErrUnfinished)
		assert.True(t, strings.HasPrefix(err.Error(), "repository: save: the aggregate was saved in a unit of work that has not ended"), "each package names itself once: %v", err)
		require.ErrorIs(t, repo.Remove(ctx, g), repository.ErrUnfinished)
		assert.EqualValues(t, 2, b.raw.count(t, "SELECT count(*) FROM flat_lines"), "the line is not inserted twice")
		j.Committed()
		require.NoError(t, repo.Save(ctx, g), "told, the unit of work is over: nothing left to save")
		assert.EqualValues(t, 2, b.raw.count(t, "SELECT count(*) FROM flat_lines"))

		// A new aggregate with a generated key, inserted in the caller's
		// transaction.
		gm := genSchema(t, b)
		roots, err := NewRepository[*genRoot, int64](b.db, gm)
		require.NoError(t, err)
		tx = b.begin(t)
		jctx, j, err = tx.join(ctx)
		require.NoError(t, err)
		r := &genRoot{name: "new", lines: []*genLine{{label: "a"}}}
		require.NoError(t, roots.Save(jctx, r))
		require.NoError(t, tx.commit())
		require.ErrorIs(t, roots.Save(ctx, r), repository.ErrUnfinished)
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM gen_roots"), "not inserted twice")
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM gen_lines"))
		j.Committed()
		r.name = "renamed"
		require.NoError(t, roots.Save(ctx, r))
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM gen_roots"))
	})
}

// TestInCallerTx checks InPGXTx and InSQLTx: the caller's transaction is
// committed when the function returns nil and rolled back otherwise, and
// the unit of work is told which, so that the snapshots follow.
func TestInCallerTx(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := b.repo(t)
		in := func(ctx context.Context, tx callerTx, fn func(ctx context.Context) error) error {
			switch {
			case tx.pgx != nil:
				return b.db.InPGXTx(ctx, tx.pgx, fn)
			default:
				return b.db.InSQLTx(ctx, tx.sql, fn)
			}
		}

		// Committed: the insert and the caller's row are kept, and the
		// snapshot advanced.
		tx := b.begin(t)
		o := newOrder(1, "alice", threeItems()...)
		require.NoError(t, in(ctx, tx, func(ctx context.Context) error {
			if err := repo.Save(ctx, o); err != nil {
				return err
			}
			return tx.exec("INSERT INTO customers (name) VALUES (?)", "carol")
		}))
		assert.True(t, b.exists(t, 1))
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM customers WHERE name = ?", "carol"))
		b.log.take()
		o.setQuantity(1, 4)
		require.NoError(t, repo.Save(ctx, o))
		assert.Len(t, dml(b.log.take()), 2, "the version check and the one changed item")

		// An error of the function rolls back: the change is gone, and
		// the snapshot did not advance.
		errStop := errors.New("stop")
		tx = b.begin(t)
		o.setQuantity(2, 7)
		err := in(ctx, tx, func(ctx context.Context) error {
			if err := repo.Save(ctx, o); err != nil {
				return err
			}
			require.NoError(t, tx.exec("INSERT INTO customers (name) VALUES (?)", "dave"))
			return errStop
		})
		require.ErrorIs(t, err, errStop)
		assert.Equal(t, 2, b.load(t, 1).item(2).quantity)
		assert.Zero(t, b.raw.count(t, "SELECT count(*) FROM customers WHERE name = ?", "dave"))
		require.NoError(t, repo.Save(ctx, o), "the change is sent again")
		assert.Equal(t, 7, b.load(t, 1).item(2).quantity)

		// A panic rolls back, and goes on.
		tx = b.begin(t)
		o.setQuantity(3, 9)
		assert.Panics(t, func() {
			_ = in(ctx, tx, func(ctx context.Context) error {
				require.NoError(t, repo.Save(ctx, o))
				panic("boom")
			})
		})
		assert.Equal(t, 3, b.load(t, 1).item(3).quantity)
		require.NoError(t, repo.Save(ctx, o))
		assert.Equal(t, 9, b.load(t, 1).item(3).quantity)

		// A context done when the function returns: rolled back.
		tx = b.begin(t)
		o.setQuantity(1, 5)
		done, cancel := context.WithCancel(ctx)
		err = in(done, tx, func(ctx context.Context) error {
			err := repo.Save(ctx, o)
			cancel()
			return err
		})
		require.ErrorIs(t, err, context.Canceled)
		assert.NotErrorIs(t, err, repository.ErrOutcomeUnknown)
		assert.Equal(t, 4, b.load(t, 1).item(1).quantity)

		// The function ended the transaction itself: the outcome is not
		// known to the DB.
		tx = b.begin(t)
		err = in(ctx, tx, func(ctx context.Context) error {
			if err := repo.Save(ctx, o); err != nil {
				return err
			}
			return tx.commit()
		})
		require.ErrorIs(t, err, repository.ErrOutcomeUnknown)
		assert.Equal(t, 5, b.load(t, 1).item(1).quantity, "committed by the function")

		// Bad input fails before the function runs.
		ran := false
		require.Error(t, in(ctx, callerTx{pgx: nil, sql: nil}, func(context.Context) error { ran = true; return nil }))
		assert.False(t, ran)
	})
}
