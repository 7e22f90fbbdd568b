package infrastructure

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"

	"github.com/dddkit/dddkit/cache/rediscache"
	"github.com/dddkit/dddkit/examples/order/domain"
	"github.com/dddkit/dddkit/repository"
)

// OpenCache connects to the Redis server of url (redis://host:6379/0, as
// rueidis.ParseURL reads it) and returns a cache of orders whose keys
// start with prefix and live for ttl (0: the cache's default), observed
// by observe (which may be nil). closeCache closes the connection. When
// Redis is down, it returns the cache all the same: the orders are read
// from the database until it connects (see rediscache.Dial).
// Give [CacheOrders] of it to [NewOrderRepository].
func OpenCache(url, prefix string, ttl time.Duration, observe func(rediscache.Event)) (c *rediscache.Cache, closeCache func(), err error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, nil, fmt.Errorf("open Redis: %w", err)
	}
	opt.DisableCache = true
	opts := []rediscache.Option{rediscache.WithPrefix(prefix), rediscache.WithTTL(ttl, ttl/10)}
	if observe != nil {
		opts = append(opts, rediscache.WithObserver(func(_ context.Context, e rediscache.Event) { observe(e) }))
	}
	c, err = rediscache.Dial(opt, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("open Redis: %w", err)
	}
	return c, c.Close, nil
}

// CacheOrders is the option of [NewOrderRepository] that puts c in front
// of the orders: Find reads Redis first, and saves drop what they changed
// once committed.
func CacheOrders(c *rediscache.Cache) repository.Option {
	return rediscache.Wrap[*domain.Order, domain.OrderID](c)
}
