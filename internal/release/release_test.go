package release

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

func backend(t *testing.T) *filestore.Backend {
	b, err := filestore.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	ctx = context.Background()
	now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a1  = digest.Bytes([]byte("one")).String()
	a2  = digest.Bytes([]byte("two")).String()
)

func content(art string) Content {
	return Content{Name: "web", Artifacts: map[string]string{"site": art}, Metadata: map[string]string{"env": "prod"}}
}

// TestGoldenEncoding pins release spec v1.
func TestGoldenEncoding(t *testing.T) {
	c := Content{Name: "web", Artifacts: map[string]string{"z": a1, "a": a2}, Metadata: map[string]string{"url": "https://x/?a=1&b=<2>", "note": "line\nbreak"}}
	want := `{"artifacts":{"a":"` + a2 + `","z":"` + a1 + `"},"metadata":{"note":"line\nbreak","url":"https://x/?a=1&b=<2>"},"name":"web","spec":"immutable-release-v1"}`
	if got := string(c.Encode()); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
	if got := (Content{Name: "x"}).Encode(); string(got) != `{"artifacts":{},"metadata":{},"name":"x","spec":"immutable-release-v1"}` {
		t.Fatalf("empty maps encode as %s", got)
	}
	if got := c.Digest().String(); got != digest.Bytes([]byte(want)).String() {
		t.Fatal("digest is not the sha256 of the encoding")
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"web", "web-frontend", "a.b_c-1", "0x"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "../x", "Web", "a/b", ".hidden", "-x", "a b", strings.Repeat("a", 129), "é"} {
		if err := CheckName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPublishIsWriteOnce(t *testing.T) {
	b := backend(t)
	c := content(a1)
	r, err := WriteRecord(ctx, b, &Record{Name: c.Name, Version: "1.0.0", Artifacts: c.Artifacts, Metadata: c.Metadata}, now)
	if err != nil || r.PublishedAt != "2026-01-02T03:04:05Z" || r.Digest != c.Digest().String() {
		t.Fatalf("Publish = %+v, %v", r, err)
	}
	// The same content again: adopted, the first record kept.
	again, err := WriteRecord(ctx, b, &Record{Name: c.Name, Version: "1.0.0", Artifacts: c.Artifacts, Metadata: c.Metadata}, now.Add(time.Hour))
	if err != nil || again.PublishedAt != r.PublishedAt {
		t.Fatalf("republish = %+v, %v", again, err)
	}
	// Other content under the same version: refused, nothing overwritten.
	c2 := content(a2)
	_, err = WriteRecord(ctx, b, &Record{Name: c2.Name, Version: "1.0.0", Artifacts: c2.Artifacts, Metadata: c2.Metadata}, now)
	var conflict *ConflictError
	if !errors.As(err, &conflict) || !strings.Contains(err.Error(), "version 1.0.0 of release \"web\" is already published with digest "+c.Digest().String()) {
		t.Fatalf("want a ConflictError, got %v", err)
	}
	got, err := Get(ctx, b, "web", "1.0.0")
	if err != nil || got.Digest != c.Digest().String() {
		t.Fatalf("record after conflict: %+v, %v", got, err)
	}
}

// eachBackend runs a test on the local store and on a real S3 server.
func eachBackend(t *testing.T, test func(t *testing.T, b store.Backend)) {
	t.Run("file", func(t *testing.T) { test(t, backend(t)) })
	t.Run("s3", func(t *testing.T) {
		srv := testserver.StartS3(t)
		b, err := s3store.New(ctx, srv.NewBucket(t), "releases-test", srv.Settings())
		if err != nil {
			t.Fatal(err)
		}
		test(t, b)
	})
}

// TestConcurrentPublishers: 32 publishers of the same version with
// different content: exactly one record, 31 clear conflicts.
func TestConcurrentPublishers(t *testing.T) {
	eachBackend(t, testConcurrentPublishers)
}

func testConcurrentPublishers(t *testing.T, b store.Backend) {
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := content(digest.Bytes([]byte(fmt.Sprint(i))).String())
			_, errs[i] = WriteRecord(ctx, b, &Record{Name: "web", Version: "2.0.0", Artifacts: c.Artifacts}, now)
		}()
	}
	wg.Wait()
	ok, winner := 0, -1
	for i, err := range errs {
		var conflict *ConflictError
		switch {
		case err == nil:
			ok, winner = ok+1, i
		case !errors.As(err, &conflict) || !strings.Contains(err.Error(), "is already published with digest"):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d publishers succeeded, want exactly 1", ok)
	}
	rec, err := Get(ctx, b, "web", "2.0.0")
	want := content(digest.Bytes([]byte(fmt.Sprint(winner))).String())
	want.Metadata = nil
	if err != nil || rec.Digest != want.Digest().String() {
		t.Fatalf("the record holds %v (%v), not the winner's content", rec, err)
	}
}

// TestListManyVersions: more versions than one S3 list page.
func TestListManyVersions(t *testing.T) {
	eachBackend(t, func(t *testing.T, b store.Backend) {
		const n = 1001
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i := range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c := content(digest.Bytes([]byte(fmt.Sprint(i))).String())
				if _, err := WriteRecord(ctx, b, &Record{Name: "web", Version: fmt.Sprintf("1.%d.0", i), Artifacts: c.Artifacts}, now); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		vs, err := List(ctx, b, "web")
		if err != nil || len(vs) != n {
			t.Fatalf("listed %d versions (%v), want %d", len(vs), err, n)
		}
		if vs[0].Original() != "1.0.0" || vs[n-1].Original() != "1.1000.0" {
			t.Fatalf("order: first %s, last %s", vs[0].Original(), vs[n-1].Original())
		}
		p, err := PlanVersion(ctx, b, content(a1), "", "patch")
		if err != nil || p.Version != "1.1000.1" {
			t.Fatalf("next version after 1,001: %+v %v", p, err)
		}
	})
}

func TestTamperDetected(t *testing.T) {
	b := backend(t)
	c := content(a1)
	if _, err := WriteRecord(ctx, b, &Record{Name: "web", Version: "1.0.0", Artifacts: c.Artifacts, Metadata: c.Metadata}, now); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(b.Root(), filepath.FromSlash(VersionKey("web", "1.0.0")))
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(raw), `"prod"`, `"dev"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Get(ctx, b, "web", "1.0.0")
	var tampered *TamperedError
	if !errors.As(err, &tampered) || !strings.Contains(err.Error(), "releases/web/versions/1.0.0") {
		t.Fatalf("want a TamperedError naming the record, got %v", err)
	}
	if _, err := Get(ctx, b, "web", "9.9.9"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing version: %v", err)
	}
}

func TestPlanVersion(t *testing.T) {
	b := backend(t)
	plan := func(c Content, explicit, bump string) *Plan {
		t.Helper()
		p, err := PlanVersion(ctx, b, c, explicit, bump)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	publish := func(c Content, v, prev string) {
		t.Helper()
		if _, err := WriteRecord(ctx, b, &Record{Name: c.Name, Version: v, Artifacts: c.Artifacts, Metadata: c.Metadata, PreviousVersion: prev}, now); err != nil {
			t.Fatal(err)
		}
	}
	c1, c2, c3 := content(a1), content(a2), content(digest.Bytes([]byte("three")).String())
	if p := plan(c1, "", "patch"); p.Version != "1.0.0" || p.PreviousVersion != "" || p.Adopted != nil {
		t.Fatalf("first: %+v", p)
	}
	publish(c1, "1.0.0", "")
	if p := plan(c1, "", "patch"); p.Version != "1.0.0" || p.Adopted == nil {
		t.Fatalf("same content adopts 1.0.0: %+v", p)
	}
	if p := plan(c2, "", "patch"); p.Version != "1.0.1" || p.PreviousVersion != "1.0.0" {
		t.Fatalf("patch: %+v", p)
	}
	if p := plan(c2, "", "minor"); p.Version != "1.1.0" {
		t.Fatalf("minor: %+v", p)
	}
	publish(c2, "1.0.1", "1.0.0")
	publish(c1, "2.0.0", "1.0.1") // c1 again, later: adoption takes the highest
	if p := plan(c1, "", "patch"); p.Version != "2.0.0" || p.PreviousVersion != "1.0.1" {
		t.Fatalf("highest same-content version: %+v", p)
	}
	// An explicit version wins over adoption; a backport below the latest is fine.
	if p := plan(c1, "1.4.3", "patch"); p.Version != "1.4.3" || p.PreviousVersion != "1.0.1" || p.Adopted != nil {
		t.Fatalf("backport: %+v", p)
	}
	if _, err := PlanVersion(ctx, b, c3, "1.0.1", "patch"); !errors.As(err, new(*ConflictError)) {
		t.Fatalf("explicit version taken by other content: %v", err)
	}
	if p := plan(c2, "1.0.1", "patch"); p.Adopted == nil || p.Version != "1.0.1" {
		t.Fatalf("explicit version with the same content: %+v", p)
	}
}

// padTo returns content whose record, published as 1.0.0 with no previous
// version, is exactly size bytes, by padding metadata; or, if inArtifacts,
// at least size bytes, by adding artifacts.
func padTo(t *testing.T, size int, inArtifacts bool) Content {
	t.Helper()
	c := content(a1)
	recordSize := func() int {
		r := &Record{Spec: Spec, Name: c.Name, Version: "1.0.0", Digest: c.Digest().String(), Artifacts: c.Artifacts, Metadata: c.Metadata, PublishedAt: publishedAtPlaceholder}
		return len(r.encode())
	}
	if inArtifacts {
		s0 := recordSize()
		c.Artifacts["a0000000"] = a2
		per := recordSize() - s0 // every artifact "aNNNNNNN" adds as much
		for i := 1; s0+(i+1)*per < size+per; i++ {
			c.Artifacts[fmt.Sprintf("a%07d", i)] = a2
		}
		if got := recordSize(); got < size {
			t.Fatalf("padded artifacts to %d bytes, want at least %d", got, size)
		}
		return c
	}
	c.Metadata["pad"] = ""
	c.Metadata["pad"] = strings.Repeat("x", size-recordSize())
	return c
}

// TestRecordSizeLimit: a record Get could not read back is refused by
// PlanVersion and by Publish, naming the input that makes it large, and
// nothing is written; a record of exactly MaxRecordSize bytes publishes and
// reads back.
func TestRecordSizeLimit(t *testing.T) {
	b := backend(t)
	exact := padTo(t, MaxRecordSize, false)
	r, err := WriteRecord(ctx, b, &Record{Name: exact.Name, Version: "1.0.0", Artifacts: exact.Artifacts, Metadata: exact.Metadata}, now)
	if err != nil {
		t.Fatalf("a record of exactly %d bytes: %v", MaxRecordSize, err)
	}
	if fi, err := os.Stat(filepath.Join(b.Root(), filepath.FromSlash(VersionKey("web", "1.0.0")))); err != nil || fi.Size() != MaxRecordSize {
		t.Fatalf("stored record: %v, %v; want exactly %d bytes", fi, err, MaxRecordSize)
	}
	if got, err := Get(ctx, b, "web", "1.0.0"); err != nil || got.Digest != r.Digest {
		t.Fatalf("reading back the largest record: %v", err)
	}

	for _, tc := range []struct {
		attr string
		c    Content
	}{{"metadata", padTo(t, MaxRecordSize+1, false)}, {"artifacts", padTo(t, MaxRecordSize+1, true)}} {
		t.Run(tc.attr, func(t *testing.T) {
			b := backend(t)
			check := func(what string, err error) {
				t.Helper()
				var tooLarge *TooLargeError
				if !errors.As(err, &tooLarge) || tooLarge.Attribute() != tc.attr ||
					!strings.Contains(err.Error(), fmt.Sprintf("a release record may be at most %d bytes", MaxRecordSize)) {
					t.Fatalf("%s: want a TooLargeError naming %s and the limit, got %v", what, tc.attr, err)
				}
			}
			_, err := PlanVersion(ctx, b, tc.c, "", "patch")
			check("PlanVersion", err)
			_, err = PlanVersion(ctx, b, tc.c, "2.0.0", "patch")
			check("PlanVersion with an explicit version", err)
			_, err = WriteRecord(ctx, b, &Record{Name: tc.c.Name, Version: "1.0.0", Artifacts: tc.c.Artifacts, Metadata: tc.c.Metadata}, now)
			check("Publish", err)
			if keys, err := b.List(ctx, "releases/"); err != nil || len(keys) != 0 {
				t.Fatalf("a refused publish wrote %v (%v)", keys, err)
			}
		})
	}
}

// TestGetOversizeRecord: a stored record over the limit (as a provider
// without it could write) is reported as too large to read, not as a
// truncated, "altered" record.
func TestGetOversizeRecord(t *testing.T) {
	b := backend(t)
	c := padTo(t, MaxRecordSize+100, false)
	r := &Record{Spec: Spec, Name: c.Name, Version: "1.0.0", Digest: c.Digest().String(), Artifacts: c.Artifacts, Metadata: c.Metadata, PublishedAt: "2026-01-02T03:04:05Z"}
	if err := b.Create(ctx, VersionKey("web", "1.0.0"), strings.NewReader(string(r.encode()))); err != nil {
		t.Fatal(err)
	}
	_, err := Get(ctx, b, "web", "1.0.0")
	var oversize *OversizeRecordError
	if !errors.As(err, &oversize) || errors.As(err, new(*TamperedError)) ||
		!strings.Contains(err.Error(), fmt.Sprintf("releases/web/versions/1.0.0 is larger than %d bytes", MaxRecordSize)) {
		t.Fatalf("want an OversizeRecordError naming the record and the limit, got %v", err)
	}
}

// TestInterruptedPublish: a publish that fails between its two writes, for
// real on a file store (a regular file where a directory must be: we may
// run as root, so permissions would not stop the write), never makes the
// next plan pick a new version for the same content: once the obstacle is
// gone, the plan picks 1.0.0 again and publishing leaves exactly one
// version.
func TestInterruptedPublish(t *testing.T) {
	for _, obstacle := range []string{"digests", "versions"} {
		t.Run(obstacle, func(t *testing.T) {
			b := backend(t)
			c := content(a1)
			blocker := filepath.Join(b.Root(), "releases", "web", obstacle)
			if err := os.MkdirAll(filepath.Dir(blocker), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(blocker, []byte("in the way\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			rec := &Record{Name: c.Name, Version: "1.0.0", Artifacts: c.Artifacts, Metadata: c.Metadata}
			if _, err := WriteRecord(ctx, b, rec, now); err == nil || !strings.Contains(err.Error(), "not a directory") {
				t.Fatalf("publish through the obstacle: %v", err)
			}
			if err := os.Remove(blocker); err != nil {
				t.Fatal(err)
			}
			if vs, err := List(ctx, b, "web"); err != nil || len(vs) != 0 {
				t.Fatalf("the failed publish left versions %v (%v)", vs, err)
			}
			p, err := PlanVersion(ctx, b, c, "", "patch")
			if err != nil || p.Version != "1.0.0" || p.Adopted != nil {
				t.Fatalf("the plan after the failure: %+v, %v; want 1.0.0 again", p, err)
			}
			rec = &Record{Name: c.Name, Version: p.Version, Artifacts: c.Artifacts, Metadata: c.Metadata}
			if _, err := WriteRecord(ctx, b, rec, now); err != nil {
				t.Fatal(err)
			}
			assertOneVersion(t, b, c)
		})
	}
}

// assertOneVersion: the release has exactly 1.0.0, with c, and planning c
// again adopts it.
func assertOneVersion(t *testing.T, b store.Backend, c Content) {
	t.Helper()
	vs, err := List(ctx, b, "web")
	if err != nil || len(vs) != 1 || vs[0].Original() != "1.0.0" {
		t.Fatalf("versions %v (%v), want exactly 1.0.0", vs, err)
	}
	p, err := PlanVersion(ctx, b, c, "", "patch")
	if err != nil || p.Version != "1.0.0" || p.Adopted == nil {
		t.Fatalf("planning the same content again: %+v, %v; want 1.0.0 adopted", p, err)
	}
}

// TestKilledPublish: a process killed during a publish, so that its state
// is never saved, leaves the store as after one of its writes. Either way
// the next plan of the same content picks 1.0.0 (adopting it if the record
// was written), never a duplicate version.
func TestKilledPublish(t *testing.T) {
	eachBackend(t, func(t *testing.T, b store.Backend) {
		c := content(a1)
		// Killed after the index entry, before the record.
		if err := b.Create(ctx, digestPrefix(c.Name, c.Digest())+"1.0.0", strings.NewReader("1.0.0")); err != nil {
			t.Fatal(err)
		}
		p, err := PlanVersion(ctx, b, c, "", "patch")
		if err != nil || p.Version != "1.0.0" || p.Adopted != nil {
			t.Fatalf("plan after a kill before the record: %+v, %v; want 1.0.0, new", p, err)
		}
		// Killed after the record: published, but the state never saved.
		if _, err := WriteRecord(ctx, b, &Record{Name: c.Name, Version: p.Version, Artifacts: c.Artifacts, Metadata: c.Metadata}, now); err != nil {
			t.Fatal(err)
		}
		assertOneVersion(t, b, c)
	})
}

// Metadata keys and artifact names are shown in plans and diffs: one
// holding a character that does not show as itself is refused, and
// nothing is written. Values are data, not checked. Names already in the
// store are shown escaped.
func TestNamesShowAsWritten(t *testing.T) {
	b := backend(t)
	for _, tc := range []struct {
		c    Content
		want string
	}{
		{Content{Name: "web", Metadata: map[string]string{"env": "prod", "git\u200Bsha": "abc"}},
			`the metadata key "git\u200Bsha" holds U+200B ZERO WIDTH SPACE at character 4`},
		{Content{Name: "web", Artifacts: map[string]string{"site\u202Eexe.": a1}},
			`the artifact name "site\u202Eexe." holds U+202E RIGHT-TO-LEFT OVERRIDE at character 5`},
	} {
		if _, err := WriteRecord(ctx, b, &Record{Name: tc.c.Name, Version: "1.0.0", Artifacts: tc.c.Artifacts, Metadata: tc.c.Metadata}, now); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %s", err, tc.want)
		}
	}
	if keys, _ := b.List(ctx, ""); len(keys) != 0 {
		t.Fatalf("refused publishes wrote %v", keys)
	}
	ok := Content{Name: "web", Artifacts: map[string]string{"déploiement ✓": a1}, Metadata: map[string]string{"note 🚀": "multi\nline\u202E value"}}
	if _, err := WriteRecord(ctx, b, &Record{Name: "web", Version: "1.0.0", Artifacts: ok.Artifacts, Metadata: ok.Metadata}, now); err != nil {
		t.Fatal(err)
	}
	got := ArtifactChanges(map[string]string{"a\u202Eb": a1}, map[string]string{"déploiement ✓": a2})
	if want := []string{`- "a\u202Eb" ` + a1, "+ déploiement ✓ " + a2}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("ArtifactChanges = %q, want %q", got, want)
	}
}
