package gc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/export"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

var ctx = context.Background()

// eachStore runs test on a fresh local store and on a fresh bucket of a
// real S3-compatible server; newStore gives another empty store of the
// same kind.
func eachStore(t *testing.T, test func(t *testing.T, newStore func() *store.Store)) {
	t.Run("file", func(t *testing.T) {
		test(t, func() *store.Store {
			b, err := filestore.New(filepath.Join(t.TempDir(), "store"))
			if err != nil {
				t.Fatal(err)
			}
			return store.New(b)
		})
	})
	t.Run("s3", func(t *testing.T) {
		srv := testserver.StartS3(t)
		test(t, func() *store.Store {
			bucket := srv.NewBucket(t)
			s3Roots.Store(bucket, srv.Root())
			b, err := s3store.New(ctx, bucket, "gc-test", srv.Settings())
			if err != nil {
				t.Fatal(err)
			}
			return store.New(b)
		})
	})
}

// s3Roots maps each bucket eachStore made to the directory of its server,
// where versitygw's posix backend keeps each object as a file.
var s3Roots sync.Map

// age sets the time of the object at key, as if it was stored at to, and
// checks that the store lists it so.
func age(t *testing.T, st *store.Store, key string, to time.Time) {
	t.Helper()
	var p string
	switch b := st.Backend().(type) {
	case *filestore.Backend:
		p = filepath.Join(b.Root(), filepath.FromSlash(key))
	case *s3store.Backend:
		root, ok := s3Roots.Load(b.Bucket())
		if !ok {
			t.Fatalf("no server directory for the bucket %s", b.Bucket())
		}
		p = filepath.Join(root.(string), b.Bucket(), filepath.FromSlash(b.ObjectKey(key))) //nolint:forcetypeassert // only strings are stored
	default:
		t.Fatalf("cannot age an object of %T", b)
	}
	must(t, os.Chtimes(p, to, to))
	infos, err := deleter(t, st).ListInfo(ctx, key)
	must(t, err)
	if len(infos) != 1 || infos[0].ModTime.Sub(to).Abs() > time.Second {
		t.Fatalf("aged %s to %v; the store lists %v", key, to, infos)
	}
}

// The policy the scenario is written for, applied ten days from now so
// that everything the test stores is old.
var (
	policy  = Policy{KeepLast: 2, KeepWithin: 24 * time.Hour, KeepChannelMoves: 1, KeepYankedFor: 24 * time.Hour, Grace: store.LeaseTTL}
	later   = func() Options { return Options{Now: time.Now().Add(10 * 24 * time.Hour)} }
	longAgo = time.Now().Add(-100 * 24 * time.Hour)
)

// world is a store with releases, a channel, a yank, builds, archives
// and shared blobs, and what the policy must delete from it.
type world struct {
	st       *store.Store
	trees    map[string]digest.Sum // "1.0.0"… and "orphan"
	records  map[string]digest.Sum // build keys: "kept", "gone"
	deleted  []string              // content keys the policy deletes
	versions []string              // versions it deletes
	kept     []string              // versions it keeps
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// publishTree writes files to a directory and publishes it.
func publishTree(t *testing.T, st *store.Store, files map[string]string) *digest.Manifest {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644))
	}
	m, err := digest.HashTree(ctx, dir, digest.Options{})
	must(t, err)
	_, err = st.Publish(ctx, dir, m)
	must(t, err)
	return m
}

func putBlob(t *testing.T, st *store.Store, data string) digest.Sum {
	t.Helper()
	sum := digest.Bytes([]byte(data))
	_, err := st.PutBlob(ctx, sum, strings.NewReader(data))
	must(t, err)
	return sum
}

func deleter(t *testing.T, st *store.Store) store.Deleter {
	t.Helper()
	d, ok := st.Backend().(store.Deleter)
	if !ok {
		t.Fatalf("%s cannot delete", st)
	}
	return d
}

// expire deletes every lease, as their time running out would.
func expire(t *testing.T, st *store.Store) {
	t.Helper()
	keys, err := st.Backend().List(ctx, store.LeasesPrefix)
	must(t, err)
	for _, k := range keys {
		must(t, deleter(t, st).Delete(ctx, k))
	}
}

func newWorld(t *testing.T, st *store.Store) *world {
	t.Helper()
	w := &world{st: st, trees: map[string]digest.Sum{}, records: map[string]digest.Sum{}}
	b := st.Backend()
	// web: six versions sharing "shared"; each has a file of its own.
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0"} {
		m := publishTree(t, st, map[string]string{"index.html": "shared\n", "only.txt": "only " + v + "\n"})
		w.trees[v] = m.Digest()
		_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: v, Artifacts: map[string]string{"site": m.Digest().String()}}, longAgo)
		must(t, err)
	}
	// api: one version, a file artifact (a blob).
	apiBin := putBlob(t, st, "api binary\n")
	_, err := release.WriteRecord(ctx, b, &release.Record{Name: "api", Version: "0.1.0", Artifacts: map[string]string{"bin": apiBin.String()}}, longAgo)
	must(t, err)
	// An artifact no release names, sharing a blob with the releases.
	orphan := publishTree(t, st, map[string]string{"index.html": "shared\n", "orphan.txt": "orphan\n"})
	w.trees["orphan"] = orphan.Digest()
	// 1.3.0 yanked long ago; prod points at 1.1.0 (a rollback target).
	_, err = release.SetYank(ctx, b, "web", "1.3.0", true, "broken", release.AnySeq, longAgo)
	must(t, err)
	_, err = release.WriteMove(ctx, b, "web", "prod", 0, "", "1.1.0", "", longAgo)
	must(t, err)
	// Build records: one whose output a kept version names, one whose
	// output goes.
	for name, v := range map[string]string{"kept": "1.5.0", "gone": "1.0.0"} {
		key := digest.Bytes([]byte("build " + name))
		w.records[name] = key
		log := putBlob(t, st, "log of "+name+"\n")
		m, err := st.GetTree(ctx, w.trees[v])
		must(t, err)
		_, _, err = actioncache.Put(ctx, st, &actioncache.Record{Key: key, Output: w.trees[v], Type: actioncache.TypeTree, Size: m.Size(), Files: int64(len(m.Entries)), Log: log})
		must(t, err)
	}
	// Archive references: of a kept listing and of one that goes.
	for _, v := range []string{"1.4.0", "1.2.0"} {
		zip := putBlob(t, st, "zip of "+v+"\n")
		_, err := st.PutArchiveRef(ctx, "zip-v1", w.trees[v], zip)
		must(t, err)
	}
	expire(t, st)

	// Kept: 1.5.0 and 1.4.0 (the two highest not yanked), 1.1.0 (prod),
	// api 0.1.0 (the highest). Deleted: 1.0.0, 1.2.0, 1.3.0 (yanked).
	w.versions = []string{"web@1.0.0", "web@1.2.0", "web@1.3.0"}
	w.kept = []string{"api@0.1.0", "web@1.1.0", "web@1.4.0", "web@1.5.0"}
	for _, v := range []string{"1.0.0", "1.2.0", "1.3.0"} {
		w.deleted = append(w.deleted, store.TreeKey(w.trees[v]), store.BlobKey(digest.Bytes([]byte("only "+v+"\n"))))
	}
	w.deleted = append(w.deleted,
		store.TreeKey(orphan.Digest()), store.BlobKey(digest.Bytes([]byte("orphan\n"))),
		store.ActionKey(w.records["gone"]), store.BlobKey(digest.Bytes([]byte("log of gone\n"))),
		store.ArchiveKey("zip-v1", w.trees["1.2.0"]), store.BlobKey(digest.Bytes([]byte("zip of 1.2.0\n"))),
	)
	slices.Sort(w.deleted)
	return w
}

// objects lists the store, leases and markers aside.
func objects(t *testing.T, st *store.Store) map[string]store.ObjectInfo {
	t.Helper()
	infos, err := deleter(t, st).ListInfo(ctx, "")
	must(t, err)
	out := map[string]store.ObjectInfo{}
	for _, i := range infos {
		if !strings.HasPrefix(i.Key, "gc/") {
			out[i.Key] = i
		}
	}
	return out
}

// everything lists the whole store, its identity, leases and markers
// included.
func everything(t *testing.T, st *store.Store) []store.ObjectInfo {
	t.Helper()
	infos, err := deleter(t, st).ListInfo(ctx, "")
	must(t, err)
	return infos
}

func unchanged(t *testing.T, st *store.Store, before []store.ObjectInfo, what string) {
	t.Helper()
	if after := everything(t, st); !slices.Equal(before, after) {
		t.Fatalf("%s changed the store:\nbefore %v\nafter  %v", what, before, after)
	}
}

// checkConsistent asserts the store's invariants: a listing implies its
// blobs, a build record its output and log, an archive reference its
// archive, a release record its artifacts.
func checkConsistent(t *testing.T, st *store.Store) {
	t.Helper()
	missing, err := st.MissingBlobs(ctx)
	must(t, err)
	if len(missing) > 0 {
		t.Fatalf("listings name blobs the store lacks: %v", missing)
	}
	keys, err := st.Backend().List(ctx, "")
	must(t, err)
	for _, k := range keys {
		hex := k[strings.LastIndex(k, "/")+1:]
		switch {
		case strings.HasPrefix(k, "actions/"):
			key, _ := digest.ParseHex(hex)
			if _, _, err := actioncache.Lookup(ctx, st, key); err != nil {
				t.Fatalf("build record %s: %v", k, err)
			}
		case strings.HasPrefix(k, "archives/"):
			sum, _ := digest.ParseHex(hex)
			a, err := st.GetArchiveRef(ctx, strings.Split(k, "/")[1], sum)
			must(t, err)
			if ok, err := st.HasBlob(ctx, a); !ok || err != nil {
				t.Fatalf("archive reference %s names a missing blob", k)
			}
		case strings.HasPrefix(k, "releases/") && strings.Contains(k, "/versions/"):
			name, v, _ := strings.Cut(strings.TrimPrefix(k, "releases/"), "/versions/")
			rec, err := release.Get(ctx, st.Backend(), name, v)
			must(t, err)
			for _, a := range rec.Artifacts {
				sum, _ := digest.Parse(a)
				if kind, err := st.Lookup(ctx, sum); kind == store.Missing || err != nil {
					t.Fatalf("%s@%s names %s, which is missing (%v)", name, v, a, err)
				}
			}
		}
	}
}

// checkKept asserts every kept version verifies and exports.
func checkKept(t *testing.T, w *world) {
	t.Helper()
	for _, nv := range w.kept {
		name, v, _ := strings.Cut(nv, "@")
		rec, err := release.Get(ctx, w.st.Backend(), name, v)
		must(t, err)
		for _, a := range rec.Artifacts {
			sum, _ := digest.Parse(a)
			if err := w.st.Verify(ctx, sum); err != nil {
				t.Fatalf("kept %s does not verify: %v", nv, err)
			}
			c, err := export.Load(ctx, w.st, sum)
			must(t, err)
			ew := &export.Writer{St: w.st, Refs: archive.NewRefs(w.st)}
			if _, err := ew.Write(ctx, c, export.DefaultFormat(c.Kind), filepath.Join(t.TempDir(), "out"), nil, nil); err != nil {
				t.Fatalf("kept %s does not export: %v", nv, err)
			}
		}
	}
	if _, _, err := actioncache.Lookup(ctx, w.st, w.records["kept"]); err != nil {
		t.Fatalf("the build record of a kept output: %v", err)
	}
}

// TestCollect: exactly the unreachable objects and the versions outside
// the policy go; what is kept verifies and exports; a collected version
// is never published again; a second run deletes nothing.
func TestCollect(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func() *store.Store) {
		w := newWorld(t, newStore())
		before := objects(t, w.st)
		report, err := Collect(ctx, w.st, policy, later())
		must(t, err)
		after := objects(t, w.st)

		var gone, versionKeys []string
		for k := range before {
			if _, ok := after[k]; !ok {
				if isContent(k) {
					gone = append(gone, k)
				} else {
					versionKeys = append(versionKeys, k)
				}
			}
		}
		slices.Sort(gone)
		if !slices.Equal(gone, w.deleted) {
			t.Fatalf("deleted\n  %v\nwant\n  %v", gone, w.deleted)
		}
		if !slices.Equal(report.Versions, w.versions) || !slices.Equal(sorted(report.Kept), w.kept) {
			t.Fatalf("versions deleted %v, kept %v; want %v and %v", report.Versions, report.Kept, w.versions, w.kept)
		}
		// Only each version's record: its index entry and yank history stay,
		// so a pin of it, or of its yanked content, says what happened.
		slices.Sort(versionKeys)
		var wantKeys []string
		for _, nv := range w.versions {
			n, v, _ := strings.Cut(nv, "@")
			wantKeys = append(wantKeys, release.VersionKey(n, v))
		}
		if !slices.Equal(versionKeys, wantKeys) {
			t.Fatalf("release keys deleted: %v, want %v", versionKeys, wantKeys)
		}
		for _, nv := range w.versions {
			_, v, _ := strings.Cut(nv, "@")
			if _, ok := after[release.CollectedKey("web", v)]; !ok {
				t.Errorf("no tombstone for %s", nv)
			}
		}
		var bytes int64
		for _, k := range append(gone, versionKeys...) {
			bytes += before[k].Size
		}
		if total := report.Total(); total.Objects != len(gone)+len(versionKeys) || total.Bytes != bytes {
			t.Fatalf("report says %+v deleted, the store lost %d objects, %d bytes:\n%s", total, len(gone)+len(versionKeys), bytes, report)
		}
		checkConsistent(t, w.st)
		checkKept(t, w)
		if _, _, err := actioncache.Lookup(ctx, w.st, w.records["gone"]); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the record of a deleted output: %v", err)
		}

		// 1.2.0 cannot come back with other content, nor be planned.
		var collected *release.CollectedError
		_, err = release.WriteRecord(ctx, w.st.Backend(), &release.Record{Name: "web", Version: "1.2.0", Artifacts: map[string]string{"site": w.trees["1.5.0"].String()}}, time.Now())
		if !errors.As(err, &collected) {
			t.Fatalf("publishing a collected version: %v", err)
		}
		_, err = release.PlanVersion(ctx, w.st.Backend(), release.Content{Name: "web", Artifacts: map[string]string{"site": "x"}}, "1.2.0", "")
		if !errors.As(err, &collected) {
			t.Fatalf("planning a collected version: %v", err)
		}

		again, err := Collect(ctx, w.st, policy, later())
		must(t, err)
		if again.Total().Objects != 0 || len(again.Versions) != 0 {
			t.Fatalf("a second run deleted more:\n%s", again)
		}
		if markers, _ := w.st.Backend().List(ctx, store.MarkersPrefix); len(markers) != 0 {
			t.Fatalf("markers left behind: %v", markers)
		}
	})
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// TestDryRun reports what a collection deletes, and deletes nothing.
func TestDryRun(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func() *store.Store) {
		w := newWorld(t, newStore())
		before, err := deleter(t, w.st).ListInfo(ctx, "")
		must(t, err)
		o := later()
		o.DryRun = true
		dry, err := Collect(ctx, w.st, policy, o)
		must(t, err)
		after, err := deleter(t, w.st).ListInfo(ctx, "")
		must(t, err)
		if !slices.Equal(before, after) {
			t.Fatalf("a dry run changed the store:\nbefore %v\nafter  %v", before, after)
		}
		done, err := Collect(ctx, w.st, policy, later())
		must(t, err)
		if !slices.Equal(dry.Versions, done.Versions) || !maps.Equal(dry.Deleted, done.Deleted) {
			t.Fatalf("the dry run said\n%s\nthe collection did\n%s", dry, done)
		}
		if !strings.Contains(dry.String(), "would delete 3 release versions: web@1.0.0, web@1.2.0, web@1.3.0") {
			t.Fatalf("dry run report:\n%s", dry)
		}
	})
}

// TestLeaseKeeps: what a writer holds stays, with what it references,
// until the lease expires.
func TestLeaseKeeps(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func() *store.Store) {
		w := newWorld(t, newStore())
		_, err := w.st.Hold(ctx, store.TreeKey(w.trees["orphan"]), release.VersionKey("web", "1.0.0"))
		must(t, err)
		report, err := Collect(ctx, w.st, policy, later())
		must(t, err)
		for _, k := range []string{
			store.TreeKey(w.trees["orphan"]), store.BlobKey(digest.Bytes([]byte("orphan\n"))),
			release.VersionKey("web", "1.0.0"), store.TreeKey(w.trees["1.0.0"]), store.BlobKey(digest.Bytes([]byte("only 1.0.0\n"))),
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

// TestCrashedCollector: a collector stopped after any number of deletes
// leaves a consistent store, and the next run finishes the job.
func TestCrashedCollector(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func() *store.Store) {
		crash := errors.New("killed")
		t.Cleanup(func() { testHookDelete = nil })
		// Every stopping point on the local store; every third on S3.
		step := 1
		if !strings.HasPrefix(newStore().String(), "file://") {
			step = 3
		}
		for stop := 0; ; stop += step {
			w := newWorld(t, newStore())
			n := 0
			testHookDelete = func(string) error {
				if n == stop {
					return crash
				}
				n++
				return nil
			}
			_, err := Collect(ctx, w.st, policy, later())
			testHookDelete = nil
			if err == nil {
				break // stop is past the last delete
			}
			if !errors.Is(err, crash) {
				t.Fatal(err)
			}
			checkConsistent(t, w.st)
			checkKept(t, w)
			_, err = Collect(ctx, w.st, policy, later())
			must(t, err)
			for _, k := range w.deleted {
				if ok, _ := w.st.Backend().Exists(ctx, k); ok {
					t.Fatalf("stopped after %d deletes, then run again: %s is still there", stop, k)
				}
			}
			checkConsistent(t, w.st)
		}
	})
}

// TestRacingPublishers: a collector runs while 16 publishers reuse the
// blobs and listings it is deleting. No listing ever names a missing
// blob, no release names a missing artifact, and every publish verifies.
func TestRacingPublishers(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func() *store.Store) {
		st := newStore()
		rounds := 12
		if !strings.HasPrefix(st.String(), "file://") {
			rounds = 6
		}
		var deleted, reused int
		for round := range rounds {
			// Garbage: old trees no release names, whose blobs the
			// publishers reuse.
			var pool []map[string]string
			var poolTrees []digest.Sum
			for i := range 4 {
				files := map[string]string{}
				for j := range 6 {
					files[fmt.Sprintf("f%d.txt", j)] = fmt.Sprintf("round %d pool %d file %d\n", round, i, j)
				}
				pool = append(pool, files)
				poolTrees = append(poolTrees, publishTree(t, st, files).Digest())
			}
			expire(t, st)

			var wg sync.WaitGroup
			start := make(chan struct{})
			var report *Report
			var cerr error
			wg.Go(func() {
				<-start
				report, cerr = Collect(ctx, st, policy, later())
			})
			trees := make([]digest.Sum, 16)
			errs := make([]error, 16)
			for p := range 16 {
				wg.Go(func() {
					<-start
					i := p % len(pool)
					if p%4 == 3 {
						// A release of an old listing found present.
						sum := poolTrees[i]
						if _, errs[p] = st.Hold(ctx, store.HeldKeys(sum.String())...); errs[p] != nil {
							return
						}
						kind, err := st.Lookup(ctx, sum)
						if err != nil || kind == store.Missing {
							errs[p] = err
							return // gone before the hold: a publisher would say so
						}
						_, errs[p] = release.WriteRecord(ctx, st.Backend(), &release.Record{Name: "race", Version: fmt.Sprintf("%d.%d.0", round+1, p), Artifacts: map[string]string{"a": sum.String()}}, time.Now())
						trees[p] = sum
						return
					}
					dir := t.TempDir()
					for name, data := range pool[i] {
						if errs[p] = os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); errs[p] != nil {
							return
						}
					}
					if errs[p] = os.WriteFile(filepath.Join(dir, "own.txt"), []byte(fmt.Sprintf("publisher %d round %d\n", p, round)), 0o644); errs[p] != nil {
						return
					}
					m, err := digest.HashTree(ctx, dir, digest.Options{})
					if err != nil {
						errs[p] = err
						return
					}
					stats, err := st.Publish(ctx, dir, m)
					errs[p], trees[p] = err, m.Digest()
					if err == nil {
						mu.Lock()
						reused += stats.Present
						mu.Unlock()
					}
				})
			}
			close(start)
			wg.Wait()
			must(t, cerr)
			for p, err := range errs {
				if err != nil {
					t.Fatalf("round %d, publisher %d: %v", round, p, err)
				}
				if trees[p] != (digest.Sum{}) {
					if err := st.Verify(ctx, trees[p]); err != nil {
						t.Fatalf("round %d, publisher %d: what it published does not verify: %v", round, p, err)
					}
				}
			}
			checkConsistent(t, st)
			deleted += report.Total().Objects
		}
		// The race was real: the collector deleted garbage each round while
		// publishers found old blobs present and reused them.
		t.Logf("%d rounds: %d objects deleted, %d blobs reused", rounds, deleted, reused)
		if deleted == 0 || reused == 0 {
			t.Fatalf("the collector deleted %d objects and publishers reused %d blobs: no race was run", deleted, reused)
		}
	})
}

var mu sync.Mutex

// TestPrereleases: keep-last counts stable versions (what constraints and
// "latest" resolve to); a pre-release above every stable version is the
// next release in the making and stays; one below a stable version goes
// like any other.
func TestPrereleases(t *testing.T) {
	st := store.New(mustFilestore(t))
	b := st.Backend()
	vs := []string{"1.0.0", "1.1.0-rc.1", "1.1.0", "1.2.0", "2.0.0-beta.1", "2.0.0-rc.1"}
	for _, v := range vs {
		sum := putBlob(t, st, "bin "+v+"\n")
		_, err := release.WriteRecord(ctx, b, &release.Record{Name: "app", Version: v, Artifacts: map[string]string{"bin": sum.String()}}, longAgo)
		must(t, err)
	}
	expire(t, st)
	p := policy
	p.KeepLast = 1
	report, err := Collect(ctx, st, p, later())
	must(t, err)
	// 2.0.0-rc.1: the highest; 2.0.0-beta.1: a pre-release above every
	// stable version; 1.2.0: the one highest stable. 1.1.0-rc.1 is below
	// a stable version and goes.
	wantGone := []string{"app@1.0.0", "app@1.1.0", "app@1.1.0-rc.1"}
	wantKept := []string{"app@1.2.0", "app@2.0.0-beta.1", "app@2.0.0-rc.1"}
	if !slices.Equal(sorted(report.Versions), wantGone) || !slices.Equal(sorted(report.Kept), wantKept) {
		t.Fatalf("deleted %v, kept %v; want %v and %v", report.Versions, report.Kept, wantGone, wantKept)
	}
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
			_, err := w.st.Hold(ctx, store.TreeKey(w.trees["orphan"]))
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

// TestVerboseLog: -v says what each step deleted, per kind, in objects
// and bytes that add up to the report (not how many keys a batch named),
// and why each version stays or goes: a version outside the policy that
// a writer's lease holds is kept by the lease, not "outside the policy".
func TestVerboseLog(t *testing.T) {
	st := store.New(mustFilestore(t))
	w := newWorld(t, st)
	_, err := st.Hold(ctx, release.VersionKey("web", "1.0.0"))
	must(t, err)
	var log strings.Builder
	o := later()
	o.Log, o.BatchSize = &log, 2
	report, err := Collect(ctx, st, policy, o)
	must(t, err)
	text := log.String()
	for _, want := range []string{
		"keep web@1.0.0: outside the policy, but a writer's lease holds it\n",
		"delete web@1.2.0: outside the policy\n",
		"keep web@1.1.0: in a channel's recent history\n",
		"deleted 2 release records (",
		"; wrote 2 tombstones\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the log lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "delete web@1.0.0") || strings.Contains(text, "a batch of") {
		t.Errorf("the log says what was not done:\n%s", text)
	}
	if !slices.Contains(report.Kept, "web@1.0.0") || slices.Contains(report.Versions, "web@1.0.0") {
		t.Errorf("the leased version: kept %v, deleted %v", report.Kept, report.Versions)
	}
	// Every "deleted" line's counts, per kind, add up to the report's.
	item := regexp.MustCompile(`(\d+) ([a-z ]+?) \((\d+(?:\.\d)? [KMG]?i?B)\)`)
	sums := map[string]Count{}
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, "deleted "); ok {
			for _, m := range item.FindAllStringSubmatch(rest, -1) {
				n, _ := strconv.Atoi(m[1])
				kind := m[2]
				if n == 1 {
					kind = map[string]string{"release record": KindRelease, "build record": KindAction, "archive reference": KindArchive,
						"listing": KindListing, "blob": KindBlob, "expired lease": KindLease, "stale marker": KindMarker}[kind]
				}
				c := sums[kind]
				c.Objects += n
				sums[kind] = c
			}
		}
	}
	for _, k := range Kinds {
		if sums[k].Objects != report.Deleted[k].Objects {
			t.Errorf("the log's lines add up to %d %s, the report says %d:\n%s", sums[k].Objects, k, report.Deleted[k].Objects, text)
		}
	}
	if len(w.deleted) == 0 || report.Total().Objects == 0 {
		t.Fatal("nothing was deleted: the test tests nothing")
	}
}

// TestUnknownFilesKept: the sweep deletes only keys it recognises; a file
// put under the store's prefixes by hand (or by a newer version of the
// provider) stays.
func TestUnknownFilesKept(t *testing.T) {
	st := store.New(mustFilestore(t))
	b := st.Backend()
	sum := putBlob(t, st, "unreferenced\n")
	hex := sum.Hex()
	strays := []string{
		"blobs/README", "blobs/sha256/" + hex[:2] + "/" + hex + ".bak", "blobs/sha256/00/" + hex,
		"trees/sha256/" + hex[:2] + "/notes.txt", "archives/zip-v1/index", "actions/sha256/" + hex[:2] + "/" + strings.ToUpper(hex),
	}
	for _, k := range strays {
		must(t, b.Create(ctx, k, strings.NewReader("mine\n")))
	}
	expire(t, st)
	report, err := Collect(ctx, st, policy, later())
	must(t, err)
	after := objects(t, st)
	if _, ok := after[store.BlobKey(sum)]; ok {
		t.Fatalf("the unreferenced blob was kept: %v", report)
	}
	for _, k := range strays {
		if _, ok := after[k]; !ok {
			t.Errorf("%s was deleted", k)
		}
	}
}

// TestConcurrentCollectors: two collectors at once delete exactly what one
// would, neither fails, and the store stays consistent.
func TestConcurrentCollectors(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func() *store.Store) {
		w := newWorld(t, newStore())
		before := objects(t, w.st)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() { _, errs[i] = Collect(ctx, w.st, policy, later()) })
		}
		wg.Wait()
		must(t, errors.Join(errs...))
		after := objects(t, w.st)
		var gone []string
		for k := range before {
			if _, ok := after[k]; !ok && isContent(k) {
				gone = append(gone, k)
			}
		}
		slices.Sort(gone)
		if !slices.Equal(gone, w.deleted) {
			t.Fatalf("deleted\n  %v\nwant\n  %v", gone, w.deleted)
		}
		checkConsistent(t, w.st)
	})
}

func mustFilestore(t *testing.T) store.Backend {
	t.Helper()
	b, err := filestore.New(filepath.Join(t.TempDir(), "store"))
	must(t, err)
	return b
}

// ageContent sets the time of every content object of a local store.
func ageContent(t *testing.T, root string, to time.Time) {
	t.Helper()
	must(t, filepath.WalkDir(filepath.Join(root), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err == nil && isContent(filepath.ToSlash(rel)) {
			err = os.Chtimes(p, to, to)
		}
		return err
	}))
}

func present(t *testing.T, st *store.Store, k string) bool {
	t.Helper()
	ok, err := st.Backend().Exists(ctx, k)
	must(t, err)
	return ok
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
	if !present(t, st, store.ArchiveKey(archive.Version("zip"), m.Digest())) || !present(t, st, store.TreeKey(m.Digest())) {
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
	if !present(t, st, store.TreeKey(m.Digest())) || !present(t, st, store.BlobKey(digest.Bytes([]byte("same content\n")))) {
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
	if present(t, st, store.TreeKey(m.Digest())) {
		t.Fatalf("content unused for longer than the grace period was kept:\n%s", report)
	}
}

// TestWriterWaitsForMarker: a writer that checks presence while a batch
// naming what it relies on is being deleted waits for the batch, then
// finds the blob gone and stores it again; no listing names a missing
// blob. (Fails if Hold ignores markers.)
func TestWriterWaitsForMarker(t *testing.T) {
	st := store.New(mustFilestore(t))
	publishTree(t, st, map[string]string{"a.txt": "garbage\n"})
	expire(t, st)
	target := store.BlobKey(digest.Bytes([]byte("garbage\n")))
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "b.txt"), []byte("garbage\n"), 0o644))
	m, err := digest.HashTree(ctx, dir, digest.Options{})
	must(t, err)
	writer := store.New(st.Backend()) // another process
	waiting := make(chan struct{}, 1)
	writer.Waiting = func(context.Context, string, time.Duration) { waiting <- struct{}{} }
	done := make(chan error, 1)
	t.Cleanup(func() { testHookDelete = nil })
	testHookDelete = func(k string) error {
		if k != target {
			return nil
		}
		// The blob is condemned and about to go: the writer publishes a
		// listing naming it now, and must wait.
		go func() { _, err := writer.Publish(ctx, dir, m); done <- err }()
		select {
		case <-waiting:
		case err := <-done:
			t.Errorf("the writer did not wait for the marker (Publish: %v)", err)
			done <- err
		}
		return nil
	}
	_, err = Collect(ctx, st, policy, later())
	must(t, err)
	must(t, <-done)
	checkConsistent(t, st)
	if !present(t, st, target) {
		t.Fatal("the writer's blob is missing")
	}
}

// TestSlowBatchStops: a delete still in flight when half of MarkerTTL has
// passed is abandoned (its context ends) and the collection stops with a
// SlowError: writers stop waiting for a marker after MarkerTTL, and must
// not find a blob present that a late delete then removes.
func TestSlowBatchStops(t *testing.T) {
	old := store.MarkerTTL
	store.MarkerTTL = 2 * time.Second
	t.Cleanup(func() { store.MarkerTTL = old; testHookDelete = nil })
	st := store.New(mustFilestore(t))
	publishTree(t, st, map[string]string{"a.txt": "garbage\n"})
	expire(t, st)
	target := store.BlobKey(digest.Bytes([]byte("garbage\n")))
	testHookDelete = func(k string) error {
		if k == target {
			time.Sleep(store.MarkerTTL) // a request that hangs past the budget
		}
		return nil
	}
	_, err := Collect(ctx, st, policy, later())
	var slow *SlowError
	if !errors.As(err, &slow) {
		t.Fatalf("Collect: %v, want a SlowError", err)
	}
	if !present(t, st, target) {
		t.Fatal("a delete ran after the batch's time was up")
	}
	checkConsistent(t, st)
}
