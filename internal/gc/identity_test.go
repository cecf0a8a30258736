package gc

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// TestAdoptStore: a store an earlier version of the provider wrote has no
// identity. The collector refuses it, untouched, unless --adopt-store:
// then every key must be the store's (one that is not is named, and
// nothing is written), the identity is written (not in a dry run), and the
// collection runs as on any store.
func TestAdoptStore(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func() *store.Store) {
		w := newWorld(t, newStore())
		must(t, deleter(t, w.st).Delete(ctx, store.IdentityKey))
		before := everything(t, w.st)

		_, err := Collect(ctx, w.st, policy, later())
		var nas *NotAStoreError
		if !errors.As(err, &nas) || nas.Err != nil || nas.ForeignCount != 0 || !strings.Contains(err.Error(), "--adopt-store") {
			t.Fatalf("a store without its identity: %v; want a NotAStoreError pointing at --adopt-store", err)
		}
		unchanged(t, w.st, before, "a refused collection")

		dry := later()
		dry.DryRun, dry.Adopt = true, true
		report, err := Collect(ctx, w.st, policy, dry)
		must(t, err)
		if !report.Adopted || !slices.Equal(report.Versions, w.versions) || !strings.Contains(report.String(), "would write "+store.IdentityKey) {
			t.Fatalf("a dry run adopting the store:\n%s", report)
		}
		unchanged(t, w.st, before, "a dry run with --adopt-store")

		// A key that is not the store's: not adopted, nothing written.
		must(t, w.st.Backend().Create(ctx, "notes.txt", strings.NewReader("mine\n")))
		withNotes := everything(t, w.st)
		adopt := later()
		adopt.Adopt = true
		_, err = Collect(ctx, w.st, policy, adopt)
		if !errors.As(err, &nas) || !slices.Equal(nas.Foreign, []string{"notes.txt"}) || !strings.Contains(err.Error(), "such as notes.txt") {
			t.Fatalf("adopting a store holding notes.txt: %v", err)
		}
		unchanged(t, w.st, withNotes, "a refused adoption")
		must(t, deleter(t, w.st).Delete(ctx, "notes.txt"))

		report, err = Collect(ctx, w.st, policy, adopt)
		must(t, err)
		if !report.Adopted || !slices.Equal(report.Versions, w.versions) || !strings.Contains(report.String(), "wrote "+store.IdentityKey) {
			t.Fatalf("adopting the store:\n%s", report)
		}
		if found, err := store.CheckIdentity(ctx, w.st.Backend()); !found || err != nil {
			t.Fatalf("the adopted store's identity: %v, %v", found, err)
		}
		checkConsistent(t, w.st)
		checkKept(t, w)
		if _, err := Collect(ctx, w.st, policy, later()); err != nil {
			t.Fatalf("collecting the adopted store: %v", err)
		}
	})
}

// TestIdentityDiffers: a store whose identity is not the one this
// collector knows (a later layout, or an altered object) is refused, and
// nothing is written, with or without --adopt-store.
func TestIdentityDiffers(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func() *store.Store) {
		w := newWorld(t, newStore())
		for _, c := range []struct{ body, want string }{
			{`{"format":"terraform-provider-immutable store","version":2}` + "\n", "layout version 2, which a later version of the provider wrote"},
			{"{}\n", "is not the store identity this provider writes"},
		} {
			must(t, deleter(t, w.st).Delete(ctx, store.IdentityKey))
			must(t, w.st.Backend().Create(ctx, store.IdentityKey, strings.NewReader(c.body)))
			before := everything(t, w.st)
			for _, adopt := range []bool{false, true} {
				o := later()
				o.Adopt = adopt
				_, err := Collect(ctx, w.st, policy, o)
				var nas *NotAStoreError
				var ie *store.IdentityError
				if !errors.As(err, &nas) || !errors.As(err, &ie) || !strings.Contains(err.Error(), store.IdentityKey+" in ") || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("identity %q, adopt %v: %v; want a NotAStoreError naming %s and saying %q", c.body, adopt, err, store.IdentityKey, c.want)
				}
				unchanged(t, w.st, before, "a collection refused for its identity")
			}
		}
	})
}

// TestMainAdoptsAStore: the command refuses a store without identity with
// exit 2 and says what to do; --adopt-store adopts and collects it.
func TestMainAdoptsAStore(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	b, err := filestore.New(root)
	must(t, err)
	w := newWorld(t, store.New(b))
	must(t, os.Remove(filepath.Join(root, filepath.FromSlash(store.IdentityKey))))
	code, stdout, stderr := run("--store", "file://"+root, "--dry-run")
	if code != 2 || stdout != "" || !strings.Contains(stderr, "run the collection once with --adopt-store") {
		t.Fatalf("a store without identity: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = run("--store", "file://"+root, "--adopt-store")
	if code != 0 || !strings.Contains(stdout, "wrote "+store.IdentityKey+": every key there is the store's") {
		t.Fatalf("--adopt-store: exit %d\n%s%s", code, stdout, stderr)
	}
	if found, err := store.CheckIdentity(ctx, w.st.Backend()); !found || err != nil {
		t.Fatalf("identity after --adopt-store: %v, %v", found, err)
	}
}

// TestAdoptEmpty: a location without identity that holds no release and
// no content (only a lease, here) is refused as empty, with or without
// --adopt-store, before anything is written, the identity included.
func TestAdoptEmpty(t *testing.T) {
	st := store.New(mustFilestore(t))
	_, err := st.Hold(ctx, "blobs/sha256/00/00")
	must(t, err)
	must(t, deleter(t, st).Delete(ctx, store.IdentityKey))
	before := everything(t, st)
	o := later()
	o.Adopt = true
	_, err = Collect(ctx, st, policy, o)
	if !errors.As(err, new(*EmptyError)) {
		t.Fatalf("adopting a location holding only a lease: %v, want an EmptyError", err)
	}
	unchanged(t, st, before, "a refused adoption of an empty location")
}
