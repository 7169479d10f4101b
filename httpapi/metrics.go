package httpapi

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics are the API's Prometheus metrics. The route label is the
// ServeMux pattern ("GET /v1/memcells/{event_id}") or "unmatched", never a
// raw path, so its values are a small closed set.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// httpBuckets span 0.5 ms to ~16 s: single reads answer in milliseconds, bulk
// operations on a large collection in seconds.
var httpBuckets = prometheus.ExponentialBuckets(0.0005, 2, 16)

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "memcell", Name: "http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "memcell", Name: "http_request_duration_seconds",
			Help: "Time to answer HTTP requests, by route pattern.", Buckets: httpBuckets,
		}, []string{"route"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("httpapi: metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *httpMetrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}
