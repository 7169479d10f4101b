package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/memcell/memcell"
)

// Validation is the outcome of validating a read against its KV copy, from
// the Memcell-Validation header; empty when the read was not validated.
// For a page or a batch it is the worst outcome among the MemCells.
type Validation string

// The outcomes of a validated read.
const (
	ValidationConsistent   Validation = "consistent"
	ValidationInconsistent Validation = "inconsistent"
	ValidationMissing      Validation = "missing"
	ValidationError        Validation = "error"
	ValidationPending      Validation = "pending" // the KV write is still queued (async mode)
)

// Mirror is what became of a write's KV copy, from the Memcell-Mirror
// header. A failed KV write never fails the request.
type Mirror string

// The fates of a write's KV copy.
const (
	MirrorOK       Mirror = "ok"       // written
	MirrorStale    Mirror = "stale"    // a newer copy or a tombstone was there already
	MirrorFailed   Mirror = "failed"   // not written; recorded for repair
	MirrorSkipped  Mirror = "skipped"  // mirroring off, or nothing to write
	MirrorDeferred Mirror = "deferred" // waiting for a transaction
	MirrorQueued   Mirror = "queued"   // queued, applied behind the answer (async mode)
)

// APIError is an error answer of the API. It wraps the root package's sentinel
// error for its status, so that errors.Is(err, memcell.ErrNotFound) holds
// for a 404:
//
//	400, 413, 415  memcell.ErrInvalid
//	404            memcell.ErrNotFound
//	409            memcell.ErrConflict
//	503            memcell.ErrUnavailable
//
// Other statuses (401, 403, 500) wrap nothing; Code tells them apart.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the API's error code, e.g. "not_found", "invalid_argument".
	Code string
	// Message is the API's message, e.g. "field keywords: at most 100
	// values, got 101".
	Message string
	// RequestID is the answer's X-Request-Id, under which the server logged
	// the request.
	RequestID string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("memcell API: %d %s: %s", e.Status, e.Code, e.Message)
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// Unwrap returns the root package's sentinel error for the status, or nil.
func (e *APIError) Unwrap() error {
	switch e.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return memcell.ErrInvalid
	case http.StatusNotFound:
		return memcell.ErrNotFound
	case http.StatusConflict:
		return memcell.ErrConflict
	case http.StatusServiceUnavailable:
		return memcell.ErrUnavailable
	}
	return nil
}

// ErrUnexpectedAnswer is wrapped by the errors of answers the client cannot
// read: a status the route does not give, or a body that is not what the
// API documents.
var ErrUnexpectedAnswer = errors.New("client: unexpected answer")

// Option configures a Client.
type Option func(*options)

type options struct {
	token string
	http  *http.Client
}

// Token makes the client send Authorization: Bearer token with every
// request (the server's API token).
func Token(token string) Option { return func(o *options) { o.token = token } }

// HTTPClient makes the client send its requests through c instead of a
// new http.Client (for timeouts, transports, TLS).
func HTTPClient(c *http.Client) Option { return func(o *options) { o.http = c } }

// ReadOption sets how a read is validated against the KV copies.
type ReadOption func(*readOptions)

type readOptions struct{ validate *bool }

// Validate overrides the server's default for this read: Get validates by
// default, Find and BatchGet do not.
func Validate(v bool) ReadOption { return func(o *readOptions) { o.validate = &v } }

func readOpts(opts []ReadOption) readOptions {
	var o readOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Client calls memcell's REST API with the root package's types. It is safe
// for concurrent use.
type Client struct {
	api *APIClient
}

// New returns a client of the API at baseURL (e.g.
// "http://127.0.0.1:8080").
func New(baseURL string, opts ...Option) (*Client, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	var copts []ClientOption
	if o.http != nil {
		copts = append(copts, WithHTTPClient(o.http))
	}
	if o.token != "" {
		auth := "Bearer " + o.token
		copts = append(copts, WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", auth)
			return nil
		}))
	}
	api, err := NewClient(baseURL, copts...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Client{api: api}, nil
}

// API returns the generated client the Client sends through, with the same
// base URL, token and http.Client, for the routes Client does not wrap.
func (c *Client) API() *APIClient { return c.api }

// Get returns the live MemCell with the id, and the outcome of validating
// it against its KV copy (validated unless Validate(false) or the server's
// flags say otherwise). A missing or soft-deleted MemCell is an error
// wrapping memcell.ErrNotFound.
func (c *Client) Get(ctx context.Context, id memcell.ID, opts ...ReadOption) (*memcell.MemCell, Validation, error) {
	o := readOpts(opts)
	res, err := c.api.GetMemCell(ctx, id.String(), &GetMemCellParams{Validate: o.validate})
	body, err := answer(res, err, "get "+id.String(), http.StatusOK)
	if err != nil {
		return nil, "", err
	}
	m, err := decodeMemCell(body)
	if err != nil {
		return nil, "", err
	}
	return m, Validation(res.Header.Get("Memcell-Validation")), nil
}

// Append stores a new MemCell and returns it as stored (with its id,
// revision and dates). m.ID is sent when set; the fields the store manages
// (revision, dates, deletion marks) are not sent. A duplicate id is an error
// wrapping memcell.ErrConflict; a MemCell the server refuses, one wrapping
// memcell.ErrInvalid.
func (c *Client) Append(ctx context.Context, m *memcell.MemCell) (*memcell.MemCell, Mirror, error) {
	body, err := inputBody(m)
	if err != nil {
		return nil, "", err
	}
	res, err := c.api.CreateMemCellWithBody(ctx, "application/json", bytes.NewReader(body))
	return memCellAnswer(res, err, "append", http.StatusCreated)
}

// Update sets the given top-level fields of a live MemCell (a nil value
// unsets one; timestamp cannot be unset) and returns it as stored. Values
// are sent as JSON: time.Time values as RFC 3339 dates.
func (c *Client) Update(ctx context.Context, id memcell.ID, fields map[string]any) (*memcell.MemCell, Mirror, error) {
	body, err := json.Marshal(fields)
	if err != nil {
		return nil, "", fmt.Errorf("client: update %s: %w", id, err)
	}
	res, err := c.api.UpdateMemCellWithBody(ctx, id.String(), "application/json", bytes.NewReader(body))
	return memCellAnswer(res, err, "update "+id.String(), http.StatusOK)
}

// SoftDelete marks a live MemCell deleted, by deletedBy when not empty. A
// MemCell that is not live is an error wrapping memcell.ErrNotFound.
func (c *Client) SoftDelete(ctx context.Context, id memcell.ID, deletedBy string) (Mirror, error) {
	var p DeleteMemCellParams
	if deletedBy != "" {
		p.DeletedBy = &deletedBy
	}
	return c.delete(ctx, id, &p)
}

// HardDelete removes a MemCell, live or soft-deleted, and its KV copy. A
// MemCell that does not exist is an error wrapping memcell.ErrNotFound.
func (c *Client) HardDelete(ctx context.Context, id memcell.ID) (Mirror, error) {
	hard := true
	return c.delete(ctx, id, &DeleteMemCellParams{Hard: &hard})
}

func (c *Client) delete(ctx context.Context, id memcell.ID, p *DeleteMemCellParams) (Mirror, error) {
	res, err := c.api.DeleteMemCell(ctx, id.String(), p)
	if _, err := answer(res, err, "delete "+id.String(), http.StatusNoContent); err != nil {
		return "", err
	}
	return Mirror(res.Header.Get("Memcell-Mirror")), nil
}

// Restore clears the deletion marks of a soft-deleted MemCell and returns
// it as stored. No soft-deleted MemCell with the id is an error wrapping
// memcell.ErrNotFound.
func (c *Client) Restore(ctx context.Context, id memcell.ID) (*memcell.MemCell, Mirror, error) {
	res, err := c.api.RestoreMemCell(ctx, id.String())
	return memCellAnswer(res, err, "restore "+id.String(), http.StatusOK)
}

// Find returns one page of the live MemCells q selects, sorted by
// timestamp, newest first unless q.Ascending, and the worst validation
// outcome when the page was validated (Validate(true)). As in
// memcell.Query, q.Limit 0 means memcell.MaxLimit. The API cannot filter
// by q.Type, take a participant or keyword holding a comma (its list
// separator), or match participants and keywords in different modes
// (ParticipantsAll != KeywordsAll with both lists given): such queries are
// errors wrapping memcell.ErrInvalid, and nothing is sent.
func (c *Client) Find(ctx context.Context, q memcell.Query, opts ...ReadOption) ([]*memcell.MemCell, Validation, error) {
	f, err := filters(&q)
	if err != nil {
		return nil, "", err
	}
	limit := int(q.Limit)
	if limit == 0 {
		limit = memcell.MaxLimit
	}
	sort := Desc
	if q.Ascending {
		sort = Asc
	}
	p := &ListMemCellsParams{
		UserId: f.UserId, IncludeParticipant: f.IncludeParticipant, GroupId: f.GroupId,
		Participants: f.Participants, Keywords: f.Keywords, MatchAll: f.MatchAll,
		Start: f.Start, End: f.End, Sort: &sort, Limit: &limit,
		Validate: readOpts(opts).validate,
	}
	if q.Skip != 0 {
		p.Skip = &q.Skip
	}
	res, err := c.api.ListMemCells(ctx, p)
	body, err := answer(res, err, "find", http.StatusOK)
	if err != nil {
		return nil, "", err
	}
	var page struct {
		MemCells []json.RawMessage `json:"memcells"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, "", fmt.Errorf("%w: find: %v", ErrUnexpectedAnswer, err)
	}
	out := make([]*memcell.MemCell, len(page.MemCells))
	for i, raw := range page.MemCells {
		if out[i], err = decodeMemCell(raw); err != nil {
			return nil, "", err
		}
	}
	return out, Validation(res.Header.Get("Memcell-Validation")), nil
}

// Count returns how many live MemCells q selects; q's sort, limit and skip
// play no part. The queries Find refuses, Count refuses too.
func (c *Client) Count(ctx context.Context, q memcell.Query) (int64, error) {
	f, err := filters(&q)
	if err != nil {
		return 0, err
	}
	res, err := c.api.CountMemCells(ctx, f)
	body, err := answer(res, err, "count", http.StatusOK)
	if err != nil {
		return 0, err
	}
	var n CountResponse
	if err := json.Unmarshal(body, &n); err != nil {
		return 0, fmt.Errorf("%w: count: %v", ErrUnexpectedAnswer, err)
	}
	return n.Count, nil
}

// BatchGet returns the live MemCells among ids, keyed by id, and the ids
// not found (absent or soft-deleted) in the order asked; duplicates are
// read once. Not validated unless Validate(true); then the outcome is the
// worst among the MemCells. The API takes at most 1000 ids.
func (c *Client) BatchGet(ctx context.Context, ids []memcell.ID, opts ...ReadOption) (map[memcell.ID]*memcell.MemCell, []memcell.ID, Validation, error) {
	req := BatchGetRequest{EventIds: make([]string, len(ids)), Validate: readOpts(opts).validate}
	for i, id := range ids {
		req.EventIds[i] = id.String()
	}
	res, err := c.api.BatchGetMemCells(ctx, req)
	body, err := answer(res, err, "batch get", http.StatusOK)
	if err != nil {
		return nil, nil, "", err
	}
	var got struct {
		MemCells map[string]json.RawMessage `json:"memcells"`
		Missing  []string                   `json:"missing"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		return nil, nil, "", fmt.Errorf("%w: batch get: %v", ErrUnexpectedAnswer, err)
	}
	found := make(map[memcell.ID]*memcell.MemCell, len(got.MemCells))
	for _, raw := range got.MemCells {
		m, err := decodeMemCell(raw)
		if err != nil {
			return nil, nil, "", err
		}
		found[m.ID] = m
	}
	missing := make([]memcell.ID, len(got.Missing))
	for i, s := range got.Missing {
		if missing[i], err = memcell.ParseID(s); err != nil {
			return nil, nil, "", fmt.Errorf("%w: batch get: missing id %q: %v", ErrUnexpectedAnswer, s, err)
		}
	}
	return found, missing, Validation(res.Header.Get("Memcell-Validation")), nil
}

// SoftDeleteMany marks every live MemCell in sc deleted, by deletedBy when
// not empty, and returns how many it marked. The API needs both ends of a
// time range; a scope it refuses is an error wrapping memcell.ErrInvalid.
func (c *Client) SoftDeleteMany(ctx context.Context, sc memcell.Scope, deletedBy string) (int64, Mirror, error) {
	p := &DeleteMemCellsParams{UserId: sc.UserID, Start: sc.Start, End: sc.End}
	if deletedBy != "" {
		p.DeletedBy = &deletedBy
	}
	return c.deleteMany(ctx, p)
}

// HardDeleteMany removes every MemCell in sc, live or soft-deleted, with
// its KV copy, and returns how many it removed.
func (c *Client) HardDeleteMany(ctx context.Context, sc memcell.Scope) (int64, Mirror, error) {
	hard := true
	return c.deleteMany(ctx, &DeleteMemCellsParams{UserId: sc.UserID, Start: sc.Start, End: sc.End, Hard: &hard})
}

func (c *Client) deleteMany(ctx context.Context, p *DeleteMemCellsParams) (int64, Mirror, error) {
	res, err := c.api.DeleteMemCells(ctx, p)
	body, err := answer(res, err, "delete many", http.StatusOK)
	if err != nil {
		return 0, "", err
	}
	var n DeletedResponse
	if err := json.Unmarshal(body, &n); err != nil {
		return 0, "", fmt.Errorf("%w: delete many: %v", ErrUnexpectedAnswer, err)
	}
	return n.Deleted, Mirror(res.Header.Get("Memcell-Mirror")), nil
}

// RestoreMany restores every soft-deleted MemCell in sc and returns how
// many it restored.
func (c *Client) RestoreMany(ctx context.Context, sc memcell.Scope) (int64, Mirror, error) {
	res, err := c.api.RestoreMemCells(ctx, &RestoreMemCellsParams{UserId: sc.UserID, Start: sc.Start, End: sc.End})
	body, err := answer(res, err, "restore many", http.StatusOK)
	if err != nil {
		return 0, "", err
	}
	var n RestoredResponse
	if err := json.Unmarshal(body, &n); err != nil {
		return 0, "", fmt.Errorf("%w: restore many: %v", ErrUnexpectedAnswer, err)
	}
	return n.Restored, Mirror(res.Header.Get("Memcell-Mirror")), nil
}

// filters turns the filters of q into the parameters of a count (those of
// a list too), refusing what the API cannot express.
func filters(q *memcell.Query) (*CountMemCellsParams, error) {
	if q.Type != nil {
		return nil, &memcell.FieldError{Field: "type", Rule: "is not a filter of the API"}
	}
	p := &CountMemCellsParams{UserId: q.UserID, GroupId: q.GroupID, Start: q.Start, End: q.End}
	if q.IncludeParticipant {
		p.IncludeParticipant = &q.IncludeParticipant
	}
	for _, l := range []struct {
		name   string
		values []string
		dst    **[]string
	}{{"participants", q.Participants, &p.Participants}, {"keywords", q.Keywords, &p.Keywords}} {
		if len(l.values) == 0 {
			continue
		}
		for _, v := range l.values {
			if strings.Contains(v, ",") {
				return nil, &memcell.FieldError{Field: l.name, Rule: fmt.Sprintf("value %q holds a comma, which the API reads as a separator", v)}
			}
		}
		*l.dst = &l.values
	}
	all := (len(q.Participants) > 0 && q.ParticipantsAll) || (len(q.Keywords) > 0 && q.KeywordsAll)
	if len(q.Participants) > 0 && len(q.Keywords) > 0 && q.ParticipantsAll != q.KeywordsAll {
		return nil, &memcell.FieldError{Field: "match_all", Rule: "the API matches participants and keywords in one mode (ParticipantsAll and KeywordsAll must agree)"}
	}
	if all {
		p.MatchAll = &all
	}
	return p, nil
}

// inputBody is the API representation of m without the fields the store
// manages (and without event_id when m has no id).
func inputBody(m *memcell.MemCell) ([]byte, error) {
	enc, err := memcell.EncodeAPI(m)
	if err != nil {
		return nil, fmt.Errorf("client: append: %w", err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(enc, &doc); err != nil {
		return nil, fmt.Errorf("client: append: %w", err)
	}
	for _, f := range memcell.ManagedFields {
		if f != memcell.APIIDField || m.ID.IsZero() {
			delete(doc, f)
		}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("client: append: %w", err)
	}
	return body, nil
}

// memCellAnswer reads the answer of a write that returns the MemCell.
func memCellAnswer(res *http.Response, err error, op string, want int) (*memcell.MemCell, Mirror, error) {
	body, err := answer(res, err, op, want)
	if err != nil {
		return nil, "", err
	}
	m, err := decodeMemCell(body)
	if err != nil {
		return nil, "", err
	}
	return m, Mirror(res.Header.Get("Memcell-Mirror")), nil
}

// decodeMemCell decodes a MemCell of an answer. A body DecodeAPI refuses is
// the server's fault, not the caller's: the error wraps ErrUnexpectedAnswer
// and not memcell.ErrInvalid.
func decodeMemCell(b []byte) (*memcell.MemCell, error) {
	m, err := memcell.DecodeAPI(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnexpectedAnswer, err)
	}
	return m, nil
}

// maxAnswer bounds the body of an answer the client reads: a batch of 1000
// MemCells of 1 MiB each.
const maxAnswer = 1 << 30

// answer reads the body of res, the answer to op (or the error err of
// sending it), and turns a status other than want into an *APIError.
func answer(res *http.Response, err error, op string, want int) ([]byte, error) {
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", op, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("client: %s: reading the answer: %w", op, err)
	}
	if res.StatusCode == want {
		return body, nil
	}
	e := &APIError{Status: res.StatusCode, RequestID: res.Header.Get("X-Request-Id")}
	var eb Error
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		e.Code, e.Message = string(eb.Error.Code), eb.Error.Message
	} else {
		// Not the API's error shape: a proxy's page, the server's 431.
		e.Code, e.Message = "", strings.TrimSpace(string(body[:min(len(body), 200)]))
	}
	return nil, e
}
