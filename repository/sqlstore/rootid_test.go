package sqlstore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// A root without an ID method: its identity is its field tagged
// `ddd:"id"`, the key column, and its own accessor has another name.

type ticketUUID string

type ticket struct {
	uuid    ticketUUID `db:"uuid" ddd:"id"`
	title   string     `db:"title"`
	notes   []*ticketNote
	version int64 `db:"version" ddd:"version"`
}

// UUID is the domain's accessor of the identity.
func (t *ticket) UUID() ticketUUID { return t.uuid }

type ticketNote struct {
	id   int64  `db:"id" ddd:"id"`
	text string `db:"text"`
}

func ticketRepo(t *testing.T, b *backend) *Repository[*ticket, ticketUUID] {
	t.Helper()
	m, err := NewMapping[*ticket](Table{Name: "tickets", Key: "uuid"}, Child{Field: "notes", Table: "ticket_notes", ParentKey: "ticket_uuid"})
	require.NoError(t, err)
	r, err := NewRepository[*ticket, ticketUUID](b.db, m)
	require.NoError(t, err)
	return r
}

// TestRootIdentityTag checks a repository of a root whose identity is its
// field tagged `ddd:"id"`: saved, found, found again as the same instance
// in a unit of work (by Find, FindAll and FindByIDs), updated with a
// version check, and removed.
func TestRootIdentityTag(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		b.raw.exec(t, `CREATE TABLE tickets (uuid TEXT PRIMARY KEY, title TEXT NOT NULL, version BIGINT NOT NULL)`)
		b.raw.exec(t, `CREATE TABLE ticket_notes (ticket_uuid TEXT NOT NULL REFERENCES tickets (uuid), id BIGINT NOT NULL, text TEXT NOT NULL, PRIMARY KEY (ticket_uuid, id))`)
		repo := ticketRepo(t, b)
		const id = ticketUUID("7d9f3a52-0000-4000-8000-000000000001")
		tk := &ticket{uuid: id, title: "printer", notes: []*ticketNote{{id: 1, text: "jammed"}}}
		require.NoError(t, repo.Save(ctx, tk))
		require.NoError(t, repo.Save(ctx, &ticket{uuid: "other", title: "other"}))
		err := repo.Save(ctx, &ticket{uuid: id, title: "again"})
		assert.ErrorIs(t, err, repository.ErrExists)

		got, err := ticketRepo(t, b).Find(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, tk, got)

		require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
			a, err := repo.Find(ctx, id)
			require.NoError(t, err)
			a.title = "unsaved"
			all, err := repo.FindAll(ctx, Where(Eq("title", "printer")))
			require.NoError(t, err)
			require.Len(t, all, 1)
			assert.Same(t, a, all[0], "the identity map knows the root by its tagged field")
			byIDs, err := repo.FindByIDs(ctx, []ticketUUID{"other", id})
			require.NoError(t, err)
			require.Len(t, byIDs, 2)
			assert.Same(t, a, byIDs[1])
			again, err := repo.Find(ctx, id)
			require.NoError(t, err)
			assert.Same(t, a, again)
			return nil
		}))

		require.NoError(t, repo.Update(ctx, id, func(_ context.Context, tk *ticket) error {
			tk.title = "printer on floor 2"
			tk.notes = append(tk.notes, &ticketNote{id: 2, text: "fixed"})
			return nil
		}))
		got, err = ticketRepo(t, b).Find(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, &ticket{uuid: id, title: "printer on floor 2", version: 1,
			notes: []*ticketNote{{id: 1, text: "jammed"}, {id: 2, text: "fixed"}}}, got)

		// tk is stale: its version check fails.
		tk.title = "stale"
		assert.ErrorIs(t, repo.Save(ctx, tk), repository.ErrConflict)

		require.NoError(t, repo.Remove(ctx, got))
		_, err = ticketRepo(t, b).Find(ctx, id)
		assert.ErrorIs(t, err, repository.ErrNotFound)
		assert.EqualValues(t, 0, b.raw.count(t, `SELECT COUNT(*) FROM ticket_notes`))
	})
}

// TestRootIdentityRefused checks the roots whose identity cannot be
// known, or is not the key column: each is refused when the repository is
// built, with an error that says how to fix it.
func TestRootIdentityRefused(t *testing.T) {
	db := sqliteBackend(t).db

	type noID struct {
		key  string `db:"id"`
		name string `db:"name"`
	}
	m1, err := NewMapping[*noID](Table{Name: "t"})
	require.NoError(t, err)
	_, err = NewRepository[*noID, string](db, m1)
	assert.ErrorIs(t, err, repository.ErrUnsupported)
	assert.ErrorContains(t, err, "it has no identity of type string: tag the field that holds it `ddd:\"id\"`, or give it a method ID() string")

	type wrongType struct {
		key int64 `db:"id" ddd:"id"`
	}
	m2, err := NewMapping[*wrongType](Table{Name: "t"})
	require.NoError(t, err)
	_, err = NewRepository[*wrongType, string](db, m2)
	assert.ErrorIs(t, err, repository.ErrUnsupported)
	assert.ErrorContains(t, err, "its identity, field key tagged `ddd:\"id\"`, is of type int64, not string")

	type notKey struct {
		key  int64  `db:"id"`
		code string `db:"code" ddd:"id"`
	}
	m3, err := NewMapping[*notKey](Table{Name: "t"})
	require.NoError(t, err)
	_, err = NewRepository[*notKey, string](db, m3)
	assert.ErrorIs(t, err, ErrMapping)
	assert.ErrorIs(t, err, repository.ErrUnsupported)
	assert.ErrorContains(t, err, "the identity, field code tagged `ddd:\"id\"`, is not the key column \"id\" (field key)")

	m4, err := NewMapping[*notKey](Table{Name: "t", Key: "code"})
	require.NoError(t, err)
	_, err = NewRepository[*notKey, string](db, m4)
	assert.NoError(t, err, "keyed by the tagged field")
}
