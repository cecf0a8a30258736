package export

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/fsguard"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

func TestFormatsAndLinksChecked(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	tree := stored(t, st, map[string]string{"a": "a"})
	blobSum, _, err := st.PutFile(ctx, writeFile(t, "x"))
	if err != nil {
		t.Fatal(err)
	}
	blob, err := Load(ctx, st, blobSum)
	if err != nil || blob.Kind != store.Blob {
		t.Fatal(err)
	}
	var fe *FormatError
	for _, tc := range []struct {
		c      *Content
		format Format
	}{{tree, File}, {blob, Zip}, {blob, TarGz}, {blob, Directory}} {
		if err := Check(ctx, st, tc.c, tc.format); !errors.As(err, &fe) {
			t.Errorf("Check(kind %d, %s) = %v, want FormatError", tc.c.Kind, tc.format, err)
		}
	}
	escaping := stored(t, st, map[string]string{"a": "a", "up": "->../../etc/passwd"})
	var le *archive.LinkError
	if err := Check(ctx, st, escaping, Directory); !errors.As(err, &le) {
		t.Errorf("a link out of the tree: Check = %v, want LinkError", err)
	}
	if _, err := Load(ctx, st, digest.Bytes([]byte("never stored"))); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load of a digest not stored = %v, want ErrNotFound", err)
	}
}

func TestArchiveSumKnownBeforeWriting(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	c := stored(t, st, site)
	refs := archive.NewRefs(st)
	for _, format := range []Format{Zip, TarGz} {
		planned, ok, err := FileSum(ctx, refs, st, c, format)
		if err != nil || !ok {
			t.Fatalf("%s: FileSum = %v, %v", format, ok, err)
		}
		if _, err := refs.Find(ctx, archive.Format(format), c.Listing); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: FileSum stored an archive reference (%v); planning must write nothing", format, err)
		}
		target := filepath.Join(t.TempDir(), "a."+string(format))
		w := &Writer{St: st, Refs: refs}
		got, err := w.Write(ctx, c, format, target, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(target)
		if got != planned || digest.Bytes(b) != planned {
			t.Errorf("%s: planned %s, Write returned %s, file hashes to %s", format, planned, got, digest.Bytes(b))
		}
		if format == Zip {
			zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
			if err != nil || len(zr.File) != len(site) {
				t.Errorf("zip: %v, %d entries", err, len(zr.File))
			}
		}
		f, err := Inspect(ctx, target, format, planned, hashTree, noListing)
		if err != nil || f.Status != Matches {
			t.Errorf("%s: Inspect = %+v, %v", format, f, err)
		}
	}
}

func TestPlaceRefused(t *testing.T) {
	st, root := newStore(t)
	stored(t, st, map[string]string{"a": "a"}) // the store's directory exists from its first object
	dir := t.TempDir()
	file := writeFile(t, "x")
	if err := os.Symlink(root, filepath.Join(dir, "storelink")); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"in the store":             filepath.Join(root, "blobs", "x"),
		"in the store via a link":  filepath.Join(dir, "storelink", "x"),
		"the store's parent":       filepath.Dir(root),
		"under a file":             filepath.Join(file, "x"),
		"in another store":         filepath.Join(mkStore(t), "site"),
		"holding another store":    mkStore(t),
		"the store's parent (dot)": filepath.Dir(root) + "/x/..",
	}
	for name, p := range cases {
		target, err := Target(p)
		if err == nil {
			err = CheckPlace(target, root)
		}
		var refused *fsguard.RefusedError
		if !errors.As(err, &refused) {
			t.Errorf("%s (%s): %v, want refused", name, p, err)
		}
	}
	for _, p := range []string{"", "a/", "a/.", "."} {
		if _, err := Target(p); err == nil {
			t.Errorf("Target(%q) accepted", p)
		}
	}
	ok, err := Target(filepath.Join(dir, "site"))
	if err != nil || CheckPlace(ok, root) != nil {
		t.Errorf("a plain new path is refused: %v %v", err, CheckPlace(ok, root))
	}
	// A symlink as the last component is not followed.
	if err := os.Symlink(dir, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if got, _ := Target(filepath.Join(dir, "link")); got != filepath.Join(mustResolve(t, dir), "link") {
		t.Errorf("Target followed the last component: %s", got)
	}
}

// ".." in path is applied where the kernel applies it: after the link
// before it is followed, not by cancelling the link's name.
func TestTargetResolvesDotDotAfterALink(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "real", "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("real", "deep"), filepath.Join(dir, "lndeep")); err != nil {
		t.Fatal(err)
	}
	got, err := Target(filepath.Join(dir, "lndeep") + "/../x")
	if err != nil {
		t.Fatal(err)
	}
	want, err := filepath.EvalSymlinks(filepath.Join(dir, "real"))
	if err != nil {
		t.Fatal(err)
	}
	if got != filepath.Join(want, "x") {
		t.Errorf("Target(lndeep/../x) = %s, want %s (where mkdir -p would put it)", got, filepath.Join(want, "x"))
	}
}

// A new export refuses whatever is at its target, naming what it is, also
// a link to nothing (never followed).
func TestCheckNewRefusesAnythingThere(t *testing.T) {
	dir := t.TempDir()
	if err := CheckNew(filepath.Join(dir, "site")); err != nil {
		t.Fatalf("nothing there: %v", err)
	}
	for name, what := range map[string]string{"file": "a regular file", "dir": "a directory", "link": "a symbolic link"} {
		p := filepath.Join(dir, name)
		var err error
		switch name {
		case "file":
			err = os.WriteFile(p, []byte("mine\n"), 0o644)
		case "dir":
			err = os.Mkdir(p, 0o755)
		case "link":
			err = os.Symlink("nowhere", p)
		}
		if err != nil {
			if name == "link" {
				continue // no symlinks here (Windows without the privilege)
			}
			t.Fatal(err)
		}
		var exists *ExistsError
		if err := CheckNew(p); !errors.As(err, &exists) || exists.Target != p || exists.What != what {
			t.Errorf("%s: got %v, want an ExistsError naming %q", name, err, what)
		}
	}
}

// Two exports may not nest: either one's replacement would remove the
// other. The same target, and a sibling sharing a prefix, are apart.
func TestCheckApart(t *testing.T) {
	dir := t.TempDir()
	site, inner, sibling := filepath.Join(dir, "site"), filepath.Join(dir, "site", "sub"), filepath.Join(dir, "site2")
	var refused *fsguard.RefusedError
	if err := CheckApart(inner, site); !errors.As(err, &refused) || !strings.HasPrefix(refused.Reason, "is inside "+site+",") {
		t.Errorf("inside: got %v", err)
	}
	if err := CheckApart(site, inner); !errors.As(err, &refused) || !strings.HasPrefix(refused.Reason, "holds "+inner+",") {
		t.Errorf("holding: got %v", err)
	}
	for _, other := range []string{site, sibling} {
		if err := CheckApart(site, other); err != nil {
			t.Errorf("%s and %s: %v", site, other, err)
		}
	}
}
