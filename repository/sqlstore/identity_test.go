package sqlstore

import (
	"context"
	"slices"
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
	forEachBackendAndMySQLPath(t, func(t *testing.T, b *backend) {
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

// A kanban board: columns, their cards, the cards' checklist items, every
// key generated, the columns and the cards in position order. In the
// key-only layout each table refers to its parent by the parent's key
// alone; in the full-path layout by every level's parent key, with
// composite foreign keys checked at commit (cascaded on MariaDB, which
// cannot defer them, see moveFK); in the mixed layout the cards
// refer to their column by its key alone, and the items to their card by
// the column's key and the card's.

type board struct {
	id      int64  `db:"id,generated"`
	name    string `db:"name"`
	columns []*kcolumn
	version int64 `db:"version" ddd:"version"`
}

func (b *board) ID() int64 { return b.id }

type kcolumn struct {
	id    int64  `db:"id,generated" ddd:"id"`
	title string `db:"title"`
	cards []*kcard
}

type kcard struct {
	id    int64  `db:"id,generated" ddd:"id"`
	title string `db:"title"`
	items []kitem
}

type kitem struct {
	id   int64  `db:"id,generated" ddd:"id"`
	text string `db:"text"`
}

func (b *board) column(id int64) *kcolumn {
	for _, c := range b.columns {
		if c.id == id {
			return c
		}
	}
	return nil
}

// take removes the card with key id from the column that holds it.
func (b *board) take(id int64) *kcard {
	for _, c := range b.columns {
		for i, k := range c.cards {
			if k.id == id {
				c.cards = append(c.cards[:i:i], c.cards[i+1:]...)
				if len(c.cards) == 0 {
					c.cards = nil // as it loads
				}
				return k
			}
		}
	}
	return nil
}

func (b *board) card(id int64) *kcard {
	for _, c := range b.columns {
		for _, k := range c.cards {
			if k.id == id {
				return k
			}
		}
	}
	return nil
}

// takeItem removes the item with key id from the card that holds it.
func (b *board) takeItem(id int64) kitem {
	for _, c := range b.columns {
		for _, k := range c.cards {
			for i, it := range k.items {
				if it.id == id {
					k.items = append(k.items[:i:i], k.items[i+1:]...)
					if len(k.items) == 0 {
						k.items = nil // as it loads
					}
					return it
				}
			}
		}
	}
	return kitem{}
}

// kanbanMapping maps a board: its cards refer to their column by every
// level's parent key when fullPath, its items to their card by the card's
// key alone when keyOnly.
func kanbanMapping(t *testing.T, fullPath, keyOnly bool) *Mapping[*board] {
	t.Helper()
	m, err := NewMapping[*board](Table{Name: "boards"},
		Child{Field: "columns", Table: "kcolumns", ParentKey: "board_id", Position: "pos", Children: []Child{
			{Field: "cards", Table: "kcards", ParentKey: "column_id", ParentKeyOnly: !fullPath, Position: "pos", Children: []Child{
				{Field: "items", Table: "kitems", ParentKey: "card_id", ParentKeyOnly: keyOnly},
			}},
		}})
	require.NoError(t, err)
	return m
}

// kanbanSchema creates the tables of a board in the layout given, and
// returns their mapping. The layout "ddl" is "full-path" created by
// Mapping.DDL.
func kanbanSchema(t *testing.T, b *backend, layout string) *Mapping[*board] {
	t.Helper()
	if layout == "ddl" {
		m := kanbanMapping(t, true, false)
		ddl, err := m.DDL(b.database())
		require.NoError(t, err)
		for _, s := range statements(ddl) {
			b.raw.exec(t, s)
		}
		b.raw.exec(t, `ALTER TABLE kcards ADD COLUMN note TEXT NOT NULL DEFAULT ''`)
		require.NoError(t, m.Check(context.Background(), b.db), ddl)
		return m
	}
	serial := "INTEGER PRIMARY KEY"
	if !b.sqlite() {
		serial = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
	}
	b.raw.exec(t, `CREATE TABLE boards (id `+serial+`, name TEXT NOT NULL, version BIGINT NOT NULL)`)
	b.raw.exec(t, `CREATE TABLE kcolumns (id `+serial+`, board_id BIGINT NOT NULL REFERENCES boards (id), pos INTEGER NOT NULL, title TEXT NOT NULL, UNIQUE (board_id, id))`)
	// note is a column the mapping does not know: it survives a move.
	switch layout {
	case "mixed": // cards by their column's key alone, items by both keys
		b.raw.exec(t, `CREATE TABLE kcards (id `+serial+`, column_id BIGINT NOT NULL REFERENCES kcolumns (id), pos INTEGER NOT NULL, title TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', UNIQUE (column_id, id))`)
		b.raw.exec(t, `CREATE TABLE kitems (id `+serial+`, column_id BIGINT NOT NULL, card_id BIGINT NOT NULL, text TEXT NOT NULL,
			FOREIGN KEY (column_id, card_id) REFERENCES kcards (column_id, id)`+b.moveFK()+`)`)
	case "full-path":
		b.raw.exec(t, `CREATE TABLE kcards (id `+serial+`, board_id BIGINT NOT NULL, column_id BIGINT NOT NULL, pos INTEGER NOT NULL, title TEXT NOT NULL, note TEXT NOT NULL DEFAULT '',
			UNIQUE (board_id, column_id, id),
			FOREIGN KEY (board_id, column_id) REFERENCES kcolumns (board_id, id)`+b.moveFK()+`)`)
		b.raw.exec(t, `CREATE TABLE kitems (id `+serial+`, board_id BIGINT NOT NULL, column_id BIGINT NOT NULL, card_id BIGINT NOT NULL, text TEXT NOT NULL,
			FOREIGN KEY (board_id, column_id, card_id) REFERENCES kcards (board_id, column_id, id)`+b.moveFK()+`)`)
	default:
		b.raw.exec(t, `CREATE TABLE kcards (id `+serial+`, column_id BIGINT NOT NULL REFERENCES kcolumns (id), pos INTEGER NOT NULL, title TEXT NOT NULL, note TEXT NOT NULL DEFAULT '')`)
		b.raw.exec(t, `CREATE TABLE kitems (id `+serial+`, card_id BIGINT NOT NULL REFERENCES kcards (id), text TEXT NOT NULL)`)
	}
	return kanbanMapping(t, layout == "full-path", layout == "key-only")
}

// TestMoveKeepsIdentity moves entities whose keys the database generated
// between parents, at every depth, within one save and over several, and
// checks that each keeps its key and its row.
func TestMoveKeepsIdentity(t *testing.T) {
	for _, layout := range []string{"key-only", "full-path", "mixed", "ddl"} {
		t.Run(layout, func(t *testing.T) {
			forEachBackendAndMySQLPath(t, func(t *testing.T, b *backend) {
				testMoves(t, b, layout)
			})
		})
	}
}

func testMoves(t *testing.T, b *backend, layout string) {
	ctx := context.Background()
	m := kanbanSchema(t, b, layout)
	repo, err := NewRepository[*board, int64](b.db, m)
	require.NoError(t, err)
	load := func(id int64) *board {
		t.Helper()
		got, err := NewStore[*board, int64](b.quiet, m).Select(ctx, id)
		require.NoError(t, err)
		return got
	}
	rows := func() [3]int64 {
		return [3]int64{b.raw.count(t, "SELECT count(*) FROM kcolumns"), b.raw.count(t, "SELECT count(*) FROM kcards"), b.raw.count(t, "SELECT count(*) FROM kitems")}
	}

	bd := &board{name: "team", columns: []*kcolumn{
		{title: "todo", cards: []*kcard{
			{id: -1, title: "one", items: []kitem{{id: -1, text: "a"}, {id: -2, text: "b"}}},
			{id: -2, title: "two"},
		}},
		{id: -1, title: "doing", cards: []*kcard{{id: -3, title: "three", items: []kitem{{id: -3, text: "c"}}}}},
	}}
	bd.columns[0].id = -2
	require.NoError(t, repo.Save(ctx, bd))
	todo, doing := bd.columns[0].id, bd.columns[1].id
	one, two, three := bd.columns[0].cards[0].id, bd.columns[0].cards[1].id, bd.columns[1].cards[0].id
	ia, ib, ic := bd.card(one).items[0].id, bd.card(one).items[1].id, bd.card(three).items[0].id
	b.raw.exec(t, "UPDATE kcards SET note = 'kept' WHERE id = ?", one)
	before := rows()

	// A card moves to another column, changed on the way: its row is
	// updated, not numbered again, and its items go with it.
	bd.column(doing).cards = append([]*kcard{bd.take(one)}, bd.column(doing).cards...)
	bd.card(one).title = "ONE"
	b.log.take()
	require.NoError(t, repo.Save(ctx, bd))
	writes := dml(b.log.take())
	require.NotNil(t, bd.card(one), "the card keeps its key: %v", bd.column(doing).cards[0].id)
	assert.Equal(t, []int64{ia, ib}, []int64{bd.card(one).items[0].id, bd.card(one).items[1].id}, "and so do its items")
	assert.Equal(t, bd, load(bd.id))
	assert.Equal(t, before, rows(), "no row inserted or deleted")
	assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM kcards WHERE id = ? AND note = 'kept'", one), "the row itself moved: %q", writes)
	for _, s := range writes {
		assert.NotContains(t, s, "INSERT", "a move is no insert")
		assert.NotContains(t, s, "DELETE", "a move is no delete")
	}
	require.NoError(t, repo.Save(ctx, bd))
	assert.Empty(t, dml(b.log.take()), "the snapshot holds the move")

	// Within one save: an item moves to another card (the third level),
	// a card moves back, and another card moves the other way.
	it := bd.takeItem(ib)
	bd.card(three).items = append([]kitem{it}, bd.card(three).items...) // items load in key order
	bd.column(todo).cards = append(bd.column(todo).cards, bd.take(one), bd.take(three))
	bd.column(doing).cards = append(bd.column(doing).cards, bd.take(two))
	// The items of a moved card change too: one is changed, one added.
	bd.card(one).items[0].text = "A"
	bd.card(one).items = append(bd.card(one).items, kitem{id: -1, text: "d"})
	require.NoError(t, repo.Save(ctx, bd))
	assert.Equal(t, []int64{one, three}, []int64{bd.column(todo).cards[0].id, bd.column(todo).cards[1].id})
	assert.Equal(t, ib, bd.card(three).items[0].id)
	assert.Equal(t, ia, bd.card(one).items[0].id)
	assert.Positive(t, bd.card(one).items[1].id, "the new item got its key")
	assert.Equal(t, bd, load(bd.id))
	before[2]++
	assert.Equal(t, before, rows())

	// Over two saves: the card with the moved item goes to a new column
	// (inserted with its key, with its items), then back to an old one.
	bd.columns = append(bd.columns, &kcolumn{id: -1, title: "done", cards: []*kcard{bd.take(three)}})
	require.NoError(t, repo.Save(ctx, bd))
	done := bd.columns[2].id
	assert.NotEqual(t, int64(-1), done)
	assert.Equal(t, three, bd.column(done).cards[0].id, "moved under a new parent, the card keeps its key")
	assert.Equal(t, []int64{ib, ic}, []int64{bd.card(three).items[0].id, bd.card(three).items[1].id})
	assert.Equal(t, bd, load(bd.id))
	bd.column(doing).cards = append(bd.column(doing).cards, bd.take(three))
	require.NoError(t, repo.Save(ctx, bd))
	assert.Equal(t, three, bd.column(doing).cards[1].id)
	assert.Equal(t, bd, load(bd.id))

	// The old parent removed in the same save: the card leaves it first.
	bd.column(doing).cards = append(bd.column(doing).cards, bd.take(one))
	bd.columns = slices.DeleteFunc(bd.columns, func(c *kcolumn) bool { return c.id == todo })
	require.NoError(t, repo.Save(ctx, bd))
	assert.Equal(t, one, bd.column(doing).cards[2].id)
	assert.Equal(t, bd, load(bd.id))
	assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM kcards WHERE id = ? AND note = 'kept'", one))
	assert.Equal(t, [3]int64{2, 3, 4}, rows())

	// One card under two columns at once is refused, and nothing is
	// written.
	bd.column(done).cards = append(bd.column(done).cards, bd.card(two))
	err = repo.Save(ctx, bd)
	require.ErrorIs(t, err, repository.ErrDuplicateID)
	assert.Equal(t, [3]int64{2, 3, 4}, rows())
	bd.column(done).cards = nil
	require.NoError(t, repo.Save(ctx, bd))
	assert.Equal(t, bd, load(bd.id))

	// An item moves in a unit of work, with the save before it.
	require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
		got, err := repo.Find(ctx, bd.id)
		if err != nil {
			return err
		}
		it := got.takeItem(ia)
		got.card(two).items = append(got.card(two).items, it)
		return repo.Save(ctx, got)
	}))
	got := load(bd.id)
	assert.Equal(t, ia, got.card(two).items[0].id)
	assert.Equal(t, [3]int64{2, 3, 4}, rows())
}
