package sqlstore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// A playlist keeps the order of its tracks, and each track the order of
// its cues, in position columns.

type playlist struct {
	id      int64 `db:"id"`
	tracks  []*track
	version int64 `db:"version" ddd:"version"`
}

func (p *playlist) ID() int64 { return p.id }

type track struct {
	id    int64  `db:"id" ddd:"id"`
	title string `db:"title"`
	cues  []cue
}

type cue struct {
	id int64  `db:"id" ddd:"id"`
	at string `db:"at"`
}

func (p *playlist) order() (tracks []int64, cues [][]int64) {
	for _, t := range p.tracks {
		tracks = append(tracks, t.id)
		var cs []int64
		for _, c := range t.cues {
			cs = append(cs, c.id)
		}
		cues = append(cues, cs)
	}
	return tracks, cues
}

func TestPositionColumn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		b.raw.exec(t, `CREATE TABLE playlists (id BIGINT PRIMARY KEY, version BIGINT NOT NULL)`)
		b.raw.exec(t, `CREATE TABLE tracks (list_id BIGINT NOT NULL REFERENCES playlists (id), id BIGINT NOT NULL, pos INTEGER NOT NULL, title TEXT NOT NULL, PRIMARY KEY (list_id, id))`)
		b.raw.exec(t, `CREATE TABLE cues (list_id BIGINT NOT NULL, track_id BIGINT NOT NULL, id BIGINT NOT NULL, pos INTEGER NOT NULL, at TEXT NOT NULL,
			PRIMARY KEY (list_id, track_id, id), FOREIGN KEY (list_id, track_id) REFERENCES tracks (list_id, id))`)
		m, err := NewMapping[*playlist](Table{Name: "playlists"},
			Child{Field: "tracks", Table: "tracks", ParentKey: "list_id", Position: "pos", Children: []Child{
				{Field: "cues", Table: "cues", ParentKey: "track_id", Position: "pos"},
			}})
		require.NoError(t, err)
		repo, err := NewRepository[*playlist, int64](b.db, m)
		require.NoError(t, err)
		load := func() *playlist {
			t.Helper()
			got, err := NewStore[*playlist, int64](b.quiet, m).Select(ctx, 1)
			require.NoError(t, err)
			return got
		}

		// Saved in an order other than the keys': reloaded in it.
		p := &playlist{id: 1, tracks: []*track{
			{id: 3, title: "c", cues: []cue{{id: 2, at: "0:10"}, {id: 1, at: "0:20"}}},
			{id: 1, title: "a"},
			{id: 2, title: "b", cues: []cue{{id: 5, at: "1:00"}}},
		}}
		require.NoError(t, repo.Save(ctx, p))
		assert.Equal(t, p, load(), "rows reload in the order they were saved, not by key")

		// A reorder alone is saved: the moved rows' positions, and the
		// version.
		got, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		b.log.take()
		got.tracks[0], got.tracks[2] = got.tracks[2], got.tracks[0]
		require.NoError(t, repo.Save(ctx, got))
		writes := dml(b.log.take())
		assert.Len(t, writes, 3, "the version, and the two tracks that moved: %q", writes)
		assert.Contains(t, writes[1], `UPDATE "tracks" SET "pos" = ? WHERE "list_id" = ? AND "id" = ?`)
		want, _ := got.order()
		gotOrder, _ := load().order()
		assert.Equal(t, want, gotOrder)
		assert.EqualValues(t, 1, load().version)

		// Saved again unchanged: the snapshot took the order, nothing is
		// sent.
		require.NoError(t, repo.Save(ctx, got))
		assert.Empty(t, b.log.take())

		// A reorder deep inside a track that changed in nothing else.
		tr := got.tracks[2] // track 3
		tr.cues[0], tr.cues[1] = tr.cues[1], tr.cues[0]
		require.NoError(t, repo.Save(ctx, got))
		writes = dml(b.log.take())
		assert.Len(t, writes, 3, "%q", writes)
		assert.Contains(t, writes[1], `UPDATE "cues" SET "pos" = ? WHERE "list_id" = ? AND "track_id" = ? AND "id" = ?`)
		_, wantCues := got.order()
		_, gotCues := load().order()
		assert.Equal(t, wantCues, gotCues)

		// An insert in the middle and a removal: the new row at its index,
		// the shifted ones moved.
		got.tracks = append([]*track{got.tracks[0], {id: 9, title: "new"}}, got.tracks[1:]...)
		got.tracks = got.tracks[:len(got.tracks)-1] // track 3 goes, with its cues
		require.NoError(t, repo.Save(ctx, got))
		b.log.take()
		want, _ = got.order()
		gotOrder, _ = load().order()
		assert.Equal(t, want, gotOrder)
		assert.Equal(t, got, load())
		assert.Zero(t, b.raw.count(t, "SELECT count(*) FROM cues WHERE track_id = 3"))

		// A query reloads in order too.
		found, err := repo.FindAll(ctx, Where(Eq("id", int64(1))))
		require.NoError(t, err)
		require.Len(t, found, 1)
		assert.Equal(t, want, func() []int64 { o, _ := found[0].order(); return o }())
	})
}

type posMap struct {
	id     int64 `db:"id"`
	tracks map[int64]*track
}

func (p *posMap) ID() int64 { return p.id }

func TestPositionColumnErrors(t *testing.T) {
	_, err := NewMapping[*posMap](Table{Name: "t"}, Child{Field: "tracks", Table: "tracks", ParentKey: "list_id", Position: "pos",
		Children: []Child{{Field: "cues", Table: "cues", ParentKey: "track_id"}}})
	assert.ErrorIs(t, err, ErrMapping)
	assert.ErrorContains(t, err, `position column "pos": field tracks is a map, which has no order`)
	_, err = NewMapping[*playlist](Table{Name: "t"}, Child{Field: "tracks", Table: "tracks", ParentKey: "list_id", Position: "title",
		Children: []Child{{Field: "cues", Table: "cues", ParentKey: "track_id"}}})
	assert.ErrorContains(t, err, `position column "title" is a parent key column or the db tag of a field`)
	_, err = NewMapping[*playlist](Table{Name: "t"}, Child{Field: "tracks", Table: "tracks", ParentKey: "list_id", Position: "list_id",
		Children: []Child{{Field: "cues", Table: "cues", ParentKey: "track_id"}}})
	assert.ErrorContains(t, err, `position column "list_id" is a parent key column`)
}

// TestPositionNeedsSnapshot checks that a store with position columns
// refuses changes that carry no snapshot, from which it tells what moved,
// rather than saving an order it cannot know.
func TestPositionNeedsSnapshot(t *testing.T) {
	m, err := NewMapping[*playlist](Table{Name: "playlists"},
		Child{Field: "tracks", Table: "tracks", ParentKey: "list_id", Position: "pos", Children: []Child{
			{Field: "cues", Table: "cues", ParentKey: "track_id"},
		}})
	require.NoError(t, err)
	s := NewStore[*playlist, int64](sqliteBackend(t).db, m)
	err = s.Update(context.Background(), &playlist{id: 1}, repository.Changes{Versioned: true, OldVersion: 0, NewVersion: 1})
	require.ErrorIs(t, err, repository.ErrUnsupported)
	assert.ErrorContains(t, err, "no snapshot (Changes.Old)")
}
