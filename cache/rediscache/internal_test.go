package rediscache

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dddkit/dddkit/repository"
)

type node struct {
	id int64 `db:"id"`
}

func (n *node) ID() int64 { return n.id }

// TestNotALocker: the cache must never take over the store's locking
// load, which must read the database.
func TestNotALocker(t *testing.T) {
	var h any = &hooks[*node, int64]{}
	_, ok := h.(repository.Locker[*node, int64])
	assert.False(t, ok)
	h = &deleter[*node, int64]{}
	_, ok = h.(repository.Locker[*node, int64])
	assert.False(t, ok)
	_, ok = h.(repository.IDDeleter[int64])
	assert.True(t, ok)
}

func TestIDText(t *testing.T) {
	type named string
	type pair struct{ a, b int }
	for _, tc := range []struct {
		id   any
		want string
	}{
		{int64(-42), "-42"},
		{uint8(7), "7"},
		{named("a:b"), "a:b"},
		{[4]byte{0xde, 0xad, 0xbe, 0xef}, "deadbeef"},
		{pair{1, 2}, "rediscache.pair{a:1, b:2}"},
	} {
		assert.Equal(t, tc.want, idText(tc.id))
	}
}

func TestParseEntry(t *testing.T) {
	v, rest, ok := parseEntry("V12\n\x00\nx")
	assert.True(t, ok)
	assert.Equal(t, int64(12), v)
	assert.Equal(t, "\x00\nx", rest)
	for _, bad := range []string{"", "V\n", "T1\n", "L0\nabc", "V12", "Vx\n"} {
		_, _, ok := parseEntry(bad)
		assert.False(t, ok, "%q", bad)
	}
}
