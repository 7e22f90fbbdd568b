package sqlstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

type part struct {
	id int64 `db:"id" ddd:"id"`
}

// line holds a collection of entities of its own: a grandchild.
type line struct {
	id    int64   `db:"id" ddd:"id"`
	parts []*part `db:"-"`
	extra []part
}

type withGrandchild struct {
	id    int64 `db:"id"`
	lines []line
}

type twoColls struct {
	id    int64 `db:"id"`
	items []*item
	other []*item
}

type noVersionTag struct {
	id      int64 `db:"id"`
	version int64 `ddd:"version"`
}

type dupColumn struct {
	id int64  `db:"id"`
	a  string `db:"name"`
	b  string `db:"name"`
}

type taggedColl struct {
	id    int64   `db:"id"`
	items []*item `db:"items"`
}

type stamped struct {
	id      int64     `db:"id"`
	created time.Time `db:"created_at"`
	updated time.Time `db:"-"` // excluded: not a column
	addr    struct {
		street string `db:"street"`
		geo    struct {
			lat float64 `db:"lat"`
		}
	}
}

type mapColl struct {
	id    int64 `db:"id"`
	items map[itemID]item
}

type badMapKey struct {
	id    int64 `db:"id"`
	items map[string]*item
}

type versionedChild struct {
	id int64 `db:"id" ddd:"id"`
	v  int64 `db:"v" ddd:"version"`
}

type withVersionedChild struct {
	id   int64 `db:"id"`
	kids []versionedChild
}

type childWithParentKey struct {
	id      int64 `db:"id" ddd:"id"`
	orderID int64 `db:"order_id"`
}

type withParentKeyChild struct {
	id   int64 `db:"id"`
	kids []*childWithParentKey
}

func TestNewMappingErrors(t *testing.T) {
	items := Child{Field: "items", Table: "order_items", ParentKey: "order_id"}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"table name with a quote", err2(NewMapping[*order](Table{Name: `orders"; DROP TABLE x; --`}, items)), `root: invalid table name "orders\"; DROP TABLE x; --"`},
		{"table name with three parts", err2(NewMapping[*order](Table{Name: "a.b.c"}, items)), `invalid table name "a.b.c"`},
		{"empty table name", err2(NewMapping[*order](Table{}, items)), `invalid table name ""`},
		{"too long identifier", err2(NewMapping[*order](Table{Name: longName}, items)), "longer than 63 bytes"},
		{"child table name", err2(NewMapping[*order](Table{Name: "orders"}, Child{Field: "items", Table: "order items", ParentKey: "order_id"})), `child "items": invalid table name "order items"`},
		{"parent key name", err2(NewMapping[*order](Table{Name: "orders"}, Child{Field: "items", Table: "order_items", ParentKey: "order-id"})), `invalid parent key column name "order-id"`},
		{"missing parent key", err2(NewMapping[*order](Table{Name: "orders"}, Child{Field: "items", Table: "order_items"})), `empty ParentKey`},
		{"root key column missing", err2(NewMapping[*order](Table{Name: "orders", Key: "order_id"}, items)), `key column "order_id" is not the db tag of any field`},
		{"child key column missing", err2(NewMapping[*order](Table{Name: "orders"}, Child{Field: "items", Table: "order_items", Key: "item_id", ParentKey: "order_id"})), `key column "item_id" is not the db tag of any field`},
		{"unknown field", err2(NewMapping[*order](Table{Name: "orders"}, Child{Field: "lines", Table: "order_items", ParentKey: "order_id"})), `child "lines": sqlstore.order has no field lines`},
		{"field not a collection", err2(NewMapping[*order](Table{Name: "orders"}, items, Child{Field: "customer", Table: "x", ParentKey: "order_id"})), `field customer (string) is not a slice or map of entities`},
		{"ignored field", err2(NewMapping[*order](Table{Name: "orders"}, items, Child{Field: "cache", Table: "x", ParentKey: "order_id"})), "is tagged `ddd:\"-\"`"},
		{"collection left unmapped", err2(NewMapping[*order](Table{Name: "orders"})), "field items is a collection of entities that no Child maps"},
		{"field mapped twice", err2(NewMapping[*order](Table{Name: "orders"}, items, items)), "field items is mapped twice"},
		{"table mapped twice", err2(NewMapping[*twoColls](Table{Name: "t"}, Child{Field: "items", Table: "c", ParentKey: "p"}, Child{Field: "other", Table: "c", ParentKey: "p"})), `table "c" is mapped twice`},
		{"grandchild left unmapped", err2(NewMapping[*withGrandchild](Table{Name: "t"}, Child{Field: "lines", Table: "lines", ParentKey: "t_id"})), "field lines.extra is a collection of entities that no Child maps"},
		{"version without db tag", err2(NewMapping[*noVersionTag](Table{Name: "t"})), "version field version has no db tag"},
		{"column mapped twice", err2(NewMapping[*dupColumn](Table{Name: "t"})), `column "name" is mapped twice, by fields a and b`},
		{"collection with a db tag", err2(NewMapping[*taggedColl](Table{Name: "t"})), "field items is a collection of entities and cannot be a column"},
		{"not a pointer", err2(NewMapping[order](Table{Name: "orders"})), "an aggregate must be a pointer to a struct"},
		{"map keyed by another type", err2(NewMapping[*badMapKey](Table{Name: "t"}, Child{Field: "items", Table: "c", ParentKey: "p"})), "map key type string is not the identity type sqlstore.itemID"},
		{"versioned child", err2(NewMapping[*withVersionedChild](Table{Name: "t"}, Child{Field: "kids", Table: "c", ParentKey: "p"})), "only the root has one"},
		{"parent key mapped by the child", err2(NewMapping[*withParentKeyChild](Table{Name: "t"}, Child{Field: "kids", Table: "c", ParentKey: "order_id"})), `parent key column "order_id" is the db tag of field orderID`},
	}
	nested := func(c Child) error {
		return err2(NewMapping[*invoice](Table{Name: "invoices"}, Child{Field: "lines", Table: "invoice_lines", ParentKey: "invoice_id", Children: []Child{c}}))
	}
	tests = append(tests, []struct {
		name string
		err  error
		want string
	}{
		{"nested parent key reused", nested(Child{Field: "taxes", Table: "line_taxes", Key: "code", ParentKey: "invoice_id"}), `parent key column "invoice_id" is used twice`},
		{"nested parent key mapped by the element", nested(Child{Field: "taxes", Table: "line_taxes", Key: "code", ParentKey: "rate"}), `parent key column "rate" is the db tag of field rate`},
		{"nested unknown field", nested(Child{Field: "fees", Table: "line_fees", ParentKey: "line_id"}), `child "lines.fees": sqlstore.invLine has no field fees`},
		{"nested table mapped twice", nested(Child{Field: "taxes", Table: "invoice_lines", Key: "code", ParentKey: "line_id"}), `child "lines.taxes": table "invoice_lines" is mapped twice`},
		{"nested collection left unmapped", err2(NewMapping[*invoice](Table{Name: "invoices"}, Child{Field: "lines", Table: "invoice_lines", ParentKey: "invoice_id"})), "field lines.taxes is a collection of entities that no Child maps"},
		{"generated keys in a map", err2(NewMapping[*genMap](Table{Name: "t"}, Child{Field: "lines", Table: "l", ParentKey: "t_id"})), "field lines is a map keyed by identity, and its elements' keys are generated"},
		{"generated non-key column", err2(NewMapping[*genNonKey](Table{Name: "t"})), "field n: only the key column can be generated"},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Error(t, tt.err)
			assert.Contains(t, tt.err.Error(), tt.want)
			assert.ErrorIs(t, tt.err, ErrMapping)
			assert.Contains(t, tt.err.Error(), "sqlstore: invalid mapping of ")
		})
	}
}

type genMap struct {
	id    int64 `db:"id"`
	lines map[int64]*genLine
}

func (g *genMap) ID() int64 { return g.id }

type genNonKey struct {
	id int64 `db:"id"`
	n  int64 `db:"n,generated"`
}

func (g *genNonKey) ID() int64 { return g.id }

const longName = "a_very_long_table_name_that_goes_on_and_on_past_the_postgres_limit"

func err2[T any](_ T, err error) error { return err }

func TestNewMappingColumns(t *testing.T) {
	m, err := NewMapping[*stamped](Table{Name: "s"})
	require.NoError(t, err)
	var names, fields []string
	for _, c := range m.root.cols {
		names = append(names, c.name)
		fields = append(fields, c.field)
	}
	assert.Equal(t, []string{"id", "created_at", "street", "lat"}, names, "time.Time is a column when tagged and not flattened when not; nested value objects flatten")
	assert.Equal(t, []string{"id", "created", "addr.street", "addr.geo.lat"}, fields)

	mc, err := NewMapping[*mapColl](Table{Name: "m"}, Child{Field: "items", Table: "items", ParentKey: "m_id"})
	require.NoError(t, err, "a map keyed by the identity, of struct values, is a child collection")
	assert.False(t, mc.children[0].ptr)
}

type badTagRoot struct {
	id   int64  `db:"id"`
	note string `db:"note" ddd:"versio"` // a misspelt ddd tag
}

func (b *badTagRoot) ID() int64 { return b.id }

type badTagChild struct {
	id int64 `db:"id" ddd:"id,extra"`
}

type badTagParent struct {
	id       int64 `db:"id"`
	children []*badTagChild
}

func (b *badTagParent) ID() int64 { return b.id }

// TestMappingErrorsKeepSentinels: a malformed ddd tag, in the root or in a
// child, is an error that errors.Is matches with ErrUnsupported.
func TestMappingErrorsKeepSentinels(t *testing.T) {
	_, err := NewMapping[*badTagRoot](Table{Name: "r"})
	require.Error(t, err)
	assert.ErrorIs(t, err, repository.ErrUnsupported, "%v", err)
	assert.ErrorContains(t, err, "badTagRoot")

	_, err = NewMapping[*badTagParent](Table{Name: "p"}, Child{Field: "children", Table: "c", ParentKey: "p_id"})
	require.Error(t, err)
	assert.ErrorIs(t, err, repository.ErrUnsupported, "%v", err)
}
