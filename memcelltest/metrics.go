package memcelltest

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// AssertMetrics compares the metric families of want, in the text
// exposition format with their HELP and TYPE lines, with those g gathers
// under the same names. The families compared are those want declares
// (its TYPE lines), so that none is dropped unnoticed from both sides.
func AssertMetrics(t testing.TB, g prometheus.Gatherer, want string) {
	t.Helper()
	if err := testutil.GatherAndCompare(g, strings.NewReader(want), families(t, want)...); err != nil {
		t.Errorf("metrics (-got +want):\n%v", err)
	}
}

// AssertScraped is AssertMetrics for the metrics page at url.
func AssertScraped(t testing.TB, url, want string) {
	t.Helper()
	if err := testutil.ScrapeAndCompare(url, strings.NewReader(want), families(t, want)...); err != nil {
		t.Errorf("metrics at %s (-got +want):\n%v", url, err)
	}
}

// families returns the names of the families declared in exposition text.
func families(t testing.TB, text string) []string {
	t.Helper()
	var names []string
	for line := range strings.Lines(text) {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			names = append(names, f[2])
		}
	}
	if len(names) == 0 {
		t.Fatalf("no TYPE line in the metrics wanted:\n%s", text)
	}
	return names
}

// ObservationCounts is g with each histogram replaced by a counter of its
// observations, series by series, named with the suffix _count. Timings
// vary from run to run; how many operations were timed does not, and
// AssertMetrics can check it.
func ObservationCounts(g prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := g.Gather()
		for _, mf := range mfs {
			if mf.GetType() != dto.MetricType_HISTOGRAM {
				continue
			}
			mf.Name = new(mf.GetName() + "_count")
			mf.Type = dto.MetricType_COUNTER.Enum()
			for _, m := range mf.Metric {
				m.Counter = &dto.Counter{Value: new(float64(m.GetHistogram().GetSampleCount()))}
				m.Histogram = nil
			}
		}
		return mfs, err
	})
}

// AssertLint checks that g gathers each family of names with at least one
// series (a family without any is not gathered, and would escape the lint),
// then lints everything g gathers and fails the test on any problem.
func AssertLint(t testing.TB, g prometheus.Gatherer, names ...string) {
	t.Helper()
	for _, name := range names {
		n, err := testutil.GatherAndCount(g, name)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("%s has no series to lint", name)
		}
	}
	problems, err := testutil.GatherAndLint(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric lint: %s: %s", p.Metric, p.Text)
	}
}
