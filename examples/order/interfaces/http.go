// Package interfaces is the order example's HTTP API: it decodes JSON
// requests, runs the application's use cases and encodes the orders, and
// the domain's errors, as JSON.
//
// The routes:
//
//	POST   /orders                                    place an order              201, Location
//	GET    /orders                                    list orders, in summary     200, paged: ?limit=&after=
//	                                                  filtered: ?customer=&status=&product=
//	GET    /orders/{id}                               get an order                200
//	GET    /customers/{customer}/orders               list a customer's orders    200, paged: ?limit=&after=
//	POST   /orders/{id}/items                         add an item                 201, Location
//	PATCH  /orders/{id}/items/{item}                  change an item's quantity   200
//	DELETE /orders/{id}/items/{item}                  remove an item              200
//	POST   /orders/{id}/items/{item}/discounts        apply a discount to an item 201, Location
//	DELETE /orders/{id}/items/{item}/discounts/{code} remove an item's discount   200
//	POST   /orders/{id}/ship                          ship the order              200
//	POST   /orders/{id}/cancel                        cancel the order            200
//
// A request body is one JSON object of at most 1 MiB; unknown fields are
// refused. A body must come as application/json (or with no Content-Type):
// a browser cannot send that type across origins without asking first, so
// that a page of another site cannot post a form to the API. With curl, use
// --json. Every answer is JSON: an order, a page of orders, or an error.
// Amounts (unit_price, subtotal, total) are integer cents. The client
// chooses the identity of a new order; the order numbers its items; the
// database numbers the discounts. A discount is {"code": "SPRING",
// "percent": 10}: its code is unique within its item, its percent 1 to 100,
// and an item's percents add up to 100 at most. An item's subtotal is its
// quantity times its unit price less its discounts, rounded down to the
// cent.
//
// An order is
//
//	{"id": 1, "customer": "ada",
//	 "recipient": {"name": "Ada Lovelace", "phone": "+44 20 7946 0000", "address": "12 St James's Square, London"},
//	 "status": "placed",
//	 "items": [{"id": 1, "product": "tea", "quantity": 2, "unit_price": 350, "subtotal": 630,
//	            "discounts": [{"id": 1, "code": "SPRING", "percent": 10}]}],
//	 "total": 630, "version": 1}
//
// and a page of orders is {"orders": [...], "next": "4"}: pass next as the
// after parameter to get the next page; it is absent on the last page.
// limit is 1 to 100, 20 by default.
//
// GET /orders lists orders in summary, without their items: each is
// {"id": 1, "customer": "ada", "status": "placed", "total": 700,
// "version": 1}, and the page {"orders": [...], "next": "4", "total": 9},
// where total counts the orders the filter selects on all pages. The
// filter: customer= keeps one customer's orders; status= (placed, shipped
// or cancelled) keeps the orders in that status, and several status=
// keep the orders in any of them; product= keeps the orders with an item
// of that product. The filters combine: all must hold. An empty value
// filters nothing.
//
// The values an order holds have limits, the same on every database (see
// package domain): a quantity is 1 to 2,147,483,647; a text (customer,
// product, discount code, the recipient's fields) is valid UTF-8 without
// NUL, of at most 200 characters once trimmed; an item's quantity times
// its unit price, and an order's total, fit in a signed 64-bit integer of
// cents. A request beyond them is refused with 422, never stored altered.
//
// An error is {"code": "cancelled", "message": "..."}, with the status:
//
//	3xx redirect: a path not in its clean form, such as /orders//1; the
//	    Location header gives the clean one
//	400 bad_request, invalid_page: a request that cannot be read
//	404 not_found, order_not_found, item_not_found, discount_not_found
//	405 method_not_allowed, with the Allow header
//	408 request_timeout: the body did not arrive within the server's
//	    read timeout
//	409 order_exists, concurrent_change, shipped, cancelled, duplicate_product,
//	    duplicate_discount, discount_too_large: the order's state forbids the
//	    change
//	413 too_large; 415 unsupported_media_type
//	422 invalid_order_id, invalid_customer, invalid_recipient, invalid_product,
//	    invalid_status, invalid_quantity, invalid_price, amount_too_large, no_items,
//	    invalid_discount_code, invalid_percent: the domain's rules refuse it
//	500 internal: logged, with no detail in the answer; a panic of a
//	    handler too, caught
//
// Only what the Go HTTP server answers before the API sees a request, such
// as a malformed request line or headers, is not JSON.
package interfaces

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/dddkit/dddkit/examples/order/application"
	"github.com/dddkit/dddkit/examples/order/domain"
)

// maxBody is the largest request body read.
const maxBody = 1 << 20

// api serves the routes of the package documentation.
type api struct {
	svc     *application.Service
	queries *application.Queries
	log     *slog.Logger
	mux     *http.ServeMux
}

// NewHandler returns the HTTP API over svc, which changes orders, and
// queries, which lists them. Internal errors are logged to logger
// (slog.Default() when nil).
func NewHandler(svc *application.Service, queries *application.Queries, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	a := &api{svc: svc, queries: queries, log: logger, mux: http.NewServeMux()}
	handle := func(pattern string, h func(http.ResponseWriter, *http.Request)) { a.mux.Handle(pattern, route(h)) }
	handle("POST /orders", a.placeOrder)
	handle("GET /orders", a.listSummaries)
	handle("GET /orders/{id}", a.getOrder)
	handle("GET /customers/{customer}/orders", a.listOrders)
	handle("POST /orders/{id}/items", a.addItem)
	handle("PATCH /orders/{id}/items/{item}", a.changeQuantity)
	handle("DELETE /orders/{id}/items/{item}", a.removeItem)
	handle("POST /orders/{id}/items/{item}/discounts", a.applyDiscount)
	handle("DELETE /orders/{id}/items/{item}/discounts/{code}", a.removeDiscount)
	handle("POST /orders/{id}/ship", a.ship)
	handle("POST /orders/{id}/cancel", a.cancel)
	return a
}

// route is the handler of a route of the API, as registered: the
// ServeMux's own answers (not found, method not allowed, redirects) are of
// other types.
type route func(http.ResponseWriter, *http.Request)

func (h route) ServeHTTP(w http.ResponseWriter, r *http.Request) { h(w, r) }

// ServeHTTP routes r, and answers a panic of a handler with a JSON 500,
// logged. A request that matches no route gets a JSON error, 404 or 405
// (with the Allow header), and one whose path is not clean a JSON
// redirect, as the ServeMux decides.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tw := &trackingWriter{ResponseWriter: w}
	defer a.recoverPanic(tw, r)
	if r.RequestURI == "*" { // the ServeMux answers 400
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusBadRequest, "bad_request", "no resource is *")
		return
	}
	if h, _ := a.mux.Handler(r); isRoute(h) {
		a.mux.ServeHTTP(tw, r) // sets the path's values
		return
	}
	a.muxAnswer(tw, r)
}

func isRoute(h http.Handler) bool {
	_, ok := h.(route)
	return ok
}

// muxAnswer runs the ServeMux on a request that matches no route of the
// API, or not in its clean form, and writes its answer as JSON.
func (a *api) muxAnswer(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{header: http.Header{}}
	a.mux.ServeHTTP(rec, r)
	for _, h := range []string{"Allow", "Location", "Connection"} {
		if v := rec.header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	status, code := rec.status, "not_found"
	switch {
	case status == http.StatusMethodNotAllowed:
		code = "method_not_allowed"
	case status >= 300 && status < 400 && rec.header.Get("Location") != "":
		code = "redirect"
	case status == http.StatusBadRequest:
		code = "bad_request"
	default:
		status = http.StatusNotFound
	}
	msg := http.StatusText(status)
	if code == "redirect" {
		msg = "the path in its clean form is " + rec.header.Get("Location")
	}
	writeError(w, status, code, msg)
}

// recoverPanic answers a panic of the handler of r with a JSON 500, and logs
// it with its stack. When the answer was begun already, it aborts it
// instead, so that the client sees a broken answer rather than a
// truncated one.
func (a *api) recoverPanic(w *trackingWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	a.log.ErrorContext(r.Context(), "order API: panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if w.wrote {
		panic(http.ErrAbortHandler)
	}
	writeError(w, http.StatusInternalServerError, "internal", "internal error")
}

// trackingWriter tells whether the answer was begun.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(status int) {
	t.wrote = true
	t.ResponseWriter.WriteHeader(status)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the writer underneath.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// statusRecorder keeps the status and headers of the ServeMux's answer to
// a request that matches no route, and drops its body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(status int)      { s.status = status }

// The JSON of requests.
type (
	placeOrderRequest struct {
		ID        domain.OrderID `json:"id"`
		Customer  string         `json:"customer"`
		Recipient recipientJSON  `json:"recipient"`
		Items     []itemRequest  `json:"items"`
	}
	itemRequest struct {
		Product   string       `json:"product"`
		Quantity  int          `json:"quantity"`
		UnitPrice domain.Money `json:"unit_price"`
	}
	quantityRequest struct {
		Quantity int `json:"quantity"`
	}
	discountRequest struct {
		Code    string `json:"code"`
		Percent int    `json:"percent"`
	}
)

func (it itemRequest) spec() domain.ItemSpec {
	return domain.ItemSpec{Product: it.Product, Quantity: it.Quantity, UnitPrice: it.UnitPrice}
}

// The JSON of answers.
type (
	orderJSON struct {
		ID        domain.OrderID `json:"id"`
		Customer  string         `json:"customer"`
		Recipient recipientJSON  `json:"recipient"`
		Status    domain.Status  `json:"status"`
		Items     []itemJSON     `json:"items"`
		Total     domain.Money   `json:"total"`
		Version   int64          `json:"version"`
	}
	recipientJSON struct {
		Name    string `json:"name"`
		Phone   string `json:"phone"`
		Address string `json:"address"`
	}
	itemJSON struct {
		ID        domain.ItemID  `json:"id"`
		Product   string         `json:"product"`
		Quantity  int            `json:"quantity"`
		UnitPrice domain.Money   `json:"unit_price"`
		Subtotal  domain.Money   `json:"subtotal"`
		Discounts []discountJSON `json:"discounts"`
	}
	discountJSON struct {
		ID      domain.DiscountID `json:"id"`
		Code    string            `json:"code"`
		Percent int               `json:"percent"`
	}
	pageJSON struct {
		Orders []orderJSON `json:"orders"`
		Next   string      `json:"next,omitempty"`
	}
	summaryJSON struct {
		ID       domain.OrderID `json:"id"`
		Customer string         `json:"customer"`
		Status   domain.Status  `json:"status"`
		Total    domain.Money   `json:"total"`
		Version  int64          `json:"version"`
	}
	summaryPageJSON struct {
		Orders []summaryJSON `json:"orders"`
		Next   string        `json:"next,omitempty"`
		Total  int64         `json:"total"`
	}
	errorJSON struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
)

func orderOf(o *domain.Order) orderJSON {
	r := o.Recipient()
	out := orderJSON{
		ID:        o.ID(),
		Customer:  o.Customer(),
		Recipient: recipientJSON{Name: r.Name, Phone: r.Phone, Address: r.Address},
		Status:    o.Status(),
		Items:     []itemJSON{},
		Total:     o.Total(),
		Version:   o.Version(),
	}
	for _, it := range o.Items() {
		item := itemJSON{ID: it.ID(), Product: it.Product(), Quantity: it.Quantity(), UnitPrice: it.UnitPrice(), Subtotal: it.Subtotal(), Discounts: []discountJSON{}}
		for _, d := range it.Discounts() {
			item.Discounts = append(item.Discounts, discountJSON{ID: d.ID(), Code: d.Code(), Percent: d.Percent()})
		}
		out.Items = append(out.Items, item)
	}
	return out
}

func (a *api) placeOrder(w http.ResponseWriter, r *http.Request) {
	var req placeOrderRequest
	if !a.decode(w, r, &req) {
		return
	}
	recipient, err := domain.NewRecipientInfo(req.Recipient.Name, req.Recipient.Phone, req.Recipient.Address)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	specs := make([]domain.ItemSpec, len(req.Items))
	for i, it := range req.Items {
		specs[i] = it.spec()
	}
	o, err := a.svc.PlaceOrder(r.Context(), req.ID, req.Customer, recipient, specs...)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", orderPath(o.ID()))
	writeJSON(w, http.StatusCreated, orderOf(o))
}

func (a *api) getOrder(w http.ResponseWriter, r *http.Request) {
	id, ok := orderID(w, r)
	if !ok {
		return
	}
	o, err := a.svc.Get(r.Context(), id)
	a.answer(w, r, o, err)
}

// pageParams reads the limit and after parameters of a list, or answers
// 400 and returns false.
func pageParams(w http.ResponseWriter, q url.Values) (limit int, after domain.OrderID, ok bool) {
	var err error
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_page", fmt.Sprintf("limit %q is not an integer", s))
			return 0, 0, false
		}
	}
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_page", fmt.Sprintf("after %q is not a cursor of this API", s))
			return 0, 0, false
		}
		after = domain.OrderID(n)
	}
	return limit, after, true
}

func (a *api) listSummaries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, after, ok := pageParams(w, q)
	if !ok {
		return
	}
	f := application.OrderFilter{Customer: q.Get("customer"), Product: q.Get("product")}
	for _, s := range q["status"] {
		f.Statuses = append(f.Statuses, domain.Status(s))
	}
	p, err := a.queries.ListOrders(r.Context(), f, after, limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := summaryPageJSON{Orders: make([]summaryJSON, 0, len(p.Orders)), Total: p.Total}
	for _, o := range p.Orders {
		out.Orders = append(out.Orders, summaryJSON(o))
	}
	if p.Next != 0 {
		out.Next = strconv.FormatInt(int64(p.Next), 10)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) listOrders(w http.ResponseWriter, r *http.Request) {
	limit, after, ok := pageParams(w, r.URL.Query())
	if !ok {
		return
	}
	p, err := a.svc.ListByCustomer(r.Context(), r.PathValue("customer"), after, limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := pageJSON{Orders: make([]orderJSON, 0, len(p.Orders))}
	for _, o := range p.Orders {
		out.Orders = append(out.Orders, orderOf(o))
	}
	if p.Next != 0 {
		out.Next = strconv.FormatInt(int64(p.Next), 10)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) addItem(w http.ResponseWriter, r *http.Request) {
	id, ok := orderID(w, r)
	if !ok {
		return
	}
	var req itemRequest
	if !a.decode(w, r, &req) {
		return
	}
	o, item, err := a.svc.AddItem(r.Context(), id, req.spec())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", orderPath(id)+"/items/"+strconv.FormatInt(int64(item), 10))
	writeJSON(w, http.StatusCreated, orderOf(o))
}

func (a *api) changeQuantity(w http.ResponseWriter, r *http.Request) {
	id, item, ok := itemID(w, r)
	if !ok {
		return
	}
	var req quantityRequest
	if !a.decode(w, r, &req) {
		return
	}
	o, err := a.svc.ChangeQuantity(r.Context(), id, item, req.Quantity)
	a.answer(w, r, o, err)
}

func (a *api) removeItem(w http.ResponseWriter, r *http.Request) {
	id, item, ok := itemID(w, r)
	if !ok {
		return
	}
	o, err := a.svc.RemoveItem(r.Context(), id, item)
	a.answer(w, r, o, err)
}

func (a *api) applyDiscount(w http.ResponseWriter, r *http.Request) {
	id, item, ok := itemID(w, r)
	if !ok {
		return
	}
	var req discountRequest
	if !a.decode(w, r, &req) {
		return
	}
	o, err := a.svc.ApplyDiscount(r.Context(), id, item, req.Code, req.Percent)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	code := strings.TrimSpace(req.Code) // as the order keeps it
	w.Header().Set("Location", orderPath(id)+"/items/"+strconv.FormatInt(int64(item), 10)+"/discounts/"+url.PathEscape(code))
	writeJSON(w, http.StatusCreated, orderOf(o))
}

func (a *api) removeDiscount(w http.ResponseWriter, r *http.Request) {
	id, item, ok := itemID(w, r)
	if !ok {
		return
	}
	o, err := a.svc.RemoveDiscount(r.Context(), id, item, r.PathValue("code"))
	a.answer(w, r, o, err)
}

func (a *api) ship(w http.ResponseWriter, r *http.Request) {
	id, ok := orderID(w, r)
	if !ok {
		return
	}
	o, err := a.svc.Ship(r.Context(), id)
	a.answer(w, r, o, err)
}

func (a *api) cancel(w http.ResponseWriter, r *http.Request) {
	id, ok := orderID(w, r)
	if !ok {
		return
	}
	o, err := a.svc.Cancel(r.Context(), id)
	a.answer(w, r, o, err)
}

// answer writes o, or the error.
func (a *api) answer(w http.ResponseWriter, r *http.Request, o *domain.Order, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, orderOf(o))
}

func orderPath(id domain.OrderID) string {
	return "/orders/" + strconv.FormatInt(int64(id), 10)
}

// orderID reads the path's order identity, or answers 400.
func orderID(w http.ResponseWriter, r *http.Request) (domain.OrderID, bool) {
	n, ok := pathID(w, r, "id", "order")
	return domain.OrderID(n), ok
}

// itemID reads the path's order and item identities, or answers 400.
func itemID(w http.ResponseWriter, r *http.Request) (domain.OrderID, domain.ItemID, bool) {
	id, ok := orderID(w, r)
	if !ok {
		return 0, 0, false
	}
	n, ok := pathID(w, r, "item", "item")
	return id, domain.ItemID(n), ok
}

func pathID(w http.ResponseWriter, r *http.Request, name, what string) (int64, bool) {
	s := r.PathValue(name)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("%s identity %q is not a positive integer", what, s))
		return 0, false
	}
	return n, true
}

// decode reads the request's JSON body into v, or answers 400, 408, 413
// or 415 and reports false. The answer tells what is wrong with the JSON,
// but nothing of a failure to read the body, whose error names the
// connection's addresses.
func (a *api) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json")
			return false
		}
	}
	body := &errReader{r: http.MaxBytesReader(w, r.Body, maxBody)}
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if err = dec.Decode(&struct{}{}); err == io.EOF {
			return true
		}
		if body.err == nil {
			err = errors.New("more than one JSON value")
		}
	}
	if mbe := (*http.MaxBytesError)(nil); errors.As(body.err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is larger than %d bytes", mbe.Limit))
		return false
	}
	if ne := net.Error(nil); errors.Is(body.err, os.ErrDeadlineExceeded) || errors.As(body.err, &ne) && ne.Timeout() {
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestTimeout, "request_timeout", "the body did not arrive in time")
		return false
	}
	if body.err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "the body could not be read")
		return false
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("empty body")
	}
	writeError(w, http.StatusBadRequest, "bad_request", "invalid JSON body: "+err.Error())
	return false
}

// errReader keeps the first error of r other than io.EOF: an error of the
// body's reading, not of its JSON.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// problem is how the API answers an error that wraps err.
type problem struct {
	err    error
	status int
	code   string
	// detail shows the error's own text, made of the request's values and
	// the domain's words; otherwise the message is err's text alone.
	detail bool
}

// problems maps the errors of the domain and the application to answers,
// the first match winning.
var problems = []problem{
	{domain.ErrOrderNotFound, http.StatusNotFound, "order_not_found", false},
	{domain.ErrItemNotFound, http.StatusNotFound, "item_not_found", true},
	{domain.ErrDiscountNotFound, http.StatusNotFound, "discount_not_found", true},
	{domain.ErrOrderExists, http.StatusConflict, "order_exists", false},
	{domain.ErrConcurrentChange, http.StatusConflict, "concurrent_change", false},
	{domain.ErrShipped, http.StatusConflict, "shipped", false},
	{domain.ErrCancelled, http.StatusConflict, "cancelled", false},
	{domain.ErrDuplicateProduct, http.StatusConflict, "duplicate_product", true},
	{domain.ErrDuplicateDiscount, http.StatusConflict, "duplicate_discount", true},
	{domain.ErrDiscountTooLarge, http.StatusConflict, "discount_too_large", true},
	{domain.ErrInvalidOrderID, http.StatusUnprocessableEntity, "invalid_order_id", false},
	{domain.ErrInvalidCustomer, http.StatusUnprocessableEntity, "invalid_customer", true},
	{domain.ErrInvalidContact, http.StatusUnprocessableEntity, "invalid_recipient", true},
	{domain.ErrInvalidProduct, http.StatusUnprocessableEntity, "invalid_product", true},
	{domain.ErrInvalidQuantity, http.StatusUnprocessableEntity, "invalid_quantity", false},
	{domain.ErrInvalidPrice, http.StatusUnprocessableEntity, "invalid_price", false},
	{domain.ErrAmountTooLarge, http.StatusUnprocessableEntity, "amount_too_large", true},
	{domain.ErrNoItems, http.StatusUnprocessableEntity, "no_items", false},
	{domain.ErrInvalidDiscountCode, http.StatusUnprocessableEntity, "invalid_discount_code", true},
	{domain.ErrInvalidPercent, http.StatusUnprocessableEntity, "invalid_percent", false},
	{application.ErrInvalidStatus, http.StatusUnprocessableEntity, "invalid_status", true},
	{application.ErrInvalidPage, http.StatusBadRequest, "invalid_page", true},
}

// fail answers err: with its problem's status when it has one, else 500,
// logged.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	for _, p := range problems {
		if errors.Is(err, p.err) {
			msg := p.err.Error()
			if p.detail {
				msg = err.Error()
			}
			writeError(w, p.status, p.code, msg)
			return
		}
	}
	a.log.ErrorContext(r.Context(), "order API: internal error", "method", r.Method, "path", r.URL.Path, "error", err)
	writeError(w, http.StatusInternalServerError, "internal", "internal error")
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorJSON{Code: code, Message: message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // the types written cannot fail to encode
		status, b = http.StatusInternalServerError, []byte(`{"code":"internal","message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
