package rediscache

import (
	"context"
	"strconv"
	"testing"
	"time"

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

// TestNearState: the near cache keeps at most size aggregates, none past
// its TTL, and only for the entry it was decoded from; a write of this
// process refuses older entries (every entry, without a version) for a
// TTL, a removed version stays refused after a new write of a lower one,
// and past maxFloors writes every entry is refused for a TTL.
func TestNearState(t *testing.T) {
	n := &near{size: 2, ttl: time.Hour}
	n.put("a", "V1\na", 1)
	n.put("b", "V1\nb", 2)
	n.put("c", "V1\nc", 3)
	assert.Len(t, n.masters, 2, "bounded in count")
	got, ok := n.get("c", "V1\nc", time.Now())
	assert.True(t, ok)
	assert.Equal(t, 3, got)
	_, ok = n.get("c", "V2\nc", time.Now())
	assert.False(t, ok, "another entry: not the aggregate of this one")
	m := n.masters["c"]
	m.until = time.Now().Add(-time.Second)
	n.masters["c"] = m
	_, ok = n.get("c", "V1\nc", time.Now())
	assert.False(t, ok, "bounded in age")

	assert.True(t, n.usable("k", 0, true, time.Now()))
	n.written("k", 0, true)
	assert.Empty(t, n.floors, "version 0: nothing to refuse")
	n.written("k", 5, true)
	assert.False(t, n.usable("k", 4, true, time.Now()))
	assert.True(t, n.usable("k", 5, true, time.Now()))
	n.written("k", 1, true) // removed at 5, then created again
	assert.False(t, n.usable("k", 4, true, time.Now()))
	n.written("u", 0, false)
	assert.False(t, n.usable("u", 0, false, time.Now()), "without a version, no entry after a write")
	f := n.floors["k"]
	f.until = time.Now().Add(-time.Second)
	n.floors["k"] = f
	assert.True(t, n.usable("k", 4, true, time.Now()), "for a TTL")

	for i := range maxFloors + 1 {
		n.written(strconv.Itoa(i), 1, true)
	}
	assert.False(t, n.usable("other", 9, true, time.Now()), "past maxFloors, no entry for a TTL")
	var nilNear *near
	nilNear.written("k", 1, true) // without a near cache: nothing
}

// TestLazyDeadline: the context of a near read starts no timer unless
// asked for Done or Err, and then ends at its deadline, or with its
// parent; stopped, it is over.
func TestLazyDeadline(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	l := &lazyDeadline{Context: parent, deadline: time.Now().Add(time.Hour)}
	d, ok := l.Deadline()
	assert.True(t, ok)
	assert.Equal(t, l.deadline, d)
	assert.Equal(t, "v", l.Value(key{}))
	l.stop()
	assert.Nil(t, l.inner, "never asked: no timer")
	<-l.Done()
	assert.ErrorIs(t, l.Err(), context.Canceled)

	l = &lazyDeadline{Context: parent, deadline: time.Now().Add(time.Millisecond)}
	<-l.Done() // its deadline
	assert.ErrorIs(t, l.Err(), context.DeadlineExceeded)
	l.stop()

	l = &lazyDeadline{Context: parent, deadline: time.Now().Add(time.Hour)}
	done := l.Done()
	cancel()
	<-done // its parent
	assert.ErrorIs(t, l.Err(), context.Canceled)
	l.stop()

	short, cancelShort := context.WithDeadline(context.Background(), time.Now().Add(time.Minute))
	defer cancelShort()
	l = &lazyDeadline{Context: short, deadline: time.Now().Add(time.Hour)}
	d, _ = l.Deadline()
	want, _ := short.Deadline()
	assert.Equal(t, want, d, "the parent's, when sooner")
}
