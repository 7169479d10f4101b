package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/memcell/memcell/memcelltest"
)

// TestSeedMetrics causes a KV write failure, a KV read failure and an
// inconsistency through the API and reads the five core counters back from
// the registry /metrics serves.
func TestSeedMetrics(t *testing.T) {
	e := newEnv(t, nil)
	ids := e.seed(cell("alice", epoch), cell("alice", epoch))

	e.kv.FailWrites.Store(true)
	e.want(http.StatusCreated, "POST", "/v1/memcells", `{"timestamp":"2026-01-12T10:30:00Z","user_id":"alice"}`)
	e.kv.FailWrites.Store(false)

	e.kv.FailReads.Store(true)
	e.want(http.StatusOK, "GET", "/v1/memcells/"+ids[0], nil)
	e.kv.FailReads.Store(false)

	e.tamper(ids[1])
	e.want(http.StatusOK, "GET", "/v1/memcells/"+ids[1], nil)

	memcelltest.AssertMetrics(t, e.reg, `
# HELP memcell_kv_write_failures_total KV writes that failed after the primary write succeeded; each key is recorded for repair.
# TYPE memcell_kv_write_failures_total counter
memcell_kv_write_failures_total{backend="memory",op="batch_delete"} 0
memcell_kv_write_failures_total{backend="memory",op="batch_put"} 0
memcell_kv_write_failures_total{backend="memory",op="delete"} 0
memcell_kv_write_failures_total{backend="memory",op="put"} 1
# HELP memcell_kv_read_failures_total KV reads for validation that failed; the primary's data was returned.
# TYPE memcell_kv_read_failures_total counter
memcell_kv_read_failures_total{backend="memory",op="batch_get"} 0
memcell_kv_read_failures_total{backend="memory",op="get"} 1
# HELP memcell_data_inconsistencies_total Validated reads whose KV copy differed from the primary.
# TYPE memcell_data_inconsistencies_total counter
memcell_data_inconsistencies_total{backend="memory",op="batch_get"} 0
memcell_data_inconsistencies_total{backend="memory",op="get"} 1
# HELP memcell_http_requests_total HTTP requests answered, by route pattern and status code.
# TYPE memcell_http_requests_total counter
memcell_http_requests_total{code="200",route="GET /v1/memcells/{event_id}"} 2
memcell_http_requests_total{code="201",route="POST /v1/memcells"} 1
`)
	// Every KV write and read above was timed: the two seeds and the
	// failed copy of the created one, the failed read and the read of the
	// tampered copy.
	memcelltest.AssertMetrics(t, memcelltest.ObservationCounts(e.reg), `
# HELP memcell_kv_write_latency_seconds_count Latency of KV writes made by the mirror.
# TYPE memcell_kv_write_latency_seconds_count counter
memcell_kv_write_latency_seconds_count{backend="memory",op="batch_delete"} 0
memcell_kv_write_latency_seconds_count{backend="memory",op="batch_put"} 0
memcell_kv_write_latency_seconds_count{backend="memory",op="delete"} 0
memcell_kv_write_latency_seconds_count{backend="memory",op="put"} 3
# HELP memcell_kv_read_latency_seconds_count Latency of KV reads made for validation.
# TYPE memcell_kv_read_latency_seconds_count counter
memcell_kv_read_latency_seconds_count{backend="memory",op="batch_get"} 0
memcell_kv_read_latency_seconds_count{backend="memory",op="get"} 2
`)
}

// TestMetricLint makes requests that answer with several codes, and lints
// every metric the API registers, the mirror's with it.
func TestMetricLint(t *testing.T) {
	e := newEnv(t, nil)
	ids := e.seed(cell("alice", epoch))
	e.want(http.StatusOK, "GET", "/v1/memcells/"+ids[0], nil)
	e.want(http.StatusBadRequest, "GET", "/v1/memcells/xyz", nil)
	e.want(http.StatusNotFound, "GET", "/v1/nothing", nil)
	memcelltest.AssertLint(t, e.reg, "memcell_http_requests_total", "memcell_http_request_duration_seconds")
}
