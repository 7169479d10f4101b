package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/mirror"
)

// DefaultListLimit is the page size of GET /v1/memcells without ?limit=;
// at most memcell.MaxLimit may be asked for.
const DefaultListLimit = 100

// MaxBatchIDs caps the event_ids of one batch-get.
const MaxBatchIDs = 1000

// MaxBatchFields caps the fields of one batch-get.
const MaxBatchFields = 100

// The query parameters of the list and count routes.
var (
	filterParams = []string{"user_id", "include_participant", "group_id", "participants", "keywords", "match_all", "start", "end"}
	listParams   = append(append([]string(nil), filterParams...), "sort", "limit", "skip", "validate")
	scopeParams  = []string{"user_id", "start", "end"}
)

// filterQuery reads the filters shared by list and count.
func filterQuery(q url.Values) (memcell.Query, error) {
	var out memcell.Query
	var err error
	if out.UserID, err = stringParam(q, "user_id"); err != nil {
		return out, err
	}
	include, err := boolParam(q, "include_participant")
	if err != nil {
		return out, err
	}
	if include != nil && *include {
		if out.UserID == nil {
			return out, fieldError("include_participant", "needs user_id")
		}
		out.IncludeParticipant = true
	}
	if out.GroupID, err = stringParam(q, "group_id"); err != nil {
		return out, err
	}
	if out.Participants, err = listParam(q, "participants"); err != nil {
		return out, err
	}
	if out.Keywords, err = listParam(q, "keywords"); err != nil {
		return out, err
	}
	matchAll, err := boolParam(q, "match_all")
	if err != nil {
		return out, err
	}
	if matchAll != nil {
		out.ParticipantsAll, out.KeywordsAll = *matchAll, *matchAll
	}
	out.Start, out.End, err = timeRange(q)
	return out, err
}

// list serves GET /v1/memcells: one page of the MemCells the filters
// select, newest first unless sort=asc.
func (s *server) list(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r, listParams...)
	if err != nil {
		return err
	}
	query, err := filterQuery(q)
	if err != nil {
		return err
	}
	switch sort, _, err := single(q, "sort"); {
	case err != nil:
		return err
	case sort == "asc":
		query.Ascending = true
	case sort == "" || sort == "desc":
	default:
		return fieldError("sort", "must be asc or desc")
	}
	if query.Limit, err = intParam(q, "limit", DefaultListLimit, 1, memcell.MaxLimit); err != nil {
		return err
	}
	if query.Skip, err = intParam(q, "skip", 0, 0, maxInt64); err != nil {
		return err
	}
	opts, err := readOptions(q)
	if err != nil {
		return err
	}
	docs, v, err := s.repo.Find(r.Context(), query, opts...)
	if err != nil {
		return err
	}
	b := append(make([]byte, 0, 64+len(docs)*2048), `{"memcells":[`...)
	for i, d := range docs {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendMemCell(b, d); err != nil {
			return err
		}
	}
	b = append(b, `],"count":`...)
	b = strconv.AppendInt(b, int64(len(docs)), 10)
	b = append(b, "}\n"...)
	setValidation(w, v.Outcome)
	writeJSON(w, http.StatusOK, b)
	return nil
}

// count serves GET /v1/memcells/count.
func (s *server) count(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r, filterParams...)
	if err != nil {
		return err
	}
	query, err := filterQuery(q)
	if err != nil {
		return err
	}
	n, err := s.repo.Count(r.Context(), query)
	if err != nil {
		return err
	}
	writeValue(w, http.StatusOK, map[string]int64{"count": n})
	return nil
}

// bulkScope reads the scope of a bulk delete or restore: user_id, a closed
// time range (start and end), or both.
func bulkScope(q url.Values) (memcell.Scope, error) {
	var sc memcell.Scope
	var err error
	if sc.UserID, err = stringParam(q, "user_id"); err != nil {
		return sc, err
	}
	if sc.Start, sc.End, err = timeRange(q); err != nil {
		return sc, err
	}
	switch {
	case sc.Start != nil && sc.End == nil:
		return sc, fieldError("end", "is required with start: a bulk operation's range needs both ends")
	case sc.Start == nil && sc.End != nil:
		return sc, fieldError("start", "is required with end: a bulk operation's range needs both ends")
	case sc.UserID == nil && sc.Start == nil:
		return sc, fieldError("user_id", "a bulk operation needs user_id, start and end, or both")
	}
	return sc, nil
}

// deleteMany serves DELETE /v1/memcells: soft-delete (or with hard=true
// remove) every MemCell in scope.
func (s *server) deleteMany(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r, append(append([]string(nil), scopeParams...), "hard", "deleted_by")...)
	if err != nil {
		return err
	}
	sc, err := bulkScope(q)
	if err != nil {
		return err
	}
	hard, by, err := deleteParams(q)
	if err != nil {
		return err
	}
	var (
		n   int64
		mir mirror.Mirror
	)
	if hard {
		n, mir, err = s.repo.HardDeleteMany(r.Context(), sc)
	} else {
		n, mir, err = s.repo.SoftDeleteMany(r.Context(), sc, by)
	}
	if err != nil {
		return err
	}
	setMirror(w, mir)
	writeValue(w, http.StatusOK, map[string]int64{"deleted": n})
	return nil
}

// restoreMany serves POST /v1/memcells/restore: restore every soft-deleted
// MemCell in scope.
func (s *server) restoreMany(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r, scopeParams...)
	if err != nil {
		return err
	}
	sc, err := bulkScope(q)
	if err != nil {
		return err
	}
	n, mir, err := s.repo.RestoreMany(r.Context(), sc)
	if err != nil {
		return err
	}
	setMirror(w, mir)
	writeValue(w, http.StatusOK, map[string]int64{"restored": n})
	return nil
}

// batchGetRequest is the body of POST /v1/memcells/batch-get.
type batchGetRequest struct {
	EventIDs []string `json:"event_ids"`
	// Validate overrides the default (batch reads do not validate).
	Validate *bool `json:"validate"`
	// Fields asks for partial documents: event_id and these top-level
	// fields. Partial documents are never validated.
	Fields []string `json:"fields"`
}

// batchGet serves POST /v1/memcells/batch-get.
func (s *server) batchGet(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseQuery(r); err != nil {
		return err
	}
	body, err := s.readBody(w, r, nil)
	if err != nil {
		return err
	}
	var req batchGetRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	if req.EventIDs == nil {
		return fieldError("event_ids", "is required")
	}
	if len(req.EventIDs) > MaxBatchIDs {
		return fieldError("event_ids", fmt.Sprintf("at most %d ids, got %d", MaxBatchIDs, len(req.EventIDs)))
	}
	if len(req.Fields) > MaxBatchFields {
		return fieldError("fields", fmt.Sprintf("at most %d field names, got %d", MaxBatchFields, len(req.Fields)))
	}
	ids := make([]memcell.ID, 0, len(req.EventIDs))
	seen := make(map[memcell.ID]bool, len(req.EventIDs))
	for i, raw := range req.EventIDs {
		id, err := memcell.ParseID(raw)
		if err != nil {
			return fieldError("event_ids."+strconv.Itoa(i), "must be a 24-character hex ObjectId")
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	var fields, projection []string
	for i, f := range req.Fields {
		if memcell.CheckFieldName(f) != nil {
			return fieldError("fields."+strconv.Itoa(i), "is not a valid field name")
		}
		if f == memcell.APIIDField || f == memcell.IDField {
			continue // always there
		}
		fields = append(fields, f)
		projection = append(projection, f)
	}
	if len(req.Fields) > 0 && len(projection) == 0 {
		projection = []string{memcell.IDField} // only the ids
	}
	var opts []mirror.ReadOption
	if req.Validate != nil {
		opts = append(opts, mirror.Validate(*req.Validate))
	}
	docs, v, err := s.repo.GetMany(r.Context(), ids, projection, opts...)
	if err != nil {
		return err
	}
	setSource(w, v.FromKV)
	b := append(make([]byte, 0, 64+len(docs)*2048), `{"memcells":{`...)
	var missing []string
	first := true
	for _, id := range ids {
		d, ok := docs[id]
		if !ok {
			missing = append(missing, id.String())
			continue
		}
		enc, err := encodeMemCell(d)
		if err != nil {
			return err
		}
		if len(projection) > 0 {
			if enc, err = selectFields(enc, fields); err != nil {
				return err
			}
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, id.String()...)
		b = append(b, `":`...)
		b = append(b, enc...)
	}
	b = append(b, `},"missing":[`...)
	for i, id := range missing {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, id...)
		b = append(b, '"')
	}
	b = append(b, "]}\n"...)
	setValidation(w, v.Outcome)
	writeJSON(w, http.StatusOK, b)
	return nil
}

// selectFields keeps event_id and fields (in that order, null when the
// document lacks one) of an encoded MemCell.
func selectFields(enc []byte, fields []string) ([]byte, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(enc, &all); err != nil {
		return nil, fmt.Errorf("httpapi: re-reading an encoded MemCell: %v", err)
	}
	b := append(make([]byte, 0, len(enc)), '{')
	b = appendMember(b, memcell.APIIDField, all[memcell.APIIDField])
	done := map[string]bool{}
	for _, f := range fields {
		if done[f] {
			continue
		}
		done[f] = true
		b = append(b, ',')
		b = appendMember(b, f, all[f])
	}
	return append(b, '}'), nil
}

func appendMember(b []byte, key string, v json.RawMessage) []byte {
	k, _ := json.Marshal(key) // a string always marshals
	b = append(b, k...)
	b = append(b, ':')
	if v == nil {
		return append(b, "null"...)
	}
	return append(b, v...)
}
