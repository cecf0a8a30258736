package release

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// countingBackend counts the objects opened and listed through it.
type countingBackend struct {
	store.Backend
	mu     sync.Mutex
	opened []string
	lists  int
}

func (c *countingBackend) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	c.mu.Lock()
	c.opened = append(c.opened, key)
	c.mu.Unlock()
	return c.Backend.Open(ctx, key)
}

func (c *countingBackend) List(ctx context.Context, prefix string) ([]string, error) {
	c.mu.Lock()
	c.lists++
	c.mu.Unlock()
	return c.Backend.List(ctx, prefix)
}

func entry(path, content string, kind digest.Kind) digest.Entry {
	return digest.Entry{Path: path, Kind: kind, SHA256: digest.Bytes([]byte(content)), Size: int64(len(content))}
}

func listing(entries ...digest.Entry) *digest.Listing {
	m := &digest.Listing{Entries: entries}
	m.Sort()
	return m
}

func TestCompareListings(t *testing.T) {
	older := listing(
		entry("a.txt", "a", digest.KindFile),
		entry("bin/run", "run", digest.KindFile),
		entry("gone.txt", "x", digest.KindFile),
		entry("same.txt", "same", digest.KindFile),
		entry("z/edit.txt", "v1", digest.KindFile),
	)
	newer := listing(
		entry("a.txt", "a", digest.KindFile),
		entry("bin/run", "run", digest.KindExec), // only the kind changed
		entry("new.txt", "n", digest.KindFile),
		entry("same.txt", "same", digest.KindFile),
		entry("z/edit.txt", "v2", digest.KindFile),
	)
	got := CompareListings(older, newer, 10)
	want := &FileChanges{Added: 1, Removed: 1, Changed: 2, Lines: []string{"~ bin/run", "- gone.txt", "+ new.txt", "~ z/edit.txt"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("CompareListings = %+v, want %+v", got, want)
	}
	if got.Total() != 4 {
		t.Fatalf("Total = %d", got.Total())
	}
	if got := CompareListings(older, older, 10); got.Total() != 0 || got.Lines == nil || len(got.Lines) != 0 {
		t.Fatalf("a listing against itself: %+v", got)
	}
	if got := CompareListings(&digest.Listing{}, newer, 2); got.Added != 5 || !reflect.DeepEqual(got.Lines, []string{"+ a.txt", "+ bin/run"}) {
		t.Fatalf("from empty, limit 2: %+v", got)
	}
	if got := CompareListings(older, newer, 0); got.Total() != 4 || len(got.Lines) != 0 {
		t.Fatalf("limit 0: %+v", got)
	}
}

// bigTrees stores two trees of n files in st: files 0..changed-1 differ,
// the older one has removed extra files, the newer one added extra files.
func bigTrees(t *testing.T, st *store.Store, n, changed, removed, added int) (older, newer string) {
	t.Helper()
	var o, w digest.Listing
	for i := range n {
		p := fmt.Sprintf("f/%06d.txt", i)
		o.Entries = append(o.Entries, entry(p, "old", digest.KindFile))
		if i < changed {
			w.Entries = append(w.Entries, entry(p, "new", digest.KindFile))
		} else {
			w.Entries = append(w.Entries, entry(p, "old", digest.KindFile))
		}
	}
	for i := range removed {
		o.Entries = append(o.Entries, entry(fmt.Sprintf("old/%06d", i), "x", digest.KindFile))
	}
	for i := range added {
		w.Entries = append(w.Entries, entry(fmt.Sprintf("new/%06d", i), "y", digest.KindFile))
	}
	o.Sort()
	w.Sort()
	for _, c := range []string{"old", "new", "x", "y"} { // a listing is stored after its blobs
		if _, err := st.PutBlob(context.Background(), digest.Bytes([]byte(c)), strings.NewReader(c)); err != nil {
			t.Fatal(err)
		}
	}
	put := func(m *digest.Listing) string {
		sum, err := st.PutListing(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return sum.String()
	}
	return put(&o), put(&w)
}

func publish(t *testing.T, b store.Backend, version string, artifacts, metadata map[string]string) *Record {
	t.Helper()
	r, err := WriteRecord(ctx, b, &Record{Name: "web", Version: version, Artifacts: artifacts, Metadata: metadata}, now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCompare: two published versions on both stores, with a directory
// artifact changed in more files than the bound (the counts stay right),
// a file artifact changed (digests only), an artifact added and one
// removed, and metadata added, removed and changed. Each listing is read
// once, in one request: nothing is read per file.
func TestCompare(t *testing.T) {
	eachBackend(t, func(t *testing.T, b store.Backend) {
		cb := &countingBackend{Backend: b}
		st := store.New(cb)
		oldSite, newSite := bigTrees(t, st, 5000, 1500, 7, 3)
		blob1, blob2 := digest.Bytes([]byte("config v1")), digest.Bytes([]byte("config v2"))
		for _, s := range []string{"config v1", "config v2"} {
			if _, err := st.PutBlob(ctx, digest.Bytes([]byte(s)), strings.NewReader(s)); err != nil {
				t.Fatal(err)
			}
		}
		v1 := publish(t, b, "1.0.0",
			map[string]string{"site": oldSite, "docs": oldSite, "config": blob1.String(), "legacy": a1},
			map[string]string{"env": "prod", "owner": "web-team", "gone": "x"})
		v2 := publish(t, b, "1.0.1",
			map[string]string{"site": newSite, "docs": newSite, "config": blob2.String(), "api": a2},
			map[string]string{"env": "staging", "owner": "web-team", "git_sha": "abc123"})

		cb.opened, cb.lists = nil, 0
		d, err := Compare(ctx, v1, v2, StoreListings(st), 100)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(d.ArtifactsAdded, map[string]string{"api": a2}) || !reflect.DeepEqual(d.ArtifactsRemoved, map[string]string{"legacy": a1}) {
			t.Fatalf("added %v, removed %v", d.ArtifactsAdded, d.ArtifactsRemoved)
		}
		if len(d.ArtifactsChanged) != 3 {
			t.Fatalf("changed: %v", d.ArtifactsChanged)
		}
		site := d.ArtifactsChanged["site"]
		if site.From != oldSite || site.To != newSite || site.Files == nil {
			t.Fatalf("site: %+v", site)
		}
		f := site.Files
		if f.Added != 3 || f.Removed != 7 || f.Changed != 1500 || f.Total() != 1510 || len(f.Lines) != 100 {
			t.Fatalf("site files: +%d -%d ~%d, %d lines", f.Added, f.Removed, f.Changed, len(f.Lines))
		}
		if f.Lines[0] != "~ f/000000.txt" || f.Lines[99] != "~ f/000099.txt" {
			t.Fatalf("lines are not the first changes in path order: %q … %q", f.Lines[0], f.Lines[99])
		}
		if !reflect.DeepEqual(d.ArtifactsChanged["docs"], site) {
			t.Fatalf("docs (same trees as site): %+v", d.ArtifactsChanged["docs"])
		}
		if c := d.ArtifactsChanged["config"]; c.From != blob1.String() || c.To != blob2.String() || c.Files != nil {
			t.Fatalf("config (a file artifact): %+v", c)
		}
		if !reflect.DeepEqual(d.MetadataAdded, map[string]string{"git_sha": "abc123"}) ||
			!reflect.DeepEqual(d.MetadataRemoved, map[string]string{"gone": "x"}) ||
			!reflect.DeepEqual(d.MetadataChanged, map[string]ValueChange{"env": {From: "prod", To: "staging"}}) {
			t.Fatalf("metadata: +%v -%v ~%v", d.MetadataAdded, d.MetadataRemoved, d.MetadataChanged)
		}
		// The two site listings once each (shared by docs), and config's
		// tree key (absent: a blob); never a blob, never a listing of keys.
		want := []string{store.ListingKey(blob1), mustTreeKey(t, oldSite), mustTreeKey(t, newSite)}
		got := append([]string(nil), cb.opened...)
		if len(got) != len(want) || !sameSet(got, want) || cb.lists != 0 {
			t.Fatalf("opened %v (want %v), listed %d prefixes", got, want, cb.lists)
		}

		// Backwards: the mirror image.
		back, err := Compare(ctx, v2, v1, StoreListings(st), 5)
		if err != nil {
			t.Fatal(err)
		}
		bf := back.ArtifactsChanged["site"].Files
		if bf.Added != 7 || bf.Removed != 3 || bf.Changed != 1500 || len(bf.Lines) != 5 ||
			!reflect.DeepEqual(back.ArtifactsAdded, map[string]string{"legacy": a1}) ||
			!reflect.DeepEqual(back.MetadataChanged, map[string]ValueChange{"env": {From: "staging", To: "prod"}}) {
			t.Fatalf("backwards: %+v, files %+v", back, bf)
		}

		// A version against itself: nothing changed, nothing read.
		cb.opened = nil
		same, err := Compare(ctx, v1, v1, StoreListings(st), 5)
		if err != nil || len(same.ArtifactsChanged)+len(same.ArtifactsAdded)+len(same.ArtifactsRemoved)+len(same.MetadataAdded)+
			len(same.MetadataRemoved)+len(same.MetadataChanged) != 0 || len(cb.opened) != 0 {
			t.Fatalf("self-compare: %+v, %v, opened %v", same, err, cb.opened)
		}
	})
}

// TestCompareListingError: a listing that cannot be read is an error
// naming the artifact and version, not a partial diff.
func TestCompareListingError(t *testing.T) {
	b := backend(t)
	st := store.New(b)
	oldSite, newSite := bigTrees(t, st, 3, 1, 0, 0)
	v1 := &Record{Name: "web", Version: "1.0.0", Artifacts: map[string]string{"site": oldSite}}
	v2 := &Record{Name: "web", Version: "1.0.1", Artifacts: map[string]string{"site": newSite}}
	fail := func(_ context.Context, s digest.Sum) (*digest.Listing, error) {
		if s.String() == newSite {
			return nil, fmt.Errorf("boom")
		}
		return st.GetListing(ctx, s)
	}
	_, err := Compare(ctx, v1, v2, fail, 5)
	if err == nil || !strings.Contains(err.Error(), `artifact "site" of web@1.0.1: boom`) {
		t.Fatalf("err = %v", err)
	}
}

func TestArtifactChanges(t *testing.T) {
	got := ArtifactChanges(map[string]string{"site": a1, "legacy": a1, "same": a2}, map[string]string{"site": a2, "api": a1, "same": a2})
	if want := []string{"+ api " + a1, "- legacy " + a1, "~ site " + a1 + " -> " + a2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ArtifactChanges = %q, want %q", got, want)
	}
	if got := ArtifactChanges(map[string]string{"a": a1}, map[string]string{"a": a1}); got != nil {
		t.Fatalf("no change: %q", got)
	}
}

func mustTreeKey(t *testing.T, s string) string {
	t.Helper()
	sum, err := digest.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return store.ListingKey(sum)
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestStoreListingsMissingTree: a digest that names nothing stored is an
// error (a directory artifact whose listing is gone), not "a file".
func TestStoreListingsMissingTree(t *testing.T) {
	st := store.New(backend(t))
	if _, err := StoreListings(st)(ctx, digest.Bytes([]byte("gone"))); err == nil {
		t.Fatal("a digest naming nothing stored passed for a file artifact")
	}
	blob := digest.Bytes([]byte("a file"))
	if _, err := st.PutBlob(ctx, blob, strings.NewReader("a file")); err != nil {
		t.Fatal(err)
	}
	if m, err := StoreListings(st)(ctx, blob); err != nil || m != nil {
		t.Fatalf("a stored blob: %v %v", m, err)
	}
}
