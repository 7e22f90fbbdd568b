package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/ddd"
	"github.com/dddkit/dddkit/repository"
)

// Bad input, on every backend: each case hands the repository something
// it must refuse, and checks that the refusal is an error that errors.Is
// matches with the sentinel that names its cause, that it is not a panic,
// and that nothing was written (the tables' contents are the same, and no
// write statement was sent).

// badPlain holds a field that cannot be snapshotted: a func that is not a
// column (an untagged func is not mapped) is still copied and compared.
type badPlain struct {
	id     int64  `db:"id"`
	name   string `db:"name"`
	onSave func() `db:"-"` // tracked, so refused by tracking
}

func (a *badPlain) ID() int64 { return a.id }

type badChan struct {
	id     int64       `db:"id"`
	name   string      `db:"name"`
	events chan string `db:"-"`
}

func (a *badChan) ID() int64 { return a.id }

// badFuncNotColumn: `db:"-"` keeps a field out of the SQL mapping only; it
// is still tracked.
type badFuncNotColumn struct {
	id   int64  `db:"id"`
	name string `db:"name"`
	fn   func() `db:"-"`
}

func (a *badFuncNotColumn) ID() int64 { return a.id }

// badFuncIgnored: `ddd:"-"` keeps a field out of tracking: accepted.
type badFuncIgnored struct {
	id   int64  `db:"id"`
	name string `db:"name"`
	fn   func() `ddd:"-"`
}

func (a *badFuncIgnored) ID() int64 { return a.id }

// badFuncColumn maps a func to a column: NewMapping does not look at
// column types.
type badFuncColumn struct {
	id   int64  `db:"id"`
	name func() `db:"name"`
}

func (a *badFuncColumn) ID() int64 { return a.id }

type badChanColumn struct {
	id   int64       `db:"id"`
	name chan string `db:"name"`
}

func (a *badChanColumn) ID() int64 { return a.id }

// badNode is a link of a list held by badLinked.
type badNode struct {
	val  int
	next *badNode
}

// badLinked has a version column and fields that are tracked but not
// mapped (a pointer is not a value object, and an untagged slice is not a
// column): what cycles and deep nesting go through.
type badLinked struct {
	id      int64      `db:"id"`
	name    string     `db:"name"`
	chain   *badNode   `db:"-"`
	extra   []any      `db:"-"`
	self    *badLinked `db:"-"`
	version int64      `db:"version" ddd:"version"`
}

func (a *badLinked) ID() int64 { return a.id }

// badBag holds its children in a map keyed by their identity.
type badBag struct {
	id      int64 `db:"id"`
	items   map[itemID]*item
	version int64 `db:"version" ddd:"version"`
}

func (a *badBag) ID() int64 { return a.id }

var badDDL = []string{
	`CREATE TABLE bad_plain (id BIGINT PRIMARY KEY, name TEXT NOT NULL)`,
	`CREATE TABLE bad_linked (id BIGINT PRIMARY KEY, name TEXT NOT NULL, version BIGINT NOT NULL)`,
	`CREATE TABLE bad_bags (id BIGINT PRIMARY KEY, version BIGINT NOT NULL)`,
	`CREATE TABLE bad_bag_items (
		bag_id BIGINT NOT NULL REFERENCES bad_bags (id),
		id BIGINT NOT NULL,
		sku TEXT NOT NULL,
		quantity INTEGER NOT NULL,
		PRIMARY KEY (bag_id, id)
	)`,
}

// badTables lists every table with an expression over its columns whose
// sum, with the row count, changes with any write the cases could make.
var badTables = []struct{ name, sum string }{
	{"orders", "id + 7 * version + total_amount + LENGTH(customer) + LENGTH(total_currency)"},
	{"order_items", "31 * order_id + 7 * id + quantity + LENGTH(sku)"},
	{"bad_plain", "id + LENGTH(name)"},
	{"bad_linked", "id + 7 * version + LENGTH(name)"},
	{"bad_bags", "id + 7 * version"},
	{"bad_bag_items", "31 * bag_id + 7 * id + quantity + LENGTH(sku)"},
}

// badFingerprint returns the row count and the checksum of every table.
func badFingerprint(t testing.TB, b *backend) map[string][2]int64 {
	t.Helper()
	out := make(map[string][2]int64, len(badTables))
	for _, tb := range badTables {
		out[tb.name] = [2]int64{
			b.raw.count(t, "SELECT count(*) FROM "+tb.name),
			b.raw.count(t, "SELECT CAST(COALESCE(SUM("+tb.sum+"), 0) AS BIGINT) FROM "+tb.name),
		}
	}
	return out
}

// badWrites returns the statements of stmts that write or open a save.
func badWrites(stmts []Statement) []string {
	var out []string
	for _, s := range stmts {
		for _, p := range []string{"INSERT", "UPDATE", "DELETE", "WITH", "SAVEPOINT"} {
			if strings.HasPrefix(s.SQL, p) {
				out = append(out, s.SQL)
				break
			}
		}
	}
	return out
}

// errPanicked stands for the error of a call that panicked: it matches no
// sentinel, so that the case fails on its error too.
var errPanicked = errors.New("the call panicked")

// badCatch runs fn, turning a panic into a test failure.
func badCatch(t testing.TB, fn func() error) (err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("panic: %v\n%s", r, debug.Stack())
			err = errPanicked
		}
	}()
	return fn()
}

func badRepo[T ddd.Aggregate[ID], ID comparable](t testing.TB, b *backend, root Table, children ...Child) *repository.AggregateRepositorySupport[T, ID] {
	t.Helper()
	m, err := NewMapping[T](root, children...)
	require.NoError(t, err)
	r, err := NewRepository[T, ID](b.db, m)
	require.NoError(t, err)
	return r.AggregateRepositorySupport
}

// badMappingErr returns the error of NewMapping of T, which must say to
// exclude the field with ddd:"-".
func badMappingErr[T any]() error {
	_, err := NewMapping[T](Table{Name: "bad_plain"})
	if err != nil && !strings.Contains(err.Error(), "`ddd:\"-\"`") {
		return fmt.Errorf("the error does not name ddd:\"-\": %w", err)
	}
	return err
}

func badLinkedRepo(t testing.TB, b *backend) *repository.AggregateRepositorySupport[*badLinked, int64] {
	return badRepo[*badLinked, int64](t, b, Table{Name: "bad_linked"})
}

func badBagRepo(t testing.TB, b *backend) *repository.AggregateRepositorySupport[*badBag, int64] {
	return badRepo[*badBag, int64](t, b, Table{Name: "bad_bags"}, Child{Field: "items", Table: "bad_bag_items", ParentKey: "bag_id"})
}

// badChain returns a list of n links, and its last link.
func badChain(n int) (head, last *badNode) {
	for i := n; i > 0; i-- {
		head = &badNode{val: i, next: head}
		if last == nil {
			last = head
		}
	}
	return head, last
}

// badCall is the call a case makes, prepared, and what to check after it.
type badCall struct {
	run func() error
	// after, if set, checks what the refused call left in memory.
	after func(t *testing.T)
}

// badCase is one bad input. prepare may write (to seed what the call
// loads); the call it returns must write nothing.
type badCase struct {
	name   string
	reason string
	want   error // the sentinel errors.Is must find in the error; nil: any error
	// byDB marks input that only the database can find bad: its statements
	// are sent, and rolled back.
	byDB bool
	// oneBackend marks input refused before any hook runs, whatever the
	// database, and costly to build: it runs on SQLite only.
	oneBackend bool
	prepare    func(t *testing.T, ctx context.Context, b *backend, id int64) badCall
}

// errChange is what a function given to Update fails with.
var errChange = errors.New("the change refuses")

var badCases = []badCase{
	{
		name:   "save nil",
		reason: "a nil aggregate is refused before any hook runs",
		want:   repository.ErrUnsupported,
		prepare: func(t *testing.T, ctx context.Context, b *backend, _ int64) badCall {
			repo := b.repo(t)
			return badCall{run: func() error { return repo.Save(ctx, nil) }}
		},
	},
	{
		name:   "save typed nil through the Repository interface",
		reason: "a nil *order held in the interface's type parameter is a nil aggregate too",
		want:   repository.ErrUnsupported,
		prepare: func(t *testing.T, ctx context.Context, b *backend, _ int64) badCall {
			var r repository.Repository[*order, orderID] = b.repo(t)
			var o *order
			return badCall{run: func() error { return r.Save(ctx, o) }}
		},
	},
	{
		name:   "remove nil",
		reason: "Remove of nothing must not reach the delete hook",
		want:   repository.ErrUnsupported,
		prepare: func(t *testing.T, ctx context.Context, b *backend, _ int64) badCall {
			repo := b.repo(t)
			return badCall{run: func() error { return repo.Remove(ctx, nil) }}
		},
	},
	{
		name:   "remove typed nil through the Repository interface",
		reason: "as for Save",
		want:   repository.ErrUnsupported,
		prepare: func(t *testing.T, ctx context.Context, b *backend, _ int64) badCall {
			var r repository.Repository[*order, orderID] = b.repo(t)
			var o *order
			return badCall{run: func() error { return r.Remove(ctx, o) }}
		},
	},
	{
		name:   "attach nil",
		reason: "Attach is the way in for aggregates loaded by other queries; Detach of nil does nothing",
		want:   repository.ErrUnsupported,
		prepare: func(t *testing.T, ctx context.Context, b *backend, _ int64) badCall {
			repo := b.repo(t)
			return badCall{run: func() error {
				repo.Detach(ctx, nil)
				return repo.Attach(ctx, nil)
			}}
		},
	},
	{
		name:   "update with a nil function",
		reason: "Update(ctx, id, nil) is an error, not a call of nil; no sentinel is documented for it, any error will do",
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			repo := b.repo(t)
			require.NoError(t, repo.Save(ctx, newOrder(orderID(id), "alice", &item{id: 1, sku: "A", quantity: 1})))
			return badCall{run: func() error { return repo.Update(ctx, orderID(id), nil) }}
		},
	},
	{
		name:   "update of a missing aggregate",
		reason: "the change is never run on an aggregate that is not there",
		want:   repository.ErrNotFound,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			repo := b.repo(t)
			called := false
			return badCall{
				run: func() error {
					return repo.Update(ctx, orderID(id), func(context.Context, *order) error { called = true; return nil })
				},
				after: func(t *testing.T) { assert.False(t, called, "the change ran") },
			}
		},
	},
	{
		name:   "update whose function fails",
		reason: "the function's error is returned as is, and what it changed is not saved",
		want:   errChange,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			repo := b.repo(t)
			require.NoError(t, repo.Save(ctx, newOrder(orderID(id), "alice", &item{id: 1, sku: "A", quantity: 1})))
			return badCall{run: func() error {
				return repo.Update(ctx, orderID(id), func(_ context.Context, o *order) error {
					o.setQuantity(1, 9)
					return errChange
				})
			}}
		},
	},
	{
		name:   "insert of an identity that exists",
		reason: "a new aggregate whose key another writer inserted first",
		want:   repository.ErrExists,
		byDB:   true,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			require.NoError(t, b.repo(t).Save(ctx, newOrder(orderID(id), "alice", &item{id: 1, sku: "A", quantity: 1})))
			repo := b.repo(t)
			return badCall{run: func() error {
				return repo.Save(ctx, newOrder(orderID(id), "bob", &item{id: 7, sku: "Z", quantity: 3}))
			}}
		},
	},
	{
		name:   "remove of an aggregate never stored",
		reason: "the delete's check finds no row",
		want:   repository.ErrConflict,
		byDB:   true,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			repo := b.repo(t)
			return badCall{run: func() error { return repo.Remove(ctx, newOrder(orderID(id), "alice")) }}
		},
	},
	{
		name:   "duplicate child ids on insert",
		reason: "two items of id 1 would be two rows of one key; the store refuses them before it sends anything",
		want:   repository.ErrDuplicateID,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			repo := b.repo(t)
			o := newOrder(orderID(id), "alice", &item{id: 1, sku: "A", quantity: 1}, &item{id: 1, sku: "B", quantity: 2})
			return badCall{
				run: func() error { return repo.Save(ctx, o) },
				after: func(t *testing.T) {
					assert.False(t, repo.Tracker().Tracked(ctx, o), "a refused insert leaves the aggregate untracked")
					o.items[1].id = 2
					require.NoError(t, repo.Save(ctx, o), "once fixed, the same aggregate is inserted")
					assert.Equal(t, stored(o), b.load(t, orderID(id)))
				},
			}
		},
	},
	{
		name:   "duplicate child id appended to a loaded order",
		reason: "the diff cannot match elements by identity when two share one",
		want:   repository.ErrDuplicateID,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			require.NoError(t, b.repo(t).Save(ctx, newOrder(orderID(id), "alice", threeItems()...)))
			repo := b.repo(t)
			o, err := repo.Find(ctx, orderID(id))
			require.NoError(t, err)
			o.add(&item{id: 2, sku: "Z", quantity: 5})
			return badCall{
				run: func() error { return repo.Save(ctx, o) },
				after: func(t *testing.T) {
					assert.EqualValues(t, 0, o.version, "a refused save leaves the version as it was")
					o.items = o.items[:3]
					o.recompute()
					b.log.take()
					require.NoError(t, repo.Save(ctx, o))
					assert.Empty(t, badWrites(b.log.take()), "the snapshot did not advance: the order as loaded saves nothing")
				},
			}
		},
	},
	{
		name:   "map children sharing an identity under two keys, on insert",
		reason: "a map keyed by identity can still hold two values of one id",
		want:   repository.ErrDuplicateID,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			repo := badBagRepo(t, b)
			g := &badBag{id: id, items: map[itemID]*item{1: {id: 1, sku: "A", quantity: 1}, 2: {id: 1, sku: "B", quantity: 1}}}
			return badCall{run: func() error { return repo.Save(ctx, g) }}
		},
	},
	{
		name:   "map children sharing an identity under two keys, on update",
		reason: "as on insert, found by the diff",
		want:   repository.ErrDuplicateID,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			require.NoError(t, badBagRepo(t, b).Save(ctx, &badBag{id: id, items: map[itemID]*item{1: {id: 1, sku: "A", quantity: 1}}}))
			repo := badBagRepo(t, b)
			g, err := repo.Find(ctx, id)
			require.NoError(t, err)
			g.items[9] = &item{id: 1, sku: "C", quantity: 4}
			return badCall{run: func() error { return repo.Save(ctx, g) }}
		},
	},
	{
		name:   "nil child on insert",
		reason: "a nil element of an entity collection has no identity and no row",
		want:   repository.ErrNilEntity,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			repo := b.repo(t)
			o := newOrder(orderID(id), "alice", &item{id: 1, sku: "A", quantity: 1})
			o.items = append(o.items, nil)
			return badCall{run: func() error { return repo.Save(ctx, o) }}
		},
	},
	{
		name:   "nil child appended to a loaded order",
		reason: "as on insert, found by the diff",
		want:   repository.ErrNilEntity,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			require.NoError(t, b.repo(t).Save(ctx, newOrder(orderID(id), "alice", threeItems()...)))
			repo := b.repo(t)
			o, err := repo.Find(ctx, orderID(id))
			require.NoError(t, err)
			o.setQuantity(1, 4)
			o.items = append(o.items, nil)
			return badCall{run: func() error { return repo.Save(ctx, o) }}
		},
	},
	{
		name:   "nil value in a map collection",
		reason: "a nil *item under a key is a nil entity too",
		want:   repository.ErrNilEntity,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			repo := badBagRepo(t, b)
			g := &badBag{id: id, items: map[itemID]*item{1: {id: 1, sku: "A", quantity: 1}, 2: nil}}
			return badCall{run: func() error { return repo.Save(ctx, g) }}
		},
	},
	{
		name:   "func field",
		reason: "a func excluded with db:\"-\" only cannot be snapshotted: NewMapping refuses it, naming ddd:\"-\"",
		want:   repository.ErrUnsupported,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			return badCall{run: func() error { return badMappingErr[*badPlain]() }}
		},
	},
	{
		name:   "chan field",
		reason: "a chan cannot be snapshotted either",
		want:   repository.ErrUnsupported,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			return badCall{run: func() error { return badMappingErr[*badChan]() }}
		},
	},
	{
		name:   `func field tagged db:"-"`,
		reason: `db:"-" keeps the field out of the SQL mapping, not out of tracking (ddd:"-" does)`,
		want:   repository.ErrUnsupported,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			return badCall{run: func() error { return badMappingErr[*badFuncNotColumn]() }}
		},
	},
	{
		name:   "func column",
		reason: "a func tagged as a column: no driver can store it, so NewMapping refuses it",
		want:   repository.ErrUnsupported,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			return badCall{run: func() error {
				_, err := NewMapping[*badFuncColumn](Table{Name: "bad_plain"})
				return err
			}}
		},
	},
	{
		name:   "chan column",
		reason: "as for a func",
		want:   repository.ErrUnsupported,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			return badCall{run: func() error {
				_, err := NewMapping[*badChanColumn](Table{Name: "bad_plain"})
				return err
			}}
		},
	},
	{
		name:   "root key changed in a loaded order",
		reason: "a save cannot move an aggregate to another key; no sentinel is documented for it, any error will do",
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			require.NoError(t, b.repo(t).Save(ctx, newOrder(orderID(id), "alice", threeItems()...)))
			repo := b.repo(t)
			o, err := repo.Find(ctx, orderID(id))
			require.NoError(t, err)
			o.id = orderID(id + 500)
			o.setQuantity(1, 7)
			return badCall{
				run:   func() error { return repo.Save(ctx, o) },
				after: func(t *testing.T) { assert.EqualValues(t, 0, o.version, "the version is put back") },
			}
		},
	},
	{
		name:   "pointer cycle on insert",
		reason: "a list whose last link points at its first",
		want:   repository.ErrCycle,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			repo := badLinkedRepo(t, b)
			head, last := badChain(3)
			last.next = head
			return badCall{run: func() error { return repo.Save(ctx, &badLinked{id: id, name: "cycle", chain: head}) }}
		},
	},
	{
		name:   "aggregate pointing at itself",
		reason: "a cycle through the root",
		want:   repository.ErrCycle,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			repo := badLinkedRepo(t, b)
			a := &badLinked{id: id, name: "self"}
			a.self = a
			return badCall{run: func() error { return repo.Save(ctx, a) }}
		},
	},
	{
		name:   "slice that holds itself",
		reason: "a cycle through a slice and an interface, without a pointer field",
		want:   repository.ErrCycle,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			repo := badLinkedRepo(t, b)
			a := &badLinked{id: id, name: "slice", extra: make([]any, 1)}
			a.extra[0] = a.extra
			return badCall{run: func() error { return repo.Save(ctx, a) }}
		},
	},
	{
		name:   "pointer cycle made in a loaded aggregate",
		reason: "the next snapshot is built before anything is written, so a cycle fails the save",
		want:   repository.ErrCycle,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			require.NoError(t, badLinkedRepo(t, b).Save(ctx, &badLinked{id: id, name: "loaded"}))
			repo := badLinkedRepo(t, b)
			a, err := repo.Find(ctx, id)
			require.NoError(t, err)
			head, last := badChain(4)
			last.next = head.next
			a.chain = head
			a.name = "renamed"
			return badCall{
				run: func() error { return repo.Save(ctx, a) },
				after: func(t *testing.T) {
					assert.EqualValues(t, 0, a.version, "the version is put back")
					a.chain, a.name = nil, "loaded"
					b.log.take()
					require.NoError(t, repo.Save(ctx, a))
					assert.Empty(t, badWrites(b.log.take()), "the snapshot did not advance")
				},
			}
		},
	},
	{
		name:       "nested deeper than the limit, on insert",
		reason:     "100,001 links: past the 100,000 levels that copying follows, refused instead of overflowing the stack",
		want:       repository.ErrUnsupported,
		oneBackend: true,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			repo := badLinkedRepo(t, b)
			head, _ := badChain(100_001)
			return badCall{run: func() error { return repo.Save(ctx, &badLinked{id: id, name: "deep", chain: head}) }}
		},
	},
	{
		name:       "nested deeper than the limit, on update",
		reason:     "a loaded aggregate given 100,001 links and a new name: the next snapshot cannot be made, so nothing is written",
		want:       repository.ErrUnsupported,
		oneBackend: true,
		prepare: func(t *testing.T, ctx context.Context, b *backend, id int64) badCall {
			require.NoError(t, badLinkedRepo(t, b).Save(ctx, &badLinked{id: id, name: "shallow"}))
			repo := badLinkedRepo(t, b)
			a, err := repo.Find(ctx, id)
			require.NoError(t, err)
			a.chain, _ = badChain(100_001)
			a.name = "changed" // a change to store, with the links that are not stored
			return badCall{
				run: func() error { return repo.Save(ctx, a) },
				after: func(t *testing.T) {
					assert.EqualValues(t, 0, a.version, "the version is put back")
				},
			}
		},
	},
}

func TestBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		for _, s := range badDDL {
			b.raw.exec(t, s)
		}
		for i, tc := range badCases {
			if tc.oneBackend && b.name != "sqlite" {
				continue
			}
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				call := tc.prepare(t, ctx, b, int64(1000+i))
				before := badFingerprint(t, b)
				b.log.take()
				err := badCatch(t, call.run)
				sent := badWrites(b.log.take())
				switch {
				case err == nil:
					t.Errorf("got no error, want one wrapping %v\nreason: %s", tc.want, tc.reason)
				case tc.want != nil && !errors.Is(err, tc.want):
					t.Errorf("got %v, want an error wrapping %v\nreason: %s", err, tc.want, tc.reason)
				}
				assert.Equal(t, before, badFingerprint(t, b), "written: %s", tc.reason)
				if !tc.byDB {
					assert.Empty(t, sent, "statements that write were sent: %s", tc.reason)
				}
				if call.after != nil && !t.Failed() {
					call.after(t)
				}
			})
		}
	})
}

// TestBadInputControls checks accepted neighbours of the refused cases, so
// that the refusals above are refusals of the bad part only.
func TestBadInputControls(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		for _, s := range badDDL {
			b.raw.exec(t, s)
		}
		ctx := context.Background()
		err := badCatch(t, func() error {
			return badRepo[*badFuncIgnored, int64](t, b, Table{Name: "bad_plain"}).Save(ctx, &badFuncIgnored{id: 1, name: "ok", fn: func() {}})
		})
		require.NoError(t, err, "a func tagged `ddd:\"-\"` is not tracked")
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM bad_plain WHERE id = 1"))

		head, _ := badChain(3)
		require.NoError(t, badCatch(t, func() error { return badLinkedRepo(t, b).Save(ctx, &badLinked{id: 1, name: "list", chain: head}) }))
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM bad_linked WHERE id = 1"))

		g := &badBag{id: 1, items: map[itemID]*item{1: {id: 1, sku: "A", quantity: 1}, 2: {id: 2, sku: "B", quantity: 2}}}
		require.NoError(t, badCatch(t, func() error { return badBagRepo(t, b).Save(ctx, g) }))
		assert.EqualValues(t, 2, b.raw.count(t, "SELECT count(*) FROM bad_bag_items WHERE bag_id = 1"))
	})
}

// TestBadInputDeepNesting saves an aggregate nested 10,000 levels deep, a
// tenth of the limit that copying and comparing share: it must be saved,
// compared and snapshotted like any other. The list is not mapped to a
// column, so what the database sees of a change inside it is the version
// bump that the repository makes for any change.
func TestBadInputDeepNesting(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		for _, s := range badDDL {
			b.raw.exec(t, s)
		}
		ctx := context.Background()
		repo := badLinkedRepo(t, b)
		head, last := badChain(10_000)
		a := &badLinked{id: 1, name: "deep", chain: head}
		require.NoError(t, badCatch(t, func() error { return repo.Save(ctx, a) }))
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM bad_linked WHERE id = 1 AND version = 0"))

		b.log.take()
		require.NoError(t, badCatch(t, func() error { return repo.Save(ctx, a) }))
		assert.Empty(t, badWrites(b.log.take()), "unchanged, 10,000 levels down: nothing to write")

		last.val = -1
		require.NoError(t, badCatch(t, func() error { return repo.Save(ctx, a) }))
		assert.Empty(t, badWrites(b.log.take()), "a change 10,000 levels down in a field that is not stored: nothing to write")
		assert.EqualValues(t, 0, a.version)

		a.name = "deeper"
		require.NoError(t, badCatch(t, func() error { return repo.Save(ctx, a) }))
		got := dml(b.log.take())
		require.Len(t, got, 1, "%q", got)
		assert.True(t, containsAll(got[0], `UPDATE "bad_linked" SET "name" = ?, "version" = ? WHERE "id" = ? AND "version" = ?`), got[0])
		assert.EqualValues(t, 1, a.version)
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM bad_linked WHERE id = 1 AND version = 1"))

		require.NoError(t, badCatch(t, func() error { return repo.Save(ctx, a) }))
		assert.Empty(t, badWrites(b.log.take()), "the snapshot advanced to the changed list")

		last.next = &badNode{val: 10_001}
		a.name = "deepest"
		require.NoError(t, badCatch(t, func() error { return repo.Save(ctx, a) }))
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM bad_linked WHERE id = 1 AND version = 2"), "a link added at the end, with a change to store")

		loaded, err := badLinkedRepo(t, b).Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, &badLinked{id: 1, name: "deepest", version: 2}, loaded, "the list is not stored")

		require.NoError(t, badCatch(t, func() error { return repo.Remove(ctx, a) }))
		assert.EqualValues(t, 0, b.raw.count(t, "SELECT count(*) FROM bad_linked"))
	})
}

// badLongIdent is 64 bytes, one more than PostgreSQL keeps.
var badLongIdent = strings.Repeat("t", 64)

// badIdent63 is the longest identifier PostgreSQL keeps whole.
var badIdent63 = strings.Repeat("t", 63)

type badColumnInjection struct {
	id int64  `db:"id"`
	x  string `db:"x; DROP TABLE orders; --"`
}

type badColumnQuote struct {
	id int64  `db:"id"`
	x  string `db:"x\"y"`
}

type badColumnSpace struct {
	id int64  `db:"id"`
	x  string `db:"my column"`
}

type badColumnLong struct {
	id int64  `db:"id"`
	x  string `db:"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"`
}

// TestBadInputIdentifiers checks that NewMapping refuses every name that
// is not a plain identifier of at most 63 bytes, whether it names a table,
// a schema, a key, a parent key or a column. NewMapping documents no
// sentinel for these: the error names the kind of name and the name.
func TestBadInputIdentifiers(t *testing.T) {
	items := Child{Field: "items", Table: "order_items", ParentKey: "order_id"}
	rootNamed := func(name string) error {
		_, err := NewMapping[*order](Table{Name: name}, items)
		return err
	}
	childMapping := func(c Child) error {
		_, err := NewMapping[*order](Table{Name: "orders"}, c)
		return err
	}
	tests := []struct {
		name   string
		reason string
		err    error
		want   string // in the error
	}{
		{"table with a double quote", "it would close the quoted identifier", rootNamed(`orders"`), `invalid table name "orders\""`},
		{"table already quoted", "quotes are added by sqlstore, never taken from the name", rootNamed(`"orders"`), `invalid table name "\"orders\""`},
		{"table with a single quote", "it would close a string literal", rootNamed(`o'rders`), `invalid table name "o'rders"`},
		{"table with a space", "not a plain identifier", rootNamed("order items"), `invalid table name "order items"`},
		{"table with ; DROP", "a second statement", rootNamed("orders; DROP TABLE orders"), `invalid table name "orders; DROP TABLE orders"`},
		{"table with a comment", "it would comment out the rest", rootNamed("orders--"), `invalid table name "orders--"`},
		{"table with a NUL", "C strings end there", rootNamed("orders\x00"), `invalid table name "orders\x00"`},
		{"table with a non-ASCII letter", "plain identifiers are ASCII", rootNamed("bestellungen_ü"), `invalid table name`},
		{"table starting with a digit", "an identifier starts with a letter or _", rootNamed("1orders"), `invalid table name "1orders"`},
		{"empty table", "no name", rootNamed(""), `invalid table name ""`},
		{"empty schema", "no schema before the dot", rootNamed(".orders"), `invalid table name ".orders"`},
		{"empty table after the schema", "no table after the dot", rootNamed("sales."), `invalid table name "sales."`},
		{"three parts", "a schema and a table at most", rootNamed("db.sales.orders"), `invalid table name "db.sales.orders"`},
		{"table of 64 bytes", "PostgreSQL would truncate it silently", rootNamed(badLongIdent), "longer than 63 bytes"},
		{"schema of 64 bytes", "each part is checked", rootNamed(badLongIdent + ".orders"), "longer than 63 bytes"},
		{"table of 64 bytes after a schema", "each part is checked", rootNamed("sales." + badLongIdent), "longer than 63 bytes"},
		{"child table with ; DROP", "child tables are names too", childMapping(Child{Field: "items", Table: "order_items; DROP TABLE orders", ParentKey: "order_id"}), `child "items": invalid table name`},
		{"child table of 64 bytes", "as for the root", childMapping(Child{Field: "items", Table: badLongIdent, ParentKey: "order_id"}), "longer than 63 bytes"},
		{"root key with a quote", "keys are column names", err2(NewMapping[*order](Table{Name: "orders", Key: `id"`}, items)), `invalid key column name "id\""`},
		{"child key with a space", "as for the root", childMapping(Child{Field: "items", Table: "order_items", Key: "i d", ParentKey: "order_id"}), `invalid key column name "i d"`},
		{"parent key with ; DROP", "the parent key is a column name", childMapping(Child{Field: "items", Table: "order_items", ParentKey: "order_id; DROP TABLE orders"}), `invalid parent key column name`},
		{"parent key of 64 bytes", "as for tables", childMapping(Child{Field: "items", Table: "order_items", ParentKey: badLongIdent}), "longer than 63 bytes"},
		{"column with ; DROP", "db tags are names too", err2(NewMapping[*badColumnInjection](Table{Name: "t"})), `invalid column name "x; DROP TABLE orders; --"`},
		{"column with a double quote", "as for tables", err2(NewMapping[*badColumnQuote](Table{Name: "t"})), `invalid column name "x\"y"`},
		{"column with a space", "as for tables", err2(NewMapping[*badColumnSpace](Table{Name: "t"})), `invalid column name "my column"`},
		{"column of 64 bytes", "as for tables", err2(NewMapping[*badColumnLong](Table{Name: "t"})), "longer than 63 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Error(t, tt.err, tt.reason)
			assert.ErrorIs(t, tt.err, ErrMapping)
			assert.Contains(t, tt.err.Error(), "sqlstore: invalid mapping of ")
			assert.Contains(t, tt.err.Error(), tt.want, tt.reason)
		})
	}

	// The neighbours that are accepted: 63 bytes, a leading _, a schema.
	for _, name := range []string{badIdent63, "_orders", "sales.orders", badIdent63 + "." + badIdent63} {
		assert.NoError(t, rootNamed(name), name)
	}

	// A 63-byte name works end to end: the server keeps it whole, and the
	// quoted statements find the table.
	forEachBackend(t, func(t *testing.T, b *backend) {
		b.raw.exec(t, `CREATE TABLE "`+badIdent63+`" (id BIGINT PRIMARY KEY, name TEXT NOT NULL)`)
		ctx := context.Background()
		require.NoError(t, badRepo[*badFuncIgnored, int64](t, b, Table{Name: badIdent63}).Save(ctx, &badFuncIgnored{id: 5, name: "long"}))
		got, err := badRepo[*badFuncIgnored, int64](t, b, Table{Name: badIdent63}).Find(ctx, 5)
		require.NoError(t, err)
		assert.Equal(t, &badFuncIgnored{id: 5, name: "long"}, got)
	})
}

// TestBadInputStoreNilSentinel gives a nil aggregate to the Store's hooks
// themselves, as a repository of one's own on top of them could. Package
// ddd documents a nil aggregate as one of the causes of ErrUnsupported,
// and the repository's Save and Remove report it so; the hooks must too.
func TestBadInputStoreNilSentinel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		for _, s := range badDDL {
			b.raw.exec(t, s)
		}
		ctx := context.Background()
		s := NewStore[*order, orderID](b.db, orderMapping(t))
		before := badFingerprint(t, b)
		b.log.take()
		for _, c := range []struct {
			name string
			call func() error
		}{
			{"Insert", func() error { return s.Insert(ctx, nil) }},
			{"Update", func() error {
				return s.Update(ctx, nil, repository.Changes{Versioned: true, OldVersion: 0, NewVersion: 1})
			}},
			{"Delete", func() error { return s.Delete(ctx, nil, 0) }},
		} {
			err := badCatch(t, c.call)
			assert.ErrorIs(t, err, repository.ErrUnsupported, "Store.%s(nil)", c.name)
		}
		assert.Empty(t, b.log.take(), "nothing is sent for a nil aggregate")
		assert.Equal(t, before, badFingerprint(t, b))
	})
}

// TestBadInputFuncColumnFind loads a row into an aggregate whose column is
// a func. Package ddd documents a func or chan field as a cause of
// ErrUnsupported, and the package documentation says that NewMapping
// validates everything up front: either NewMapping refuses the type, or a
// Find must fail with ErrUnsupported, as a Save does (see TestBadInput),
// rather than with the driver's scan error.
func TestBadInputFuncColumnFind(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		for _, s := range badDDL {
			b.raw.exec(t, s)
		}
		b.raw.exec(t, "INSERT INTO bad_plain (id, name) VALUES (?, ?)", 1, "raw")
		ctx := context.Background()
		t.Run("func", func(t *testing.T) {
			m, err := NewMapping[*badFuncColumn](Table{Name: "bad_plain"})
			if err != nil {
				assert.ErrorIs(t, err, repository.ErrUnsupported)
				return
			}
			repo, err := NewRepository[*badFuncColumn, int64](b.db, m)
			require.NoError(t, err)
			_, err = repo.Find(ctx, 1)
			assert.ErrorIs(t, err, repository.ErrUnsupported)
		})
		t.Run("chan", func(t *testing.T) {
			m, err := NewMapping[*badChanColumn](Table{Name: "bad_plain"})
			if err != nil {
				assert.ErrorIs(t, err, repository.ErrUnsupported)
				return
			}
			repo, err := NewRepository[*badChanColumn, int64](b.db, m)
			require.NoError(t, err)
			_, err = repo.Find(ctx, 1)
			assert.ErrorIs(t, err, repository.ErrUnsupported)
		})
	})
}
