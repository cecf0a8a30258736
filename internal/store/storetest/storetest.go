// Package storetest is the conformance suite every store backend passes:
// the same cases, run against the local filesystem and against a real
// S3-compatible server.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// Harness gives the suite a fresh, empty backend per case, a way to
// damage an object behind the store's back, and one to lose the answer
// of a write.
type Harness struct {
	New    func(t *testing.T) store.Backend
	Tamper func(t *testing.T, b store.Backend, key string, data []byte)
	// LoseAnswer returns a backend on the same store as b whose first
	// write of key is carried out, but whose answer is lost the way this
	// backend's transport loses one (an S3 server's answer dropped with
	// the connection, the SDK retrying; link(2) answering EEXIST for a
	// link it made, as over NFS when a reply is lost and the request sent
	// again). Every backend must have one: Create's promise that a write
	// of its own is never taken for another's rests on it.
	LoseAnswer func(t *testing.T, b store.Backend, key string) store.Backend
}

// failingReader yields n bytes, then fails: a writer that died mid-way.
type failingReader struct{ n int }

var errBroken = errors.New("reader broke mid-way")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errBroken
	}
	k := min(len(p), f.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	f.n -= k
	return k, nil
}

// read reads all of an opened blob or tree and closes it; a failed Close is
// the backend's failure too, so it is reported with the read's.
func read(rc io.ReadCloser, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(rc)
	return data, errors.Join(err, rc.Close())
}

// contentKeys lists what the store holds besides the collector
// protocol's leases and markers (gc/), which say what a writer was about
// to rely on, not content.
func contentKeys(t *testing.T, b store.Backend) []string {
	t.Helper()
	keys, err := b.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		if !strings.HasPrefix(k, store.FamilyLease.Dir()) {
			out = append(out, k)
		}
	}
	return out
}

// Run runs every case.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()
	cases := map[string]func(t *testing.T, b store.Backend, s *store.Store){
		"blob is stored once": func(t *testing.T, b store.Backend, s *store.Store) {
			data := []byte("hello\n")
			sum := digest.Bytes(data)
			for i := range 3 {
				written, err := s.PutBlob(ctx, sum, bytes.NewReader(data))
				if err != nil || written != (i == 0) {
					t.Fatalf("put %d: written=%v err=%v", i, written, err)
				}
			}
			if w, k := s.Stats.BlobsWritten.Load(), s.Stats.BlobsSkipped.Load(); w != 1 || k != 2 {
				t.Fatalf("written %d, skipped %d; want 1 and 2", w, k)
			}
			got, err := read(s.OpenBlob(ctx, sum))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back %q, %v", got, err)
			}
		},
		"wrong content is never stored under a digest": func(t *testing.T, b store.Backend, s *store.Store) {
			sum := digest.Bytes([]byte("planned"))
			_, err := s.PutBlob(ctx, sum, strings.NewReader("changed since plan"))
			var mm *store.MismatchError
			if !errors.As(err, &mm) {
				t.Fatalf("want MismatchError, got %v", err)
			}
			if ok, _ := s.HasBlob(ctx, sum); ok {
				t.Fatal("mismatching content is visible under the planned digest")
			}
			if keys := contentKeys(t, b); len(keys) != 0 {
				t.Fatalf("objects left behind: %v", keys)
			}
		},
		"a failed write leaves nothing": func(t *testing.T, b store.Backend, s *store.Store) {
			err := b.Create(ctx, "blobs/x", &failingReader{n: 300 << 10})
			if !errors.Is(err, errBroken) {
				t.Fatalf("want the reader's error, got %v", err)
			}
			if ok, _ := b.Exists(ctx, "blobs/x"); ok {
				t.Fatal("half an object is visible")
			}
			if err := b.Create(ctx, "blobs/x", strings.NewReader("whole")); err != nil {
				t.Fatalf("re-run after a failed write: %v", err)
			}
		},
		"an object is never overwritten": func(t *testing.T, b store.Backend, s *store.Store) {
			if err := b.Create(ctx, "releases/app/1.0.0", strings.NewReader("first")); err != nil {
				t.Fatal(err)
			}
			if err := b.Create(ctx, "releases/app/1.0.0", strings.NewReader("second")); !errors.Is(err, store.ErrExists) {
				t.Fatalf("want ErrExists, got %v", err)
			}
			got, err := read(b.Open(ctx, "releases/app/1.0.0"))
			if err != nil || string(got) != "first" {
				t.Fatalf("object now holds %q (%v)", got, err)
			}
		},
		"a write whose answer was lost is its writer's, not another's": func(t *testing.T, b store.Backend, s *store.Store) {
			if h.LoseAnswer == nil {
				t.Fatal("the harness has no LoseAnswer: every backend must show that a write whose answer was lost is not taken for another writer's")
			}
			for _, c := range []struct {
				key  string
				data []byte
			}{
				{"channels/app/prod/moves/0000000001", []byte(`{"to":"1.0.1"}`)},
				// Past the single-request size of a network backend.
				{"blobs/lost-big", bytes.Repeat([]byte("lost"), 5<<20)},
			} {
				lb := h.LoseAnswer(t, b, c.key)
				if err := lb.Create(ctx, c.key, bytes.NewReader(c.data)); err != nil {
					t.Fatalf("%s: a write that landed, its answer lost, failed: %v", c.key, err)
				}
				got, err := read(b.Open(ctx, c.key))
				if err != nil || !bytes.Equal(got, c.data) {
					t.Fatalf("%s holds %d bytes (%v), not the %d written", c.key, len(got), err, len(c.data))
				}
				// Any other write meets it as another's, the same bytes too:
				// of two writers, exactly one is told it wrote.
				for _, data := range [][]byte{c.data, []byte("other")} {
					if err := b.Create(ctx, c.key, bytes.NewReader(data)); !errors.Is(err, store.ErrExists) {
						t.Fatalf("%s: a second writer got %v, want ErrExists", c.key, err)
					}
				}
			}
			// An object stored before is another's, whatever happens to the
			// answer of a write meeting it, and whatever it holds: two
			// applies writing the same channel move in the same second write
			// the same bytes, and exactly one of them wrote it.
			for _, c := range []struct{ key, first, second string }{
				{"releases/app/versions/1.0.0", "first", "second"},
				{"channels/app/prod/moves/0000000002", `{"to":"1.0.2"}`, `{"to":"1.0.2"}`},
			} {
				if err := b.Create(ctx, c.key, strings.NewReader(c.first)); err != nil {
					t.Fatal(err)
				}
				lb := h.LoseAnswer(t, b, c.key)
				if err := lb.Create(ctx, c.key, strings.NewReader(c.second)); !errors.Is(err, store.ErrExists) {
					t.Fatalf("%s: a write of %q meeting another writer's %q, its answer lost: %v, want ErrExists", c.key, c.second, c.first, err)
				}
			}
		},
		"32 concurrent creators: exactly one wins": func(t *testing.T, b store.Backend, s *store.Store) {
			var wg sync.WaitGroup
			errs := make([]error, 32)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = b.Create(ctx, "releases/app/2.0.0", strings.NewReader(fmt.Sprintf("publisher %02d", i)))
				}()
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("publishers %d and %d both succeeded", winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, store.ErrExists):
					t.Fatalf("publisher %d: %v", i, err)
				}
			}
			if winner < 0 {
				t.Fatal("no publisher succeeded")
			}
			got, _ := read(b.Open(ctx, "releases/app/2.0.0"))
			if string(got) != fmt.Sprintf("publisher %02d", winner) {
				t.Fatalf("object holds %q, the winner was %d", got, winner)
			}
		},
		"missing objects": func(t *testing.T, b store.Backend, s *store.Store) {
			if _, err := b.Open(ctx, "blobs/none"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("want ErrNotFound, got %v", err)
			}
			if ok, err := b.Exists(ctx, "blobs/none"); ok || err != nil {
				t.Fatalf("Exists = %v, %v", ok, err)
			}
			if k, err := s.Lookup(ctx, digest.Bytes([]byte("nothing"))); k != store.Missing || err != nil {
				t.Fatalf("Lookup = %v, %v", k, err)
			}
		},
		"keys with characters URLs reserve round trip": func(t *testing.T, b store.Backend, s *store.Store) {
			// Each name a segment a network backend must escape in a URL
			// (a '+' read as a space, "%2F" as a '/', '#' or '?' ending the
			// path), each object holding its own key: two keys taken for
			// one would read the other's bytes, or meet it as ErrExists.
			keys := []string{
				"names/a b", "names/a+b", "names/100%", "names/a%2Fb", "names/a%20b", "names/a#b", "names/a?b=c",
				"names/a;b", "names/:@=&$,!'()*", "names/é☃日本",
			}
			for _, k := range keys {
				if err := b.Create(ctx, k, strings.NewReader(k)); err != nil {
					t.Fatalf("create %q: %v", k, err)
				}
			}
			for _, k := range keys {
				if ok, err := b.Exists(ctx, k); err != nil || !ok {
					t.Errorf("exists %q: %v, %v", k, ok, err)
				}
				got, err := read(b.Open(ctx, k))
				if err != nil || string(got) != k {
					t.Errorf("%q reads back %q (%v)", k, got, err)
				}
			}
			listed, err := b.List(ctx, "names/")
			sort.Strings(listed)
			want := slices.Clone(keys)
			sort.Strings(want)
			if err != nil || !slices.Equal(listed, want) {
				t.Errorf("list names/: %q (%v), want %q", listed, err, want)
			}
		},
		"list by prefix": func(t *testing.T, b store.Backend, s *store.Store) {
			for _, k := range []string{"releases/app/1.0.0", "releases/app/1.1.0", "releases/apps/1.0.0", "releases/web/1.0.0"} {
				if err := b.Create(ctx, k, strings.NewReader(k)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := b.List(ctx, "releases/app/")
			if err != nil || strings.Join(got, ",") != "releases/app/1.0.0,releases/app/1.1.0" {
				t.Fatalf("List = %v, %v", got, err)
			}
			if got, _ := b.List(ctx, "releases/none/"); len(got) != 0 {
				t.Fatalf("List of nothing = %v", got)
			}
		},
		"tree round trip, lookup and verify": func(t *testing.T, b store.Backend, s *store.Store) {
			files := map[string]string{"a.txt": "a", "dir/b.txt": "b"}
			m := &digest.Listing{}
			for p, c := range files {
				sum := digest.Bytes([]byte(c))
				if _, err := s.PutBlob(ctx, sum, strings.NewReader(c)); err != nil {
					t.Fatal(err)
				}
				m.Entries = append(m.Entries, digest.Entry{Path: p, Kind: digest.KindFile, SHA256: sum, Size: int64(len(c))})
			}
			m.Sort()
			sum, err := s.PutListing(ctx, m)
			if err != nil || sum != m.Digest() {
				t.Fatalf("PutTree = %s, %v", sum, err)
			}
			if _, err := s.PutListing(ctx, m); err != nil {
				t.Fatalf("second PutTree: %v", err)
			}
			back, err := s.GetListing(ctx, sum)
			if err != nil || back.Digest() != sum {
				t.Fatalf("GetTree: %v", err)
			}
			if k, _ := s.Lookup(ctx, sum); k != store.Tree {
				t.Fatalf("Lookup(tree) = %v", k)
			}
			if k, _ := s.Lookup(ctx, digest.Bytes([]byte("a"))); k != store.Blob {
				t.Fatalf("Lookup(blob) = %v", k)
			}
			if err := s.Verify(ctx, sum); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			h.Tamper(t, b, store.BlobKey(digest.Bytes([]byte("b"))), []byte("B"))
			err = s.Verify(ctx, sum)
			var mm *store.MismatchError
			if !errors.As(err, &mm) || !strings.Contains(err.Error(), `"dir/b.txt"`) {
				t.Fatalf("Verify after tampering = %v; want a mismatch naming dir/b.txt", err)
			}
		},
		"tampered blob fails on read": func(t *testing.T, b store.Backend, s *store.Store) {
			sum := digest.Bytes([]byte("original"))
			if _, err := s.PutBlob(ctx, sum, strings.NewReader("original")); err != nil {
				t.Fatalf("PutBlob: %v", err)
			}
			h.Tamper(t, b, store.BlobKey(sum), []byte("tampered"))
			_, err := read(s.OpenBlob(ctx, sum))
			var mm *store.MismatchError
			if !errors.As(err, &mm) {
				t.Fatalf("reading a tampered blob: %v", err)
			}
		},
		"tampered tree fails on read": func(t *testing.T, b store.Backend, s *store.Store) {
			m := &digest.Listing{Entries: []digest.Entry{{Path: "a", Kind: digest.KindFile, SHA256: digest.Bytes(nil)}}}
			if _, err := s.PutBlob(ctx, digest.Bytes(nil), strings.NewReader("")); err != nil {
				t.Fatal(err)
			}
			sum, err := s.PutListing(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			h.Tamper(t, b, store.ListingKey(sum), []byte(digest.TreeHeader))
			if _, err := s.GetListing(ctx, sum); err == nil {
				t.Fatal("a tampered listing was accepted")
			}
		},
		"a listing naming a blob the store lacks is refused": func(t *testing.T, b store.Backend, s *store.Store) {
			m := &digest.Listing{Entries: []digest.Entry{{Path: "a", Kind: digest.KindFile, SHA256: digest.Bytes([]byte("absent")), Size: 6}}}
			if _, err := s.PutListing(ctx, m); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("want ErrNotFound, got %v", err)
			}
			if ok, _ := s.HasListing(ctx, m.Digest()); ok {
				t.Fatal("a listing naming a missing blob was stored")
			}
		},
		"archive reference is kept once recorded": func(t *testing.T, b store.Backend, s *store.Store) {
			first, second := digest.Bytes([]byte("1")), digest.Bytes([]byte("2"))
			for _, d := range []string{"1", "2"} {
				if _, err := s.PutBlob(ctx, digest.Bytes([]byte(d)), strings.NewReader(d)); err != nil {
					t.Fatal(err)
				}
			}
			listing, err := s.PutListing(ctx, &digest.Listing{Entries: []digest.Entry{{Path: "a", Kind: digest.KindFile, SHA256: first, Size: 1}}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetArchiveRef(ctx, "zip-v1", listing); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("want ErrNotFound, got %v", err)
			}
			if got, err := s.PutArchiveRef(ctx, "zip-v1", listing, first); err != nil || got != first {
				t.Fatalf("put = %s, %v", got, err)
			}
			if got, err := s.PutArchiveRef(ctx, "zip-v1", listing, second); err != nil || got != first {
				t.Fatalf("second put = %s, %v; want the first kept", got, err)
			}
			// Never naming what is not stored: an archive, or a listing.
			absent := digest.Bytes([]byte("absent"))
			if _, err := s.PutArchiveRef(ctx, "tgz-v1", listing, absent); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a reference to a missing archive: %v", err)
			}
			if _, err := s.PutArchiveRef(ctx, "tgz-v1", absent, first); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a reference of a missing listing: %v", err)
			}
			for _, l := range []digest.Sum{listing, absent} {
				if _, err := s.GetArchiveRef(ctx, "tgz-v1", l); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("a refused reference was stored: %v", err)
				}
			}
		},
		"large objects: write-once, and a failure part-way leaves nothing": func(t *testing.T, b store.Backend, s *store.Store) {
			// 20 MiB: past the single-request size of a network backend.
			big := func(c byte) io.Reader { return bytes.NewReader(bytes.Repeat([]byte{c}, 20<<20)) }
			if err := b.Create(ctx, "blobs/big", big('a')); err != nil {
				t.Fatal(err)
			}
			if err := b.Create(ctx, "blobs/big", big('b')); !errors.Is(err, store.ErrExists) {
				t.Fatalf("second create of a large object: %v", err)
			}
			got, err := read(b.Open(ctx, "blobs/big"))
			if err != nil || len(got) != 20<<20 || got[len(got)-1] != 'a' {
				t.Fatalf("large object read back: %d bytes, %v", len(got), err)
			}
			if err := b.Create(ctx, "blobs/broken", &failingReader{n: 18 << 20}); !errors.Is(err, errBroken) {
				t.Fatalf("want the reader's error, got %v", err)
			}
			if ok, _ := b.Exists(ctx, "blobs/broken"); ok {
				t.Fatal("a large object that failed part-way is visible")
			}
		},
		"large blob streams": func(t *testing.T, b store.Backend, s *store.Store) {
			data := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB
			sum := digest.Bytes(data)
			if _, err := s.PutBlob(ctx, sum, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			if n, err := s.VerifyBlob(ctx, sum); err != nil || n != int64(len(data)) {
				t.Fatal(err)
			}
		},
		"delete removes an object, a missing key is no error, and others stay": func(t *testing.T, b store.Backend, s *store.Store) {
			d, ok := b.(store.Deleter)
			if !ok {
				t.Fatal("the backend cannot delete: a collector cannot run on it")
			}
			before := time.Now().Add(-time.Minute)
			for _, k := range []string{"x/a", "x/b", "y/c"} {
				if err := b.Create(ctx, k, strings.NewReader(k+"!")); err != nil {
					t.Fatal(err)
				}
			}
			infos, err := d.ListInfo(ctx, "x/")
			if err != nil || len(infos) != 2 || infos[0].Key != "x/a" || infos[1].Key != "x/b" {
				t.Fatalf("ListInfo: %+v %v", infos, err)
			}
			for _, i := range infos {
				if i.Size != 4 || i.ModTime.Before(before) || i.ModTime.After(time.Now().Add(time.Minute)) {
					t.Errorf("ListInfo of %s: size %d, time %v; want 4 and about now", i.Key, i.Size, i.ModTime)
				}
			}
			if err := d.Delete(ctx, "x/a"); err != nil {
				t.Fatal(err)
			}
			if err := d.Delete(ctx, "x/a"); err != nil {
				t.Fatalf("deleting a missing key: %v", err)
			}
			if ok, err := b.Exists(ctx, "x/a"); ok || err != nil {
				t.Fatalf("deleted key exists=%v, %v", ok, err)
			}
			if keys, err := b.List(ctx, ""); err != nil || strings.Join(keys, ",") != "x/b,y/c" {
				t.Fatalf("after the delete the store holds %v, %v; want x/b and y/c", keys, err)
			}
			// Write-once still holds for a key deleted: it can be created anew.
			if err := b.Create(ctx, "x/a", strings.NewReader("again")); err != nil {
				t.Fatal(err)
			}
		},
		"a blob is held before it is checked or stored": func(t *testing.T, b store.Backend, s *store.Store) {
			data := []byte("leased\n")
			sum := digest.Bytes(data)
			for i := range 2 {
				if _, err := s.PutBlob(ctx, sum, bytes.NewReader(data)); err != nil {
					t.Fatal(err)
				}
				keys, _ := b.List(ctx, store.LeasesPrefix)
				if len(keys) != i+1 {
					t.Fatalf("after %d puts, leases %v", i+1, keys)
				}
				held, err := store.ReadKeys(ctx, b, keys[i], false)
				if err != nil || len(held) != 1 || held[0] != store.BlobKey(sum) {
					t.Fatalf("the lease holds %v, %v; want the blob's key", held, err)
				}
			}
		},
		"the first writer makes the location a store, once; an identity that differs stops writers": func(t *testing.T, b store.Backend, s *store.Store) {
			if found, err := store.CheckIdentity(ctx, b); found || err != nil {
				t.Fatalf("a new store has an identity: %v, %v", found, err)
			}
			// Eight processes' first writes at once: one creates it, the
			// others find the same one.
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() { _, errs[i] = store.New(b).Hold(ctx, "blobs/sha256/00/00") })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			got, err := read(b.Open(ctx, store.IdentityKey))
			if err != nil || !bytes.Equal(got, store.IdentityBody()) {
				t.Fatalf("%s holds %q (%v), want %q", store.IdentityKey, got, err, store.IdentityBody())
			}
			if found, err := store.CheckIdentity(ctx, b); !found || err != nil {
				t.Fatalf("CheckIdentity = %v, %v", found, err)
			}
			for _, c := range []struct{ body, want string }{
				{`{"format":"terraform-provider-immutable store","version":2}`, "layout version 2, which a later version of the provider wrote"},
				{"my notes\n", "is not the store identity this provider writes"},
			} {
				h.Tamper(t, b, store.IdentityKey, []byte(c.body))
				leases, _ := b.List(ctx, store.LeasesPrefix)
				_, err := store.New(b).Hold(ctx, "blobs/sha256/00/00")
				var ie *store.IdentityError
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), store.IdentityKey) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("a writer on a store whose identity is %q: %v; want an IdentityError naming %s and saying %q", c.body, err, store.IdentityKey, c.want)
				}
				if be := store.BackendError(nil); !errors.As(err, &be) {
					t.Fatalf("%v is not a BackendError: the provider would blame the content", err)
				}
				if after, _ := b.List(ctx, store.LeasesPrefix); len(after) != len(leases) {
					t.Fatalf("a writer refused by the identity wrote a lease")
				}
				if err := store.WriteIdentity(ctx, b); !errors.As(err, &ie) {
					t.Fatalf("WriteIdentity over a differing identity: %v", err)
				}
				if got, _ := read(b.Open(ctx, store.IdentityKey)); string(got) != c.body {
					t.Fatalf("the differing identity was replaced by %q", got)
				}
			}
		},
	}
	for name, c := range publishCases() {
		cases[name] = c
	}
	for name, c := range deleteCases() {
		cases[name] = c
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := h.New(t)
			c(t, b, store.New(b))
		})
	}
}
