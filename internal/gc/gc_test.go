package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/export"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
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

// everyStore runs test as eachStoreAndAzure does, and on a fresh bucket
// of a fake-gcs-server (gs://). Tests that age objects behind the store's
// back (age, ageContent) do not use it: fake-gcs-server keeps an object's
// time in metadata of its own.
func everyStore(t *testing.T, test func(t *testing.T, newStore func() *store.Store)) {
	eachStoreAndAzure(t, test)
	t.Run("gs", func(t *testing.T) {
		srv := testserver.StartGCS(t)
		test(t, func() *store.Store {
			b, err := gcsstore.New(srv.NewBucket(t), "gc-test", gcsstore.Settings{})
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
	images   map[string]string     // image references: "kept", "gone", "orphan"
	deleted  []string              // content keys the policy deletes
	versions []string              // versions it deletes
	kept     []string              // versions it keeps
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// publishTree writes files to a directory and publishes it.
func publishTree(t *testing.T, st *store.Store, files map[string]string) *digest.Listing {
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

// putImage stores the record of an image from scratch, named name, whose
// one layer is a tree of its own, as immutable_image would; it returns the
// image's reference and the keys that are its alone (its record, manifest,
// config, the layer's listing and file).
func putImage(t *testing.T, st *store.Store, name string) (string, []string) {
	t.Helper()
	m := publishTree(t, st, map[string]string{"server": "the " + name + " server\n"})
	l := image.Layer{Descriptor: image.Descriptor{MediaType: image.MediaTypeLayerGzip, Digest: digest.Bytes([]byte("gz " + name)), Size: 42},
		DiffID: digest.Bytes([]byte("tar " + name)), Spec: image.LayerSpec{Tree: m.Digest(), Path: "/srv/" + name, Compression: image.Gzip}}
	config, err := json.Marshal(map[string]any{"os": "linux", "architecture": "amd64", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{l.DiffID.String()}}})
	must(t, err)
	manifest, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": image.MediaTypeManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest.Bytes(config).String(), "size": len(config)},
		"layers": []map[string]any{{"mediaType": l.MediaType, "digest": l.Digest.String(), "size": l.Size}}})
	must(t, err)
	img := &image.Image{MediaType: image.MediaTypeManifest, Digest: digest.Bytes(manifest), ConfigDigest: digest.Bytes(config),
		Platform: image.Platform{OS: "linux", Architecture: "amd64"}}
	must(t, image.PutRecord(ctx, st, image.NewRecord(img, nil, []image.Layer{l}), manifest, config))
	return "registry.example/" + name + "@" + img.Digest.String(), []string{store.ImageKey(img.Digest),
		store.BlobKey(img.Digest), store.BlobKey(img.ConfigDigest), store.ListingKey(m.Digest()),
		store.BlobKey(digest.Bytes([]byte("the " + name + " server\n")))}
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
	w := &world{st: st, trees: map[string]digest.Sum{}, records: map[string]digest.Sum{}, images: map[string]string{}}
	b := st.Backend()
	// Images built by immutable_image: one a kept version names, one a
	// deleted version names, one no version names; and one the store has
	// no record of, which a kept version names.
	var imageKeys []string
	for _, name := range []string{"kept", "gone", "orphan"} {
		var keys []string
		w.images[name], keys = putImage(t, st, name)
		if name != "kept" {
			imageKeys = append(imageKeys, keys...)
		}
	}
	images := map[string]map[string]string{
		"1.5.0": {"api": w.images["kept"], "proxy": "registry.example/proxy@" + digest.Bytes([]byte("elsewhere")).String()},
		"1.0.0": {"api": w.images["gone"]},
	}
	// web: six versions sharing "shared"; each has a file of its own.
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0"} {
		m := publishTree(t, st, map[string]string{"index.html": "shared\n", "only.txt": "only " + v + "\n"})
		w.trees[v] = m.Digest()
		_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: v, Artifacts: map[string]string{"site": m.Digest().String()}, Images: images[v]}, longAgo)
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
		m, err := st.GetListing(ctx, w.trees[v])
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
		w.deleted = append(w.deleted, store.ListingKey(w.trees[v]), store.BlobKey(digest.Bytes([]byte("only "+v+"\n"))))
	}
	w.deleted = append(w.deleted,
		store.ListingKey(orphan.Digest()), store.BlobKey(digest.Bytes([]byte("orphan\n"))),
		store.ActionKey(w.records["gone"]), store.BlobKey(digest.Bytes([]byte("log of gone\n"))),
		store.ArchiveKey("zip-v1", w.trees["1.2.0"]), store.BlobKey(digest.Bytes([]byte("zip of 1.2.0\n"))),
	)
	w.deleted = append(w.deleted, imageKeys...)
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
// archive, a release record its artifacts and its images' records (when
// they were stored), an image record its manifest, config and trees.
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
		case strings.HasPrefix(k, "images/"):
			sum, _ := digest.ParseHex(hex)
			rec, err := image.GetRecord(ctx, st, sum) // reads its manifest and config
			if err != nil {
				t.Fatalf("image record %s: %v", k, err)
			}
			for _, l := range rec.Layers {
				sum, _ := digest.Parse(l.Tree)
				if kind, err := st.Lookup(ctx, sum); kind == store.Missing || err != nil {
					t.Fatalf("image record %s names the tree %s, which is missing (%v)", k, l.Tree, err)
				}
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
	// The image a kept version names: its record reads (with its manifest
	// and config), and its layer's tree verifies.
	sum, err := release.ImageDigest(w.images["kept"])
	must(t, err)
	rec, err := image.GetRecord(ctx, w.st, sum)
	if err != nil {
		t.Fatalf("the record of a kept version's image: %v", err)
	}
	tree, _ := digest.Parse(rec.Layers[0].Tree)
	if err := w.st.Verify(ctx, tree); err != nil {
		t.Fatalf("the layer of a kept version's image: %v", err)
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

// TestRacingPublishers: a collector runs while 16 publishers reuse the
// blobs and listings it is deleting. No listing ever names a missing
// blob, no release names a missing artifact, and every publish verifies.
func TestRacingPublishers(t *testing.T) {
	everyStore(t, func(t *testing.T, newStore func() *store.Store) {
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

// TestStrayVersionKeyNamed: a key under releases/<name>/versions/ whose
// name is not a version stops the collection before anything is deleted,
// and the message names that key, not only its folder.
func TestStrayVersionKeyNamed(t *testing.T) {
	w := newWorld(t, store.New(mustFilestore(t)))
	key := "releases/web/versions/garbage"
	must(t, w.st.Backend().Create(ctx, key, strings.NewReader("mine\n")))
	before := everything(t, w.st)
	_, err := Collect(ctx, w.st, policy, later())
	var u *UntrustedError
	if !errors.As(err, &u) || u.Key != key || !strings.Contains(err.Error(), "nothing was deleted: "+key) {
		t.Fatalf("a stray key in versions/: %v; want an UntrustedError naming %s", err, key)
	}
	unchanged(t, w.st, before, "a collection stopped by "+key)
}
