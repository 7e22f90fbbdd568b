package interfaces_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/order/application"
	"github.com/dddkit/dddkit/examples/order/domain"
	"github.com/dddkit/dddkit/examples/order/infrastructure"
	"github.com/dddkit/dddkit/examples/order/infrastructure/infratest"
	"github.com/dddkit/dddkit/examples/order/interfaces"
)

// The API is tested end to end: HTTP requests to a test server over the
// application service and the repository on each backend of infratest.

// api is a test server of the API on a backend, and a client of it.
type api struct {
	t   *testing.T
	b   *infratest.Backend
	srv *httptest.Server
	log *lockedBuffer
}

func newAPI(t *testing.T, b *infratest.Backend) *api {
	repo, err := infrastructure.NewOrderRepository(b.DB)
	require.NoError(t, err)
	queries, err := infrastructure.NewOrderQueries(b.DB)
	require.NoError(t, err)
	log := &lockedBuffer{}
	srv := httptest.NewServer(interfaces.NewHandler(application.NewService(repo), application.NewQueries(queries), slog.New(slog.NewTextHandler(log, nil))))
	t.Cleanup(srv.Close)
	return &api{t: t, b: b, srv: srv, log: log}
}

// response is an answer of the API.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with a JSON body, if not empty, and returns the
// answer, which must be JSON.
func (a *api) do(method, path, body string) response {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, a.srv.URL+path, rd)
	require.NoError(a.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.srv.Client().Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	require.Equal(a.t, "application/json", resp.Header.Get("Content-Type"), "%s %s: %s", method, path, b)
	require.True(a.t, json.Valid(b), "%s %s: %s", method, path, b)
	return response{resp.StatusCode, resp.Header, b}
}

// order sends a request that must succeed with status and returns the
// order answered.
func (a *api) order(method, path, body string, status int) order {
	a.t.Helper()
	r := a.do(method, path, body)
	require.Equal(a.t, status, r.status, "%s %s: %s", method, path, r.body)
	var o order
	strictDecode(a.t, r.body, &o)
	return o
}

// fails sends a request that must fail with status and code.
func (a *api) fails(method, path, body string, status int, code string) errorBody {
	a.t.Helper()
	r := a.do(method, path, body)
	require.Equal(a.t, status, r.status, "%s %s: %s", method, path, r.body)
	var e errorBody
	strictDecode(a.t, r.body, &e)
	require.Equal(a.t, code, e.Code, "%s %s: %s", method, path, r.body)
	require.NotEmpty(a.t, e.Message)
	for _, internal := range []string{"sqlstore", "repository:", "SELECT", "orders\"", "orders`"} {
		require.NotContains(a.t, e.Message, internal, "no detail of the storage in an answer")
	}
	return e
}

func strictDecode(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), string(b))
}

// The JSON the API answers, as a client reads it.
type (
	order struct {
		ID        int64     `json:"id"`
		Customer  string    `json:"customer"`
		Recipient recipient `json:"recipient"`
		Status    string    `json:"status"`
		Items     []item    `json:"items"`
		Total     int64     `json:"total"`
		Version   int64     `json:"version"`
	}
	recipient struct {
		Name    string `json:"name"`
		Phone   string `json:"phone"`
		Address string `json:"address"`
	}
	item struct {
		ID        int64      `json:"id"`
		Product   string     `json:"product"`
		Quantity  int        `json:"quantity"`
		UnitPrice int64      `json:"unit_price"`
		Subtotal  int64      `json:"subtotal"`
		Discounts []discount `json:"discounts"`
	}
	discount struct {
		ID      int64  `json:"id"`
		Code    string `json:"code"`
		Percent int    `json:"percent"`
	}
	page struct {
		Orders []order `json:"orders"`
		Next   string  `json:"next"`
	}
	errorBody struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
)

const placeAda = `{"id": 1, "customer": "ada",
	"recipient": {"name": "Ada Lovelace", "phone": "+44 20 7946 0000", "address": "12 St James's Square, London"},
	"items": [
		{"product": "tea", "quantity": 2, "unit_price": 350},
		{"product": "coffee", "quantity": 1, "unit_price": 1200},
		{"product": "milk", "quantity": 3, "unit_price": 120}]}`

func TestPlaceAndGet(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		a := newAPI(t, b)
		r := a.do("POST", "/orders", placeAda)
		require.Equal(t, http.StatusCreated, r.status, string(r.body))
		require.Equal(t, "/orders/1", r.header.Get("Location"))
		want := `{"id": 1, "customer": "ada",
			"recipient": {"name": "Ada Lovelace", "phone": "+44 20 7946 0000", "address": "12 St James's Square, London"},
			"status": "placed",
			"items": [
				{"id": 1, "product": "tea", "quantity": 2, "unit_price": 350, "subtotal": 700, "discounts": []},
				{"id": 2, "product": "coffee", "quantity": 1, "unit_price": 1200, "subtotal": 1200, "discounts": []},
				{"id": 3, "product": "milk", "quantity": 3, "unit_price": 120, "subtotal": 360, "discounts": []}],
			"total": 2260, "version": 0}`
		assert.JSONEq(t, want, string(r.body))
		require.Equal(t, []string{"INSERT orders", "INSERT order_items"}, b.Log.Writes())

		r = a.do("GET", "/orders/1", "")
		require.Equal(t, http.StatusOK, r.status)
		assert.JSONEq(t, want, string(r.body), "read back from the database")

		a.fails("GET", "/orders/2", "", http.StatusNotFound, "order_not_found")
		e := a.fails("POST", "/orders", placeAda, http.StatusConflict, "order_exists")
		assert.Equal(t, "order: an order with this identity exists", e.Message)
		var n int
		require.NoError(t, b.Raw.Get(&n, "SELECT count(*) FROM orders"))
		require.Equal(t, 1, n)
	})
}

func TestItems(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		a := newAPI(t, b)
		a.order("POST", "/orders", placeAda, http.StatusCreated)

		// Add an item: the order numbers it; Location names it.
		r := a.do("POST", "/orders/1/items", `{"product": "sugar", "quantity": 1, "unit_price": 200}`)
		require.Equal(t, http.StatusCreated, r.status, string(r.body))
		require.Equal(t, "/orders/1/items/4", r.header.Get("Location"))
		var o order
		strictDecode(t, r.body, &o)
		require.Equal(t, item{4, "sugar", 1, 200, 200, []discount{}}, o.Items[3])
		require.Equal(t, int64(2460), o.Total)
		require.Equal(t, int64(1), o.Version)

		// Change a quantity: one UPDATE of the item, one of the order.
		b.Log.Reset()
		o = a.order("PATCH", "/orders/1/items/2", `{"quantity": 4}`, http.StatusOK)
		require.Equal(t, item{2, "coffee", 4, 1200, 4800, []discount{}}, o.Items[1])
		require.Equal(t, int64(6060), o.Total)
		require.Equal(t, []string{"UPDATE orders (total, version)", "UPDATE order_items (quantity)"}, b.Log.Writes())

		// Remove an item, then add one: its identity is new.
		o = a.order("DELETE", "/orders/1/items/4", "", http.StatusOK)
		require.Len(t, o.Items, 3)
		require.Equal(t, int64(5860), o.Total)
		r = a.do("POST", "/orders/1/items", `{"product": "honey", "quantity": 1, "unit_price": 500}`)
		require.Equal(t, http.StatusCreated, r.status, string(r.body))
		require.Equal(t, "/orders/1/items/5", r.header.Get("Location"), "item 4 is not given again")

		// What the domain refuses, and what does not exist.
		before := a.order("GET", "/orders/1", "", http.StatusOK)
		b.Log.Reset()
		a.fails("PATCH", "/orders/1/items/2", `{"quantity": 0}`, http.StatusUnprocessableEntity, "invalid_quantity")
		a.fails("PATCH", "/orders/1/items/2", `{}`, http.StatusUnprocessableEntity, "invalid_quantity")
		a.fails("PATCH", "/orders/1/items/4", `{"quantity": 2}`, http.StatusNotFound, "item_not_found")
		a.fails("DELETE", "/orders/1/items/4", "", http.StatusNotFound, "item_not_found")
		a.fails("PATCH", "/orders/9/items/1", `{"quantity": 2}`, http.StatusNotFound, "order_not_found")
		e := a.fails("POST", "/orders/1/items", `{"product": "tea", "quantity": 1, "unit_price": 350}`, http.StatusConflict, "duplicate_product")
		assert.Contains(t, e.Message, "tea")
		a.fails("POST", "/orders/1/items", `{"product": "", "quantity": 1, "unit_price": 350}`, http.StatusUnprocessableEntity, "invalid_product")
		a.fails("POST", "/orders/1/items", `{"product": "jam", "quantity": 1, "unit_price": -1}`, http.StatusUnprocessableEntity, "invalid_price")
		a.fails("POST", "/orders/9/items", `{"product": "jam", "quantity": 1, "unit_price": 1}`, http.StatusNotFound, "order_not_found")
		require.Empty(t, b.Log.Writes(), "nothing refused is written")
		require.Equal(t, before, a.order("GET", "/orders/1", "", http.StatusOK))

		// An order keeps one item at least.
		for _, it := range before.Items[1:] {
			a.order("DELETE", "/orders/1/items/"+strconv.FormatInt(it.ID, 10), "", http.StatusOK)
		}
		a.fails("DELETE", "/orders/1/items/1", "", http.StatusUnprocessableEntity, "no_items")
	})
}

// TestDiscounts applies and removes discounts of an item through the API:
// the database gives each discount its identity, which the answer shows,
// and the subtotal and the total follow.
func TestDiscounts(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		a := newAPI(t, b)
		a.order("POST", "/orders", placeAda, http.StatusCreated)

		// Apply: one UPDATE of the order, one INSERT ... RETURNING of the
		// discount, whose key the database makes.
		b.Log.Reset()
		r := a.do("POST", "/orders/1/items/2/discounts", `{"code": " SPRING ", "percent": 10}`)
		require.Equal(t, http.StatusCreated, r.status, string(r.body))
		require.Equal(t, "/orders/1/items/2/discounts/SPRING", r.header.Get("Location"))
		require.Equal(t, []string{"UPDATE orders (total, version)", "INSERT item_discounts"}, b.Log.Writes())
		var inserts []string
		for _, s := range b.Log.Statements() {
			if q := infratest.Canonical(s.SQL); strings.HasPrefix(q, `INSERT INTO "item_discounts"`) {
				inserts = append(inserts, q)
			}
		}
		require.Len(t, inserts, 1)
		assert.True(t, strings.HasSuffix(inserts[0], ` RETURNING "id"`), inserts[0])
		assert.NotContains(t, inserts[0], `("id"`, "the key is left to the database")
		if b.OneTrip {
			require.Equal(t, 2, b.Log.RoundTrips(), "load with BEGIN; save with COMMIT")
		}
		var o order
		strictDecode(t, r.body, &o)
		coffee := o.Items[1]
		require.Len(t, coffee.Discounts, 1)
		spring := coffee.Discounts[0]
		require.Positive(t, spring.ID, "the identity the database generated, not the placeholder")
		require.Equal(t, discount{spring.ID, "SPRING", 10}, spring)
		require.Equal(t, int64(1080), coffee.Subtotal, "12.00 less 10%")
		require.Equal(t, int64(700+1080+360), o.Total)
		require.Equal(t, int64(1), o.Version)
		require.Empty(t, o.Items[0].Discounts)
		require.Equal(t, o, a.order("GET", "/orders/1", "", http.StatusOK), "read back from the database")
		var stored struct {
			ID      int64 `db:"id"`
			OrderID int64 `db:"order_id"`
			ItemID  int64 `db:"item_id"`
			Code    string
			Percent int
		}
		require.NoError(t, b.Raw.Get(&stored, "SELECT id, order_id, item_id, code, percent FROM item_discounts"))
		require.Equal(t, spring.ID, stored.ID)
		require.Equal(t, [2]int64{1, 2}, [2]int64{stored.OrderID, stored.ItemID})

		// A second discount of the item, with a code to escape in paths.
		r = a.do("POST", "/orders/1/items/2/discounts", `{"code": "5% off", "percent": 5}`)
		require.Equal(t, http.StatusCreated, r.status, string(r.body))
		require.Equal(t, "/orders/1/items/2/discounts/5%25%20off", r.header.Get("Location"))
		strictDecode(t, r.body, &o)
		require.Len(t, o.Items[1].Discounts, 2)
		off := o.Items[1].Discounts[1]
		require.Greater(t, off.ID, spring.ID, "a new key")
		require.Equal(t, spring, o.Items[1].Discounts[0], "the first keeps its key")
		require.Equal(t, int64(1020), o.Items[1].Subtotal, "15% off")
		require.Equal(t, int64(2080), o.Total)

		// What the domain refuses writes nothing.
		before := a.order("GET", "/orders/1", "", http.StatusOK)
		b.Log.Reset()
		e := a.fails("POST", "/orders/1/items/2/discounts", `{"code": "SPRING", "percent": 5}`, http.StatusConflict, "duplicate_discount")
		assert.Contains(t, e.Message, "SPRING")
		a.fails("POST", "/orders/1/items/2/discounts", `{"code": "BIG", "percent": 86}`, http.StatusConflict, "discount_too_large")
		a.fails("POST", "/orders/1/items/2/discounts", `{"code": "X", "percent": 0}`, http.StatusUnprocessableEntity, "invalid_percent")
		a.fails("POST", "/orders/1/items/2/discounts", `{"code": "X", "percent": 101}`, http.StatusUnprocessableEntity, "invalid_percent")
		a.fails("POST", "/orders/1/items/2/discounts", `{"code": " ", "percent": 10}`, http.StatusUnprocessableEntity, "invalid_discount_code")
		a.fails("POST", "/orders/1/items/2/discounts", `{"code": "X", "percent": 10, "id": 5}`, http.StatusBadRequest, "bad_request")
		a.fails("POST", "/orders/1/items/9/discounts", `{"code": "X", "percent": 10}`, http.StatusNotFound, "item_not_found")
		a.fails("POST", "/orders/9/items/2/discounts", `{"code": "X", "percent": 10}`, http.StatusNotFound, "order_not_found")
		a.fails("DELETE", "/orders/1/items/2/discounts/AUTUMN", "", http.StatusNotFound, "discount_not_found")
		a.fails("DELETE", "/orders/1/items/1/discounts/SPRING", "", http.StatusNotFound, "discount_not_found")
		require.Empty(t, b.Log.Writes(), "nothing refused is written")
		require.Equal(t, before, a.order("GET", "/orders/1", "", http.StatusOK))

		// Remove one: one DELETE of its row.
		b.Log.Reset()
		o = a.order("DELETE", "/orders/1/items/2/discounts/SPRING", "", http.StatusOK)
		require.Equal(t, []string{"UPDATE orders (total, version)", "DELETE item_discounts"}, b.Log.Writes())
		require.Equal(t, []discount{off}, o.Items[1].Discounts)
		require.Equal(t, int64(1140), o.Items[1].Subtotal)
		require.Equal(t, int64(700+1140+360), o.Total)
		require.Equal(t, o, a.order("GET", "/orders/1", "", http.StatusOK))

		// Remove the item: its discounts go first.
		b.Log.Reset()
		o = a.order("DELETE", "/orders/1/items/2", "", http.StatusOK)
		require.Equal(t, []string{"UPDATE orders (total, version)", "DELETE item_discounts", "DELETE order_items"}, b.Log.Writes())
		require.Equal(t, int64(700+360), o.Total)
		var n int
		require.NoError(t, b.Raw.Get(&n, "SELECT count(*) FROM item_discounts"))
		require.Zero(t, n)
	})
}

// TestCancel cancels an order through the API: an UPDATE of its status,
// after which the order is still there and refuses every change.
func TestCancel(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		a := newAPI(t, b)
		a.order("POST", "/orders", placeAda, http.StatusCreated)
		b.Log.Reset()
		o := a.order("POST", "/orders/1/cancel", "", http.StatusOK)
		require.Equal(t, "cancelled", o.Status)
		require.Equal(t, int64(1), o.Version)
		require.Equal(t, []string{"UPDATE orders (status, version)"}, b.Log.Writes(), "a cancel is an UPDATE, not a DELETE")
		require.Equal(t, o, a.order("GET", "/orders/1", "", http.StatusOK), "the cancelled order stays")

		b.Log.Reset()
		e := a.fails("POST", "/orders/1/cancel", "", http.StatusConflict, "cancelled")
		assert.Equal(t, "order: a cancelled order cannot change", e.Message)
		a.fails("POST", "/orders/1/ship", "", http.StatusConflict, "cancelled")
		a.fails("PATCH", "/orders/1/items/1", `{"quantity": 5}`, http.StatusConflict, "cancelled")
		a.fails("POST", "/orders/1/items", `{"product": "sugar", "quantity": 1, "unit_price": 200}`, http.StatusConflict, "cancelled")
		a.fails("DELETE", "/orders/1/items/1", "", http.StatusConflict, "cancelled")
		a.fails("POST", "/orders/1/items/1/discounts", `{"code": "SPRING", "percent": 10}`, http.StatusConflict, "cancelled")
		a.fails("DELETE", "/orders/1/items/1/discounts/SPRING", "", http.StatusConflict, "cancelled")
		require.Empty(t, b.Log.Writes())

		// A shipped order cannot be cancelled.
		a.order("POST", "/orders", strings.Replace(placeAda, `"id": 1`, `"id": 2`, 1), http.StatusCreated)
		require.Equal(t, "shipped", a.order("POST", "/orders/2/ship", "", http.StatusOK).Status)
		a.fails("POST", "/orders/2/cancel", "", http.StatusConflict, "shipped")
		require.Equal(t, "shipped", a.order("GET", "/orders/2", "", http.StatusOK).Status)
		a.fails("POST", "/orders/3/cancel", "", http.StatusNotFound, "order_not_found")
	})
}

// TestListByCustomer pages through a customer's orders with the cursor the
// API returns.
func TestListByCustomer(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		a := newAPI(t, b)
		// ada has orders 1, 2, 4, 6 and 7; bob 3 and 5.
		for id := 1; id <= 7; id++ {
			customer := "ada"
			if id == 3 || id == 5 {
				customer = "bob"
			}
			body := `{"id": ` + strconv.Itoa(id) + `, "customer": "` + customer + `", "recipient": {"name": "R", "address": "A"},
				"items": [{"product": "tea", "quantity": ` + strconv.Itoa(id) + `, "unit_price": 100}]}`
			a.order("POST", "/orders", body, http.StatusCreated)
		}
		list := func(query string) page {
			t.Helper()
			r := a.do("GET", "/customers/ada/orders"+query, "")
			require.Equal(t, http.StatusOK, r.status, string(r.body))
			var p page
			strictDecode(t, r.body, &p)
			for _, o := range p.Orders {
				require.Equal(t, "ada", o.Customer)
				require.Equal(t, int(o.ID), o.Items[0].Quantity, "each order with its items")
			}
			return p
		}
		ids := func(p page) []int64 {
			out := []int64{}
			for _, o := range p.Orders {
				out = append(out, o.ID)
			}
			return out
		}

		var got [][]int64
		var cursors []string
		query := "?limit=2"
		for pages := 0; ; pages++ {
			require.Less(t, pages, 5, "the pages end")
			p := list(query)
			got = append(got, ids(p))
			if p.Next == "" {
				break
			}
			cursors = append(cursors, p.Next)
			query = "?limit=2&after=" + p.Next
		}
		require.Equal(t, [][]int64{{1, 2}, {4, 6}, {7}}, got)
		require.Equal(t, []string{"2", "6"}, cursors)

		require.Equal(t, []int64{1, 2, 4, 6, 7}, ids(list("")), "the default page holds them all")
		p := list("?limit=5")
		require.Len(t, p.Orders, 5)
		require.Empty(t, p.Next, "no next page after a full last one")
		require.Equal(t, []int64{4, 6, 7}, ids(list("?after=3")))

		r := a.do("GET", "/customers/nobody/orders", "")
		require.Equal(t, http.StatusOK, r.status)
		assert.JSONEq(t, `{"orders": []}`, string(r.body))

		a.fails("GET", "/customers/ada/orders?limit=101", "", http.StatusBadRequest, "invalid_page")
		a.fails("GET", "/customers/ada/orders?limit=-1", "", http.StatusBadRequest, "invalid_page")
		a.fails("GET", "/customers/ada/orders?limit=ten", "", http.StatusBadRequest, "invalid_page")
		a.fails("GET", "/customers/ada/orders?after=x", "", http.StatusBadRequest, "invalid_page")
	})
}

// TestListSummaries lists orders in summary through GET /orders: filtered
// by customer, by several statuses (any of them), by a product of their
// items, together, and paged by key with the total of the filter.
func TestListSummaries(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		a := newAPI(t, b)
		orders := []struct {
			customer, product, action string
		}{
			1: {"ada", "tea", ""},
			2: {"bob", "coffee", ""},
			3: {"ada", "coffee", "ship"},
			4: {"ada", "tea", "cancel"},
			5: {"bob", "tea", "ship"},
			6: {"ada", "milk", ""},
			7: {"ada", "tea", ""},
			8: {"bob", "tea", "cancel"},
		}
		for id := 1; id < len(orders); id++ {
			o := orders[id]
			body := `{"id": ` + strconv.Itoa(id) + `, "customer": "` + o.customer + `", "recipient": {"name": "R", "address": "A"},
				"items": [{"product": "` + o.product + `", "quantity": ` + strconv.Itoa(id) + `, "unit_price": 100}, {"product": "sugar", "quantity": 1, "unit_price": 5}]}`
			a.order("POST", "/orders", body, http.StatusCreated)
			if o.action != "" {
				a.order("POST", "/orders/"+strconv.Itoa(id)+"/"+o.action, "", http.StatusOK)
			}
		}
		type summary struct {
			ID       int64  `json:"id"`
			Customer string `json:"customer"`
			Status   string `json:"status"`
			Total    int64  `json:"total"`
			Version  int64  `json:"version"`
		}
		type summaryPage struct {
			Orders []summary `json:"orders"`
			Next   string    `json:"next"`
			Total  int64     `json:"total"`
		}
		list := func(query string) summaryPage {
			t.Helper()
			r := a.do("GET", "/orders"+query, "")
			require.Equal(t, http.StatusOK, r.status, string(r.body))
			var p summaryPage
			strictDecode(t, r.body, &p)
			return p
		}
		ids := func(query string) []int64 {
			t.Helper()
			p := list(query)
			out := []int64{}
			for _, o := range p.Orders {
				out = append(out, o.ID)
			}
			require.Empty(t, p.Next, "one page")
			require.Equal(t, int64(len(out)), p.Total, "the total counts the page")
			return out
		}

		all := list("")
		require.Len(t, all.Orders, 8)
		for _, s := range all.Orders {
			full := a.order("GET", "/orders/"+strconv.FormatInt(s.ID, 10), "", http.StatusOK)
			assert.Equal(t, summary{ID: full.ID, Customer: full.Customer, Status: full.Status, Total: full.Total, Version: full.Version}, s,
				"a summary holds the order's own columns")
		}
		assert.Equal(t, summary{ID: 4, Customer: "ada", Status: "cancelled", Total: 405, Version: 1}, all.Orders[3], "cancelled once")

		assert.Equal(t, []int64{1, 3, 4, 6, 7}, ids("?customer=ada"))
		assert.Equal(t, []int64{1, 2, 4, 6, 7, 8}, ids("?status=placed&status=cancelled"), "several statuses: any of them")
		assert.Equal(t, []int64{3, 5}, ids("?status=shipped"))
		assert.Equal(t, []int64{1, 4, 5, 7, 8}, ids("?product=tea"), "an order with an item of tea")
		assert.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7, 8}, ids("?product=sugar"))
		assert.Equal(t, []int64{1, 7}, ids("?customer=ada&status=placed&product=tea"), "the filters combine")
		p := list("?customer=ada&status=placed&status=cancelled&product=tea&after=1")
		require.Len(t, p.Orders, 2)
		assert.Equal(t, []int64{4, 7}, []int64{p.Orders[0].ID, p.Orders[1].ID}, "a filter after a cursor")
		assert.Equal(t, int64(3), p.Total, "the total ignores the cursor")
		assert.Equal(t, []int64{}, ids("?customer=nobody"))
		assert.Equal(t, []int64{}, ids("?product=water"))

		// Paging by key: the total counts the whole filter on every page.
		var got [][]int64
		var cursors []string
		query := "?product=tea&limit=2"
		for pages := 0; ; pages++ {
			require.Less(t, pages, 5, "the pages end")
			p := list(query)
			require.Equal(t, int64(5), p.Total)
			page := []int64{}
			for _, o := range p.Orders {
				page = append(page, o.ID)
			}
			got = append(got, page)
			if p.Next == "" {
				break
			}
			cursors = append(cursors, p.Next)
			query = "?product=tea&limit=2&after=" + p.Next
		}
		require.Equal(t, [][]int64{{1, 4}, {5, 7}, {8}}, got)
		require.Equal(t, []string{"4", "7"}, cursors)
		p = list("?status=placed&limit=3")
		require.Equal(t, "6", p.Next)
		require.Equal(t, int64(4), p.Total)
		p = list("?status=placed&limit=3&after=6")
		require.Len(t, p.Orders, 1)
		require.Empty(t, p.Next, "no next page after the last")

		a.fails("GET", "/orders?status=lost", "", http.StatusUnprocessableEntity, "invalid_status")
		a.fails("GET", "/orders?status=placed&status=Placed", "", http.StatusUnprocessableEntity, "invalid_status")
		a.fails("GET", "/orders?customer=%00", "", http.StatusUnprocessableEntity, "invalid_customer")
		a.fails("GET", "/orders?product=%FF", "", http.StatusUnprocessableEntity, "invalid_product")
		a.fails("GET", "/orders?limit=101", "", http.StatusBadRequest, "invalid_page")
		a.fails("GET", "/orders?limit=-1", "", http.StatusBadRequest, "invalid_page")
		a.fails("GET", "/orders?limit=ten", "", http.StatusBadRequest, "invalid_page")
		a.fails("GET", "/orders?after=x", "", http.StatusBadRequest, "invalid_page")
		a.fails("GET", "/orders?after=-1", "", http.StatusBadRequest, "invalid_page")
	})
}

// TestConcurrentChanges changes four items of one order at once: every
// request succeeds, the losers of the optimistic lock running again on the
// order as the winner left it, and no change is lost.
func TestConcurrentChanges(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		a := newAPI(t, b)
		a.order("POST", "/orders", `{"id": 1, "customer": "ada", "recipient": {"name": "R", "address": "A"}, "items": [
			{"product": "a", "quantity": 1, "unit_price": 1}, {"product": "b", "quantity": 1, "unit_price": 10},
			{"product": "c", "quantity": 1, "unit_price": 100}, {"product": "d", "quantity": 1, "unit_price": 1000}]}`, http.StatusCreated)
		const writers = 4
		statuses := make([]int, writers)
		bodies := make([]string, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				req, err := http.NewRequest("PATCH", a.srv.URL+"/orders/1/items/"+strconv.Itoa(i+1), strings.NewReader(`{"quantity": 5}`))
				if err != nil {
					bodies[i] = err.Error()
					return
				}
				resp, err := a.srv.Client().Do(req)
				if err != nil {
					bodies[i] = err.Error()
					return
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				statuses[i], bodies[i] = resp.StatusCode, string(body)
			})
		}
		wg.Wait()
		for i := range writers {
			require.Equal(t, http.StatusOK, statuses[i], bodies[i])
		}
		o := a.order("GET", "/orders/1", "", http.StatusOK)
		for _, it := range o.Items {
			require.Equal(t, 5, it.Quantity, "item %d", it.ID)
		}
		require.Equal(t, int64(5*1111), o.Total)
		require.Equal(t, int64(writers), o.Version, "one version per change")
	})
}

// TestBadRequests sends requests the API cannot take: each gets a JSON
// error, and nothing is written.
func TestBadRequests(t *testing.T) {
	a := newAPI(t, infratest.SQLite(t))
	a.order("POST", "/orders", placeAda, http.StatusCreated)
	a.b.Log.Reset()
	place := func(change func(s string) string) string { return change(placeAda) }
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"malformed JSON", "POST", "/orders", `{"id": 5,`, 400, "bad_request"},
		{"unknown field", "POST", "/orders", place(func(s string) string { return strings.Replace(s, `"id": 1`, `"id": 5, "discount": 10`, 1) }), 400, "bad_request"},
		{"two values", "POST", "/orders", `{"quantity": 2} {"quantity": 3}`, 400, "bad_request"},
		{"empty body", "PATCH", "/orders/1/items/1", "", 400, "bad_request"},
		{"wrong type", "PATCH", "/orders/1/items/1", `{"quantity": "2"}`, 400, "bad_request"},
		{"bad order id", "GET", "/orders/abc", "", 400, "bad_request"},
		{"zero order id", "POST", "/orders/0/cancel", "", 400, "bad_request"},
		{"bad item id", "DELETE", "/orders/1/items/x", "", 400, "bad_request"},
		{"bad discount item id", "POST", "/orders/1/items/0/discounts", `{"code": "X", "percent": 10}`, 400, "bad_request"},
		{"discount percent as text", "POST", "/orders/1/items/1/discounts", `{"code": "X", "percent": "10"}`, 400, "bad_request"},
		{"no items", "POST", "/orders", `{"id": 5, "customer": "c", "recipient": {"name": "n", "address": "a"}}`, 422, "no_items"},
		{"no customer", "POST", "/orders", `{"id": 5, "customer": " ", "recipient": {"name": "n", "address": "a"}, "items": [{"product": "p", "quantity": 1}]}`, 422, "invalid_customer"},
		{"no address", "POST", "/orders", `{"id": 5, "customer": "c", "recipient": {"name": "n"}, "items": [{"product": "p", "quantity": 1}]}`, 422, "invalid_recipient"},
		{"no id", "POST", "/orders", `{"customer": "c", "recipient": {"name": "n", "address": "a"}, "items": [{"product": "p", "quantity": 1}]}`, 422, "invalid_order_id"},
		{"zero quantity", "POST", "/orders", `{"id": 5, "customer": "c", "recipient": {"name": "n", "address": "a"}, "items": [{"product": "p"}]}`, 422, "invalid_quantity"},
		{"unknown route", "GET", "/nowhere", "", 404, "not_found"},
		{"wrong method", "PUT", "/orders/1", "", 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.t = t
			a.fails(tt.method, tt.path, tt.body, tt.status, tt.code)
		})
	}
	a.t = t
	require.Empty(t, a.b.Log.Writes())

	r := a.do("PUT", "/orders/1", "")
	assert.Contains(t, r.header.Get("Allow"), "GET", "405 says what is allowed")

	// A body that is not JSON, or too large.
	req, err := http.NewRequest("POST", a.srv.URL+"/orders", strings.NewReader("id=5"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := a.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
	big := `{"id": 5, "customer": "` + strings.Repeat("x", 2<<20) + `"}`
	a.fails("POST", "/orders", big, http.StatusRequestEntityTooLarge, "too_large")
}

// TestInternalError answers a failure of the database with 500 and a
// message that says nothing of it, and logs the error.
func TestInternalError(t *testing.T) {
	b := infratest.SQLite(t)
	a := newAPI(t, b)
	a.order("POST", "/orders", placeAda, http.StatusCreated)
	require.NoError(t, b.Raw.Close())
	e := a.fails("GET", "/orders/1", "", http.StatusInternalServerError, "internal")
	assert.Equal(t, "internal error", e.Message)
	assert.Contains(t, a.log.String(), "database is closed")
	assert.Contains(t, a.log.String(), "path=/orders/1")
}

// lockedBuffer is a bytes.Buffer safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAmountsAreExact adds an item whose subtotal fits in int64 while
// the subtotal times 100 (for the discounts' percents) does not: its
// amounts are exact, stored and read back.
func TestAmountsAreExact(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		a := newAPI(t, b)
		a.order("POST", "/orders", placeAda, http.StatusCreated)
		o := a.order("POST", "/orders/1/items", `{"product": "gold", "quantity": 1, "unit_price": 200000000000000000}`, http.StatusCreated)
		require.Equal(t, item{4, "gold", 1, 200_000_000_000_000_000, 200_000_000_000_000_000, []discount{}}, o.Items[3])
		require.Equal(t, int64(200_000_000_000_000_000+2260), o.Total)
		o = a.order("POST", "/orders/1/items/4/discounts", `{"code": "HALF", "percent": 50}`, http.StatusCreated)
		require.Equal(t, int64(100_000_000_000_000_000), o.Items[3].Subtotal)
		require.Equal(t, o, a.order("GET", "/orders/1", "", http.StatusOK), "read back")
	})
}

// TestValueLimits sends values the databases cannot all hold, or that
// overflow the amounts: each is refused with 422, the same on every
// backend, and nothing is written; values at the limits are stored and
// read back exactly.
func TestValueLimits(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		a := newAPI(t, b)
		a.order("POST", "/orders", placeAda, http.StatusCreated)

		// The largest quantity, and texts of the largest length in the
		// widest characters.
		longest := strings.Repeat("𝄞", domain.MaxTextLength)
		o := a.order("PATCH", "/orders/1/items/1", `{"quantity": 2147483647}`, http.StatusOK)
		require.Equal(t, int64(2147483647*350), o.Items[0].Subtotal)
		o = a.order("POST", "/orders/1/items", `{"product": "`+longest+`", "quantity": 1, "unit_price": 1}`, http.StatusCreated)
		o = a.order("POST", "/orders/1/items/4/discounts", `{"code": "`+longest+`", "percent": 1}`, http.StatusCreated)
		require.Equal(t, o, a.order("GET", "/orders/1", "", http.StatusOK), "read back")
		long := `{"id": 2, "customer": "` + longest + `", "recipient": {"name": "` + longest + `", "phone": "` + longest + `", "address": "` + longest + `"},
			"items": [{"product": "` + longest + `", "quantity": 2147483647, "unit_price": 4294967298}]}`
		placed := a.order("POST", "/orders", long, http.StatusCreated)
		require.Equal(t, int64(2147483647*4294967298), placed.Total)
		require.Equal(t, placed, a.order("GET", "/orders/2", "", http.StatusOK), "read back")
		r := a.do("GET", "/customers/"+url.PathEscape(longest)+"/orders", "")
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		var p page
		strictDecode(t, r.body, &p)
		require.Equal(t, []order{placed}, p.Orders)

		a.order("POST", "/orders/1/items", `{"product": "big", "quantity": 1, "unit_price": 1099511627776}`, http.StatusCreated)
		before := a.order("GET", "/orders/1", "", http.StatusOK)
		b.Log.Reset()
		tooLong := longest + "x"
		// Over the 2,704 bytes of a PostgreSQL index entry, and random, so
		// that PostgreSQL cannot compress it below them.
		rnd := rand.New(rand.NewPCG(1, 2))
		kiloBytes := make([]byte, 3000)
		for i := range kiloBytes {
			kiloBytes[i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[rnd.IntN(62)]
		}
		kilo := string(kiloBytes)
		nextID := 2
		placeWith := func(customer, name, phone, address, product string) string {
			j := func(s string) string { v, _ := json.Marshal(s); return string(v) }
			nextID++ // an order of its own for each case
			return `{"id": ` + strconv.Itoa(nextID) + `, "customer": ` + j(customer) + `, "recipient": {"name": ` + j(name) + `, "phone": ` + j(phone) + `, "address": ` + j(address) + `},
				"items": [{"product": ` + j(product) + `, "quantity": 1, "unit_price": 1}]}`
		}
		tests := []struct {
			name, method, path, body string
			code                     string
		}{
			{"quantity times price over int64", "POST", "/orders/1/items", `{"product": "x", "quantity": 2147483647, "unit_price": 9223372036854775807}`, "amount_too_large"},
			{"total over int64", "POST", "/orders/1/items", `{"product": "x", "quantity": 1, "unit_price": 9223372036854775807}`, "amount_too_large"},
			{"quantity change over int64", "PATCH", "/orders/1/items/5", `{"quantity": 2147483647}`, "amount_too_large"},
			{"order total over int64", "POST", "/orders", strings.Replace(placeWith("c", "n", "", "a", "x"), `"unit_price": 1`, `"unit_price": 9223372036854775807}, {"product": "y", "quantity": 1, "unit_price": 1`, 1), "amount_too_large"},
			{"quantity over int32", "PATCH", "/orders/1/items/1", `{"quantity": 2147483648}`, "invalid_quantity"},
			{"largest quantity", "POST", "/orders/1/items", `{"product": "x", "quantity": 9223372036854775807, "unit_price": 350}`, "invalid_quantity"},
			{"new order quantity over int32", "POST", "/orders", strings.Replace(placeWith("c", "n", "", "a", "x"), `"quantity": 1`, `"quantity": 2147483648`, 1), "invalid_quantity"},
			{"NUL in customer", "POST", "/orders", placeWith("a\x00b", "n", "", "a", "x"), "invalid_customer"},
			{"NUL in name", "POST", "/orders", placeWith("c", "n\x00", "", "a", "x"), "invalid_recipient"},
			{"NUL in phone", "POST", "/orders", placeWith("c", "n", "\x00", "a", "x"), "invalid_recipient"},
			{"NUL in address", "POST", "/orders", placeWith("c", "n", "", "a\x00", "x"), "invalid_recipient"},
			{"NUL in product", "POST", "/orders", placeWith("c", "n", "", "a", "x\x00"), "invalid_product"},
			{"NUL in added product", "POST", "/orders/1/items", `{"product": "x\u0000", "quantity": 1, "unit_price": 1}`, "invalid_product"},
			{"NUL in code", "POST", "/orders/1/items/1/discounts", `{"code": "A\u0000", "percent": 10}`, "invalid_discount_code"},
			{"long customer", "POST", "/orders", placeWith(tooLong, "n", "", "a", "x"), "invalid_customer"},
			{"long name", "POST", "/orders", placeWith("c", tooLong, "", "a", "x"), "invalid_recipient"},
			{"long address", "POST", "/orders", placeWith("c", "n", "", kilo, "x"), "invalid_recipient"},
			{"long product", "POST", "/orders", placeWith("c", "n", "", "a", kilo), "invalid_product"},
			{"long added product", "POST", "/orders/1/items", `{"product": "` + kilo + `", "quantity": 1, "unit_price": 1}`, "invalid_product"},
			{"long code", "POST", "/orders/1/items/1/discounts", `{"code": "` + kilo + `", "percent": 10}`, "invalid_discount_code"},
			{"NUL in listed customer", "GET", "/customers/a%00b/orders", "", "invalid_customer"},
			{"invalid UTF-8 in listed customer", "GET", "/customers/a%FFb/orders", "", "invalid_customer"},
			{"long listed customer", "GET", "/customers/" + kilo + "/orders", "", "invalid_customer"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a.t = t
				e := a.fails(tt.method, tt.path, tt.body, http.StatusUnprocessableEntity, tt.code)
				assert.NotContains(t, e.Message, "\x00")
			})
		}
		a.t = t
		a.fails("DELETE", "/orders/1/items/1/discounts/A%00", "", http.StatusNotFound, "discount_not_found")
		require.Empty(t, b.Log.Writes(), "nothing refused is written")
		require.Equal(t, before, a.order("GET", "/orders/1", "", http.StatusOK))
		for id := 3; id <= nextID; id++ {
			a.fails("GET", "/orders/"+strconv.Itoa(id), "", http.StatusNotFound, "order_not_found")
		}
		require.NotContains(t, a.log.String(), "internal error")
	})
}

// TestRedirectIsJSON checks the answers that do not come from a route's
// use case but from the ServeMux: its redirect of a path not in its clean
// form, and its 400 of a request for *.
func TestRedirectIsJSON(t *testing.T) {
	a := newAPI(t, infratest.SQLite(t))
	a.order("POST", "/orders", placeAda, http.StatusCreated)

	// Not followed, to see the redirect itself.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/orders//1", "/orders/2/../1"} {
		req, err := http.NewRequest("GET", a.srv.URL+path, nil)
		require.NoError(t, err)
		req.URL.Opaque = path // as sent, not cleaned by the client
		resp, err := client.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode, "%s: %s", path, body)
		require.Equal(t, "/orders/1", resp.Header.Get("Location"))
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"), string(body))
		var e errorBody
		strictDecode(t, body, &e)
		require.Equal(t, "redirect", e.Code)
	}

	resp := rawRequest(t, a.srv.Listener.Addr().String(), "GET * HTTP/1.1\r\nHost: x\r\n\r\n")
	require.Equal(t, http.StatusBadRequest, resp.status, string(resp.body))
	require.Equal(t, "application/json", resp.header.Get("Content-Type"), string(resp.body))
	var e errorBody
	strictDecode(t, resp.body, &e)
	require.Equal(t, "bad_request", e.Code)
}

// TestPanicIsJSON answers a panic of a handler with a JSON 500, logged
// with its stack, and goes on serving.
func TestPanicIsJSON(t *testing.T) {
	log := &lockedBuffer{}
	srv := httptest.NewServer(interfaces.NewHandler(application.NewService(panicking{}), nil, slog.New(slog.NewTextHandler(log, nil))))
	t.Cleanup(srv.Close)
	p := &api{t: t, srv: srv, log: log}
	e := p.fails("GET", "/orders/1", "", http.StatusInternalServerError, "internal")
	assert.Equal(t, "internal error", e.Message)
	assert.Contains(t, log.String(), "the repository broke")
	assert.Contains(t, log.String(), "panicking.Find")
	// The server goes on.
	p.fails("GET", "/orders/x", "", http.StatusBadRequest, "bad_request")
}

// panicking is a repository whose every method panics.
type panicking struct{ domain.Repository }

func (panicking) Find(context.Context, domain.OrderID) (*domain.Order, error) {
	panic("the repository broke")
}

// TestSlowBody sends a request whose body stops coming: when the server's
// read timeout ends it, the answer is a JSON 408 that names no address of
// the connection, and nothing is written.
func TestSlowBody(t *testing.T) {
	b := infratest.SQLite(t)
	repo, err := infrastructure.NewOrderRepository(b.DB)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(interfaces.NewHandler(application.NewService(repo), nil, slog.New(slog.NewTextHandler(io.Discard, nil))))
	srv.Config.ReadTimeout = time.Second // for the headers and the body; the headers come at once
	srv.Start()
	t.Cleanup(srv.Close)

	// The headers and the start of the body, then nothing: the client
	// waits for the answer, which the server's timeout brings.
	resp := rawRequest(t, srv.Listener.Addr().String(),
		"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"+`{"id": 1, "customer": "ada",`)
	require.Equal(t, http.StatusRequestTimeout, resp.status, string(resp.body))
	require.Equal(t, "application/json", resp.header.Get("Content-Type"), string(resp.body))
	var e errorBody
	strictDecode(t, resp.body, &e)
	require.Equal(t, "request_timeout", e.Code)
	host, _, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	require.NotContains(t, string(resp.body), host, "no address of the connection")
	require.NotContains(t, string(resp.body), "tcp")
	require.Empty(t, b.Log.Writes())
}

// rawRequest sends raw, as it is, on a new connection to addr and reads
// the answer, waiting for it 30 seconds at most.
func rawRequest(t *testing.T, addr, raw string) response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	_, err = io.WriteString(conn, raw)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{resp.StatusCode, resp.Header, body}
}
