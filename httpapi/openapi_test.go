package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/go-cmp/cmp"

	"github.com/memcell/memcell/httpapi"
)

var spec struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

// loadSpec loads and validates the embedded OpenAPI document once.
func loadSpec(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	spec.once.Do(func() {
		loader := openapi3.NewLoader()
		spec.doc, spec.err = loader.LoadFromData(httpapi.OpenAPI())
		if spec.err != nil {
			return
		}
		if spec.err = spec.doc.Validate(context.Background()); spec.err != nil {
			return
		}
		spec.router, spec.err = gorillamux.NewRouter(spec.doc)
	})
	if spec.err != nil {
		t.Fatalf("the OpenAPI document: %v", spec.err)
	}
	return spec.doc, spec.router
}

// checkAgainstSpec fails the test when an answer is not what the OpenAPI
// document says: an undocumented status, a body or header that does not
// match its schema. Answers to requests the document has no operation for
// must be the JSON 404 or 405 error.
func checkAgainstSpec(t testing.TB, req *http.Request, r *response) {
	t.Helper()
	_, router := loadSpec(t)
	route, params, err := router.FindRoute(req)
	if err != nil {
		want := http.StatusNotFound
		if errors.Is(err, routers.ErrMethodNotAllowed) {
			want = http.StatusMethodNotAllowed
		}
		if r.status != want {
			t.Errorf("%s %s: the OpenAPI document has no operation for it (%v) but the answer is %d %s, want %d",
				req.Method, req.URL, err, r.status, r.body, want)
			return
		}
		r.errorCode(t)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status:  r.status,
		Header:  r.header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(r.body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s: the answer %d %.300s does not match the OpenAPI document: %v",
			req.Method, req.URL, r.status, r.body, err)
	}
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, _ := loadSpec(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
	if _, ok := doc.Components.SecuritySchemes["bearerAuth"]; !ok {
		t.Error("no bearerAuth security scheme")
	}
}

// TestOpenAPIMatchesRoutes checks that the document describes exactly the
// routes the handler serves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc, _ := loadSpec(t)
	var inSpec []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inSpec = append(inSpec, method+" "+path)
		}
	}
	var served []string
	for _, r := range httpapi.Routes() {
		// "/debug/pprof/{$}" is the path "/debug/pprof/" alone.
		served = append(served, r.Method+" "+strings.TrimSuffix(r.Pattern, "{$}"))
	}
	slices.Sort(inSpec)
	slices.Sort(served)
	if d := cmp.Diff(served, inSpec); d != "" {
		t.Errorf("routes served (-) and in the OpenAPI document (+) differ:\n%s", d)
	}
}

// TestOpenAPIServed checks GET /openapi.yaml, which needs the token like
// every route but the probes.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, &httpapi.Options{Token: "secret"})
	e.want(http.StatusUnauthorized, "GET", "/openapi.yaml", nil, "Authorization", "")
	r := e.want(http.StatusOK, "GET", "/openapi.yaml", nil)
	if ct := r.header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type = %q", ct)
	}
	if !strings.HasPrefix(string(r.body), "openapi: 3.0.3") {
		t.Errorf("body starts %.40q", r.body)
	}
}

// TestOpenAPIKVStats checks that the Stats schema has the fields of
// httpapi.KVStats, every one required: the answer of GET /v1/kv/stats and
// what "memcell kv stats" decodes and prints.
func TestOpenAPIKVStats(t *testing.T) {
	doc, _ := loadSpec(t)
	schema := doc.Components.Schemas["Stats"].Value
	var fields []string
	typ := reflect.TypeFor[httpapi.KVStats]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		fields = append(fields, name)
	}
	var props []string
	for name := range schema.Properties {
		props = append(props, name)
	}
	required := slices.Clone(schema.Required)
	slices.Sort(fields)
	slices.Sort(props)
	slices.Sort(required)
	if d := cmp.Diff(fields, props); d != "" {
		t.Errorf("KVStats fields (-) and Stats properties (+) differ:\n%s", d)
	}
	if d := cmp.Diff(fields, required); d != "" {
		t.Errorf("KVStats fields (-) and the required Stats properties (+) differ:\n%s", d)
	}
}
