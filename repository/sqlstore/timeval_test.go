package sqlstore

import (
	"context"
	"database/sql"
	"testing"
	"time"
	_ "time/tzdata" // the zones below, where the system has no tzdata

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Events keyed by a time, with a nullable time column, and slots keyed by
// a time under them: times as keys, parts of keys, columns and conditions.

type tEvent struct {
	at      time.Time  `db:"at"`
	name    string     `db:"name"`
	due     *time.Time `db:"due"`
	slots   []*tSlot
	version int64 `db:"version" ddd:"version"`
}

func (e *tEvent) ID() time.Time { return e.at }

type tSlot struct {
	start time.Time `db:"start" ddd:"id"`
	note  string    `db:"note"`
}

func timeSchema(t *testing.T, b *backend) *Repository[*tEvent, time.Time] {
	t.Helper()
	ts := "TIMESTAMPTZ"
	if b.db.dialect.timeText {
		ts = "DATETIME" // the modernc driver reads DATETIME columns as times
	}
	b.raw.exec(t, `CREATE TABLE t_events (at `+ts+` PRIMARY KEY, name TEXT NOT NULL, due `+ts+`, version BIGINT NOT NULL)`)
	b.raw.exec(t, `CREATE TABLE t_slots (event_at `+ts+` NOT NULL REFERENCES t_events (at), start `+ts+` NOT NULL, note TEXT NOT NULL, PRIMARY KEY (event_at, start))`)
	m, err := NewMapping[*tEvent](Table{Name: "t_events", Key: "at"},
		Child{Field: "slots", Table: "t_slots", Key: "start", ParentKey: "event_at"})
	require.NoError(t, err)
	r, err := NewRepository[*tEvent, time.Time](b.db, m)
	require.NoError(t, err)
	return r
}

func zones(t *testing.T) []*time.Location {
	var out []*time.Location
	for _, name := range []string{"UTC", "Europe/Warsaw", "Asia/Kolkata"} {
		loc, err := time.LoadLocation(name)
		require.NoError(t, err)
		out = append(out, loc)
	}
	return out
}

func ats(es []*tEvent) []time.Time {
	out := make([]time.Time, len(es))
	for i, e := range es {
		out[i] = e.at
	}
	return out
}

// TestTimeZones: times given in any zone are stored, found, compared,
// ordered and paged by instant, on every backend, and load in UTC.
// PostgreSQL keeps microseconds, so the times have no finer part.
func TestTimeZones(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := timeSchema(t, b)
		zs := zones(t)
		// Around the night Warsaw moves to summer time.
		t0 := time.Date(2026, 3, 29, 0, 30, 0, 123456000, time.UTC)
		const n = 6
		instant := func(k int) time.Time { return t0.Add(time.Duration(k) * time.Hour) }
		// due runs the other way, so that the order by due is not the
		// order by key: event k is due at t0 + (n-k)*50min.
		due := func(k int) time.Time { return t0.Add(time.Duration(n-k) * 50 * time.Minute) }
		for k := range n {
			d := due(k).In(zs[(k+1)%3])
			e := &tEvent{at: instant(k).In(zs[k%3]), name: "e", due: &d,
				slots: []*tSlot{{start: instant(k).Add(time.Minute).In(zs[(k+2)%3]), note: "s"}}}
			require.NoError(t, repo.Save(ctx, e))
		}
		byDue := func(ks ...int) []time.Time {
			out := make([]time.Time, len(ks))
			for i, k := range ks {
				out[i] = instant(k)
			}
			return out
		}

		// Keys: the same instant in every zone finds the event, which
		// loads in UTC, its children and nullable times too.
		for k := range n {
			for _, z := range zs {
				e, err := repo.Find(ctx, instant(k).In(z))
				require.NoError(t, err, "event %d asked in %v", k, z)
				assert.True(t, e.at.Equal(instant(k)))
				assert.Equal(t, time.UTC, e.at.Location(), "a loaded time is in UTC")
				require.NotNil(t, e.due)
				assert.True(t, e.due.Equal(due(k)))
				assert.Equal(t, time.UTC, e.due.Location())
				require.Len(t, e.slots, 1, "the children keyed by the root's time")
				assert.True(t, e.slots[0].start.Equal(instant(k).Add(time.Minute)))
				assert.Equal(t, time.UTC, e.slots[0].start.Location())
			}
		}
		some, err := repo.FindByIDs(ctx, []time.Time{instant(4).In(zs[2]), instant(1).In(zs[1])})
		require.NoError(t, err)
		assert.Equal(t, byDue(4, 1), ats(some), "FindByIDs in other zones")

		// A save of an event found in another zone: the key and version
		// condition, and a child's key, by instant.
		e, err := repo.Find(ctx, instant(2).In(zs[1]))
		require.NoError(t, err)
		e.name = "renamed"
		e.slots[0].note = "moved"
		e.slots = append(e.slots, &tSlot{start: instant(2).Add(2 * time.Minute).In(zs[2]), note: "added"})
		require.NoError(t, repo.Save(ctx, e))
		e, err = repo.Find(ctx, instant(2).In(zs[2]))
		require.NoError(t, err)
		assert.Equal(t, "renamed", e.name)
		require.Len(t, e.slots, 2)
		assert.Equal(t, []string{"moved", "added"}, []string{e.slots[0].note, e.slots[1].note})

		// Conditions compare instants.
		for _, tt := range []struct {
			name string
			q    Query
			want []time.Time
		}{
			{"Ge", Where(Ge("at", instant(3).In(zs[2]))).OrderBy("at"), byDue(3, 4, 5)},
			{"Gt", Where(Gt("at", instant(3).In(zs[1]))).OrderBy("at"), byDue(4, 5)},
			{"Lt", Where(Lt("at", instant(2).In(zs[2]))).OrderBy("at"), byDue(0, 1)},
			{"Le on a nullable time", Where(Le("due", due(4).In(zs[1]))).OrderBy("at"), byDue(4, 5)},
			{"Eq", Where(Eq("at", instant(5).In(zs[1]))), byDue(5)},
			{"Eq with a pointer", Where(Eq("due", ptr(due(0).In(zs[2])))), byDue(0)},
			{"In", Where(In("at", instant(0).In(zs[2]), instant(4).In(zs[1]))).OrderBy("at"), byDue(0, 4)},
			{"a Valuer of a time", Where(Ge("at", sql.NullTime{Time: instant(4).In(zs[2]), Valid: true})).OrderBy("at"), byDue(4, 5)},
			{"ordered by a time given in several zones", Query{}.OrderBy("due"), byDue(5, 4, 3, 2, 1, 0)},
			{"descending", Query{}.OrderByDesc("at"), byDue(5, 4, 3, 2, 1, 0)},
		} {
			got, err := repo.FindAll(ctx, tt.q)
			require.NoError(t, err, tt.name)
			assert.Equal(t, tt.want, ats(got), tt.name)
			for _, e := range got {
				assert.Equal(t, time.UTC, e.at.Location(), tt.name)
			}
		}
		cnt, err := repo.Count(ctx, Where(Ge("at", instant(1).In(zs[2]))))
		require.NoError(t, err)
		assert.Equal(t, int64(5), cnt)

		// Keyset pages by a time column, resumed from times in another
		// zone than they were stored in.
		q := Query{}.OrderBy("due").Limit(2)
		var paged []time.Time
		for next, i := q, 0; i < n; i++ {
			page, err := repo.FindAll(ctx, next)
			require.NoError(t, err)
			paged = append(paged, ats(page)...)
			if len(page) < 2 {
				break
			}
			last := page[len(page)-1]
			next = q.After(last.due.In(zs[2]), last.at.In(zs[1]))
		}
		assert.Equal(t, byDue(5, 4, 3, 2, 1, 0), paged, "keyset pages see every event once, by instant")

		// Statements of one's own bind times the same way.
		var c int64
		require.NoError(t, b.db.QueryRow(ctx, "SELECT count(*) FROM t_events WHERE at >= ?", instant(4).In(zs[2])).Scan(&c))
		assert.Equal(t, int64(2), c)
	})
}

// TestTimeZonesTwoRows is the shortest form: rows at 10:00Z and 12:00Z,
// asked for at or after 11:00Z written as 12:00+01:00, give the 12:00Z row.
func TestTimeZonesTwoRows(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := timeSchema(t, b)
		ten := time.Date(2026, 1, 10, 10, 0, 0, 0, time.UTC)
		noon := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
		for _, at := range []time.Time{ten, noon} {
			require.NoError(t, repo.Save(ctx, &tEvent{at: at, name: "e"}))
		}
		eleven := time.Date(2026, 1, 10, 12, 0, 0, 0, time.FixedZone("+01:00", 3600))
		got, err := repo.FindAll(ctx, Where(Ge("at", eleven)))
		require.NoError(t, err)
		assert.Equal(t, []time.Time{noon}, ats(got))
		e, err := repo.Find(ctx, ten.In(time.FixedZone("-03:00", -3*3600)))
		require.NoError(t, err, "the same instant in another zone")
		assert.Equal(t, ten, e.at)
		assert.Nil(t, e.due, "a NULL time stays nil")
	})
}

// TestTimeText: the text of a time on SQLite sorts as the instants do,
// and a year it cannot hold in that form is refused.
func TestTimeText(t *testing.T) {
	kol := zones(t)[2]
	a, err := timeText(time.Date(2026, 1, 1, 5, 0, 0, 0, kol)) // 2025-12-31 23:30Z
	require.NoError(t, err)
	assert.Equal(t, "2025-12-31 23:30:00.000000000Z", a)
	bt, err := timeText(time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC))
	require.NoError(t, err)
	assert.Less(t, a, bt)
	_, err = timeText(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	assert.Error(t, err)
	args := []any{time.Date(2026, 1, 1, 0, 0, 0, 0, kol), 1}
	out, err := sqlite.bindArgs(args)
	require.NoError(t, err)
	assert.Equal(t, []any{"2025-12-31 18:30:00.000000000Z", 1}, out)
	assert.IsType(t, time.Time{}, args[0], "the arguments given are left as they are")
	same, err := postgres.bindArgs(args)
	require.NoError(t, err)
	assert.Equal(t, args, same, "PostgreSQL compares times by instant itself")
}
