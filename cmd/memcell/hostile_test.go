package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcell/memcell/httpapi"
)

// TestEndToEndHostileRequests sends the built server, on its embedded
// primary, requests made to keep it busy: lists of 100,000 values in the
// query string, a document with a 150,000-element array, one with 1,000
// extra fields, a header over the limit. Each must be answered at once
// (400; 431 from net/http for a request line or header over
// httpapi.MaxHeaderBytes), nothing may be written, and afterwards the
// server must be idle: its CPU time grows by less than 0.2 s over a
// second.
func TestEndToEndHostileRequests(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, nil, "--data-dir", dir, "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0")
	const seeded = 100
	for i := range seeded {
		body := fmt.Sprintf(`{"user_id":"u%d","timestamp":"2026-01-12T10:30:00Z","keywords":["k%d","kyoto"],"participants":["u%d","zoe"]}`, i%7, i, i)
		if status, msg := rawCall(t, s.url, "POST", "/v1/memcells", body); status != http.StatusCreated {
			t.Fatalf("seeding: %d %s", status, msg)
		}
	}

	// The writes leave work behind for a second or two (the clearer of
	// their intents, the primary's own): start from a server that has been
	// idle for 1.5 s.
	for quiet, tries := 0, 0; quiet < 3; tries++ {
		if tries == 40 {
			t.Fatal("the server did not come to rest within 20s of the seeding writes")
		}
		b := cpuTime(t, s.cmd.Process.Pid)
		time.Sleep(500 * time.Millisecond)
		if cpuTime(t, s.cmd.Process.Pid)-b <= 20*time.Millisecond {
			quiet++
		} else {
			quiet = 0
		}
	}
	list := func(n int, name string) string {
		vals := make([]string, n)
		for i := range vals {
			vals[i] = name[:1] + strconv.Itoa(i)
		}
		return strings.Join(vals, ",")
	}
	short := func(n int) string { return strings.TrimSuffix(strings.Repeat("a,", n), ",") }
	const ts = `"timestamp":"2026-01-12T10:30:00Z"`
	var extras strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&extras, `,"x%d":%d`, i, i)
	}
	cases := []struct {
		name, method, target, body string
		status                     int
		mention                    string
	}{
		// Over httpapi.MaxHeaderBytes: net/http refuses them before any
		// handler runs.
		{"list, 100,000 keywords", "GET", "/v1/memcells?keywords=" + list(100_000, "keywords"), "", 431, ""},
		{"count, 100,000 participants", "GET", "/v1/memcells/count?participants=" + list(100_000, "participants"), "", 431, ""},
		// Under it, the API's own bounds.
		{"list, 20,000 keywords", "GET", "/v1/memcells?keywords=" + short(20_000), "", 400, "keywords: at most 100 values, got 20000"},
		{"count, 20,000 participants", "GET", "/v1/memcells/count?participants=" + short(20_000), "", 400, "participants: at most 100 values, got 20000"},
		{"a 150,000-element array", "POST", "/v1/memcells", `{` + ts + `,"extend":{"e":[` + strings.TrimSuffix(strings.Repeat("0,", 150_000), ",") + `]}}`, 400, "extend.e: at most 10000 elements, got 150000"},
		{"150,000 keywords in a document", "POST", "/v1/memcells", `{` + ts + `,"keywords":[` + strings.TrimSuffix(strings.Repeat(`"k",`, 150_000), ",") + `]}`, 400, "keywords: at most 1000 values, got 150000"},
		{"1,000 extra fields", "POST", "/v1/memcells", `{` + ts + extras.String() + `}`, 400, "at most 100 extra fields, got 1000"},
		{"a nested $ key", "POST", "/v1/memcells", `{` + ts + `,"x":{"y":[{"$gt":1}]}}`, 400, "x.y.0.$gt: field names must not start with $"},
		{"a duplicate key", "POST", "/v1/memcells", `{` + ts + `,"summary":"a","summary":"b"}`, 400, `duplicate key \"summary\"`},
	}
	for _, tc := range cases {
		start := time.Now()
		status, msg := rawCall(t, s.url, tc.method, tc.target, tc.body)
		d := time.Since(start)
		t.Logf("%s: %d in %v", tc.name, status, d)
		if d > hostileAnswerTime {
			t.Errorf("%s: answered in %v, want under %v", tc.name, d, hostileAnswerTime)
		}
		if status != tc.status || !strings.Contains(msg, tc.mention) {
			t.Errorf("%s: %d %.300s, want %d saying %q", tc.name, status, msg, tc.status, tc.mention)
		}
	}
	// A header over the limit.
	start := time.Now()
	status, msg := rawCall(t, s.url, "GET", "/v1/memcells/count", "", "X-Padding", strings.Repeat("p", httpapi.MaxHeaderBytes+8192))
	if d := time.Since(start); status != http.StatusRequestHeaderFieldsTooLarge || d > hostileAnswerTime {
		t.Errorf("a header over the limit: %d %.200s in %v, want 431 at once", status, msg, d)
	}

	if status, msg := rawCall(t, s.url, "GET", "/v1/memcells/count", ""); status != http.StatusOK || !strings.Contains(msg, `"count":`+strconv.Itoa(seeded)) {
		t.Errorf("count after the hostile requests = %d %s, want %d documents", status, msg, seeded)
	}
	// Idle: nothing left running in the server or its primary.
	before := cpuTime(t, s.cmd.Process.Pid)
	time.Sleep(time.Second)
	used := cpuTime(t, s.cmd.Process.Pid) - before
	t.Logf("CPU time used in the idle second after: %v", used)
	if used > 200*time.Millisecond {
		t.Errorf("the server used %v of CPU in the second after the hostile requests, want under 0.2s", used)
	}
	s.stop()
}

// hostileAnswerTime bounds the answer to each hostile request. They are
// refused before anything is decoded in full: tens of milliseconds on a
// busy machine (a 150,000-element array took 0.9 s when it was decoded
// before its bound was checked).
const hostileAnswerTime = 500 * time.Millisecond

// rawCall sends one request on its own connection and returns the status
// and the body. It writes and reads at once, so that an answer sent before
// the whole request was read (431) is still read.
func rawCall(t *testing.T, base, method, target, body string, header ...string) (int, string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, u.Host)
	if body != "" {
		fmt.Fprintf(&req, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(&req, "%s: %s\r\n", header[i], header[i+1])
	}
	req.WriteString("\r\n")
	req.WriteString(body)
	go func() { _, _ = conn.Write(req.Bytes()) }() // fails once the server has answered and closed
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %.80s: %v", method, target, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// cpuTime is the user and system CPU time the process has used, from
// /proc/<pid>/stat (utime and stime, in clock ticks of 1/100 s).
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis. utime and stime are fields 14 and 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("/proc/%d/stat: %v", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
