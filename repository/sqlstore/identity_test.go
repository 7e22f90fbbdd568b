package sqlstore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// TestSaveUntrackedStored checks that an aggregate read without tracking
// (Store.Select, Store.SelectWhere), whose root key the database
// generated, is not inserted again by Save: it is refused, nothing is
// written, and its key is left as it was.
func TestSaveUntrackedStored(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		m := genSchema(t, b)
		repo, err := NewRepository[*genRoot, int64](b.db, m)
		require.NoError(t, err)
		g := &genRoot{name: "first", lines: []*genLine{{label: "a"}}}
		require.NoError(t, repo.Save(ctx, g))

		sel, err := repo.Store().Select(ctx, g.id)
		require.NoError(t, err)
		sel.name = "renamed"
		err = repo.Save(ctx, sel)
		require.ErrorIs(t, err, repository.ErrUntracked)
		assert.Equal(t, g.id, sel.id, "the key is left as it was")
		all, err := repo.Store().SelectWhere(ctx, Query{})
		require.NoError(t, err)
		require.Len(t, all, 1)
		require.ErrorIs(t, repo.Save(ctx, all[0]), repository.ErrUntracked)
		repo.Detach(ctx, g)
		require.ErrorIs(t, repo.Save(ctx, g), repository.ErrUntracked, "a detached aggregate is stored too")
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM gen_roots"), "no copy was inserted")
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM gen_lines"))

		// The way to save it: load it tracked, or attach what was read.
		require.NoError(t, repo.Attach(ctx, sel))
		sel.name = "attached"
		require.NoError(t, repo.Save(ctx, sel))
		found, err := repo.Find(ctx, g.id)
		require.NoError(t, err)
		assert.Equal(t, "attached", found.name)
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM gen_roots"))
	})
}
