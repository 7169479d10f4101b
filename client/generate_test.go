package client_test

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates the client from
// httpapi/openapi.yaml with the module's oapi-codegen (standard output, the
// tree untouched) and fails unless client.gen.go holds exactly that code:
// a change to the spec or the configuration needs go generate ./client/.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to regenerate the client: %v", err)
	}
	src, err := os.ReadFile("generate.go")
	if err != nil {
		t.Fatal(err)
	}
	// The command of the go:generate line, without the output file.
	const directive = "//go:generate go tool oapi-codegen -config oapi-codegen.yaml -o client.gen.go ../httpapi/openapi.yaml"
	if !strings.Contains(string(src), directive) {
		t.Fatalf("generate.go lacks the line %q that this test repeats", directive)
	}
	// The test opens the generator's inputs itself, so that go test's cache
	// knows them and a cached pass never outlives a change to the spec.
	for _, in := range []string{"oapi-codegen.yaml", "../httpapi/openapi.yaml"} {
		if _, err := os.ReadFile(in); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(goBin, "tool", "oapi-codegen", "-config", "oapi-codegen.yaml", "../httpapi/openapi.yaml")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, stderr.Bytes())
	}
	got, err := os.ReadFile("client.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		line := 0
		for line < len(gl) && line < len(wl) && gl[line] == wl[line] {
			line++
		}
		t.Fatalf("client.gen.go is not what httpapi/openapi.yaml generates (first difference at line %d); run go generate ./client/", line+1)
	}
}
