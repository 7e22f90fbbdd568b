package rediscache_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/cache/rediscache"
	"github.com/dddkit/dddkit/repository"
)

// TestKeysAndTTL: a key is the prefix, the mapping's fingerprint, the
// schema version and the identity; another schema version reads none of
// the entries of the one before; entries live for the TTL and up to the
// jitter more.
func TestKeysAndTTL(t *testing.T) {
	e := sqliteEnv(t)
	ctx := context.Background()
	const ttl, jitter = time.Hour, 10 * time.Minute
	v1 := e.orders(t, e.cache(nil, rediscache.WithSchemaVersion("v1"), rediscache.WithTTL(ttl, jitter)))
	require.NoError(t, v1.Save(ctx, &order{id: 42, status: "new"}))
	_, err := v1.Find(ctx, 42)
	require.NoError(t, err)
	keys, err := e.redis.Do(ctx, e.redis.B().Keys().Pattern(e.prefix+"*").Build()).AsStrSlice()
	require.NoError(t, err)
	require.Len(t, keys, 1)
	fp := v1.Store().Fingerprint()
	assert.Equal(t, e.prefix+fp+".v1:42", keys[0])
	pttl, err := e.redis.Do(ctx, e.redis.B().Pttl().Key(keys[0]).Build()).AsInt64()
	require.NoError(t, err)
	assert.Greater(t, pttl, (ttl - time.Minute).Milliseconds())
	assert.LessOrEqual(t, pttl, (ttl + jitter).Milliseconds())

	e.events.take()
	v2 := e.orders(t, e.cache(nil, rediscache.WithSchemaVersion("v2")))
	_, err = v2.Find(ctx, 42)
	require.NoError(t, err)
	assert.Equal(t, []rediscache.Kind{rediscache.Miss, rediscache.Filled}, e.events.take(), "another schema version: another key")
	_, err = v1.Find(ctx, 42)
	require.NoError(t, err)
	assert.Equal(t, []rediscache.Kind{rediscache.Hit}, e.events.take())
}

// memHooks store orders in a map, and have no codec.
type memHooks map[int64]*order

func (m memHooks) Select(_ context.Context, id int64) (*order, error) {
	if o, ok := m[id]; ok {
		return o, nil
	}
	return nil, repository.ErrNotFound
}
func (m memHooks) Insert(_ context.Context, o *order) error { m[o.id] = o; return nil }
func (m memHooks) Update(_ context.Context, o *order, _ repository.Changes) error {
	m[o.id] = o
	return nil
}
func (m memHooks) Delete(_ context.Context, o *order, _ int64) error { delete(m, o.id); return nil }

// TestNoCodec: in front of hooks without a codec, every operation fails
// with ErrNoCodec, and nothing is written.
func TestNoCodec(t *testing.T) {
	c := rediscache.New(nil)
	hooks := memHooks{}
	s, err := repository.NewSupport[*order, int64](hooks, rediscache.Wrap[*order, int64](c))
	require.NoError(t, err)
	ctx := context.Background()
	assert.ErrorIs(t, s.Save(ctx, &order{id: 1}), rediscache.ErrNoCodec)
	assert.Empty(t, hooks)
	_, err = s.Find(ctx, 1)
	assert.ErrorIs(t, err, rediscache.ErrNoCodec)
	assert.True(t, strings.Contains(rediscache.ErrNoCodec.Error(), "Codec"))
	assert.False(t, errors.Is(err, repository.ErrNotFound))
}

func TestKindString(t *testing.T) {
	for k, want := range map[rediscache.Kind]string{
		rediscache.Hit: "hit", rediscache.Miss: "miss", rediscache.Bypass: "bypass", rediscache.Filled: "filled",
		rediscache.Refused: "refused", rediscache.Invalidated: "invalidated", rediscache.Failed: "failed", 0: "Kind(0)",
	} {
		assert.Equal(t, want, k.String())
	}
}
