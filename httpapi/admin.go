package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/memcell/memcell/mirror"
)

// KVStats is the answer of GET /v1/kv/stats, the Stats schema of the
// OpenAPI document. "memcell kv stats" prints it too.
type KVStats struct {
	// Backend names the KV backend: memory, pebble, leveldb, rocksdb, redis
	// or redis-cluster.
	Backend string `json:"backend"`
	// EntryCount counts the live keys; tombstones are not counted.
	EntryCount int64 `json:"entry_count"`
	// TotalSizeBytes is the bytes of the stored values.
	TotalSizeBytes int64 `json:"total_size_bytes"`
}

// kvStats serves GET /v1/kv/stats.
func (s *server) kvStats(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseQuery(r); err != nil {
		return err
	}
	st, err := s.repo.KVStats(r.Context())
	if err != nil {
		s.log.WarnContext(r.Context(), "httpapi: kv stats failed", "kv_backend", s.repo.Backend(), "error", err)
		return &apiError{http.StatusServiceUnavailable, codeUnavailable, "the KV store did not answer"}
	}
	writeValue(w, http.StatusOK, KVStats{Backend: s.repo.Backend(), EntryCount: st.EntryCount, TotalSizeBytes: st.TotalSizeBytes})
	return nil
}

// getFlags serves GET /v1/admin/flags.
func (s *server) getFlags(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseQuery(r); err != nil {
		return err
	}
	writeValue(w, http.StatusOK, s.repo.Flags())
	return nil
}

// flagsBody is the body of PUT /v1/admin/flags. mirroring and validation
// are required: a PUT that forgot mirroring must not switch it off.
type flagsBody struct {
	Mirroring     *bool    `json:"mirroring"`
	MirrorMode    *string  `json:"mirror_mode"` // absent keeps the current mode
	Validation    *string  `json:"validation"`
	SamplePercent *float64 `json:"sample_percent"`
}

// putFlags serves PUT /v1/admin/flags: replace the feature flags.
func (s *server) putFlags(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseQuery(r); err != nil {
		return err
	}
	body, err := s.readBody(w, r, nil)
	if err != nil {
		return err
	}
	var in flagsBody
	if err := decodeStrict(body, &in); err != nil {
		return err
	}
	switch {
	case in.Mirroring == nil:
		return fieldError("mirroring", "is required")
	case in.Validation == nil:
		return fieldError("validation", "is required")
	}
	f := mirror.Flags{Mirroring: *in.Mirroring, Validation: *in.Validation}
	if in.SamplePercent != nil {
		f.SamplePercent = *in.SamplePercent
	}
	if in.MirrorMode != nil {
		if *in.MirrorMode == "" {
			return fieldError("mirror_mode", `must be "async" or "sync"`)
		}
		f.Mode = *in.MirrorMode
	}
	if err := s.repo.SetFlags(f); err != nil {
		// SetFlags fails only on invalid flags.
		return badRequest("%s", strings.TrimPrefix(err.Error(), "mirror: "))
	}
	s.log.InfoContext(r.Context(), "httpapi: feature flags changed", "mirror_mode", s.repo.Flags().Mode, "mirroring", f.Mirroring,
		"validation", f.Validation, "sample_percent", f.SamplePercent)
	writeValue(w, http.StatusOK, s.repo.Flags())
	return nil
}

// metricsPage serves GET /metrics from the Gatherer.
func (s *server) metricsPage(w http.ResponseWriter, r *http.Request) error {
	if s.gatherer == nil {
		return &apiError{http.StatusNotFound, codeNotFound, "metrics are not served here"}
	}
	promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

// healthz serves GET /healthz: the process is up.
func (s *server) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeValue(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyBody is the answer of GET /readyz when ready.
type readyBody struct {
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
}

// readyz serves GET /readyz: the stores answer.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		s.log.WarnContext(r.Context(), "httpapi: not ready", "error", err)
		msg := "not ready: " + notReadyReason(err)
		if s.showDetails(r) {
			msg += " (" + err.Error() + ")"
		}
		return &apiError{http.StatusServiceUnavailable, codeUnavailable, msg}
	}
	writeValue(w, http.StatusOK, readyBody{Status: "ready", Version: s.version})
	return nil
}

// notReadyReason says which store failed, in words fit for any caller:
// no hosts, ports or driver text.
func notReadyReason(err error) string {
	switch stores := mirror.FailedStores(err); {
	case len(stores) == 2:
		return "neither the primary nor the KV store answers"
	case len(stores) == 1 && stores[0] == mirror.StoreKV:
		return "the KV store does not answer"
	case len(stores) == 1:
		return "the primary store does not answer"
	default:
		return "a store does not answer"
	}
}

// openAPI serves GET /openapi.yaml.
func (s *server) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(openAPIDoc)
	return nil
}

var errNoReplayer = &apiError{http.StatusNotFound, codeNotFound, "this server runs no replayer"}

// pending serves GET /v1/admin/pending: the size and age of the primary's
// record of KV writes to redo, and the replayer's state.
func (s *server) pending(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseQuery(r); err != nil {
		return err
	}
	if s.replayer == nil {
		return errNoReplayer
	}
	st, err := s.replayer.Status(r.Context())
	if err != nil {
		return err
	}
	writeValue(w, http.StatusOK, st)
	return nil
}
