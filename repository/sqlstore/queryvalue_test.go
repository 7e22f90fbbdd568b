package sqlstore

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQueryValues: a condition value that the column cannot hold, or a
// nil that would match nothing, is refused with ErrQuery before any SQL is
// sent, on every backend, instead of an error on PostgreSQL and an empty
// result on SQLite.
func TestQueryValues(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seedMany(t, b, 4)
		repo := b.repo(t)
		for _, tt := range []struct {
			name string
			q    Query
		}{
			{"a nil among In values", Where(In("id", nil, 3))},
			{"a typed nil among In values", Where(In("id", (*int64)(nil), 3))},
			{"a string for an integer key", Where(In("id", "x"))},
			{"a string for an integer column", Where(Eq("total_amount", "abc"))},
			{"a number for a string column", Where(Eq("customer", 5))},
			{"a boolean for an integer column", Where(Ge("version", true))},
			{"a fraction for an integer column", Where(Gt("total_amount", 1.5))},
			{"a number too large for the column", Where(Lt("total_amount", uint64(1)<<63))},
			{"Eq with nil", Where(Eq("customer", nil))},
			{"Ne with nil", Where(Ne("customer", nil))},
			{"Like on an integer column", Where(Like("total_amount", "1%"))},
			{"a keyset value of the wrong type", Query{}.OrderBy("customer").After("alice", "x")},
			{"a nil keyset value", Query{}.OrderBy("customer").After(nil, 1)},
			{"a negative limit", Query{}.Limit(-1)},
			{"a negative offset", Query{}.Offset(-1)},
		} {
			got, err := repo.FindAll(ctx, tt.q)
			assert.ErrorIs(t, err, ErrQuery, "%s: got %v", tt.name, ids(got))
			if tt.q.limit == 0 && tt.q.offset == 0 && tt.q.after == nil {
				_, err = repo.Count(ctx, tt.q)
				assert.ErrorIs(t, err, ErrQuery, "Count: %s", tt.name)
				_, err = repo.Exists(ctx, tt.q)
				assert.ErrorIs(t, err, ErrQuery, "Exists: %s", tt.name)
			}
		}
		assert.Empty(t, dml(b.log.take()), "nothing sent")

		// Values of another type that hold the same value are accepted.
		alice := "alice"
		for _, tt := range []struct {
			name string
			q    Query
			want []orderID
		}{
			{"integers of other sizes and named types", Where(In("id", int8(1), orderID(3), uint16(4))), []orderID{1, 3, 4}},
			{"a whole float for an integer column", Where(Eq("total_amount", 800.0)), []orderID{4}},
			{"a pointer to a string", Where(Eq("customer", &alice)), []orderID{1, 3}},
			{"a Valuer of the column's kind", Where(Eq("customer", sql.NullString{String: "bob", Valid: true})), []orderID{2, 4}},
			{"a named string type", Where(Eq("customer", customerName("bob"))), []orderID{2, 4}},
			{"a keyset of other numeric types", Query{}.OrderBy("total_amount").After(int32(300), 3.0), []orderID{2, 4}},
			{"Limit(0) is no limit", Query{}.Limit(0), []orderID{1, 2, 3, 4}},
		} {
			got, err := repo.FindAll(ctx, tt.q)
			require.NoError(t, err, tt.name)
			assert.Equal(t, tt.want, ids(got), tt.name)
		}
	})
}

type customerName string
