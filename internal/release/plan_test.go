package release

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// TestPlanVersionSince: a plan made from a state that saw another highest
// version than the store has now is refused, whether a version was
// published since or versions were deleted; an explicit version, or no
// version seen, plans as PlanVersion does.
func TestPlanVersionSince(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	b, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(c Content, v, prev string) {
		t.Helper()
		if _, err := WriteRecord(ctx, b, &Record{Name: c.Name, Version: v, Artifacts: c.Artifacts, Metadata: c.Metadata, PreviousVersion: prev}, now); err != nil {
			t.Fatal(err)
		}
	}
	c1, c2, c3 := content(a1), content(a2), content(digest.Bytes([]byte("three")).String())
	publish(c1, "1.0.0", "")
	if p, err := PlanVersionSince(ctx, b, c3, "", "patch", "1.0.0"); err != nil || p.Version != "1.0.1" || p.PreviousVersion != "1.0.0" {
		t.Fatalf("store as seen: %+v, %v", p, err)
	}
	publish(c2, "1.0.1", "1.0.0") // another apply
	var moved *VersionsMovedError
	if _, err := PlanVersionSince(ctx, b, c3, "", "patch", "1.0.0"); !errors.As(err, &moved) || moved.Highest != "1.0.1" || moved.Seen != "1.0.0" || moved.Deleted {
		t.Fatalf("a version published since: %v", err)
	}
	// Also for content the other apply published: the version adopted may
	// not be the one planned.
	if _, err := PlanVersionSince(ctx, b, c2, "", "patch", "1.0.0"); !errors.As(err, &moved) {
		t.Fatalf("content published since: %v", err)
	}
	if p, err := PlanVersionSince(ctx, b, c3, "", "patch", ""); err != nil || p.Version != "1.0.2" {
		t.Fatalf("nothing seen: %+v, %v", p, err)
	}
	if p, err := PlanVersionSince(ctx, b, c3, "1.5.0", "patch", "1.0.0"); err != nil || p.Version != "1.5.0" {
		t.Fatalf("explicit version: %+v, %v", p, err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "releases")); err != nil {
		t.Fatal(err)
	}
	if _, err := PlanVersionSince(ctx, b, c3, "", "patch", "1.0.1"); !errors.As(err, &moved) || !moved.Deleted || moved.Highest != "" {
		t.Fatalf("versions deleted: %v", err)
	}
}
