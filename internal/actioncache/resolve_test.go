package actioncache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/statcache"
)

// TestFindTools: every declared tool is found and hashed; the first that
// is not is named with its place in the list.
func TestFindTools(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("a tool on Windows is found by its extension (PATHEXT), not its mode; builds need Unix")
	}
	ctx := context.Background()
	dir := t.TempDir()
	tool := filepath.Join(dir, "mytool")
	writeExec(t, tool, "#!/bin/sh\n")
	t.Setenv("PATH", dir)
	got, err := FindTools(ctx, []string{"mytool"}, digest.HashFile)
	if err != nil || got["mytool"].Path != tool || got["mytool"].Sum != digest.Bytes([]byte("#!/bin/sh\n")) {
		t.Fatalf("FindTools = %+v, %v; want mytool at %s", got, err, tool)
	}
	_, err = FindTools(ctx, []string{"mytool", "no-such-tool-here"}, digest.HashFile)
	var te *ToolError
	var nf *ToolNotFoundError
	if !errors.As(err, &te) || te.Index != 1 || te.Name != "no-such-tool-here" || !errors.As(err, &nf) {
		t.Fatalf("FindTools with a missing tool = %v, want a *ToolError at 1 wrapping a *ToolNotFoundError", err)
	}
}

// TestCacheDirs: caches live under IMMUTABLE_CACHE_DIR when set, one
// directory per cache name.
func TestCacheDirs(t *testing.T) {
	base := t.TempDir()
	t.Setenv(statcache.EnvDir, base)
	got, err := CacheDirs(map[string]string{"GOCACHE": "go-build", "CCACHE_DIR": "ccache"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"GOCACHE":    filepath.Join(base, "build-caches", "go-build"),
		"CCACHE_DIR": filepath.Join(base, "build-caches", "ccache"),
	}
	if len(got) != len(want) || got["GOCACHE"] != want["GOCACHE"] || got["CCACHE_DIR"] != want["CCACHE_DIR"] {
		t.Fatalf("CacheDirs = %v, want %v", got, want)
	}
}

func TestCheckTimeout(t *testing.T) {
	for s, ok := range map[string]bool{"90s": true, "10m": true, "1h30m": true, "0s": false, "-1m": false, "10": false, "soon": false} {
		if err := CheckTimeout(s); (err == nil) != ok {
			t.Errorf("CheckTimeout(%q) = %v, want ok %v", s, err, ok)
		}
	}
}

func writeExec(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}
