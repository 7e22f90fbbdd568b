package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"reflect"
	"testing"
	"time"

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

// textKey is a key type whose database value is text, as UUID types are.
type textKey [2]byte

func (k textKey) Value() (driver.Value, error) { return string(k[:]), nil }

// opaque is a Valuer whose zero value says nothing of its kind.
type opaque struct{ v *int }

func (o opaque) Value() (driver.Value, error) {
	if o.v == nil {
		return nil, nil
	}
	return int64(*o.v), nil
}

// TestCondArg: how values are judged against columns of Valuer types and
// of nullable types.
func TestCondArg(t *testing.T) {
	col := func(v any) *column { return &column{name: "c", typ: reflect.TypeOf(v)} }
	for _, tt := range []struct {
		name string
		col  *column
		v    any
		ok   bool
	}{
		{"a string for a Valuer of text", col(textKey{}), "ab", true},
		{"a number for a Valuer of text", col(textKey{}), 5, false},
		{"the Valuer type itself", col(textKey{}), textKey{'a', 'b'}, true},
		{"a Valuer that cannot be told is passed", col(opaque{}), "x", true},
		{"a nil for a Valuer column", col(textKey{}), nil, false},
		{"a string for a *string column", col((*string)(nil)), "x", true},
		{"a number for a *string column", col((*string)(nil)), 1, false},
		{"an int for sql.NullInt64", col(sql.NullInt64{}), 7, true},
		{"a string for sql.NullInt64", col(sql.NullInt64{}), "7", false},
		{"an int for a float column", col(0.0), 3, true},
		{"an int beyond float precision", col(0.0), int64(1)<<60 + 1, false},
		{"a negative for an unsigned column", col(uint8(0)), -1, false},
		{"a string for a bytes column", col([]byte(nil)), "x", false},
		{"a time for a time column", col(time.Time{}), time.Now(), true},
		{"a string for a time column", col(time.Time{}), "2026-01-01", false},
	} {
		_, err := condArg(tt.col, "Eq", tt.v)
		if tt.ok {
			assert.NoError(t, err, tt.name)
		} else {
			assert.ErrorIs(t, err, ErrQuery, tt.name)
		}
	}
	v, err := condArg(col(int32(0)), "Eq", int64(5))
	require.NoError(t, err)
	assert.Equal(t, int32(5), v, "a number is bound as the column's type")
}
