package sqlstore

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A value object mapped more than once, with a column prefix on each
// field: `db:"price_,prefix"`.

type pxMoney struct {
	amount   int64  `db:"amount"`
	currency string `db:"currency"`
}

// pxBox nests a prefixed value object in a prefixed one: its columns are
// box_width_amount, box_width_currency and box_label.
type pxBox struct {
	width pxMoney `db:"width_,prefix"`
	label string  `db:"label"`
}

type pxProduct struct {
	id      int64   `db:"id"`
	price   pxMoney `db:"price_,prefix"`
	cost    pxMoney `db:"cost_,prefix"`
	box     pxBox   `db:"box_,prefix"`
	lines   []*pxLine
	version int64 `db:"version" ddd:"version"`
}

func (p *pxProduct) ID() int64 { return p.id }

type pxLine struct {
	id    int64   `db:"id" ddd:"id"`
	unit  pxMoney `db:"unit_,prefix"`
	total pxMoney `db:"total_,prefix"`
}

func pxRepo(t *testing.T, b *backend) *Repository[*pxProduct, int64] {
	t.Helper()
	m, err := NewMapping[*pxProduct](Table{Name: "px_products"}, Child{Field: "lines", Table: "px_lines", ParentKey: "product_id"})
	require.NoError(t, err)
	r, err := NewRepository[*pxProduct, int64](b.db, m)
	require.NoError(t, err)
	return r
}

// TestValueObjectPrefix checks a value object mapped twice with column
// prefixes, nested prefixes, and prefixes in a child: a new aggregate is
// stored and loads back equal, a change of one prefixed field updates that
// column alone, and conditions name the prefixed columns.
func TestValueObjectPrefix(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		b.raw.exec(t, `CREATE TABLE px_products (id BIGINT PRIMARY KEY,
			price_amount BIGINT NOT NULL, price_currency TEXT NOT NULL,
			cost_amount BIGINT NOT NULL, cost_currency TEXT NOT NULL,
			box_width_amount BIGINT NOT NULL, box_width_currency TEXT NOT NULL, box_label TEXT NOT NULL,
			version BIGINT NOT NULL)`)
		b.raw.exec(t, `CREATE TABLE px_lines (product_id BIGINT NOT NULL REFERENCES px_products (id), id BIGINT NOT NULL,
			unit_amount BIGINT NOT NULL, unit_currency TEXT NOT NULL,
			total_amount BIGINT NOT NULL, total_currency TEXT NOT NULL,
			PRIMARY KEY (product_id, id))`)
		repo := pxRepo(t, b)
		m, err := NewMapping[*pxProduct](Table{Name: "px_products"}, Child{Field: "lines", Table: "px_lines", ParentKey: "product_id"})
		require.NoError(t, err)
		require.NoError(t, m.Check(ctx, b.db), "the schema check knows the prefixed columns")
		for _, d := range []Database{PostgreSQL, SQLite, MySQL} {
			ddl, err := m.DDL(d)
			require.NoError(t, err)
			ddl = canonical(ddl)
			assert.True(t, containsAll(ddl, `"price_amount"`, `"cost_currency"`, `"box_width_amount"`, `"unit_amount"`, `"total_currency"`), "%s", ddl)
		}
		p := &pxProduct{id: 1,
			price: pxMoney{1200, "EUR"}, cost: pxMoney{700, "USD"},
			box:   pxBox{width: pxMoney{30, "CHF"}, label: "small"},
			lines: []*pxLine{{id: 1, unit: pxMoney{5, "EUR"}, total: pxMoney{10, "GBP"}}},
		}
		require.NoError(t, repo.Save(ctx, p))
		assert.EqualValues(t, 1, b.raw.count(t, `SELECT COUNT(*) FROM px_products WHERE price_amount = 1200 AND price_currency = 'EUR'
			AND cost_amount = 700 AND cost_currency = 'USD' AND box_width_amount = 30 AND box_width_currency = 'CHF' AND box_label = 'small'`))
		assert.EqualValues(t, 1, b.raw.count(t, `SELECT COUNT(*) FROM px_lines WHERE unit_amount = 5 AND unit_currency = 'EUR'
			AND total_amount = 10 AND total_currency = 'GBP'`))

		got, err := pxRepo(t, b).Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, p, got, "each prefixed column loads into its own field")

		b.log.take()
		p.cost.amount = 800
		p.box.width.currency = "JPY"
		require.NoError(t, repo.Save(ctx, p))
		sameWrites(t, []string{`UPDATE "px_products" SET "cost_amount" = ?, "box_width_currency" = ?, "version" = ? WHERE "id" = ? AND "version" = ?`},
			dml(b.log.take()), "the changed prefixed columns alone")

		p.lines[0].total.amount = 11
		require.NoError(t, repo.Save(ctx, p))
		sameWrites(t, []string{
			`UPDATE "px_products" SET "version" = ? WHERE "id" = ? AND "version" = ?`,
			`UPDATE "px_lines" SET "total_amount" = ? WHERE "product_id" = ? AND "id" = ?`,
		}, dml(b.log.take()), "in a child too")

		got, err = pxRepo(t, b).Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, p, got)

		found, err := repo.FindAll(ctx, Where(Eq("cost_amount", 800), Eq("box_width_currency", "JPY")).OrderBy("price_amount"))
		require.NoError(t, err)
		require.Len(t, found, 1, "conditions and order name the prefixed columns")
		found, err = repo.FindAll(ctx, Where(Eq("cost_amount", 700)))
		require.NoError(t, err)
		assert.Empty(t, found)
		_, err = repo.FindAll(ctx, Where(Eq("amount", 800)))
		assert.ErrorIs(t, err, ErrQuery, "the unprefixed name is no column")
	})
}

// TestValueObjectPrefixMapping checks what NewMapping refuses around
// prefixes: a value object mapped twice without one (and says how to fix
// it), a prefixed column that collides with another column, a prefix
// that makes no valid identifier, and a prefix on what is no value object.
func TestValueObjectPrefixMapping(t *testing.T) {
	type twice struct {
		id    int64 `db:"id"`
		price pxMoney
		cost  pxMoney
	}
	_, err := NewMapping[*twice](Table{Name: "t"})
	require.ErrorIs(t, err, ErrMapping)
	assert.ErrorContains(t, err, `column "amount" is mapped twice, by fields price.amount and cost.amount`)
	assert.ErrorContains(t, err, "`db:\"p_,prefix\"`")

	type collide struct {
		id          int64   `db:"id"`
		price       pxMoney `db:"price_,prefix"`
		priceAmount int64   `db:"price_amount"`
	}
	_, err = NewMapping[*collide](Table{Name: "t"})
	require.ErrorIs(t, err, ErrMapping)
	assert.ErrorContains(t, err, `column "price_amount" is mapped twice, by fields price.amount and priceAmount`)

	type nestedCollide struct {
		id  int64 `db:"id"`
		box pxBox `db:"b_,prefix"`
		bw  int64 `db:"b_width_amount"`
	}
	_, err = NewMapping[*nestedCollide](Table{Name: "t"})
	require.ErrorIs(t, err, ErrMapping)
	assert.ErrorContains(t, err, `column "b_width_amount" is mapped twice, by fields box.width.amount and bw`, "nested prefixes compose")

	type badPrefix struct {
		id    int64   `db:"id"`
		price pxMoney `db:"price-,prefix"`
	}
	_, err = NewMapping[*badPrefix](Table{Name: "t"})
	require.ErrorIs(t, err, ErrMapping)
	assert.ErrorContains(t, err, `field price: invalid column prefix name "price-"`)

	type emptyPrefix struct {
		id    int64   `db:"id"`
		price pxMoney `db:",prefix"`
	}
	_, err = NewMapping[*emptyPrefix](Table{Name: "t"})
	require.ErrorIs(t, err, ErrMapping)
	assert.ErrorContains(t, err, "field price: empty column prefix")

	long := strings.Repeat("p", 60) + "_"
	type tooLong struct {
		id    int64   `db:"id"`
		price pxMoney `db:"ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp_,prefix"`
	}
	_, err = NewMapping[*tooLong](Table{Name: "t"})
	require.ErrorIs(t, err, ErrMapping)
	assert.ErrorContains(t, err, "longer than 63 bytes", "the prefixed name is checked as a whole: %s", long)

	type notValueObject struct {
		id    int64 `db:"id"`
		price int64 `db:"price_,prefix"`
	}
	_, err = NewMapping[*notValueObject](Table{Name: "t"})
	require.ErrorIs(t, err, ErrMapping)
	assert.ErrorContains(t, err, "field price: the prefix option needs a value object")

	type keyInside struct {
		ref   pxMoney `db:"ref_,prefix"`
		other pxMoney `db:"other_,prefix"`
	}
	m, err := NewMapping[*keyInside](Table{Name: "t", Key: "ref_amount"})
	require.NoError(t, err, "a key column may be a prefixed one")
	assert.Equal(t, "ref_amount", m.root.cols[m.root.key].name)
}
