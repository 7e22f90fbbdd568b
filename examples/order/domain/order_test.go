package domain_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/order/domain"
)

func newOrder(t *testing.T) *domain.Order {
	t.Helper()
	r, err := domain.NewRecipientInfo(" Ada ", "+44", " London ")
	require.NoError(t, err)
	a, err := domain.NewOrderItem(1, "tea", 2, 350)
	require.NoError(t, err)
	b, err := domain.NewOrderItem(2, "coffee", 1, 1200)
	require.NoError(t, err)
	o, err := domain.NewOrder(7, "ada", r, a, b)
	require.NoError(t, err)
	return o
}

func TestTotalFollowsItems(t *testing.T) {
	o := newOrder(t)
	assert.Equal(t, domain.Money(1900), o.Total(), "placing computes the total")
	require.NoError(t, o.ChangeQuantity(2, 3))
	assert.Equal(t, domain.Money(4300), o.Total(), "a quantity change recomputes it")
	it, err := domain.NewOrderItem(o.NextItemID(), "milk", 1, 120)
	require.NoError(t, err)
	require.NoError(t, o.AddItem(it))
	assert.Equal(t, domain.Money(4420), o.Total(), "an added item counts")
	require.NoError(t, o.RemoveItem(1))
	assert.Equal(t, domain.Money(3720), o.Total(), "a removed item no longer counts")
	assert.Equal(t, "37.20", o.Total().String())
	assert.Equal(t, domain.ItemID(4), o.NextItemID())
}

func TestBusinessRules(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		run    func(o *domain.Order) error
		want   error
	}{
		{"zero quantity", "quantities must be positive", func(o *domain.Order) error { return o.ChangeQuantity(1, 0) }, domain.ErrInvalidQuantity},
		{"unknown item", "only items of the order can change", func(o *domain.Order) error { return o.ChangeQuantity(9, 1) }, domain.ErrItemNotFound},
		{"last item", "an order keeps at least one item", func(o *domain.Order) error {
			if err := o.RemoveItem(1); err != nil {
				return err
			}
			return o.RemoveItem(2)
		}, domain.ErrNoItems},
		{"shipped", "a shipped order cannot change", func(o *domain.Order) error {
			if err := o.Ship(); err != nil {
				return err
			}
			return o.ChangeQuantity(1, 5)
		}, domain.ErrShipped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrder(t)
			assert.ErrorIs(t, tt.run(o), tt.want, tt.reason)
		})
	}
	_, err := domain.NewOrderItem(1, "x", -1, 1)
	assert.ErrorIs(t, err, domain.ErrInvalidQuantity)
	_, err = domain.NewRecipientInfo("", "1", "x")
	assert.ErrorIs(t, err, domain.ErrInvalidContact)
	_, err = domain.NewOrder(1, "c", domain.RecipientInfo{Name: "a", Address: "b"})
	assert.ErrorIs(t, err, domain.ErrNoItems)
}
