package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/registry"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

var ctx = context.Background()

// fixture is a store, a registry behind a counting proxy, and trees.
type fixture struct {
	t     *testing.T
	st    *store.Store
	reg   *testserver.Counter
	cache *image.LayerCache
	// planned is what the operations read before the store.
	planned *switchSource
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	b, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := testserver.StartRegistry(t, testserver.RegistryOptions{})
	return &fixture{t: t, st: store.New(b), reg: reg.Count(t), cache: image.NewLayerCache(t.TempDir()), planned: &switchSource{}}
}

// op is a new operation (a new Terraform operation: nothing remembered)
// on the fixture's store, registry and cache.
func (f *fixture) op() *Operation {
	var once sync.Once
	var c *registry.Client
	var err error
	return New(Options{Store: f.st, Planned: f.planned, Cache: f.cache, Client: func(context.Context) (*registry.Client, error) {
		once.Do(func() { c, err = registry.New(registry.Options{}) })
		return c, err
	}})
}

// tree writes files to a new directory and returns it and its listing.
func (f *fixture) tree(files map[string]string) (string, *digest.Listing) {
	f.t.Helper()
	dir := f.t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
	l, err := digest.HashTree(ctx, dir, digest.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	return dir, l
}

// stored stores a tree of files and returns its digest.
func (f *fixture) stored(files map[string]string) digest.Sum {
	f.t.Helper()
	dir, _ := f.tree(files)
	l, err := f.st.PutDir(ctx, dir, digest.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	return l.Digest()
}

// noWrites fails when a request that writes reached the registry since
// the proxy's last Reset.
func (f *fixture) noWrites() {
	f.t.Helper()
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if calls := f.reg.Calls(m, ""); len(calls) > 0 {
			f.t.Fatalf("a write reached the registry: %v", calls)
		}
	}
}

// switchSource is the operation's planned-on-disk content: one tree on
// disk, or none.
type switchSource struct {
	mu  sync.Mutex
	src image.Source
}

func (s *switchSource) set(src image.Source) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.src = src
}

func (s *switchSource) get(sum digest.Sum) (image.Source, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.src == nil {
		return nil, fmt.Errorf("no tree on disk: %s: %w", sum, store.ErrNotFound)
	}
	return s.src, nil
}

func (s *switchSource) Listing(ctx context.Context, sum digest.Sum) (*digest.Listing, bool, error) {
	src, err := s.get(sum)
	if err != nil {
		return nil, false, err
	}
	return src.Listing(ctx, sum)
}

func (s *switchSource) Open(ctx context.Context, sum digest.Sum) (io.ReadCloser, error) {
	src, err := s.get(sum)
	if err != nil {
		return nil, err
	}
	return src.Open(ctx, sum)
}

func layer(tree digest.Sum, path string) image.LayerSpec {
	return image.LayerSpec{Tree: tree, Path: path, Compression: image.Gzip}
}

func scratch(layers ...image.LayerSpec) Request {
	return Request{Layers: layers, Created: time.Unix(0, 0).UTC()}
}

// TestPlanTakesKnownLayers: a layer is encoded once: a later plan takes it
// from the state's layers, this operation's memo or the machine's cache,
// in that order, and reads no tree; without any of them it needs the tree.
func TestPlanTakesKnownLayers(t *testing.T) {
	f := newFixture(t)
	dir, l := f.tree(map[string]string{"index.html": "<h1>hi</h1>"})
	f.planned.set(image.DirSource(dir, l))
	spec := layer(l.Digest(), "/srv/www")
	op := f.op()
	first, err := op.Plan(ctx, scratch(spec))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := op.Planned(first.Digest); !ok || got != first {
		t.Fatalf("Planned(%s) = %v, %v: want the image just planned", first.Digest, got, ok)
	}
	if first.Platform.String() != DefaultPlatform {
		t.Errorf("platform %s, want %s for an image from scratch that sets none", first.Platform, DefaultPlatform)
	}
	// The tree is gone from disk (and was never stored).
	f.planned.set(nil)
	second := scratch(spec)
	second.Config.Cmd = []string{"serve"}
	if _, err := op.Plan(ctx, second); err != nil {
		t.Fatalf("the operation's memo: %v", err)
	}
	if _, err := f.op().Plan(ctx, second); err != nil {
		t.Fatalf("the machine's cache: %v", err)
	}
	noCache := New(Options{Store: f.st, Planned: f.planned})
	var le *image.LayerError
	if _, err := noCache.Plan(ctx, second); !errors.As(err, &le) || !le.NotStored() || le.Index != 0 {
		t.Fatalf("no memo, no cache: %v; want a not-stored *image.LayerError of layer 0", err)
	}
	withState := second
	withState.Known = map[image.LayerSpec]image.Layer{spec: first.Layers[0]}
	if _, err := noCache.Plan(ctx, withState); err != nil {
		t.Fatalf("the state's layer: %v", err)
	}
	// The state comes first: a layer it lists is taken over the cache's.
	bogus := first.Layers[0]
	bogus.Digest, bogus.DiffID = digest.Bytes([]byte("other blob")), digest.Bytes([]byte("other tar"))
	withState.Known = map[image.LayerSpec]image.Layer{spec: bogus}
	b, err := f.op().Plan(ctx, withState)
	if err != nil {
		t.Fatal(err)
	}
	if b.Layers[0].Digest != bogus.Digest {
		t.Errorf("layer %s, want the state's %s", b.Layers[0].Digest, bogus.Digest)
	}
}

// push plans and pushes the image of req to repo, on a new operation,
// and returns it.
func (f *fixture) push(repo string, req Request) *image.Built {
	f.t.Helper()
	op := f.op()
	b, err := op.Plan(ctx, req)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := op.Push(ctx, repo, b, nil); err != nil {
		f.t.Fatal(err)
	}
	return b
}

// TestPlanOnBase: the base's platform is the image's unless one is set;
// an index base gives the manifest of the platform set.
func TestPlanOnBase(t *testing.T) {
	f := newFixture(t)
	tree := f.stored(map[string]string{"base.txt": "base"})
	repo := f.reg.Host() + "/base"
	arm, _ := image.ParsePlatform("linux/arm64")
	amd, _ := image.ParsePlatform("linux/amd64")
	reqArm, reqAmd := scratch(layer(tree, "/base")), scratch(layer(tree, "/base"))
	reqArm.Platform, reqAmd.Platform = &arm, &amd
	armImg, amdImg := f.push(repo, reqArm), f.push(repo, reqAmd)
	c, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	entry := func(b *image.Built) image.IndexEntry {
		return image.IndexEntry{Descriptor: image.Descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: int64(len(b.Manifest))}, Platform: b.Platform}
	}
	idx, err := image.AssembleIndex([]image.IndexEntry{entry(amdImg), entry(armImg)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PushIndex(ctx, repo, idx); err != nil {
		t.Fatal(err)
	}
	own := f.stored(map[string]string{"app": "app"})
	req := scratch(layer(own, "/app"))
	req.Base = repo + "@" + armImg.Digest.String()
	b, err := f.op().Plan(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if b.Platform != arm || b.BaseLayers() != 1 {
		t.Errorf("on the arm64 image: platform %s, %d base layers; want linux/arm64 and 1", b.Platform, b.BaseLayers())
	}
	req.Base, req.Platform = repo+"@"+idx.Digest.String(), &arm
	b, err = f.op().Plan(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if b.Base.Ref != repo+"@"+armImg.Digest.String() {
		t.Errorf("base %s from the index, want the arm64 image %s", b.Base.Ref, armImg.Digest)
	}
	req.Base = repo + "@" + digest.Bytes([]byte("no such image")).String()
	var be *BaseError
	if _, err := f.op().Plan(ctx, req); !errors.As(err, &be) || !registry.IsNotFound(err) {
		t.Fatalf("a base the registry lacks: %v; want a *BaseError of a registry not-found", err)
	}
}

// TestPushAndRetag: Push records the image, pushes it by digest and tags
// it; Retag points other tags at it from its manifest alone; Entry finds
// it planned in the operation without a request, else in the registry.
func TestPushAndRetag(t *testing.T) {
	f := newFixture(t)
	tree := f.stored(map[string]string{"index.html": "<h1>hi</h1>"})
	repo := f.reg.Host() + "/web"
	op := f.op()
	b, err := op.Plan(ctx, scratch(layer(tree, "/srv/www")))
	if err != nil {
		t.Fatal(err)
	}
	ref := repo + "@" + b.Digest.String()
	f.reg.Reset()
	want, err := op.Entry(ctx, ref)
	if err != nil || want.Digest != b.Digest || want.Platform != b.Platform {
		t.Fatalf("Entry of the planned image: %+v, %v", want, err)
	}
	if calls := f.reg.Calls("", ""); len(calls) != 0 {
		t.Fatalf("Entry of an image planned in the operation asked the registry: %v", calls)
	}
	pushed, err := op.Push(ctx, repo, b, []string{"v1", "latest"})
	if err != nil {
		t.Fatal(err)
	}
	if pushed.Stats.Uploaded != 2 || pushed.RecordKept != "" {
		t.Errorf("pushed %+v; want the layer and config uploaded, a new record", pushed)
	}
	if _, err := image.GetRecord(ctx, f.st, b.Digest); err != nil {
		t.Errorf("the image's record: %v", err)
	}
	c, err := op.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"v1", "latest"} {
		if got, ok, err := c.TagTarget(ctx, repo, tag); err != nil || !ok || got != b.Digest {
			t.Errorf("tag %s: %s, %v, %v; want %s", tag, got, ok, err, b.Digest)
		}
	}
	if got, err := f.op().Entry(ctx, ref); err != nil || got.Descriptor != want.Descriptor || got.Platform != want.Platform {
		t.Errorf("Entry from the registry: %+v, %v; want %+v", got, err, want)
	}
	f.reg.Reset()
	if err := f.op().Retag(ctx, repo, ref, []string{"v2"}); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := c.TagTarget(ctx, repo, "v2"); err != nil || !ok || got != b.Digest {
		t.Errorf("retagged v2: %s, %v, %v; want %s", got, ok, err, b.Digest)
	}
	if calls := f.reg.Calls(http.MethodPut, "/blobs/"); len(calls) != 0 {
		t.Errorf("a retag sent blobs: %v", calls)
	}
	var re *ResolveError
	gone := repo + "@" + digest.Bytes([]byte("never pushed")).String()
	if err := f.op().Retag(ctx, repo, gone, []string{"v3"}); !errors.As(err, &re) || re.Ref != gone {
		t.Fatalf("retag of an image the registry lacks: %v; want a *ResolveError", err)
	}
}

// TestPushKeepsAnotherRecord: the same image recorded by another
// configuration as made of other but equivalent inputs (a file mode
// written out that is the default) is pushed: the record stands.
func TestPushKeepsAnotherRecord(t *testing.T) {
	f := newFixture(t)
	tree := f.stored(map[string]string{"index.html": "<h1>hi</h1>"})
	repo := f.reg.Host() + "/web"
	first := f.push(repo, scratch(layer(tree, "/srv/www")))
	spec := layer(tree, "/srv/www")
	spec.FileMode = 0o644
	op := f.op()
	b, err := op.Plan(ctx, scratch(spec))
	if err != nil {
		t.Fatal(err)
	}
	if b.Digest != first.Digest {
		t.Fatalf("mode 0644 written out gives %s, not %s: the test needs equivalent inputs", b.Digest, first.Digest)
	}
	pushed, err := op.Push(ctx, repo, b, []string{"again"})
	if err != nil {
		t.Fatalf("pushing the same image of other inputs: %v", err)
	}
	if pushed.RecordKept == "" {
		t.Errorf("pushed %+v: want the key of the record kept", pushed)
	}
	rec, err := image.GetRecord(ctx, f.st, b.Digest)
	if err != nil || rec.Layers[0].FileMode != 0 {
		t.Errorf("record %+v, %v: want the first configuration's", rec, err)
	}
}

// TestPushRefusesMissingTree: a layer whose tree is on disk only (its
// artifact not applied, or collected since plan) is refused when the
// image is recorded, naming the layer; nothing reaches the registry.
func TestPushRefusesMissingTree(t *testing.T) {
	f := newFixture(t)
	stored := f.stored(map[string]string{"a": "a"})
	dir, l := f.tree(map[string]string{"b": "b"})
	f.planned.set(image.DirSource(dir, l))
	op := f.op()
	b, err := op.Plan(ctx, scratch(layer(stored, "/a"), layer(l.Digest(), "/b")))
	if err != nil {
		t.Fatal(err)
	}
	f.reg.Reset()
	var tm *TreeMissingError
	if _, err := op.Push(ctx, f.reg.Host()+"/web", b, nil); !errors.As(err, &tm) || tm.Layer != 1 {
		t.Fatalf("push: %v; want a *TreeMissingError of layer 1", err)
	}
	f.noWrites()
	if _, err := image.GetRecord(ctx, f.st, b.Digest); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("record after the refusal: %v; want none", err)
	}
}

// TestPushInterrupted: BeforePush runs after the record is written and
// before anything is sent; its error stops the push.
func TestPushInterrupted(t *testing.T) {
	f := newFixture(t)
	tree := f.stored(map[string]string{"a": "a"})
	op := f.op()
	b, err := op.Plan(ctx, scratch(layer(tree, "/a")))
	if err != nil {
		t.Fatal(err)
	}
	f.reg.Reset()
	stop := errors.New("stopped by the test")
	var recorded error
	_, err = op.Push(ctx, f.reg.Host()+"/web", b, []string{"v1"}, BeforePush(func(context.Context) error {
		_, recorded = image.GetRecord(ctx, f.st, b.Digest)
		return stop
	}))
	var ie *InterruptedError
	if !errors.As(err, &ie) || !errors.Is(err, stop) {
		t.Fatalf("push: %v; want an *InterruptedError of the hook's", err)
	}
	if recorded != nil {
		t.Errorf("the record when the hook ran: %v", recorded)
	}
	f.noWrites()
}

// TestPushLayerChanged: a layer whose bytes on disk changed after plan
// fails as it streams, named by its index among the image's own layers
// (a base's layers not counted); the manifest is not pushed and the
// machine's cache forgets the image's layers.
func TestPushLayerChanged(t *testing.T) {
	f := newFixture(t)
	baseTree := f.stored(map[string]string{"base.txt": "base"})
	repo := f.reg.Host() + "/web"
	base := f.push(repo, scratch(layer(baseTree, "/base")))
	files := map[string]string{"index.html": "<h1>planned</h1>"}
	kept := f.stored(map[string]string{"a": "a"})
	changing := f.stored(files)
	// The same tree on disk, read before the store: the file then changes.
	dir, l := f.tree(files)
	f.planned.set(image.DirSource(dir, l))
	req := scratch(layer(kept, "/a"), layer(changing, "/srv/www"))
	req.Base = repo + "@" + base.Digest.String()
	op := f.op()
	b, err := op.Plan(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>changed</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	var lc *LayerChangedError
	if _, err := op.Push(ctx, repo, b, []string{"v1"}); !errors.As(err, &lc) || lc.Layer != 1 {
		t.Fatalf("push: %v; want a *LayerChangedError of own layer 1", err)
	}
	c, err := op.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve(ctx, repo+"@"+b.Digest.String()); !registry.IsNotFound(err) {
		t.Errorf("the manifest after a failed push: %v; want not found", err)
	}
	if _, ok, _ := c.TagTarget(ctx, repo, "v1"); ok {
		t.Error("the tag was pushed")
	}
	for _, l := range b.Layers {
		if _, ok := f.cache.Get(l.Spec); ok {
			t.Errorf("the cache still holds %s at %s", l.Spec.Tree, l.Spec.Path)
		}
	}
}

// TestBuiltChecksPlannedDigest: an apply in a process that did not plan
// the image assembles it again and refuses another digest than the
// plan's; the operation that planned it returns what it planned.
func TestBuiltChecksPlannedDigest(t *testing.T) {
	f := newFixture(t)
	a := f.stored(map[string]string{"a": "a"})
	other := f.stored(map[string]string{"a": "changed"})
	op := f.op()
	planned, err := op.Plan(ctx, scratch(layer(a, "/a")))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := op.Built(ctx, planned.Digest, scratch(layer(other, "/a"))); err != nil || got != planned {
		t.Errorf("Built in the planning operation: %v, %v; want the image planned", got, err)
	}
	if got, err := f.op().Built(ctx, planned.Digest, scratch(layer(a, "/a"))); err != nil || got.Digest != planned.Digest {
		t.Errorf("Built again: %v, %v; want %s", got, err, planned.Digest)
	}
	fresh := f.op()
	var ce *ChangedError
	if _, err := fresh.Built(ctx, planned.Digest, scratch(layer(other, "/a"))); !errors.As(err, &ce) || ce.Planned != planned.Digest {
		t.Fatalf("Built of other content: %v; want a *ChangedError", err)
	}
	if _, ok := fresh.Planned(planned.Digest); ok {
		t.Error("Built remembered an image as planned")
	}
	if got, err := fresh.Built(ctx, digest.Sum{}, scratch(layer(other, "/a"))); err != nil || got.Digest == planned.Digest {
		t.Errorf("Built with the digest unknown at plan: %v, %v; want the new image", got, err)
	}
}
