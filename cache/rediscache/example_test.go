package rediscache_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/rueidis"

	"github.com/dddkit/dddkit/cache/rediscache"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

// Cart is an aggregate: its repository is cached, and business code does
// not see it.
type Cart struct {
	id      int64  `db:"id"`
	owner   string `db:"owner"`
	version int64  `db:"version" ddd:"version"`
}

func (c *Cart) ID() int64 { return c.id }

// Example puts a Redis cache in front of a repository of carts. It needs
// a Redis server, so it is compiled but not run.
func Example() {
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{"127.0.0.1:6379"}, DisableCache: true})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	cache := rediscache.New(client,
		rediscache.WithPrefix("shop:"),
		rediscache.WithObserver(func(_ context.Context, e rediscache.Event) {
			if e.Kind == rediscache.Failed {
				log.Print(e.Err) // Redis failed: the database was read instead
			}
		}))

	x := sqlx.MustOpen("sqlite", "file:shop.db")
	defer x.Close()
	db, err := sqlstore.NewSQL(x)
	if err != nil {
		log.Fatal(err)
	}
	m, err := sqlstore.NewMapping[*Cart](sqlstore.Table{Name: "carts"})
	if err != nil {
		log.Fatal(err)
	}
	carts, err := sqlstore.NewRepository[*Cart, int64](db, m, rediscache.Wrap[*Cart, int64](cache))
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	cart, err := carts.Find(ctx, 1) // from Redis when it holds it
	if err != nil {
		log.Fatal(err)
	}
	cart.owner = "bob"
	if err := carts.Save(ctx, cart); err != nil { // checked by the version; drops the entry once committed
		log.Fatal(err)
	}
	fmt.Println(cart.version)
}

// ExampleWithNear adds a near cache: the client keeps its client-side
// caching on (no DisableCache), and a Find that the process holds costs no
// call to Redis. It needs a Redis server, so it is compiled but not run.
func ExampleWithNear() {
	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{"127.0.0.1:6379"},
		CacheSizeEachConn: 64 << 20, // bytes of entries kept per connection
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	cache := rediscache.New(client,
		rediscache.WithPrefix("shop:"),
		rediscache.WithNear(10000, time.Minute), // at most 10,000 aggregates, each for a minute
		rediscache.WithObserver(func(_ context.Context, e rediscache.Event) {
			if e.Kind == rediscache.NearHit {
				log.Print("found in the process: ", e.Key)
			}
		}))

	x := sqlx.MustOpen("sqlite", "file:shop.db")
	defer x.Close()
	db, err := sqlstore.NewSQL(x)
	if err != nil {
		log.Fatal(err)
	}
	m, err := sqlstore.NewMapping[*Cart](sqlstore.Table{Name: "carts"})
	if err != nil {
		log.Fatal(err)
	}
	carts, err := sqlstore.NewRepository[*Cart, int64](db, m, rediscache.Wrap[*Cart, int64](cache))
	if err != nil {
		log.Fatal(err)
	}
	cart, err := carts.Find(context.Background(), 1) // a copy of its own, tracked as any load
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cart.owner)
}

// ExampleDial makes the cache and its client at once: the service starts
// even while Redis is down, reading the database until Redis is up. It
// needs a Redis server to be of use, so it is compiled but not run.
func ExampleDial() {
	cache, err := rediscache.Dial(rueidis.ClientOption{InitAddress: []string{"127.0.0.1:6379"}, DisableCache: true},
		rediscache.WithPrefix("shop:"))
	if err != nil {
		log.Fatal(err) // options rueidis refuses, not Redis being down
	}
	defer cache.Close() // closes the client Dial made
	fmt.Println("started")
}
