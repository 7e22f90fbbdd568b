package repository_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/tracking"
)

// tagged is a root without an ID method: its identity is its field
// tagged `ddd:"id"`, read by the domain through Key.
type tagged struct {
	key     string `ddd:"id"`
	n       int
	version int64 `ddd:"version"`
}

func (a *tagged) Key() string { return a.key }

// taggedStore is an in-memory store of tagged roots.
type taggedStore struct{ rows map[string]*tagged }

func (s *taggedStore) Select(_ context.Context, id string) (*tagged, error) {
	r, ok := s.rows[id]
	if !ok {
		return nil, repository.ErrNotFound
	}
	return tracking.Copy(r)
}

func (s *taggedStore) Insert(_ context.Context, a *tagged) error {
	c, err := tracking.Copy(a)
	s.rows[a.key] = c
	return err
}

func (s *taggedStore) Update(_ context.Context, a *tagged, ch repository.Changes) error {
	if s.rows[a.key] == nil || s.rows[a.key].version != ch.OldVersion {
		return repository.ErrConflict
	}
	c, err := tracking.Copy(a)
	s.rows[a.key] = c
	return err
}

func (s *taggedStore) Delete(_ context.Context, a *tagged, _ int64) error {
	delete(s.rows, a.key)
	return nil
}

// TestRootIdentityByTag checks a root whose identity is its field tagged
// `ddd:"id"`: the identity map of a unit of work knows it by that field,
// through Find, Save, Track and Remove.
func TestRootIdentityByTag(t *testing.T) {
	ctx := context.Background()
	store := &taggedStore{rows: map[string]*tagged{}}
	r, err := repository.NewSupport[*tagged, string](store)
	require.NoError(t, err)
	require.NoError(t, r.Save(ctx, &tagged{key: "a", n: 1}))
	require.NoError(t, tracking.InScope(ctx, func(ctx context.Context) error {
		b := &tagged{key: "b"}
		require.NoError(t, r.Save(ctx, b))
		again, err := r.Find(ctx, "b")
		require.NoError(t, err)
		assert.Same(t, b, again, "remembered by its tagged field when inserted")
		a, err := r.Find(ctx, "a")
		require.NoError(t, err)
		tracked, err := r.Track(ctx, []*tagged{{key: "a"}})
		require.NoError(t, err)
		assert.Same(t, a, tracked[0], "and when found")
		require.NoError(t, r.Remove(ctx, a))
		_, err = r.Find(ctx, "a")
		assert.ErrorIs(t, err, repository.ErrNotFound, "and forgotten when removed")
		return nil
	}))
	require.NoError(t, r.Update(ctx, "b", func(_ context.Context, b *tagged) error { b.n = 2; return nil }))
	assert.Equal(t, &tagged{key: "b", n: 2, version: 1}, store.rows["b"])
}

type untagged struct{ key string }

func (a *untagged) Key() string { return a.key }

type untaggedStore struct{}

func (untaggedStore) Select(context.Context, string) (*untagged, error) { return nil, nil }
func (untaggedStore) Insert(context.Context, *untagged) error           { return nil }
func (untaggedStore) Update(context.Context, *untagged, repository.Changes) error {
	return nil
}
func (untaggedStore) Delete(context.Context, *untagged, int64) error { return nil }

type wrongIDStore struct{}

func (wrongIDStore) Select(context.Context, int) (*tagged, error)              { return nil, nil }
func (wrongIDStore) Insert(context.Context, *tagged) error                     { return nil }
func (wrongIDStore) Update(context.Context, *tagged, repository.Changes) error { return nil }
func (wrongIDStore) Delete(context.Context, *tagged, int64) error              { return nil }

// TestRootWithoutIdentity checks that a root with neither an ID method
// nor a field tagged `ddd:"id"` of the repository's identity type is
// refused by NewSupport, with the fix.
func TestRootWithoutIdentity(t *testing.T) {
	_, err := repository.NewSupport[*untagged, string](untaggedStore{})
	assert.ErrorIs(t, err, repository.ErrUnsupported)
	assert.ErrorContains(t, err, "*repository_test.untagged: unsupported type: it has no identity of type string: tag the field that holds it `ddd:\"id\"`, or give it a method ID() string")

	_, err = repository.NewSupport[*tagged, int](wrongIDStore{})
	assert.ErrorIs(t, err, repository.ErrUnsupported)
	assert.ErrorContains(t, err, "its identity, field key tagged `ddd:\"id\"`, is of type string, not int")
}
