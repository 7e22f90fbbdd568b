package sqlstore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// TestFailedLastSaveNeverCommits checks that a save marked as the last of
// its unit of work (CommitWith), which runs without a savepoint, and fails
// after some of its statements ran, leaves nothing of itself committed,
// even when the function ignores the error and returns nil: the unit of
// work then refuses its COMMIT and rolls back. Loads still run in it.
func TestFailedLastSaveNeverCommits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		version := b.load(t, 1).version
		var saveErr error
		err := b.db.InTx(ctx, func(ctx context.Context) error {
			o, err := repo.FindForUpdate(ctx, 1)
			require.NoError(t, err)
			o.customer = "bob"   // the root's UPDATE runs first
			o.setQuantity(3, -1) // then the item's fails its CHECK
			saveErr = repo.Save(b.db.CommitWith(ctx), o)
			if !b.pgx {
				// The transaction is still open on database/sql: a load
				// runs in it.
				_, err := repo.Find(ctx, 1)
				assert.NoError(t, err)
			}
			return nil // the error ignored
		})
		require.ErrorIs(t, saveErr, repository.ErrConstraint)
		require.Error(t, err, "the unit of work must not commit")
		assert.NotErrorIs(t, err, repository.ErrOutcomeUnknown)
		got := b.load(t, 1)
		assert.Equal(t, "alice", got.customer, "the root's UPDATE was not committed")
		assert.Equal(t, version, got.version)
		assert.Equal(t, 3, got.item(3).quantity)
	})
}

// TestFailedLastStagedSaveNeverCommits is TestFailedLastSaveNeverCommits
// for a save of several round trips (generated keys): one of its stages
// fails after the stages before it ran, each without a savepoint. The
// unit of work refuses its COMMIT too.
func TestFailedLastStagedSaveNeverCommits(t *testing.T) {
	forEachBackendAndMySQLPath(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		m := genSchema(t, b)
		// A note's text must not be empty either.
		b.raw.exec(t, `DROP TABLE gen_notes`)
		b.raw.exec(t, `CREATE TABLE gen_notes (line_id BIGINT NOT NULL REFERENCES gen_lines (id), id BIGINT NOT NULL, text TEXT NOT NULL CHECK (text <> ''), PRIMARY KEY (line_id, id))`)
		repo, err := NewRepository[*genRoot, int64](b.db, m)
		require.NoError(t, err)
		for _, c := range []struct {
			name string
			line *genLine
		}{
			// The root's UPDATE runs, then the line's INSERT fails its
			// CHECK, in the first stage: the notes' stage never runs.
			{"first stage", &genLine{id: -1, label: "", notes: []genNote{{id: 1, text: "x"}}}},
			// The root's UPDATE and the line's INSERT run in the first
			// stage, then the note's INSERT fails its CHECK in the
			// second.
			{"second stage", &genLine{id: -1, label: "b", notes: []genNote{{id: 1, text: ""}}}},
		} {
			t.Run(c.name, func(t *testing.T) {
				g := &genRoot{name: "first", lines: []*genLine{{label: "a"}}}
				require.NoError(t, repo.Save(ctx, g))
				var saveErr error
				err := b.db.InTx(ctx, func(ctx context.Context) error {
					o, err := repo.FindForUpdate(ctx, g.id)
					require.NoError(t, err)
					o.name = "changed"
					o.lines = append(o.lines, c.line)
					saveErr = repo.Save(b.db.CommitWith(ctx), o)
					return nil // the error ignored
				})
				require.ErrorIs(t, saveErr, repository.ErrConstraint)
				require.Error(t, err, "the unit of work must not commit")
				assert.NotErrorIs(t, err, repository.ErrOutcomeUnknown)
				got, err := NewStore[*genRoot, int64](b.quiet, m).Select(ctx, g.id)
				require.NoError(t, err)
				assert.Equal(t, g, got, "nothing of the failed save was committed")
			})
		}
	})
}
