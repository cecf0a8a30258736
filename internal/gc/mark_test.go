package gc

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// TestLeaseKeeps: what a writer holds stays, with what it references,
// until the lease expires.
func TestLeaseKeeps(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func() *store.Store) {
		w := newWorld(t, newStore())
		_, err := w.st.Hold(ctx, store.ListingKey(w.trees["orphan"]), release.VersionKey("web", "1.0.0"))
		must(t, err)
		report, err := Collect(ctx, w.st, policy, later())
		must(t, err)
		for _, k := range []string{
			store.ListingKey(w.trees["orphan"]), store.BlobKey(digest.Bytes([]byte("orphan\n"))),
			release.VersionKey("web", "1.0.0"), store.ListingKey(w.trees["1.0.0"]), store.BlobKey(digest.Bytes([]byte("only 1.0.0\n"))),
		} {
			if ok, err := w.st.Backend().Exists(ctx, k); !ok || err != nil {
				t.Fatalf("%s was leased and is gone:\n%s", k, report)
			}
		}
		if slices.Contains(report.Versions, "web@1.0.0") {
			t.Fatalf("a leased version is reported deleted:\n%s", report)
		}
		checkConsistent(t, w.st)
	})
}

// TestOnlyLeasesGoAsLeases: under gc/leases/ only what parses as a lease
// (by its name and its content) is deleted once expired, and under
// gc/condemned/ only what parses as a marker. Anything else there (a
// README, a lease edited by hand, a folder) stops the collection before
// anything is deleted, naming it, however old it is; a dry run says so
// too.
func TestOnlyLeasesGoAsLeases(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func() *store.Store) {
		for _, c := range []struct{ key, body, want string }{
			{store.LeasesPrefix + "README", "What these files are.\n", "it is not a lease the provider wrote"},
			{store.LeasesPrefix + store.NewObjectID(longAgo), "edited by hand\n", "is not an immutable-lease-v1 object"},
			{store.LeasesPrefix + "old/" + store.NewObjectID(longAgo), string(store.LeaseBody(nil)), "it is not a lease the provider wrote"},
			{store.MarkersPrefix + "README", "What these files are.\n", "it is not a collector's marker the provider wrote"},
		} {
			w := newWorld(t, newStore())
			// A real lease, expired: it stays too, as the run stops first.
			_, err := w.st.Hold(ctx, store.ListingKey(w.trees["orphan"]))
			must(t, err)
			must(t, w.st.Backend().Create(ctx, c.key, strings.NewReader(c.body)))
			keys, err := w.st.Backend().List(ctx, "gc/")
			must(t, err)
			for _, k := range keys {
				age(t, w.st, k, longAgo)
			}
			before := everything(t, w.st)
			for _, dry := range []bool{true, false} {
				o := later()
				o.DryRun = dry
				report, err := Collect(ctx, w.st, policy, o)
				var u *UntrustedError
				if !errors.As(err, &u) || u.Key != c.key || u.After || !strings.Contains(err.Error(), "nothing was deleted: "+c.key) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("%s (dry run %v): %v\n%v; want an UntrustedError naming it, saying %q", c.key, dry, err, report, c.want)
				}
				unchanged(t, w.st, before, "a collection stopped by "+c.key)
			}
		}
	})
}

// TestArchiveRefKeepsItsListing: an archive reference stored today for a
// listing stored a month ago (unreferenced until now) keeps the listing:
// a reference is checked by its listing, and must never outlive it.
func TestArchiveRefKeepsItsListing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	b, err := filestore.New(root)
	must(t, err)
	st := store.New(b)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a\n"), 0o644))
	m, err := digest.HashTree(ctx, dir, digest.Options{})
	must(t, err)
	_, err = st.Publish(ctx, dir, m)
	must(t, err)
	expire(t, st)
	ageContent(t, root, time.Now().Add(-30*24*time.Hour))
	_, err = archive.NewRefs(st).Build(ctx, "zip", m, func(_ context.Context, e digest.Entry) (io.ReadCloser, error) {
		return os.Open(filepath.Join(dir, e.Path))
	})
	must(t, err)
	expire(t, st) // only the reference's own age keeps anything
	_, err = Collect(ctx, st, DefaultPolicy(), Options{AllowEmpty: true})
	must(t, err)
	if !present(t, st, store.ArchiveKey(archive.Version("zip"), m.Digest())) || !present(t, st, store.ListingKey(m.Digest())) {
		t.Fatal("the young reference or its month-old listing was deleted")
	}
	checkConsistent(t, st)
}

// TestReusedContentIsYoung: content published a month ago and published
// again now (a new artifact of the same bytes, that only a workspace's
// state names) is kept for the grace period after its last use: the
// publish that found it stored holds it, and a lease is a use.
func TestReusedContentIsYoung(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	b, err := filestore.New(root)
	must(t, err)
	st := store.New(b)
	m := publishTree(t, st, map[string]string{"a.txt": "same content\n"})
	expire(t, st)
	ageContent(t, root, time.Now().Add(-30*24*time.Hour))
	publishTree(t, st, map[string]string{"a.txt": "same content\n"})
	report, err := Collect(ctx, st, DefaultPolicy(), Options{})
	must(t, err)
	if !present(t, st, store.ListingKey(m.Digest())) || !present(t, st, store.BlobKey(digest.Bytes([]byte("same content\n")))) {
		t.Fatalf("content published again a moment ago was collected:\n%s", report)
	}
	// Once the grace period has passed since, it goes (with the lease).
	leases, err := b.List(ctx, store.LeasesPrefix)
	must(t, err)
	if len(leases) != 1 {
		t.Fatalf("leases %v, want the second publish's", leases)
	}
	then := time.Now().Add(-DefaultPolicy().Grace - time.Hour)
	must(t, os.Chtimes(filepath.Join(root, filepath.FromSlash(leases[0])), then, then))
	report, err = Collect(ctx, st, DefaultPolicy(), Options{AllowEmpty: true})
	must(t, err)
	if present(t, st, store.ListingKey(m.Digest())) {
		t.Fatalf("content unused for longer than the grace period was kept:\n%s", report)
	}
}

// TestImageRecordLikeAListing: an image record no version names is kept
// like a listing no version names: while it is young, or while a writer
// holds it (a release being published that names the image), with its
// manifest, config and trees; after that it goes with all that is its
// alone, the record first.
func TestImageRecordLikeAListing(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func() *store.Store) {
		st := newStore()
		ref, keys := putImage(t, st, "alone")
		expire(t, st)
		all := func(want bool, what string) {
			t.Helper()
			for _, k := range keys {
				if present(t, st, k) != want {
					t.Fatalf("%s: %s present %v, want %v", what, k, !want, want)
				}
			}
		}
		_, err := Collect(ctx, st, policy, Options{})
		must(t, err)
		all(true, "a young image record")
		sum, err := release.ImageDigest(ref)
		must(t, err)
		_, err = st.Hold(ctx, store.ImageKey(sum))
		must(t, err)
		_, err = Collect(ctx, st, policy, later())
		must(t, err)
		all(true, "a held image record")
		checkConsistent(t, st)
		expire(t, st)
		report, err := Collect(ctx, st, policy, later())
		must(t, err)
		all(false, "an old image record no version names")
		if report.Deleted[KindImage].Objects != 1 {
			t.Fatalf("report:\n%s", report)
		}
	})
}
