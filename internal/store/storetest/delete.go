package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// deleteCases are the promises of store.DeleteMany, which the collector
// deletes through: a backend's batch delete (store.BatchDeleter) where it
// has one, else its deletes one by one.
func deleteCases() map[string]func(t *testing.T, b store.Backend, s *store.Store) {
	ctx := context.Background()
	batch := func(t *testing.T, b store.Backend) interface {
		DeleteMany(ctx context.Context, keys []string) []error
	} {
		t.Helper()
		d, ok := b.(store.Deleter)
		if !ok {
			t.Fatalf("%T is not a store.Deleter", b)
		}
		return deleteMany{d}
	}
	// fill stores n blobs spread over the layout's folders, and returns
	// their keys.
	fill := func(t *testing.T, b store.Backend, n int) []string {
		t.Helper()
		keys := make([]string, n)
		err := store.ForEach(ctx, 16, n, func(ctx context.Context, i int) error {
			data := fmt.Sprintf("object %d\n", i)
			keys[i] = store.BlobKey(digest.Bytes([]byte(data)))
			return b.Create(ctx, keys[i], strings.NewReader(data))
		})
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	return map[string]func(t *testing.T, b store.Backend, s *store.Store){
		// More keys than one S3 request takes, missing ones among them:
		// each gets its own result, all nil, and exactly those go.
		"batch delete: a result per key, missing keys fine": func(t *testing.T, b store.Backend, s *store.Store) {
			bd := batch(t, b)
			keys := fill(t, b, store.MaxBatchDelete+50)
			stay := keys[:5]
			missing := []string{store.BlobKey(digest.Bytes([]byte("never stored 1"))), "trees/sha256/00/none", "no/such/folder/key"}
			doomed := append(slices.Clone(keys[5:len(keys)/2]), missing[0])
			doomed = append(doomed, keys[len(keys)/2:]...)
			doomed = append(doomed, missing[1:]...)
			errs := bd.DeleteMany(ctx, doomed)
			if len(errs) != len(doomed) {
				t.Fatalf("%d results for %d keys", len(errs), len(doomed))
			}
			for i, err := range errs {
				if err != nil {
					t.Fatalf("%s: %v", doomed[i], err)
				}
			}
			left, err := b.List(ctx, store.FamilyBlob.Dir())
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(stay)
			if !slices.Equal(left, stay) {
				t.Fatalf("after the batch delete the store holds %d blobs %.3v…, want the %d not in the batch", len(left), left, len(stay))
			}
			d, ok := b.(store.Deleter)
			if !ok {
				t.Fatalf("%T is not a store.Deleter", b)
			}
			if infos, err := d.ListInfo(ctx, store.FamilyBlob.Dir()); err != nil || len(infos) != len(stay) {
				t.Fatalf("ListInfo after the delete: %d objects, %v", len(infos), err)
			}
		},
		// More blobs than one page of an S3 listing, and a stray file:
		// ListFamily lists (in parallel where the backend can) what
		// ListInfo lists, the stray aside.
		"a family lists the same in parallel": func(t *testing.T, b store.Backend, s *store.Store) {
			d, ok := b.(store.Deleter)
			if !ok {
				t.Fatalf("%T is not a store.Deleter", b)
			}
			fill(t, b, store.MaxBatchDelete+50)
			if err := b.Create(ctx, "blobs/README", strings.NewReader("mine\n")); err != nil {
				t.Fatal(err)
			}
			for _, f := range []store.Family{store.FamilyBlob, store.FamilyListing} {
				want, err := d.ListInfo(ctx, f.Dir())
				if err != nil {
					t.Fatal(err)
				}
				want = slices.DeleteFunc(want, func(i store.ObjectInfo) bool { return i.Key == "blobs/README" })
				got, err := store.ListFamily(ctx, d, f, 8)
				if err != nil {
					t.Fatal(err)
				}
				// Listed a family at a time, the stray is there too.
				got = slices.DeleteFunc(got, func(i store.ObjectInfo) bool { return i.Key == "blobs/README" })
				same := func(a, b store.ObjectInfo) bool {
					return a.Key == b.Key && a.Size == b.Size && a.ModTime.Equal(b.ModTime)
				}
				if len(got) != len(want) || !slices.EqualFunc(got, want, same) {
					t.Fatalf("ListFamily(%s): %d objects, ListInfo %d (or they differ)", f, len(got), len(want))
				}
			}
		},
		"batch delete of no keys": func(t *testing.T, b store.Backend, s *store.Store) {
			if errs := batch(t, b).DeleteMany(ctx, nil); len(errs) != 0 {
				t.Fatalf("results for no keys: %v", errs)
			}
		},
		// A cancelled delete reports every key it did not delete.
		"batch delete after cancel deletes nothing it reports deleted": func(t *testing.T, b store.Backend, s *store.Store) {
			keys := fill(t, b, 20)
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			errs := batch(t, b).DeleteMany(cctx, keys)
			for i, err := range errs {
				ok, xerr := b.Exists(ctx, keys[i])
				if xerr != nil {
					t.Fatal(xerr)
				}
				if err == nil && ok {
					t.Fatalf("%s: reported deleted, still there", keys[i])
				}
			}
		},
	}
}

// deleteMany is store.DeleteMany on a Deleter, 8 deletes at once where it
// has no batch delete.
type deleteMany struct{ d store.Deleter }

func (m deleteMany) DeleteMany(ctx context.Context, keys []string) []error {
	return store.DeleteMany(ctx, m.d, 8, keys)
}
