package rediscache

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/dddkit/dddkit/internal/handoff"
	"github.com/dddkit/dddkit/tracking"
)

// Defaults of [WithNear].
const (
	DefaultNearSize = 1000
	DefaultNearTTL  = time.Minute
	// maxFloors bounds the writes of this process the near cache
	// remembers; past it, it uses no entry for a TTL.
	maxFloors = 10000
)

// WithNear puts a near cache in the process, in front of Redis: a Find
// that it holds costs no call to Redis. It keeps the entries this
// process read from Redis, each for at most ttl, and the aggregates
// decoded from them, at most size of them (size <= 0: [DefaultNearSize],
// ttl <= 0: [DefaultNearTTL]; choose size by the memory an aggregate
// takes), and drops them when Redis says they changed.
//
// It is rueidis' client-side caching (DoCache): Redis tracks the keys the
// client read (CLIENT TRACKING, RESP3) and tells the client when they
// change, and the client drops them; the client must be made with its
// client-side caching on (without DisableCache, whose DoCache is a round
// trip each time), and its CacheSizeEachConn bounds the bytes it keeps.
// When the connection that tracks the keys drops, the client drops what
// it kept on it. In front of that, the cache keeps the aggregates it
// decoded from the entries, which it never hands out and never changes:
// a near hit returns a copy of the aggregate, whose snapshot is the kept
// one (the repository takes no second copy).
//
// What it keeps of the guarantees:
//
//   - Another process's write reaches the near cache of this one within
//     the invalidation delay: Redis' message to the client, once the
//     writer's invalidation ran. Until then, a Find here may return the
//     entry of the version before that write (never one older than what
//     Redis held before it), as a Find that read Redis an instant
//     earlier would have; and a load for a write, and a save, are checked
//     by the version as ever.
//   - Read-your-writes: a write of this process drops its own near entry
//     at once, after the commit, without waiting for Redis' message: until
//     it comes, an entry of a version older than the one committed is not
//     used (for an aggregate without a version, none is, for up to ttl).
//   - Fills go through Redis, under the lease and the version floor, as
//     without the near cache: it never holds what Redis refused.
//
// A load that the near cache cannot serve makes up to three calls to
// Redis: the near cache's read (DoCache), then the read and the fill
// under the lease.
func WithNear(size int, ttl time.Duration) Option {
	return func(c *Cache) {
		if size <= 0 {
			size = DefaultNearSize
		}
		if ttl <= 0 {
			ttl = DefaultNearTTL
		}
		c.near = &near{size: size, ttl: ttl}
	}
}

// near is the near cache's own state: the aggregates decoded from the
// entries rueidis keeps, and what this process wrote.
type near struct {
	size int
	ttl  time.Duration

	mu      sync.RWMutex
	masters map[string]master    // by key
	floors  map[string]nearFloor // by key: written by this process
	// distrust: no entry is used until then, when floors overflowed.
	distrust time.Time
}

// master is an aggregate decoded from raw, the entry Redis held: never
// handed out, never changed.
type master struct {
	raw   string
	agg   any
	until time.Time
}

// nearFloor is the version a write of this process committed (or may
// have): an entry below it is not used until then. floor is
// math.MaxInt64 for an aggregate without a version.
type nearFloor struct {
	floor int64
	until time.Time
}

// nearState is the outcome of a read of the near cache.
type nearState uint8

const (
	nearMiss   nearState = iota // not held, or not to be used: ask Redis
	nearHit                     // served
	nearFailed                  // Redis failed: read the database
)

// nearSelect reads the entry of key through rueidis' client-side cache,
// and returns a copy of the aggregate it holds.
func (h *hooks[T, ID]) nearSelect(ctx context.Context, key string) (T, nearState) {
	var zero T
	c, n := h.c, h.c.near
	client, err := c.redis()
	if err != nil {
		c.report(ctx, Failed, key, fmt.Errorf("rediscache: near get: %w", err))
		return zero, nearFailed
	}
	now := time.Now()
	cctx := &lazyDeadline{Context: ctx, deadline: now.Add(c.timeout)}
	res := client.DoCache(cctx, client.B().Get().Key(key).Cache(), n.ttl)
	cctx.stop()
	raw, err := res.ToString()
	if err != nil {
		if rueidis.IsRedisNil(err) {
			return zero, nearMiss
		}
		c.report(ctx, Failed, key, fmt.Errorf("rediscache: near get: %w", err))
		return zero, nearFailed
	}
	version, entry, ok := parseEntry(raw)
	versioned := h.version != nil
	if !ok || !n.usable(key, version, versioned, now) || !c.trusted(key, version, versioned) {
		return zero, nearMiss // a lease, a tombstone, or older than a write of this process
	}
	kept, ok := n.get(key, raw, now)
	if !ok {
		agg, err := h.codec.Decode([]byte(entry))
		if err != nil {
			return zero, nearMiss // reported and dropped by the read under the lease
		}
		kept = agg
		n.put(key, raw, agg)
	}
	master := kept.(T)
	out, err := tracking.Copy(master)
	if err != nil {
		return zero, nearMiss
	}
	handoff.Offer(ctx, h.self, out, master)
	kind := Hit
	if res.IsCacheHit() {
		kind = NearHit
	}
	c.report(ctx, kind, key, nil)
	return out, nearHit
}

// usable reports whether an entry of key at version may be used at now:
// no write of this process committed a later version.
func (n *near) usable(key string, version int64, versioned bool, now time.Time) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if now.Before(n.distrust) {
		return false
	}
	f, ok := n.floors[key]
	if !ok || now.After(f.until) {
		return true
	}
	return versioned && version >= f.floor
}

// get returns the aggregate decoded from raw, the entry of key, unless
// it is older than the TTL at now.
func (n *near) get(key, raw string, now time.Time) (any, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	m, ok := n.masters[key]
	if !ok || m.raw != raw || now.After(m.until) {
		return nil, false
	}
	return m.agg, true
}

// put keeps agg, decoded from raw, the entry of key; when the near cache
// is full, another entry is dropped.
func (n *near) put(key, raw string, agg any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.masters == nil {
		n.masters = make(map[string]master)
	}
	if _, ok := n.masters[key]; !ok && len(n.masters) >= n.size {
		for k := range n.masters { // one at random
			delete(n.masters, k)
			break
		}
	}
	n.masters[key] = master{raw: raw, agg: agg, until: time.Now().Add(n.ttl)}
}

// written records a write of this process of the aggregate of key that
// committed version floor, or may have (with versioned false, the
// aggregate has no version): for ttl, the longest rueidis keeps what it
// read before, no older entry of key is used. n may be nil.
func (n *near) written(key string, floor int64, versioned bool) {
	if n == nil {
		return
	}
	if !versioned {
		floor = math.MaxInt64
	}
	now := time.Now()
	until := now.Add(n.ttl)
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.masters, key)
	f, ok := n.floors[key]
	if ok && now.Before(f.until) {
		floor = max(floor, f.floor) // a version removed stays refused
	} else if floor <= 0 {
		return // no entry is older than version 0
	}
	if n.floors == nil {
		n.floors = make(map[string]nearFloor)
	}
	if !ok && len(n.floors) >= maxFloors {
		for k, f := range n.floors {
			if now.After(f.until) {
				delete(n.floors, k)
			}
		}
		if len(n.floors) >= maxFloors {
			n.floors = nil
			n.distrust = until
			return
		}
	}
	n.floors[key] = nearFloor{floor: floor, until: until}
}

// lazyDeadline is a context with a deadline whose timer starts only when
// Done or Err is asked for: rueidis asks for neither when it serves a read
// from its client-side cache, which then costs no timer.
type lazyDeadline struct {
	context.Context // the parent
	deadline        time.Time

	once   sync.Once
	inner  context.Context // nil when stopped before started
	cancel context.CancelFunc
}

func (l *lazyDeadline) Deadline() (time.Time, bool) {
	if d, ok := l.Context.Deadline(); ok && d.Before(l.deadline) {
		return d, true
	}
	return l.deadline, true
}

// start makes the context with the deadline, unless stopped before.
func (l *lazyDeadline) start() context.Context {
	l.once.Do(func() { l.inner, l.cancel = context.WithDeadline(l.Context, l.deadline) })
	return l.inner
}

func (l *lazyDeadline) Done() <-chan struct{} {
	if inner := l.start(); inner != nil {
		return inner.Done()
	}
	return closedChan
}

func (l *lazyDeadline) Err() error {
	if inner := l.start(); inner != nil {
		return inner.Err()
	}
	return context.Canceled
}

// stop ends the context: its timer, if it started one, is stopped.
func (l *lazyDeadline) stop() {
	l.once.Do(func() {})
	if l.cancel != nil {
		l.cancel()
	}
}

var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()
