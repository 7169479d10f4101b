package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/mirror"
)

// maxDepth bounds the nesting of a request body. MongoDB refuses documents
// nested deeper than 100 levels; the API refuses them well before, as bad
// input, instead of failing at the primary.
const maxDepth = 64

// decodeTree parses a well-formed JSON body into generic values, numbers as
// json.Number so that no digit is lost, and checks what every stored
// document needs whatever the primary: field names without NUL characters
// (BSON cannot hold them) and nesting within maxDepth.
func decodeTree(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &apiError{http.StatusBadRequest, codeMalformedJSON, "malformed JSON: " + err.Error()}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fieldError("", "the body must be a JSON object")
	}
	if err := checkTree(obj, "", 1); err != nil {
		return nil, err
	}
	return obj, nil
}

func checkTree(v any, path string, depth int) error {
	if depth > maxDepth {
		return fieldError(path, fmt.Sprintf("nests deeper than %d levels", maxDepth))
	}
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if strings.IndexByte(k, 0) >= 0 {
				return fieldError(path, "holds a field name with a NUL character: "+strconv.QuoteToASCII(k))
			}
			if err := checkTree(x, join(k), depth+1); err != nil {
				return err
			}
		}
	case []any:
		for i, x := range v {
			if err := checkTree(x, join(strconv.Itoa(i)), depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// create serves POST /v1/memcells: append a new MemCell.
func (s *server) create(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseQuery(r); err != nil {
		return err
	}
	body, err := s.readBody(w, r, memcell.ArrayBoundError)
	if err != nil {
		return err
	}
	obj, err := decodeTree(body)
	if err != nil {
		return err
	}
	for _, f := range memcell.ManagedFields {
		if _, ok := obj[f]; ok && f != memcell.APIIDField && f != memcell.IDField {
			// A client may choose the event id; FromAPIMap checks it.
			return fieldError(f, "is managed by the store and cannot be set")
		}
	}
	for k := range obj {
		if err := memcell.CheckFieldName(k); err != nil {
			return err
		}
	}
	// The tree is the body parsed as DecodeAPI would parse it: it is not
	// parsed a second time.
	m, err := memcell.FromAPIMap(obj)
	if err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return err
	}
	stored, mir, err := s.repo.Append(r.Context(), m)
	if err != nil {
		return err
	}
	buf, err := pooledMemCell(stored)
	if err != nil {
		return err
	}
	defer releaseAnswer(buf)
	w.Header().Set("Location", "/v1/memcells/"+stored.ID.String())
	setMirror(w, mir)
	writeJSON(w, http.StatusCreated, *buf)
	return nil
}

// deleteParams reads the parameters of a delete, single or bulk: hard=true
// for a hard delete, deleted_by (soft deletes only) for the mark.
func deleteParams(q url.Values) (hard bool, by string, err error) {
	h, err := boolParam(q, "hard")
	if err != nil {
		return false, "", err
	}
	by, byGiven, err := single(q, "deleted_by")
	if err != nil {
		return false, "", err
	}
	hard = h != nil && *h
	if hard && byGiven {
		return false, "", fieldError("deleted_by", "applies to soft deletes only")
	}
	return hard, by, nil
}

// get serves GET /v1/memcells/{event_id}.
func (s *server) get(w http.ResponseWriter, r *http.Request) error {
	id, err := eventID(r)
	if err != nil {
		return err
	}
	q, err := parseQuery(r, "validate")
	if err != nil {
		return err
	}
	opts, err := readOptions(q)
	if err != nil {
		return err
	}
	m, v, err := s.repo.Get(r.Context(), id, opts...)
	setSource(w, v.FromKV) // on a 404 from the KV copy too
	if err != nil {
		return err
	}
	buf, err := pooledMemCell(m)
	if err != nil {
		return err
	}
	defer releaseAnswer(buf)
	setValidation(w, v.Outcome)
	writeJSON(w, http.StatusOK, *buf)
	return nil
}

// readOptions turns ?validate= into the read's override.
func readOptions(q url.Values) ([]mirror.ReadOption, error) {
	validate, err := boolParam(q, "validate")
	if err != nil || validate == nil {
		return nil, err
	}
	return []mirror.ReadOption{mirror.Validate(*validate)}, nil
}

// update serves PATCH /v1/memcells/{event_id}: set the given top-level
// fields (null unsets one).
func (s *server) update(w http.ResponseWriter, r *http.Request) error {
	id, err := eventID(r)
	if err != nil {
		return err
	}
	if _, err := parseQuery(r); err != nil {
		return err
	}
	body, err := s.readBody(w, r, memcell.ArrayBoundError)
	if err != nil {
		return err
	}
	fields, err := decodeTree(body)
	if err != nil {
		return err
	}
	m, mir, err := s.repo.Update(r.Context(), id, fields)
	if err != nil {
		return err
	}
	buf, err := pooledMemCell(m)
	if err != nil {
		return err
	}
	defer releaseAnswer(buf)
	setMirror(w, mir)
	writeJSON(w, http.StatusOK, *buf)
	return nil
}

// delete serves DELETE /v1/memcells/{event_id}: a soft delete, or a hard
// one with ?hard=true.
func (s *server) delete(w http.ResponseWriter, r *http.Request) error {
	id, err := eventID(r)
	if err != nil {
		return err
	}
	q, err := parseQuery(r, "hard", "deleted_by")
	if err != nil {
		return err
	}
	hard, by, err := deleteParams(q)
	if err != nil {
		return err
	}
	var (
		ok  bool
		mir mirror.Mirror
	)
	if hard {
		ok, mir, err = s.repo.HardDelete(r.Context(), id)
	} else {
		ok, mir, err = s.repo.SoftDelete(r.Context(), id, by)
	}
	if err != nil {
		return err
	}
	if !ok {
		return errNotFound
	}
	setMirror(w, mir)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// restore serves POST /v1/memcells/{event_id}/restore and answers the
// restored MemCell.
func (s *server) restore(w http.ResponseWriter, r *http.Request) error {
	id, err := eventID(r)
	if err != nil {
		return err
	}
	if _, err := parseQuery(r); err != nil {
		return err
	}
	ok, mir, err := s.repo.Restore(r.Context(), id)
	if err != nil {
		return err
	}
	if !ok {
		return errNotFound
	}
	// The repository reports only whether it restored; read the document
	// back, unvalidated: its copy was just written.
	m, _, err := s.repo.Get(r.Context(), id, mirror.Validate(false))
	if err != nil {
		return err
	}
	buf, err := pooledMemCell(m)
	if err != nil {
		return err
	}
	defer releaseAnswer(buf)
	setMirror(w, mir)
	writeJSON(w, http.StatusOK, *buf)
	return nil
}
