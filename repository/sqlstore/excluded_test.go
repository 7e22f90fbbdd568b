package sqlstore

import (
	"context"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/ddd"
	"github.com/dddkit/dddkit/diff"
)

// Fields that are not columns: what NewMapping advises for each kind it
// refuses must work once applied, and a field excluded with `db:"-"` is
// transient: not loaded, not saved, and a change of it alone is no change
// to the store.

// exRoot has fields excluded with db:"-" at the root and in its children.
type exRoot struct {
	id      int64    `db:"id"`
	name    string   `db:"name"`
	note    string   `db:"-"`
	tags    []string `db:"-"`
	lines   []*exLine
	version int64 `db:"version" ddd:"version"`
}

func (a *exRoot) ID() int64 { return a.id }

type exLine struct {
	id   int64  `db:"id" ddd:"id"`
	qty  int    `db:"qty"`
	memo string `db:"-"`
}

func exRepo(t *testing.T, b *backend) *Repository[*exRoot, int64] {
	t.Helper()
	m, err := NewMapping[*exRoot](Table{Name: "ex_roots"}, Child{Field: "lines", Table: "ex_lines", ParentKey: "root_id"})
	require.NoError(t, err)
	r, err := NewRepository[*exRoot, int64](b.db, m)
	require.NoError(t, err)
	return r
}

// TestExcludedFieldIsTransient checks the rule for fields tagged
// `db:"-"`: they are neither loaded nor saved, and a change confined to
// them writes nothing and leaves the version as it was, in memory and in
// the database, at the root and in a child, by Save and by Update; a
// change of them made with a change of a column saves the column only.
func TestExcludedFieldIsTransient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		b.raw.exec(t, `CREATE TABLE ex_roots (id BIGINT PRIMARY KEY, name TEXT NOT NULL, version BIGINT NOT NULL)`)
		b.raw.exec(t, `CREATE TABLE ex_lines (root_id BIGINT NOT NULL REFERENCES ex_roots (id), id BIGINT NOT NULL, qty INTEGER NOT NULL, PRIMARY KEY (root_id, id))`)
		repo := exRepo(t, b)
		a := &exRoot{id: 1, name: "a", note: "n", tags: []string{"t"}, lines: []*exLine{{id: 1, qty: 1, memo: "m"}}}
		require.NoError(t, repo.Save(ctx, a))

		got, err := exRepo(t, b).Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, &exRoot{id: 1, name: "a", lines: []*exLine{{id: 1, qty: 1}}}, got, "fields excluded with db:\"-\" are not loaded")

		version := func() int64 { return b.raw.count(t, "SELECT version FROM ex_roots WHERE id = 1") }
		b.log.take()
		a.note, a.tags = "changed", nil
		require.NoError(t, repo.Save(ctx, a))
		assert.Empty(t, dml(b.log.take()), "a change of excluded root fields alone writes nothing")
		assert.EqualValues(t, 0, a.version, "and does not advance the version")
		assert.EqualValues(t, 0, version())

		a.lines[0].memo = "changed"
		require.NoError(t, repo.Save(ctx, a))
		assert.Empty(t, dml(b.log.take()), "nor does a change of an excluded child field alone")
		assert.EqualValues(t, 0, a.version)

		require.NoError(t, exRepo(t, b).Update(ctx, 1, func(_ context.Context, a *exRoot) error {
			a.note, a.lines[0].memo = "in update", "in update"
			return nil
		}))
		assert.Empty(t, badWrites(b.log.take()), "nor in an Update")
		assert.EqualValues(t, 0, version())

		a.name, a.note = "b", "again"
		require.NoError(t, repo.Save(ctx, a))
		sameWrites(t, []string{`UPDATE "ex_roots" SET "name" = ?, "version" = ? WHERE "id" = ? AND "version" = ?`},
			dml(b.log.take()), "with a column changed, the column is saved, the excluded field is not")
		assert.EqualValues(t, 1, a.version)
		assert.EqualValues(t, 1, version())

		a.lines[0].qty, a.lines[0].memo = 2, "again"
		require.NoError(t, repo.Save(ctx, a))
		sameWrites(t, []string{
			`UPDATE "ex_roots" SET "version" = ? WHERE "id" = ? AND "version" = ?`,
			`UPDATE "ex_lines" SET "qty" = ? WHERE "root_id" = ? AND "id" = ?`,
		}, dml(b.log.take()), "a child's column and the version")
		assert.EqualValues(t, 2, version())

		got, err = exRepo(t, b).Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, &exRoot{id: 1, name: "b", lines: []*exLine{{id: 1, qty: 2}}, version: 2}, got)
	})
}

// sameWrites checks that got holds the statements want, in order, each
// possibly wrapped by the check of the rows it changed (pgx's form).
func sameWrites(t *testing.T, want, got []string, msg string) {
	t.Helper()
	require.Len(t, got, len(want), "%s: %q", msg, got)
	for i := range want {
		assert.True(t, containsAll(got[i], want[i]), "%s: %q", msg, got[i])
	}
}

// advBase is the mapped part of the aggregates of TestMappingAdviceWorks.
type advBase struct {
	id   int64  `db:"id"`
	name string `db:"name"`
}

func (a *advBase) ID() int64 { return a.id }

type advPoint struct{ X, Y int }

// Refused by NewMapping, each with its advice.
type (
	advFunc struct {
		advBase
		f func()
	}
	advChan struct {
		advBase
		c chan int
	}
	advUnsafe struct {
		advBase
		p unsafe.Pointer
	}
	advFuncColumn struct {
		advBase
		f func() `db:"v"`
	}
	advFuncExcluded struct {
		advBase
		f func() `db:"-"`
	}
	advAny struct {
		advBase
		v any
	}
	advAnyColumn struct {
		advBase
		v any `db:"v"`
	}
	advSlice struct {
		advBase
		v []string
	}
	advMap struct {
		advBase
		v map[string]string
	}
	advPtr struct {
		advBase
		v *advPoint
	}
	advComplex struct {
		advBase
		v complex128
	}
	advEmptyValue struct {
		advBase
		v struct {
			s string `db:"-"`
		}
	}
	advValueFunc struct {
		advBase
		v struct {
			s  string `db:"s"`
			fn func()
		}
	}
)

// The same, with the advice applied.
type (
	advFuncIgnored struct {
		advBase
		f func() `ddd:"-"`
	}
	advChanIgnored struct {
		advBase
		c chan int `ddd:"-"`
	}
	advUnsafeIgnored struct {
		advBase
		p unsafe.Pointer `ddd:"-"`
	}
	advAnyExcluded struct {
		advBase
		v any `db:"-"`
	}
	advSliceJSON struct {
		advBase
		v []string `db:"v,json"`
	}
	advSliceExcluded struct {
		advBase
		v []string `db:"-"`
	}
	advMapJSON struct {
		advBase
		v map[string]string `db:"v,json"`
	}
	advPtrJSON struct {
		advBase
		v *advPoint `db:"v,json"`
	}
	advComplexExcluded struct {
		advBase
		v complex128 `db:"-"`
	}
	advValueTagged struct {
		advBase
		v struct {
			s string `db:"s"`
		}
	}
	advValueExcluded struct {
		advBase
		v struct {
			s string `db:"-"`
		} `db:"-"`
	}
	advValueFuncIgnored struct {
		advBase
		v struct {
			s  string `db:"s"`
			fn func() `ddd:"-"`
		}
	}
)

// TestMappingAdviceWorks checks, for each kind of field NewMapping
// refuses, that its error names only fixes that work, and that each of
// them, applied, gives a mapping that saves, finds, changes and finds
// again on every backend.
func TestMappingAdviceWorks(t *testing.T) {
	const (
		ignore  = "exclude it with `ddd:\"-\"`"
		exclude = "exclude it with `db:\"-\"`"
		json    = "`db:\"column,json\"`"
		column  = "tag it `db:\"column\"`"
		fields  = "tag its fields `db:\"column\"`"
	)
	refused := []struct {
		name      string
		err       error
		want, not []string
	}{
		{"func", err2(NewMapping[*advFunc](Table{Name: "adv"})), []string{"field f", ignore}, []string{exclude, column}},
		{"chan", err2(NewMapping[*advChan](Table{Name: "adv"})), []string{"field c", ignore}, []string{exclude, column}},
		{"unsafe.Pointer", err2(NewMapping[*advUnsafe](Table{Name: "adv"})), []string{"field p", ignore}, []string{exclude, column}},
		{"func column", err2(NewMapping[*advFuncColumn](Table{Name: "adv"})), []string{"field f", ignore}, []string{exclude}},
		{"func excluded from the mapping only", err2(NewMapping[*advFuncExcluded](Table{Name: "adv"})), []string{"field f", ignore}, nil},
		{"interface", err2(NewMapping[*advAny](Table{Name: "adv"})), []string{"field v", exclude}, []string{ignore, column, json}},
		{"interface column", err2(NewMapping[*advAnyColumn](Table{Name: "adv"})), []string{"field v", exclude}, []string{ignore}},
		{"slice", err2(NewMapping[*advSlice](Table{Name: "adv"})), []string{"field v", json, exclude}, []string{ignore, column}},
		{"map", err2(NewMapping[*advMap](Table{Name: "adv"})), []string{"field v", json, exclude}, []string{ignore, column}},
		{"pointer to a struct", err2(NewMapping[*advPtr](Table{Name: "adv"})), []string{"field v", json, exclude}, []string{ignore, column}},
		{"complex", err2(NewMapping[*advComplex](Table{Name: "adv"})), []string{"field v", exclude}, []string{ignore, column, json}},
		{"value object without columns", err2(NewMapping[*advEmptyValue](Table{Name: "adv"})), []string{"field v", fields, exclude}, []string{ignore, json}},
		{"func in a value object", err2(NewMapping[*advValueFunc](Table{Name: "adv"})), []string{"field v.fn", ignore}, []string{exclude}},
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			require.Error(t, tt.err)
			assert.ErrorIs(t, tt.err, ErrMapping)
			for _, w := range tt.want {
				assert.Contains(t, tt.err.Error(), w)
			}
			for _, w := range tt.not {
				assert.NotContains(t, tt.err.Error(), w, "a fix that would not work")
			}
		})
	}

	forEachBackend(t, func(t *testing.T, b *backend) {
		jsonType := "TEXT"
		if b.name != "sqlite" {
			jsonType = "JSONB"
		}
		b.raw.exec(t, `CREATE TABLE adv (id BIGINT PRIMARY KEY, name TEXT NOT NULL, v `+jsonType+`, s TEXT)`)
		var id int64
		t.Run("func ignored", func(t *testing.T) {
			adviceWorks(t, b, &id, true, func(a *advFuncIgnored) { a.f = func() {} })
		})
		t.Run("chan ignored", func(t *testing.T) {
			adviceWorks(t, b, &id, true, func(a *advChanIgnored) { a.c = make(chan int) })
		})
		t.Run("unsafe.Pointer ignored", func(t *testing.T) {
			adviceWorks(t, b, &id, true, func(a *advUnsafeIgnored) { a.p = unsafe.Pointer(a) })
		})
		t.Run("interface excluded", func(t *testing.T) {
			adviceWorks(t, b, &id, false, func(a *advAnyExcluded) { a.v = 1 })
		})
		t.Run("slice as JSON", func(t *testing.T) {
			adviceWorks(t, b, &id, true, func(a *advSliceJSON) { a.v = append(a.v, "x") })
		})
		t.Run("slice excluded", func(t *testing.T) {
			adviceWorks(t, b, &id, false, func(a *advSliceExcluded) { a.v = []string{"x"} })
		})
		t.Run("map as JSON", func(t *testing.T) {
			adviceWorks(t, b, &id, true, func(a *advMapJSON) { a.v = map[string]string{"k": a.name} })
		})
		t.Run("pointer as JSON", func(t *testing.T) {
			adviceWorks(t, b, &id, true, func(a *advPtrJSON) { a.v = &advPoint{X: len(a.name)} })
		})
		t.Run("complex excluded", func(t *testing.T) {
			adviceWorks(t, b, &id, false, func(a *advComplexExcluded) { a.v = 1i })
		})
		t.Run("value object with a column", func(t *testing.T) {
			adviceWorks(t, b, &id, true, func(a *advValueTagged) { a.v.s = a.name })
		})
		t.Run("value object excluded", func(t *testing.T) {
			adviceWorks(t, b, &id, false, func(a *advValueExcluded) { a.v.s = "x" })
		})
		t.Run("func in a value object ignored", func(t *testing.T) {
			adviceWorks(t, b, &id, true, func(a *advValueFuncIgnored) { a.v.s, a.v.fn = a.name, func() {} })
		})
	})
}

// adviceWorks maps the aggregate E (an advice applied) to the table adv,
// and saves one, finds it, changes it with set (and its name), saves and
// finds it again. When stored, the aggregate found equals the one saved;
// otherwise what set wrote is transient, and reads back as it was loaded.
func adviceWorks[E any, T interface {
	*E
	ddd.Aggregate[int64]
}](t *testing.T, b *backend, id *int64, stored bool, set func(T)) {
	t.Helper()
	ctx := context.Background()
	m, err := NewMapping[T](Table{Name: "adv"})
	require.NoError(t, err, "the advice, applied, is taken")
	repo := func() *Repository[T, int64] {
		r, err := NewRepository[T, int64](b.db, m)
		require.NoError(t, err)
		return r
	}
	base := func(a T) *advBase { return (*advBase)(unsafe.Pointer(a)) } // the first field
	*id++
	a := T(new(E))
	base(a).id, base(a).name = *id, "a"
	set(a)
	require.NoError(t, repo().Save(ctx, a), "a new aggregate is saved")
	first, err := repo().Find(ctx, *id)
	require.NoError(t, err, "and found")

	r := repo()
	got, err := r.Find(ctx, *id)
	require.NoError(t, err)
	base(got).name = "changed"
	set(got)
	require.NoError(t, r.Save(ctx, got), "a change is saved")
	again, err := repo().Find(ctx, *id)
	require.NoError(t, err)
	assert.Equal(t, "changed", base(again).name)
	want := got
	if !stored {
		want = first
		base(want).name = "changed"
	}
	eq, err := diff.Equal(want, again)
	require.NoError(t, err)
	assert.True(t, eq, "found as saved")
}
