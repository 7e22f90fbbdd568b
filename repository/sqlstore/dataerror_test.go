package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// dataErr returns the *repository.DataError in err, failing the test
// unless err matches kind.
func dataErr(t *testing.T, err error, kind error) *repository.DataError {
	t.Helper()
	require.ErrorIs(t, err, kind)
	var de *repository.DataError
	require.ErrorAs(t, err, &de)
	assert.Same(t, kind, de.Kind)
	require.NotNil(t, de.Err, "the driver's error stays in the chain")
	return de
}

// TestDataErrors checks that the database's refusals of the data match
// one portable sentinel on every backend, and name the table, the column
// and the constraint where the database reports them.
func TestDataErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		pg, my := b.postgres(), b.mysql()
		repo := b.repo(t)
		require.NoError(t, repo.Save(ctx, newOrder(1, "alice", &item{id: 1, sku: "A", quantity: 1})))

		t.Run("root key", func(t *testing.T) {
			err := repo.Save(ctx, newOrder(1, "bob"))
			de := dataErr(t, err, repository.ErrExists)
			assert.NotErrorIs(t, err, repository.ErrUnique)
			assert.Equal(t, "orders", de.Table)
			assert.Equal(t, "id", de.Column)
		})

		t.Run("unique key of a child", func(t *testing.T) {
			o, err := repo.Find(ctx, 1)
			require.NoError(t, err)
			o.add(&item{id: 2, sku: "A", quantity: 1})
			err = repo.Save(ctx, o)
			de := dataErr(t, err, repository.ErrUnique)
			assert.NotErrorIs(t, err, repository.ErrExists)
			assert.Equal(t, "order_items", de.Table)
			assert.Equal(t, "order_id, sku", de.Column)
			if pg {
				assert.Equal(t, "order_items_order_id_sku_key", de.Constraint)
			}
			if my {
				assert.Equal(t, "order_id", de.Constraint, "MariaDB names an unnamed unique key after its first column")
			}
			assert.Contains(t, err.Error(), "insert order_items: ", "the statement's own table")
		})

		t.Run("check", func(t *testing.T) {
			o, err := repo.Find(ctx, 1)
			require.NoError(t, err)
			o.setQuantity(1, 0)
			err = repo.Save(ctx, o)
			de := dataErr(t, err, repository.ErrConstraint)
			assert.Equal(t, "order_items", de.Table)
			switch {
			case pg:
				assert.Equal(t, "order_items_quantity_check", de.Constraint)
			case b.sqlite():
				assert.Equal(t, "quantity > 0", de.Constraint, "SQLite names an unnamed CHECK by its expression")
			}
			assert.Contains(t, err.Error(), "update order_items: ")
		})

		t.Run("foreign key at commit", func(t *testing.T) {
			// MariaDB, which cannot defer it, checks it at the INSERT.
			err := repo.Save(ctx, newOrder(2, "carol"))
			de := dataErr(t, err, repository.ErrConstraint)
			if pg {
				assert.Equal(t, "orders", de.Table)
				assert.Equal(t, "orders_customer_fkey", de.Constraint)
			}
			if my {
				assert.Equal(t, "orders", de.Table)
				assert.Equal(t, "orders_ibfk_1", de.Constraint, "MariaDB names an unnamed foreign key table_ibfk_n")
			}
			assert.False(t, b.exists(t, 2))
		})

		t.Run("not null", func(t *testing.T) {
			b.raw.exec(t, `CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL, author TEXT NOT NULL)`)
			m, err := NewMapping[*memo](Table{Name: "notes"})
			require.NoError(t, err)
			notes, err := NewRepository[*memo, int64](b.db, m)
			require.NoError(t, err)
			err = notes.Save(ctx, &memo{id: 1, body: "x"})
			de := dataErr(t, err, repository.ErrConstraint)
			assert.Equal(t, "notes", de.Table)
			assert.Equal(t, "author", de.Column)
		})

		t.Run("32-bit overflow", func(t *testing.T) {
			if b.sqlite() {
				t.Skip("SQLite's INTEGER holds 64 bits")
			}
			o, err := repo.Find(ctx, 1)
			require.NoError(t, err)
			o.setQuantity(1, math.MaxInt32+1)
			err = repo.Save(ctx, o)
			de := dataErr(t, err, repository.ErrInvalidValue)
			assert.Equal(t, "order_items", de.Table)
			assert.Equal(t, "quantity", de.Column)
			assert.Contains(t, err.Error(), "sqlstore: update orders: update order_items: ", "names the child's table, where the value was refused")
		})

		t.Run("NUL in text", func(t *testing.T) {
			if !pg {
				t.Skip("SQLite and MariaDB store a NUL in text")
			}
			err := repo.Save(ctx, newOrder(3, "alice", &item{id: 1, sku: "a\x00b", quantity: 1}))
			de := dataErr(t, err, repository.ErrInvalidValue)
			assert.Equal(t, "order_items", de.Table)
			assert.False(t, b.exists(t, 3))
		})

		t.Run("index entry too large", func(t *testing.T) {
			// On MariaDB, the key column is a VARCHAR(255) (see testdb.ToMySQL),
			// which refuses a longer value.
			if b.sqlite() {
				t.Skip("SQLite has no limit on an index entry below its string limit")
			}
			raw := make([]byte, 1500) // 3,000 bytes of hex, which pglz cannot compress
			_, _ = rand.Read(raw)
			err := repo.Save(ctx, newOrder(4, "alice", &item{id: 1, sku: hex.EncodeToString(raw), quantity: 1}))
			de := dataErr(t, err, repository.ErrInvalidValue)
			assert.Equal(t, "order_items", de.Table)
			assert.False(t, b.exists(t, 4))
		})

		t.Run("strict column type", func(t *testing.T) {
			if !b.sqlite() {
				t.Skip("STRICT tables are SQLite's")
			}
			b.raw.exec(t, `CREATE TABLE counts (id INTEGER PRIMARY KEY, body INTEGER NOT NULL) STRICT`)
			m, err := NewMapping[*memo](Table{Name: "counts"})
			require.NoError(t, err)
			counts, err := NewRepository[*memo, int64](b.db, m)
			require.NoError(t, err)
			err = counts.Save(ctx, &memo{id: 1, body: "many", author: "a"})
			de := dataErr(t, err, repository.ErrInvalidValue)
			assert.Equal(t, "counts", de.Table)
			assert.Equal(t, "body", de.Column)
		})
	})
}

type memo struct {
	id     int64  `db:"id"`
	body   string `db:"body"`
	author string `db:"-"`
}

func (n *memo) ID() int64 { return n.id }

// TestUniquePosition checks that a unique key on a position column, which
// a reorder violates one row at a time, is reported on the child's table
// with advice, and that on PostgreSQL the advised deferred key works.
func TestUniquePosition(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		b.raw.exec(t, `CREATE TABLE playlists (id BIGINT PRIMARY KEY, version BIGINT NOT NULL)`)
		b.raw.exec(t, `CREATE TABLE tracks (list_id BIGINT NOT NULL REFERENCES playlists (id), id BIGINT NOT NULL, pos INTEGER NOT NULL, title TEXT NOT NULL,
			PRIMARY KEY (list_id, id), CONSTRAINT tracks_pos UNIQUE (list_id, pos))`)
		b.raw.exec(t, `CREATE TABLE cues (list_id BIGINT NOT NULL, track_id BIGINT NOT NULL, id BIGINT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (list_id, track_id, id))`)
		m, err := NewMapping[*playlist](Table{Name: "playlists"},
			Child{Field: "tracks", Table: "tracks", ParentKey: "list_id", Position: "pos", Children: []Child{
				{Field: "cues", Table: "cues", ParentKey: "track_id"},
			}})
		require.NoError(t, err)
		repo, err := NewRepository[*playlist, int64](b.db, m)
		require.NoError(t, err)
		require.NoError(t, repo.Save(ctx, &playlist{id: 1, tracks: []*track{{id: 1, title: "a"}, {id: 2, title: "b"}}}))
		p, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		p.tracks[0], p.tracks[1] = p.tracks[1], p.tracks[0]
		err = repo.Save(ctx, p)
		de := dataErr(t, err, repository.ErrUnique)
		assert.Equal(t, "tracks", de.Table)
		assert.Equal(t, "list_id, pos", de.Column)
		assert.Contains(t, err.Error(), "update tracks: ")
		assert.Contains(t, err.Error(), "DEFERRABLE INITIALLY DEFERRED")
		assert.NotContains(t, err.Error(), "update playlists: update playlists")

		if !b.postgres() {
			return // SQLite and MariaDB cannot defer a unique key
		}
		b.raw.exec(t, `ALTER TABLE tracks DROP CONSTRAINT tracks_pos`)
		b.raw.exec(t, `ALTER TABLE tracks ADD CONSTRAINT tracks_pos UNIQUE (list_id, pos) DEFERRABLE INITIALLY DEFERRED`)
		p, err = repo.Find(ctx, 1)
		require.NoError(t, err)
		p.tracks[0], p.tracks[1] = p.tracks[1], p.tracks[0]
		require.NoError(t, repo.Save(ctx, p), "a deferred key is checked at the commit")
		got, err := NewStore[*playlist, int64](b.quiet, m).Select(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, int64(2), got.tracks[0].id)
	})
}
