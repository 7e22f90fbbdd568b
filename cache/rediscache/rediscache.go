// Package rediscache puts a Redis cache in front of a repository, where
// business code never sees it: Find, Save, Remove and Update are called as
// before, and the cache is an option of the repository's constructor:
//
//	cache := rediscache.New(client) // a rueidis.Client
//	orders, err := sqlstore.NewRepository[*Order, OrderID](db, m,
//		rediscache.Wrap[*Order, OrderID](cache))
//
// # What it caches
//
// An aggregate is cached as the rows of its tables, as the store wrote
// them: the hooks under the cache must implement [Codec], as
// sqlstore's Store does (its Encode, Decode and Fingerprint). What the
// store can load, the cache can hold, unexported fields included, and a
// cached aggregate equals the one a load from the database returns. Keys
// are the prefix, the fingerprint of the mapping (with the schema version
// of [WithSchemaVersion]), and the aggregate's identity:
//
//	dddkit:1f2e3d4c5b6a7988:42
//
// so that a deploy that changes the mapping never reads the entries of the
// one before it. Entries live for the TTL, plus a random jitter, so that
// entries filled together do not expire together ([WithTTL]).
//
// # Reads
//
// Find (the select hook) asks Redis first, and decodes a hit; a cached
// aggregate is tracked like a loaded one: its snapshot is taken, and the
// next save is a diff against it, checked by its version. A miss loads
// from the database and fills the cache. The database is read, and the
// cache neither read nor filled, by a load made for a write (the load of
// the repository's Update, and its retries), and by a load in a unit of
// work (a transaction of the DB, or a tracking scope), which takes part
// in its transaction and sees its own writes. FindForUpdate reads the
// database: the cache does not implement [repository.Locker], so the
// store's locking load is used, and Update of an aggregate without a
// version goes through it too. The queries of a repository (FindAll,
// FindByIDs, ...) read the database.
//
// # No stale fill
//
// A reader that misses takes a lease: the key holds a token of its own
// until it fills it, for a short time. A write invalidates after its
// commit by replacing whatever the key holds (an entry, or a lease) with
// a tombstone that records the version committed. A fill lands only if
// the key still holds the reader's own token, and only if the version
// read is at least the one the tombstone recorded: a reader that read v1
// before a writer committed v2 and invalidated cannot put v1 back, and
// the cached version never goes backwards, even for a reader whose
// database is behind (a replica). This is the lease of Facebook's
// memcache (NSDI 2013, §3.2.1) and a version guard, each one script on
// the server. Readers that miss while another holds the lease read the
// database without filling.
//
// # Writes
//
// Save, Remove, RemoveByID and Update invalidate once the write is
// committed, never before ([repository.AfterCommit]): after the commit of
// their unit of work, or when the save returns outside one. A write that
// fails, or whose outcome is unknown, invalidates at once, and a unit of
// work that rolls back invalidates what it wrote (its COMMIT may have
// failed after reaching the database, and a tracking scope without a
// transaction rolls back writes that stay): dropping an entry is always
// safe. Nothing is written through: what the database holds after a write
// (a time truncated to its precision, say) is read back by the next load.
//
// The write does not wait for Redis: the invalidation is sent as it
// returns, and ends a round trip later, so that a save costs about what
// it costs without the cache. Until it ends, a load of that aggregate by
// this process waits for it (at most the timeout, then it reads the
// database), so that the process never reads the entry its own write
// made stale; another process may read it until the invalidation ends, as
// it could an instant before the write. [Cache.Wait] and [Cache.Close]
// wait for the invalidations under way: call Close when the service
// stops.
//
// # A near cache
//
// With [WithNear], the cache keeps what this process read from Redis in
// the process too, and Redis tells it when an entry changes (rueidis'
// client-side caching): a Find it holds costs no network round trip, and
// returns a copy of an aggregate decoded once. Another process's write
// reaches it within the invalidation delay (a fraction of a millisecond
// on one machine); a write of this process reaches it at once. See
// WithNear for what it keeps of the guarantees.
//
// # When Redis fails
//
// Every call to Redis is bounded by a timeout (50 ms by default,
// [WithTimeout]); a load makes at most two (three with a near cache). A load whose call fails or
// times out reads the database, and a save never fails because of Redis.
// A failed invalidation is reported to the observer ([WithObserver]), and
// bounded by the TTL: until the entry expires, or an invalidation of it
// succeeds, this process does not trust the entry (it reads the database,
// and tries the invalidation again), so that it never reads an older
// version than it committed itself; other processes may read it until it
// expires.
//
// # Starting while Redis is down
//
// rueidis.NewClient fails when Redis cannot be reached, so that a service
// that makes its client so cannot start without Redis. [Dial] makes the
// client itself: when Redis is down, it returns a cache that reads the
// database, and connects in the background once Redis is up.
//
// # Package or module
//
// The cache is a package of the dddkit module, not a module of its own.
// With Go's module graph pruning, a service that does not import it
// neither compiles nor links its Redis client, whose name does not even
// appear in the service's go.mod and go.sum; and the package is versioned
// with the repository and the store whose abilities it relies on
// (WrapHooks, AfterCommit, the codec), which a module of its own would
// have to follow across releases.
package rediscache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/rueidis"

	"github.com/dddkit/dddkit/ddd"
	"github.com/dddkit/dddkit/internal/lastwrite"
	"github.com/dddkit/dddkit/internal/typeinfo"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/tracking"
)

// Codec is what the cache needs of the hooks under it: to write an
// aggregate as bytes, read it back, and name the mapping. sqlstore's
// Store implements it. It is found through the wrappers under the cache
// with [repository.As].
type Codec[T any] interface {
	// Encode returns the entry of agg, an aggregate as a load returned it.
	Encode(agg T) ([]byte, error)
	// Decode returns a new aggregate equal to the load that was encoded.
	Decode(b []byte) (T, error)
	// Fingerprint changes whenever the encoding of an aggregate does.
	Fingerprint() string
}

// Defaults of the options.
const (
	DefaultPrefix  = "dddkit:"
	DefaultTTL     = 10 * time.Minute
	DefaultTimeout = 50 * time.Millisecond
	// leaseTTL is how long a reader that missed may take to fill.
	leaseTTL = 3 * time.Second
	// maxSuspects bounds the entries this process distrusts after failed
	// invalidations; past it, it distrusts every entry for a TTL.
	maxSuspects = 10000
)

// Cache is a Redis cache of aggregates, shared by the repositories that
// [Wrap] puts it in front of. It is safe for concurrent use.
type Cache struct {
	client  atomic.Pointer[rueidis.Client] // nil until Dial connects
	prefix  string
	version string
	ttl     time.Duration
	jitter  time.Duration
	timeout time.Duration
	observe func(ctx context.Context, e Event)

	near *near // nil without WithNear
	// owned: the client was made by Dial, and Close closes it.
	owned bool
	// dialing is closed by Close, for the connecting of Dial to stop.
	dialing chan struct{}
	dialMu  sync.Mutex // guards closed, and the storing of the client by redial
	closed  bool

	mu       sync.Mutex
	suspects map[string]suspect // by key: entries that failed to invalidate
	distrust time.Time          // every entry, until then, when suspects overflowed
	flights  map[string]*flight // by key: the invalidations under way
	// inflight counts the invalidations under way, for Close; pending
	// too, for the loads to skip flights when there are none.
	inflight sync.WaitGroup
	pending  atomic.Int64
}

// flight is the invalidations of one key under way.
type flight struct {
	n    int
	done chan struct{} // closed when the last one ends
}

// suspect is an entry this process failed to invalidate after a write
// that committed version floor (0: unknown, or no version).
type suspect struct {
	floor int64
	until time.Time
}

// Option configures a [Cache].
type Option func(*Cache)

// WithPrefix sets the prefix of the cache's keys; [DefaultPrefix] when
// not given.
func WithPrefix(p string) Option { return func(c *Cache) { c.prefix = p } }

// WithSchemaVersion mixes v into the keys of the cache, next to the
// mapping's fingerprint: change it when what an aggregate's rows mean
// changes in a way the fingerprint cannot see (a driver.Valuer that
// writes another form), so that the entries written before are not read.
func WithSchemaVersion(v string) Option { return func(c *Cache) { c.version = v } }

// WithTTL sets how long an entry lives: ttl plus a random duration up to
// jitter, so that entries filled together do not expire together. The
// default is [DefaultTTL] with a tenth of it as jitter; ttl <= 0 keeps it,
// jitter < 0 is none.
func WithTTL(ttl, jitter time.Duration) Option {
	return func(c *Cache) {
		if ttl > 0 {
			c.ttl = ttl
		}
		c.jitter = max(jitter, 0)
	}
}

// WithTimeout bounds each call to Redis; [DefaultTimeout] when d <= 0.
func WithTimeout(d time.Duration) Option {
	return func(c *Cache) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithObserver makes the cache call f with every [Event]: hits, misses,
// fills, invalidations and failures. f runs synchronously on the caller's
// goroutine: keep it quick.
func WithObserver(f func(ctx context.Context, e Event)) Option {
	return func(c *Cache) { c.observe = f }
}

// New returns a cache on client, which the caller keeps and closes. The
// cache sends commands with Do and scripts with EVALSHA, and, with
// [WithNear], reads with DoCache, rueidis' client-side caching.
//
// rueidis.NewClient fails when it cannot reach Redis: a service that must
// start while Redis is down makes its cache with [Dial].
func New(client rueidis.Client, opts ...Option) *Cache {
	c := newCache(opts)
	if client != nil {
		c.client.Store(&client)
	}
	return c
}

func newCache(opts []Option) *Cache {
	c := &Cache{prefix: DefaultPrefix, ttl: DefaultTTL, jitter: DefaultTTL / 10, timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Dial returns a cache on a client of opt that it makes itself, and
// closes with [Cache.Close]: a service starts whether Redis is up or not.
// It tries to connect at once, for as long as opt's dial timeout; when it
// cannot reach Redis (a network error: refused, unreachable, a name not
// resolved), it returns the cache all the same, which reads the database
// and reports each load as Failed, and tries again in the background,
// every second at first and every 30 seconds at most, until it connects
// or is closed; once connected, the client reconnects by itself. Other
// errors (options that rueidis refuses, a password Redis refuses) are
// returned.
func Dial(opt rueidis.ClientOption, opts ...Option) (*Cache, error) {
	c := newCache(opts)
	c.owned = true
	client, err := rueidis.NewClient(opt)
	if err == nil {
		c.client.Store(&client)
		return c, nil
	}
	if !unreachable(err) {
		return nil, fmt.Errorf("rediscache: dial: %w", err)
	}
	c.report(context.Background(), Failed, "", fmt.Errorf("rediscache: dial: %w", err))
	c.dialing = make(chan struct{})
	go c.redial(opt)
	return c, nil
}

// unreachable reports whether err, of rueidis.NewClient, says that Redis
// could not be reached.
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// redial tries to connect until it does, or the cache is closed.
func (c *Cache) redial(opt rueidis.ClientOption) {
	const first, most = time.Second, 30 * time.Second
	wait := first
	for {
		select {
		case <-c.dialing:
			return
		case <-time.After(wait):
		}
		client, err := rueidis.NewClient(opt)
		if err != nil {
			c.report(context.Background(), Failed, "", fmt.Errorf("rediscache: dial: %w", err))
			wait = min(2*wait, most)
			continue
		}
		c.dialMu.Lock()
		closed := c.closed
		if !closed {
			c.client.Store(&client)
		}
		c.dialMu.Unlock()
		if closed {
			client.Close()
		}
		return
	}
}

// Wait waits for the invalidations under way to end, each bounded by the
// timeout: a write returns before its invalidation ends (see the package
// doc), and once Wait returns, Redis holds no entry that a write of this
// process that returned before made stale, unless its invalidation
// failed (reported to the observer).
func (c *Cache) Wait() { c.inflight.Wait() }

// Close waits for the invalidations under way (each bounded by the
// timeout), then closes the client that [Dial] made and stops its
// connecting; it leaves alone the client given to [New], which its owner
// closes after Close. A service calls it when it stops: a write returns
// before its invalidation ends (see the package doc).
func (c *Cache) Close() {
	c.Wait()
	c.dialMu.Lock()
	if c.closed {
		c.dialMu.Unlock()
		return
	}
	c.closed = true
	if c.dialing != nil {
		close(c.dialing)
	}
	p := c.client.Load()
	c.dialMu.Unlock()
	if c.owned && p != nil {
		(*p).Close()
	}
}

// errNotConnected is the failure of every call to Redis while Dial has
// not connected.
var errNotConnected = errors.New("rediscache: not connected to Redis")

// redis returns the client, or errNotConnected.
func (c *Cache) redis() (rueidis.Client, error) {
	if p := c.client.Load(); p != nil {
		return *p, nil
	}
	return nil, errNotConnected
}

// Kind is what an [Event] reports.
type Kind uint8

const (
	// Hit: the aggregate was read from the cache.
	Hit Kind = iota + 1
	// Miss: the cache held no entry; the aggregate was loaded from the
	// database, under a lease to fill the cache.
	Miss
	// Bypass: the database was read without asking the cache (a load for
	// a write or in a unit of work), or without filling it (another reader
	// holds the lease, or the entry is distrusted after a failed
	// invalidation).
	Bypass
	// Filled: the entry was written.
	Filled
	// Refused: the fill did not land: the entry was invalidated after the
	// lease was taken, or the version read is older than one committed.
	Refused
	// Invalidated: the entry was dropped after a write.
	Invalidated
	// Failed: a call to Redis failed or timed out, or an entry could not
	// be encoded or decoded (Err says which); the database was read, or
	// the invalidation will be bounded by the TTL.
	Failed
	// NearHit: the aggregate was read from the near cache ([WithNear]),
	// in the process, with no call to Redis.
	NearHit
)

func (k Kind) String() string {
	switch k {
	case Hit:
		return "hit"
	case Miss:
		return "miss"
	case Bypass:
		return "bypass"
	case Filled:
		return "filled"
	case Refused:
		return "refused"
	case Invalidated:
		return "invalidated"
	case Failed:
		return "failed"
	case NearHit:
		return "near hit"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Event is what the cache reports to the observer of [WithObserver].
type Event struct {
	Kind Kind
	// Key is the entry's key.
	Key string
	// Err is the failure, for Failed.
	Err error
}

func (c *Cache) report(ctx context.Context, k Kind, key string, err error) {
	if c.observe != nil {
		c.observe(ctx, Event{Kind: k, Key: key, Err: err})
	}
}

// entryTTL returns the TTL of a new entry or tombstone, in milliseconds.
func (c *Cache) entryTTL() string {
	d := c.ttl
	if c.jitter > 0 {
		d += rand.N(c.jitter + 1)
	}
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10)
}

// ErrNoCodec is returned by every hook of a cache put in front of hooks
// that do not implement [Codec].
var ErrNoCodec = errors.New("rediscache: the hooks under the cache do not implement rediscache.Codec (Encode, Decode, Fingerprint), nor do the hooks they unwrap to")

// Wrap returns the option of a repository's constructor (sqlstore's
// NewRepository, or [repository.NewSupport]) that puts c in front of its
// hooks, with [repository.WrapHooks]. The hooks, or those they unwrap
// to, must implement [Codec]; otherwise every hook fails with
// [ErrNoCodec].
func Wrap[T any, ID comparable](c *Cache) repository.Option {
	return repository.WrapHooks(func(next repository.Hooks[T, ID]) repository.Hooks[T, ID] {
		h, err := newHooks[T, ID](c, next)
		if err != nil {
			return broken[T, ID]{err}
		}
		if d, ok := next.(repository.IDDeleter[ID]); ok {
			dd := &deleter[T, ID]{hooks: h, del: d}
			h.self = dd
			return dd
		}
		h.self = h
		return h
	})
}

// hooks is the cache in front of next.
type hooks[T any, ID comparable] struct {
	c       *Cache
	next    repository.Hooks[T, ID]
	codec   Codec[T]
	space   string // the keys' prefix, fingerprint and separator
	id      func(T) ID
	version *typeinfo.Field // nil without a version
	// self is what Wrap returns: h, or the deleter around it.
	self repository.Hooks[T, ID]
}

func newHooks[T any, ID comparable](c *Cache, next repository.Hooks[T, ID]) (*hooks[T, ID], error) {
	if c == nil {
		return nil, errors.New("rediscache: nil *Cache")
	}
	codec, ok := repository.As[Codec[T]](next)
	if !ok {
		return nil, ErrNoCodec
	}
	fp := codec.Fingerprint()
	if fp == "" {
		return nil, fmt.Errorf("rediscache: the codec %T has no fingerprint: the store cannot be used", codec)
	}
	if c.version != "" {
		fp += "." + c.version
	}
	rt := reflect.TypeFor[T]()
	if rt.Kind() != reflect.Pointer || rt.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("rediscache: %v: %w: an aggregate must be a pointer to a struct", rt, repository.ErrUnsupported)
	}
	id, err := identity[T, ID](rt)
	if err != nil {
		return nil, fmt.Errorf("rediscache: %v: %w", rt, err)
	}
	h := &hooks[T, ID]{c: c, next: next, codec: codec, space: c.prefix + fp + ":", id: id}
	f, ok, err := typeinfo.VersionOf(rt.Elem())
	if err != nil {
		return nil, fmt.Errorf("rediscache: %v: %w: %w", rt, repository.ErrUnsupported, err)
	}
	if ok {
		h.version = &f
	}
	return h, nil
}

// identity returns the function that reads the identity of a root, as the
// repository reads it: its field tagged `ddd:"id"`, or its method ID.
func identity[T any, ID comparable](rt reflect.Type) (func(T) ID, error) {
	st, err := typeinfo.StructOf(rt.Elem())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", repository.ErrUnsupported, err)
	}
	if st.IDField >= 0 {
		f := st.Fields[st.IDField]
		if f.Type != reflect.TypeFor[ID]() {
			return nil, fmt.Errorf("%w: its identity, field %s, is of type %v, not %v", repository.ErrUnsupported, f.Name, f.Type, reflect.TypeFor[ID]())
		}
		off := f.Offset
		return func(v T) ID { return *(*ID)(unsafe.Add(typeinfo.PtrOf(v), off)) }, nil
	}
	var zero T
	if _, ok := any(zero).(ddd.Entity[ID]); ok {
		return func(v T) ID { return any(v).(ddd.Entity[ID]).ID() }, nil
	}
	return nil, fmt.Errorf("%w: it has no identity of type %v", repository.ErrUnsupported, reflect.TypeFor[ID]())
}

// Unwrap returns the hooks the cache is in front of.
func (h *hooks[T, ID]) Unwrap() repository.Hooks[T, ID] { return h.next }

// OffersSnapshots says that a near hit offers the kept aggregate as the
// snapshot of the copy it returns (package internal/handoff).
func (h *hooks[T, ID]) OffersSnapshots() {}

// key returns the key of the aggregate with identity id.
func (h *hooks[T, ID]) key(id ID) string {
	return h.space + idText(id)
}

// idText writes an identity for a key: an integer in decimal, a string
// as it is, an array of bytes (a UUID) in hexadecimal, anything else as
// fmt's %#v writes it.
func idText(id any) string {
	v := reflect.ValueOf(id)
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return fmt.Sprintf("%x", id)
		}
	}
	return fmt.Sprintf("%#v", id)
}

// versionOf returns the version of agg, 0 without a version field.
func (h *hooks[T, ID]) versionOf(agg T) int64 {
	if h.version == nil || typeinfo.IsNil(agg) {
		return 0
	}
	return typeinfo.ReadInt(h.version.Type, unsafe.Add(typeinfo.PtrOf(agg), h.version.Offset))
}

// inUnit reports whether ctx carries a unit of work that has not ended.
func inUnit(ctx context.Context) bool {
	sc, ok := tracking.FromContext(ctx)
	return ok && !sc.Done()
}

// The scripts. The key holds one of:
//
//	V<version>\n<entry>   an entry, of the aggregate at that version
//	L<floor>\n<token>     a lease of the reader with that token
//	T<floor>\n            a tombstone: a write committed version floor
//
// where floor is a version in decimal (0 when there is none to keep).
// Versions compare as decimal numbers, by length first.
var (
	// getScript returns the entry, or "B" when another reader holds the
	// lease, or "M" after taking the lease for ARGV[1] for ARGV[2] ms,
	// keeping the tombstone's floor.
	getScript = rueidis.NewLuaScript(`
local v = redis.call('GET', KEYS[1])
if v then
  local k = string.sub(v, 1, 1)
  if k == 'V' then return v end
  if k == 'L' then return 'B' end
end
local f = '0'
if v then f = string.match(v, '^T(%d+)\n') or '0' end
redis.call('SET', KEYS[1], 'L' .. f .. '\n' .. ARGV[1], 'PX', ARGV[2])
return 'M'
`)
	// fillScript writes ARGV[3], the entry of version ARGV[2], for ARGV[4]
	// ms, if the key holds the lease of ARGV[1] and the version is at
	// least its floor: 1. A lease of another, or none: 0. An older
	// version: the floor is kept as a tombstone for what is left of the
	// lease, -1.
	fillScript = rueidis.NewLuaScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local f, tok = string.match(v, '^L(%d+)\n(.*)$')
if tok ~= ARGV[1] then return 0 end
local n = ARGV[2]
if #n < #f or (#n == #f and n < f) then
  redis.call('SET', KEYS[1], 'T' .. f .. '\n', 'KEEPTTL')
  return -1
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1
`)
	// releaseScript gives up the lease of ARGV[1], keeping its floor as
	// a tombstone for what is left of the lease.
	releaseScript = rueidis.NewLuaScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local f, tok = string.match(v, '^L(%d+)\n(.*)$')
if tok ~= ARGV[1] then return 0 end
if f == '0' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], 'T' .. f .. '\n', 'KEEPTTL') end
return 1
`)
	// invalidateScript drops what the key holds, keeping as a tombstone
	// the higher of ARGV[1], the version a write committed, and the
	// version or floor the key held: for ARGV[2] ms when ARGV[1] is the
	// higher, else until the key would have expired.
	invalidateScript = rueidis.NewLuaScript(`
local f = ARGV[1]
local v = redis.call('GET', KEYS[1])
if v then
  local g = string.match(v, '^[VLT](%d+)\n')
  if g and (#g > #f or (#g == #f and g > f)) then
    redis.call('SET', KEYS[1], 'T' .. g .. '\n', 'KEEPTTL')
    return 1
  end
end
if f == '0' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], 'T' .. f .. '\n', 'PX', ARGV[2]) end
return 1
`)
)

// call runs a script with the cache's timeout.
func (c *Cache) call(ctx context.Context, s *rueidis.Lua, keys, args []string) rueidis.RedisResult {
	client, err := c.redis()
	if err != nil {
		return rueidis.NewErrorResult(err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return s.Exec(ctx, client, keys, args)
}

// newToken returns a lease token.
func newToken() string {
	return strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64(), 36)
}

// Select loads the aggregate with identity id: from the cache when it
// holds it, else from the database, filling the cache under a lease.
func (h *hooks[T, ID]) Select(ctx context.Context, id ID) (T, error) {
	c := h.c
	key := h.key(id)
	if lastwrite.IsForWrite(ctx) || inUnit(ctx) {
		c.report(ctx, Bypass, key, nil)
		return h.next.Select(ctx, id)
	}
	if !c.settled(ctx, key) {
		// A write of this process is still invalidating the entry.
		c.report(ctx, Bypass, key, nil)
		return h.next.Select(ctx, id)
	}
	if c.near != nil {
		agg, st := h.nearSelect(ctx, key)
		switch st {
		case nearHit:
			return agg, nil
		case nearFailed:
			return h.next.Select(ctx, id)
		}
	}
	tok := newToken()
	res, err := c.call(ctx, getScript, []string{key}, []string{tok, strconv.FormatInt(leaseTTL.Milliseconds(), 10)}).ToString()
	switch {
	case err != nil:
		c.report(ctx, Failed, key, fmt.Errorf("rediscache: get: %w", err))
		return h.next.Select(ctx, id)
	case res == "B":
		c.report(ctx, Bypass, key, nil)
		return h.next.Select(ctx, id)
	case res == "M":
		c.report(ctx, Miss, key, nil)
		agg, err := h.next.Select(ctx, id)
		h.fill(ctx, key, tok, agg, err)
		return agg, err
	}
	version, entry, ok := parseEntry(res)
	if !ok {
		c.report(ctx, Failed, key, errors.New("rediscache: get: not an entry"))
		return h.next.Select(ctx, id)
	}
	if !c.trusted(key, version, h.version != nil) {
		// A write of this process failed to invalidate it: try again, and
		// read the database.
		c.report(ctx, Bypass, key, nil)
		h.invalidate(ctx, key, c.suspectFloor(key))
		return h.next.Select(ctx, id)
	}
	agg, err := h.codec.Decode([]byte(entry))
	if err != nil {
		c.report(ctx, Failed, key, fmt.Errorf("rediscache: decode: %w", err))
		h.invalidate(ctx, key, 0)
		return h.next.Select(ctx, id)
	}
	c.report(ctx, Hit, key, nil)
	return agg, nil
}

// parseEntry splits an entry into its version and its bytes.
func parseEntry(s string) (int64, string, bool) {
	head, rest, ok := strings.Cut(s, "\n")
	if !ok || len(head) < 2 || head[0] != 'V' {
		return 0, "", false
	}
	v, err := strconv.ParseInt(head[1:], 10, 64)
	return v, rest, err == nil
}

// fill writes the entry of agg, loaded with err, under the lease tok.
func (h *hooks[T, ID]) fill(ctx context.Context, key, tok string, agg T, err error) {
	c := h.c
	ctx = context.WithoutCancel(ctx)
	var b []byte
	if err == nil && !typeinfo.IsNil(agg) {
		if b, err = h.codec.Encode(agg); err != nil {
			c.report(ctx, Failed, key, fmt.Errorf("rediscache: encode: %w", err))
		}
	}
	if err != nil || b == nil {
		if err := c.call(ctx, releaseScript, []string{key}, []string{tok}).Error(); err != nil {
			c.report(ctx, Failed, key, fmt.Errorf("rediscache: release: %w", err))
		}
		return
	}
	v := max(h.versionOf(agg), 0)
	vs := strconv.FormatInt(v, 10)
	entry := "V" + vs + "\n" + string(b)
	n, err := c.call(ctx, fillScript, []string{key}, []string{tok, vs, entry, c.entryTTL()}).AsInt64()
	switch {
	case err != nil:
		c.report(ctx, Failed, key, fmt.Errorf("rediscache: fill: %w", err))
	case n == 1:
		c.report(ctx, Filled, key, nil)
	default:
		c.report(ctx, Refused, key, nil)
	}
}

// invalidate drops the entry of key after a write that committed version
// floor (0: none to keep), and remembers it as a suspect when it fails.
func (h *hooks[T, ID]) invalidate(ctx context.Context, key string, floor int64) {
	c := h.c
	ctx = context.WithoutCancel(ctx)
	err := c.call(ctx, invalidateScript, []string{key}, []string{strconv.FormatInt(max(floor, 0), 10), c.entryTTL()}).Error()
	if err != nil {
		c.report(ctx, Failed, key, fmt.Errorf("rediscache: invalidate: %w", err))
		c.suspect(key, floor)
		return
	}
	c.clear(key)
	c.report(ctx, Invalidated, key, nil)
}

// suspect records that the entry of key failed to invalidate after a
// write that committed version floor.
func (c *Cache) suspect(key string, floor int64) {
	now := time.Now()
	until := now.Add(c.ttl + c.jitter)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.suspects == nil {
		c.suspects = map[string]suspect{}
	}
	if s, ok := c.suspects[key]; ok {
		floor = max(floor, s.floor)
	}
	if len(c.suspects) >= maxSuspects {
		for k, s := range c.suspects {
			if now.After(s.until) {
				delete(c.suspects, k)
			}
		}
	}
	if len(c.suspects) >= maxSuspects {
		c.suspects = nil
		c.distrust = until
		return
	}
	c.suspects[key] = suspect{floor: floor, until: until}
}

// clear forgets the suspect of key, once invalidated.
func (c *Cache) clear(key string) {
	c.mu.Lock()
	delete(c.suspects, key)
	c.mu.Unlock()
}

// suspectFloor returns the floor of the suspect of key, or 0.
func (c *Cache) suspectFloor(key string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.suspects[key].floor
}

// trusted reports whether the entry of key, at version, may be used: this
// process has not failed to invalidate it after a write, or the entry is
// at least at the version that write committed.
func (c *Cache) trusted(key string, version int64, versioned bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if now.Before(c.distrust) {
		return false
	}
	s, ok := c.suspects[key]
	switch {
	case !ok:
		return true
	case now.After(s.until):
		delete(c.suspects, key)
		return true
	}
	return versioned && s.floor > 0 && version >= s.floor
}

// written invalidates the entry of id after a write of the hooks under
// the cache that returned err and, when it succeeded, committed version
// floor: after the commit, or at once when it failed; also when its unit
// of work rolls back.
func (h *hooks[T, ID]) written(ctx context.Context, id ID, floor int64, err error) {
	var zero ID
	if err != nil && id == zero {
		return // an insert whose generated key was never set
	}
	key := h.key(id)
	// The near cache of this process is told first, and whatever the
	// outcome: a write that committed version floor, or may have,
	// leaves no older entry to this process, while the invalidation
	// Redis sends it may still be on its way.
	c, versioned := h.c, h.version != nil
	if err != nil {
		// Nothing committed, or not known: dropping is safe either way.
		c.near.written(key, floor, versioned)
		h.invalidateLater(ctx, key, 0)
		return
	}
	repository.AfterCommit(ctx, func() {
		c.near.written(key, floor, versioned)
		h.invalidateLater(ctx, key, floor)
	})
	if sc, ok := tracking.FromContext(ctx); ok && !sc.Done() {
		sc.OnRollback(func() {
			c.near.written(key, floor, versioned)
			h.invalidateLater(ctx, key, 0)
		})
	}
}

// invalidateLater starts the invalidation of the entry of key after a
// write that committed version floor (0: none to keep), and returns at
// once: the write does not wait for Redis. Until it ends, a load of key
// by this process waits for it (see settled), so that it never reads the
// entry the write made stale.
func (h *hooks[T, ID]) invalidateLater(ctx context.Context, key string, floor int64) {
	c := h.c
	c.mu.Lock()
	f := c.flights[key]
	if f == nil {
		if c.flights == nil {
			c.flights = make(map[string]*flight)
		}
		f = &flight{done: make(chan struct{})}
		c.flights[key] = f
	}
	f.n++
	c.pending.Add(1)
	c.inflight.Add(1)
	c.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer c.inflight.Done()
		h.invalidate(ctx, key, floor)
		c.mu.Lock()
		if f.n--; f.n == 0 {
			delete(c.flights, key)
			close(f.done)
		}
		c.pending.Add(-1)
		c.mu.Unlock()
	}()
}

// settled waits for the invalidations of key under way in this process,
// at most the timeout, and reports whether none is left.
func (c *Cache) settled(ctx context.Context, key string) bool {
	if c.pending.Load() == 0 {
		return true
	}
	c.mu.Lock()
	f := c.flights[key]
	c.mu.Unlock()
	if f == nil {
		return true
	}
	t := time.NewTimer(c.timeout)
	defer t.Stop()
	select {
	case <-f.done:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// Insert inserts agg, then invalidates its entry once committed.
func (h *hooks[T, ID]) Insert(ctx context.Context, agg T) error {
	err := h.next.Insert(ctx, agg)
	if typeinfo.IsNil(agg) {
		return err
	}
	h.written(ctx, h.id(agg), h.versionOf(agg), err)
	return err
}

// Update writes the changes of agg, then invalidates its entry once
// committed.
func (h *hooks[T, ID]) Update(ctx context.Context, agg T, ch repository.Changes) error {
	err := h.next.Update(ctx, agg, ch)
	if typeinfo.IsNil(agg) {
		return err
	}
	var floor int64
	if ch.Versioned {
		floor = ch.NewVersion
	}
	h.written(ctx, h.id(agg), floor, err)
	return err
}

// Delete removes agg, then invalidates its entry once committed.
func (h *hooks[T, ID]) Delete(ctx context.Context, agg T, version int64) error {
	err := h.next.Delete(ctx, agg, version)
	if typeinfo.IsNil(agg) {
		return err
	}
	var floor int64
	if h.version != nil {
		floor = version + 1 // the deleted version is never filled again
	}
	h.written(ctx, h.id(agg), floor, err)
	return err
}

// deleter is the cache in front of hooks that delete by identity.
type deleter[T any, ID comparable] struct {
	*hooks[T, ID]
	del repository.IDDeleter[ID]
}

// DeleteByID removes the aggregate with identity id with the hooks under
// the cache, then invalidates its entry once committed.
func (d *deleter[T, ID]) DeleteByID(ctx context.Context, id ID, version *int64) error {
	err := d.del.DeleteByID(ctx, id, version)
	var floor int64
	if version != nil && d.version != nil {
		floor = *version + 1
	}
	d.written(ctx, id, floor, err)
	return err
}

// broken is the cache in front of hooks it cannot serve: every hook
// fails with err.
type broken[T any, ID comparable] struct{ err error }

func (b broken[T, ID]) Select(context.Context, ID) (T, error) {
	var zero T
	return zero, b.err
}
func (b broken[T, ID]) Insert(context.Context, T) error                     { return b.err }
func (b broken[T, ID]) Update(context.Context, T, repository.Changes) error { return b.err }
func (b broken[T, ID]) Delete(context.Context, T, int64) error              { return b.err }
