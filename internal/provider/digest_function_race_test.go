package provider

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/statcache"
)

// TestFileDigestsFileVanishing: file_digests of a file that another
// process keeps deleting and re-creating returns the file's entry or an
// error, and never crashes the provider (it used to stat the file a second
// time and dereference a nil FileInfo when that stat failed).
func TestFileDigestsFileVanishing(t *testing.T) {
	t.Setenv(statcache.EnvDisable, "off") // every call really reads the file
	dir := t.TempDir()
	p := filepath.Join(dir, "handler.py")
	if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := NewFileDigestsFunction()
	call := func() *function.RunResponse {
		resp := &function.RunResponse{Result: function.NewResultData(types.MapUnknown(types.StringType))}
		f.Run(context.Background(), function.RunRequest{Arguments: function.NewArgumentsData([]attr.Value{
			types.StringValue(p), types.TupleValueMust([]attr.Type{}, []attr.Value{}),
		})}, resp)
		return resp
	}
	check := func(resp *function.RunResponse) {
		t.Helper()
		m, isMap := resp.Result.Value().(types.Map)
		if !isMap || len(m.Elements()) != 1 || m.Elements()["handler.py"] == nil {
			t.Fatalf("result %v", resp.Result.Value())
		}
	}
	// The file there: its entry.
	if resp := call(); resp.Error != nil {
		t.Fatal(resp.Error)
	} else {
		check(resp)
	}
	// The file coming and going: an entry or an error, never a crash.
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		tmp := filepath.Join(dir, "tmp")
		for !stop.Load() {
			_ = os.Remove(p)                          // racing on purpose: errors are the point
			_ = os.WriteFile(tmp, []byte("x"), 0o755) // likewise
			_ = os.Rename(tmp, p)
		}
	}()
	defer func() { stop.Store(true); <-done }()
	for range 3000 {
		if resp := call(); resp.Error == nil {
			check(resp)
		}
	}
}
