package httpapi_test

import (
	"bufio"
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// metricSum adds up the samples of name in a /metrics text answer.
func metricSum(t *testing.T, body []byte, name string) float64 {
	t.Helper()
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		sum += v
	}
	return sum
}

// TestSeedMetrics causes a KV write failure, a KV read failure and an
// inconsistency through the API and reads the five core counters back from
// /metrics.
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

	body := e.want(http.StatusOK, "GET", "/metrics", nil).body
	for name, want := range map[string]float64{
		"memcell_kv_write_failures_total":    1,
		"memcell_kv_read_failures_total":     1,
		"memcell_data_inconsistencies_total": 1,
	} {
		if got := metricSum(t, body, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	for _, name := range []string{"memcell_kv_write_latency_seconds_count", "memcell_kv_read_latency_seconds_count"} {
		if got := metricSum(t, body, name); got < 1 {
			t.Errorf("%s = %v, want at least one observation", name, got)
		}
	}
	if !bytes.Contains(body, []byte(`memcell_http_requests_total{code="201",route="POST /v1/memcells"}`)) {
		t.Errorf("/metrics lacks the HTTP request counter by route:\n%s", body)
	}
}
