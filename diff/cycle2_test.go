package diff_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/diff"
)

type selfMap struct{ M map[string]any }

type selfSlice []selfSlice

type holder struct{ S selfSlice }

func TestCompareCyclesThroughContainers(t *testing.T) {
	m1, m2 := map[string]any{}, map[string]any{}
	m1["self"], m2["self"] = m1, m2
	_, err := diff.Compare(&selfMap{m1}, &selfMap{m2})
	require.ErrorIs(t, err, diff.ErrCycle, "a map that holds itself is an error, not a stack overflow")

	s1, s2 := make(selfSlice, 1), make(selfSlice, 1)
	s1[0], s2[0] = s1, s2
	_, err = diff.Compare(&holder{s1}, &holder{s2})
	require.ErrorIs(t, err, diff.ErrCycle, "a slice that holds itself is an error")
}

type priceRef struct{ cents int64 }

func (p *priceRef) Equal(o *priceRef) bool { return p.cents == o.cents }

type withPriceRef struct{ price *priceRef }

type ifaceID struct {
	id any `ddd:"id"`
}

type withIfaceIDs struct{ Items []*ifaceID }

func TestComparePointerWithEqualAndInterfaceIDs(t *testing.T) {
	r, err := diff.Compare(&withPriceRef{&priceRef{1}}, &withPriceRef{&priceRef{2}})
	require.NoError(t, err, "a pointer type with an Equal method is followed, not called")
	require.Equal(t, "price.cents: 1 -> 2", r.String())

	_, err = diff.Compare(&withIfaceIDs{[]*ifaceID{{id: []int{1}}}}, &withIfaceIDs{[]*ifaceID{{id: []int{1}}}})
	require.ErrorIs(t, err, diff.ErrUnsupported, "an identity held in an interface is refused up front")
}
