package sqlstore

import (
	"context"
	"database/sql/driver"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// Strict mapping: every field of the aggregate and of its entities is
// mapped or explicitly excluded, so that no change is ever dropped.

type strictForgotten struct {
	id       int64  `db:"id"`
	name     string `db:"name"`
	archived bool   // forgotten: a change of it would be lost
}

func (a *strictForgotten) ID() int64 { return a.id }

type strictEmptyValue struct {
	id   int64 `db:"id"`
	addr struct {
		street string `db:"-"`
	} // a value object without columns
}

type strictValueField struct {
	id   int64                         `db:"id"`
	addr struct{ street, city string } // a value object with untagged fields
}

func (a *strictValueField) ID() int64 { return a.id }

func (a *strictEmptyValue) ID() int64 { return a.id }

type strictChildForgotten struct {
	id    int64 `db:"id"`
	lines []*strictLine
}

func (a *strictChildForgotten) ID() int64 { return a.id }

type strictLine struct {
	id   int64 `db:"id" ddd:"id"`
	note string
}

type strictStructColumn struct {
	id   int64                         `db:"id"`
	addr struct{ Street, City string } `db:"addr"`
}

func (a *strictStructColumn) ID() int64 { return a.id }

type strictSliceColumn struct {
	id   int64    `db:"id"`
	tags []string `db:"tags"`
}

func (a *strictSliceColumn) ID() int64 { return a.id }

type strictMapColumn struct {
	id    int64             `db:"id"`
	attrs map[string]string `db:"attrs"`
}

func (a *strictMapColumn) ID() int64 { return a.id }

type strictFuncColumn struct {
	id int64  `db:"id"`
	fn func() `db:"fn"`
}

func (a *strictFuncColumn) ID() int64 { return a.id }

type strictInterfaceColumn struct {
	id int64 `db:"id"`
	v  any   `db:"v"`
}

func (a *strictInterfaceColumn) ID() int64 { return a.id }

type strictBadOption struct {
	id int64  `db:"id"`
	v  string `db:"v,yaml"`
}

func (a *strictBadOption) ID() int64 { return a.id }

type hidden struct{ street string }

type strictJSONUnexported struct {
	id    int64    `db:"id"`
	addrs []hidden `db:"addrs,json"`
}

func (a *strictJSONUnexported) ID() int64 { return a.id }

type strictJSONFunc struct {
	id int64             `db:"id"`
	v  map[string]func() `db:"v,json"`
}

func (a *strictJSONFunc) ID() int64 { return a.id }

type writeOnly struct{ v string }

func (w writeOnly) Value() (driver.Value, error) { return w.v, nil }

type strictWriteOnly struct {
	id int64     `db:"id"`
	w  writeOnly `db:"w"`
}

func (a *strictWriteOnly) ID() int64 { return a.id }

type strictArrayOfStructs struct {
	id int64    `db:"id"`
	v  []hidden `db:"v,array"`
}

func (a *strictArrayOfStructs) ID() int64 { return a.id }

// TestStrictMapping lists the refusals of NewMapping that keep a change
// from being silently dropped, each with the field and the fix it names.
func TestStrictMapping(t *testing.T) {
	lines := Child{Field: "lines", Table: "lines", ParentKey: "p"}
	tests := []struct {
		name, reason string
		err          error
		want         []string
	}{
		{"untagged field", "a field neither mapped nor excluded would not be saved: archived=true in memory, false in the database",
			err2(NewMapping[*strictForgotten](Table{Name: "t"})), []string{"field archived: it is not mapped", "`db:\"column\"`", "`db:\"-\"`"}},
		{"value object without columns", "its changes would map to no column",
			err2(NewMapping[*strictEmptyValue](Table{Name: "t"})), []string{"field addr: the value object", "maps to no column", "tag its fields `db:\"column\"`", "`db:\"-\"`"}},
		{"untagged field of a value object", "checked at every depth, and named by its path",
			err2(NewMapping[*strictValueField](Table{Name: "t"})), []string{"field addr.street: it is not mapped"}},
		{"untagged field of a child entity", "entities are held to the same rule as the root",
			err2(NewMapping[*strictChildForgotten](Table{Name: "t"}, lines)), []string{`child "lines"`, "field note: it is not mapped"}},
		{"struct column", "the driver cannot encode a plain struct: refused here, not at the first save",
			err2(NewMapping[*strictStructColumn](Table{Name: "t"})), []string{"field addr", "cannot be a column", "remove the db tag", "json"}},
		{"slice column", "a slice of values needs a storage chosen: JSON or a PostgreSQL array",
			err2(NewMapping[*strictSliceColumn](Table{Name: "t"})), []string{"field tags", "[]string column needs a chosen storage", "`db:\"column,json\"`", "`db:\"column,array\"`"}},
		{"map column", "likewise for a map",
			err2(NewMapping[*strictMapColumn](Table{Name: "t"})), []string{"field attrs", "map[string]string column needs a chosen storage"}},
		{"func column", "no driver stores a func",
			err2(NewMapping[*strictFuncColumn](Table{Name: "t"})), []string{"field fn", "func() cannot be a column"}},
		{"interface column", "what it holds decides what is stored, and it does not read back as it was",
			err2(NewMapping[*strictInterfaceColumn](Table{Name: "t"})), []string{"field v", "interface {} cannot be a column"}},
		{"unknown tag option", "a typo in an option must not pass",
			err2(NewMapping[*strictBadOption](Table{Name: "t"})), []string{"field v", `unknown db tag option "yaml"`}},
		{"JSON of unexported fields", "encoding/json would drop them",
			err2(NewMapping[*strictJSONUnexported](Table{Name: "t"})), []string{"field addrs", "field street of sqlstore.hidden is unexported"}},
		{"JSON of funcs", "encoding/json cannot encode them",
			err2(NewMapping[*strictJSONFunc](Table{Name: "t"})), []string{"field v", "func() has no JSON encoding"}},
		{"Valuer without Scanner", "it could be written but not read back",
			err2(NewMapping[*strictWriteOnly](Table{Name: "t"})), []string{"field w", "does not implement sql.Scanner"}},
		{"array of structs", "pgx knows no array of a plain struct",
			err2(NewMapping[*strictArrayOfStructs](Table{Name: "t"})), []string{"field v", "array element", "cannot be a column"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Error(t, tt.err, tt.reason)
			assert.ErrorIs(t, tt.err, ErrMapping)
			for _, w := range tt.want {
				assert.Contains(t, tt.err.Error(), w, tt.reason)
			}
		})
	}
	_, err := NewMapping[*strictFuncColumn](Table{Name: "t"})
	assert.ErrorIs(t, err, repository.ErrUnsupported, "an unsupported type keeps its sentinel")
}

// address is a value object stored in a JSON column.
type address struct {
	Street string    `json:"street"`
	City   string    `json:"city"`
	Since  time.Time `json:"since"`
}

// profile stores value collections in JSON columns.
type profile struct {
	id      int64             `db:"id"`
	addrs   []address         `db:"addrs,json"`
	attrs   map[string]string `db:"attrs,json"`
	tags    []string          `db:"tags,json"`
	version int64             `db:"version" ddd:"version"`
}

func (p *profile) ID() int64 { return p.id }

// TestValueCollections saves, changes and reloads value collections stored
// as JSON (jsonb on PostgreSQL, JSON on MariaDB, TEXT on SQLite) through
// every backend: each reads back what it wrote, a change inside a
// collection rewrites its column and no other, and nil and empty stay
// apart.
func TestValueCollections(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		ddl := `CREATE TABLE profiles (id BIGINT PRIMARY KEY, addrs TEXT, attrs TEXT, tags TEXT, version BIGINT NOT NULL)`
		if !b.sqlite() {
			ddl = `CREATE TABLE profiles (id BIGINT PRIMARY KEY, addrs JSONB, attrs JSONB, tags JSONB, version BIGINT NOT NULL)`
		}
		b.raw.exec(t, ddl)
		m, err := NewMapping[*profile](Table{Name: "profiles"})
		require.NoError(t, err)
		repo, err := NewRepository[*profile, int64](b.db, m)
		require.NoError(t, err)

		since := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
		p := &profile{
			id:    1,
			addrs: []address{{Street: "1 Main St", City: "Springfield", Since: since}, {Street: "2 Side St", City: "Shelbyville", Since: since}},
			attrs: map[string]string{"lang": "en"},
			tags:  []string{}, // empty, not nil
		}
		require.NoError(t, repo.Save(ctx, p))
		got, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, p.addrs, got.addrs)
		assert.Equal(t, p.attrs, got.attrs)
		assert.NotNil(t, got.tags, "an empty collection reads back empty, not nil")
		assert.Empty(t, got.tags)

		// A change inside a collection rewrites its column, and nothing
		// else.
		b.log.take()
		got.addrs[1].City = "Capital City"
		got.attrs["tz"] = "UTC"
		require.NoError(t, repo.Save(ctx, got))
		writes := dml(b.log.take())
		require.Len(t, writes, 1, "%q", writes)
		assert.Contains(t, writes[0], `"addrs" = ?`)
		assert.Contains(t, writes[0], `"attrs" = ?`)
		assert.NotContains(t, writes[0], `"tags"`)
		again, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, "Capital City", again.addrs[1].City)
		assert.Equal(t, map[string]string{"lang": "en", "tz": "UTC"}, again.attrs)

		// nil stays nil. (A nil slice equals an empty one, see package
		// diff: tags is not written.)
		again.tags, again.attrs = nil, nil
		require.NoError(t, repo.Save(ctx, again))
		fresh, err := NewRepository[*profile, int64](b.db, m)
		require.NoError(t, err)
		last, err := fresh.Find(ctx, 1)
		require.NoError(t, err)
		assert.Empty(t, last.tags)
		assert.Nil(t, last.attrs)
		assert.Equal(t, int64(2), last.version)
	})
}

// tagged stores a []string in a PostgreSQL text[].
type tagged struct {
	id   int64    `db:"id"`
	tags []string `db:"tags,array"`
}

func (p *tagged) ID() int64 { return p.id }

// TestArrayColumn checks that a slice tagged `db:",array"` round-trips
// through a PostgreSQL array on pgx and on database/sql, which hands
// arrays over as text, and is refused on SQLite, which has none.
func TestArrayColumn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		m, err := NewMapping[*tagged](Table{Name: "tagged"})
		require.NoError(t, err)
		repo, err := NewRepository[*tagged, int64](b.db, m)
		if !b.db.dialect.anyArray {
			require.ErrorIs(t, err, ErrMapping)
			assert.ErrorContains(t, err, "field tags: the array option is PostgreSQL's")
			return
		}
		require.NoError(t, err)
		b.raw.exec(t, `CREATE TABLE tagged (id BIGINT PRIMARY KEY, tags TEXT[])`)
		require.NoError(t, repo.Save(ctx, &tagged{id: 1, tags: []string{"a", "b,c", `d"e`}}))
		require.NoError(t, repo.Save(ctx, &tagged{id: 2}))
		fresh, err := NewRepository[*tagged, int64](b.db, m)
		require.NoError(t, err)
		got, err := fresh.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, []string{"a", "b,c", `d"e`}, got.tags, "database/sql reads back the text[] it wrote")
		got.tags = append(got.tags, "f")
		require.NoError(t, fresh.Save(ctx, got))
		got2, err := fresh.Find(ctx, 2)
		require.NoError(t, err)
		assert.Nil(t, got2.tags, "NULL reads back as nil")
		again, err := NewStore[*tagged, int64](b.db, m).Select(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, []string{"a", "b,c", `d"e`, "f"}, again.tags)
	})
}
