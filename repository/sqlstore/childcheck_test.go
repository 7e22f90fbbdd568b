package sqlstore

import (
	"context"
	"testing"
	"time"

	"github.com/dddkit/dddkit/repository"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestChildRowGoneFailsSave: a save whose UPDATE or DELETE of a child row
// finds no row (deleted behind the aggregate's back) fails with a
// conflict and writes nothing, rather than return nil with the change
// lost, on every backend.
func TestChildRowGoneFailsSave(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)

		o, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		b.raw.exec(t, "DELETE FROM order_items WHERE order_id = ? AND id = ?", int64(1), int64(2))
		o.customer = "bob"
		o.setQuantity(2, 7)
		err = repo.Save(ctx, o)
		require.ErrorIs(t, err, repository.ErrConflict, "the UPDATE of item 2 finds no row")
		assert.NotErrorIs(t, err, repository.ErrOutcomeUnknown)
		assert.Contains(t, err.Error(), "order_items")
		got := b.load(t, 1)
		assert.EqualValues(t, 0, got.version, "nothing written: the version stays")
		assert.Equal(t, "alice", got.customer, "nothing written: the root stays")

		// The removal of a row that is gone fails the same way.
		o, err = repo.Find(ctx, 1)
		require.NoError(t, err)
		b.raw.exec(t, "DELETE FROM order_items WHERE order_id = ? AND id = ?", int64(1), int64(3))
		o.remove(1)
		o.remove(3)
		err = repo.Save(ctx, o)
		require.ErrorIs(t, err, repository.ErrConflict, "the DELETE of items 1 and 3 finds one row")
		got = b.load(t, 1)
		assert.EqualValues(t, 0, got.version)
		require.Len(t, got.items, 1, "item 1 stays")
		assert.EqualValues(t, 1, got.items[0].id)

		// Loaded again, the aggregate saves.
		o, err = repo.Find(ctx, 1)
		require.NoError(t, err)
		o.setQuantity(1, 9)
		require.NoError(t, repo.Save(ctx, o))
		assert.Equal(t, stored(o), b.load(t, 1))
	})
}

// oldTimeText is a time as modernc wrote it before sqlstore sent times in
// one form: t.String().
const oldTimeText = "2026-01-01 10:00:00 +0000 UTC"

// TestOldTimeFormChildKey: on SQLite, a child keyed by a time stored in
// another text form is loaded, but its key does not equal the bound one:
// a save that changes it fails with a conflict and writes nothing, and
// the rewrite of the package doc ("Times") makes it saveable.
func TestOldTimeFormChildKey(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	repo := timeSchema(t, b)
	at := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	start := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	require.NoError(t, repo.Save(ctx, &tEvent{at: at, name: "e", slots: []*tSlot{{start: start, note: "a"}}}))
	b.raw.exec(t, "UPDATE t_slots SET start = ?", oldTimeText)

	e, err := repo.Find(ctx, at)
	require.NoError(t, err)
	require.Len(t, e.slots, 1, "the row in the old form is loaded")
	require.True(t, e.slots[0].start.Equal(start))
	e.slots[0].note = "b"
	e.name = "changed"
	err = repo.Save(ctx, e)
	require.ErrorIs(t, err, repository.ErrConflict, "the UPDATE by the canonical key text finds no row")
	assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM t_events WHERE name = 'e' AND version = 0"), "nothing written")
	assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM t_slots WHERE note = 'a'"))

	// The recipe: read each time through the driver, write it back.
	require.NoError(t, rewriteTimes(ctx, b.db, "t_slots", "start"))
	assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM t_slots WHERE start = '2026-01-01 10:00:00.000000000Z'"))

	e, err = repo.Find(ctx, at)
	require.NoError(t, err)
	e.slots[0].note = "b"
	require.NoError(t, repo.Save(ctx, e))
	got, err := repo.Find(ctx, at)
	require.NoError(t, err)
	assert.Equal(t, "b", got.slots[0].note)
}

// TestOldTimeFormRewriteKeys: the rewrite of the package doc rewrites a
// referenced key and its references in one transaction, foreign keys
// deferred to the commit; the aggregate is then found by its key.
func TestOldTimeFormRewriteKeys(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	repo := timeSchema(t, b)
	b.raw.exec(t, "INSERT INTO t_events (at, name, version) VALUES (?, 'e', 1)", oldTimeText)
	b.raw.exec(t, "INSERT INTO t_slots (event_at, start, note) VALUES (?, ?, 'a')", oldTimeText, "2026-01-01 11:30:00.5 +0100 CET")
	at := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	_, err := repo.Find(ctx, at)
	require.ErrorIs(t, err, repository.ErrNotFound, "the key in the old form is not found")

	require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
		if _, err := b.db.Exec(ctx, "PRAGMA defer_foreign_keys = ON"); err != nil {
			return err
		}
		for _, c := range [][2]string{{"t_events", "at"}, {"t_slots", "event_at"}, {"t_slots", "start"}} {
			if err := rewriteTimes(ctx, b.db, c[0], c[1]); err != nil {
				return err
			}
		}
		return nil
	}))
	e, err := repo.Find(ctx, at)
	require.NoError(t, err)
	require.Len(t, e.slots, 1)
	assert.True(t, e.slots[0].start.Equal(time.Date(2026, 1, 1, 10, 30, 0, 500000000, time.UTC)), e.slots[0].start)
	e.slots[0].note = "b"
	require.NoError(t, repo.Save(ctx, e))
}

// rewriteTimes is the recipe of the package doc ("Times"): it writes the
// times of column col of table tbl, a column declared DATETIME, in the
// form sqlstore binds.
func rewriteTimes(ctx context.Context, db *DB, tbl, col string) error {
	type row struct {
		old string
		at  time.Time
	}
	var rows []row
	err := db.Query(ctx, "SELECT DISTINCT CAST("+col+" AS TEXT), "+col+" FROM "+tbl+" WHERE "+col+" IS NOT NULL").Each(func(scan func(...any) error) error {
		var r row
		if err := scan(&r.old, &r.at); err != nil {
			return err
		}
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := db.Exec(ctx, "UPDATE "+tbl+" SET "+col+" = ? WHERE "+col+" = ?", r.at, r.old); err != nil {
			return err
		}
	}
	return nil
}
