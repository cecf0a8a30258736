package gc

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// TestEveryUntrustedKeyNamed: foreign files under releases/*/versions/
// and gc/leases/ stop the collection before anything is deleted, and one
// run names all of them, not one per run.
func TestEveryUntrustedKeyNamed(t *testing.T) {
	w := newWorld(t, store.New(mustFilestore(t)))
	bad := []string{"gc/leases/README", "releases/api/versions/notes/x.txt", "releases/web/versions/garbage"}
	for _, k := range bad {
		must(t, w.st.Backend().Create(ctx, k, strings.NewReader("mine\n")))
	}
	before := everything(t, w.st)
	_, err := Collect(ctx, w.st, policy, later())
	var u *UntrustedError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "nothing was deleted: 3 objects cannot be read or trusted") {
		t.Fatalf("three foreign files: %v; want an UntrustedError naming the three", err)
	}
	for _, k := range bad {
		if !strings.Contains(err.Error(), "\n  "+k+" (") {
			t.Errorf("the message does not name %s:\n%v", k, err)
		}
	}
	unchanged(t, w.st, before, "a collection stopped by foreign files")
}

// TestUntrustedKeysBounded: many foreign files are named up to
// maxUntrusted, the rest counted.
func TestUntrustedKeysBounded(t *testing.T) {
	w := newWorld(t, store.New(mustFilestore(t)))
	for i := range maxUntrusted + 5 {
		must(t, w.st.Backend().Create(ctx, fmt.Sprintf("%snote-%02d", store.LeasesPrefix, i), strings.NewReader("mine\n")))
	}
	before := everything(t, w.st)
	_, err := Collect(ctx, w.st, policy, later())
	msg := fmt.Sprint(err)
	if !strings.Contains(msg, fmt.Sprintf("%d objects cannot be read or trusted", maxUntrusted+5)) || !strings.Contains(msg, "\n  and 5 more\n") ||
		strings.Count(msg, "\n  "+store.LeasesPrefix) != maxUntrusted || !strings.Contains(msg, "note-19 (") || strings.Contains(msg, "note-20 (") {
		t.Fatalf("%d foreign leases: %v", maxUntrusted+5, err)
	}
	unchanged(t, w.st, before, "a collection stopped by foreign files")
}

// TestFailingStoreStopsAtOnce: a store that keeps answering 503 to the
// reads of release records is a failing store, not untrusted records:
// the collection stops at the first such read with the store's error (no
// *UntrustedError telling the user to move healthy records out), before
// reading every record, and deletes nothing.
func TestFailingStoreStopsAtOnce(t *testing.T) {
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	direct, err := s3store.New(ctx, bucket, "p", srv.Settings())
	must(t, err)
	must(t, store.WriteIdentity(ctx, direct))
	const n = 40
	for i := range n {
		_, err := release.WriteRecord(ctx, direct, &release.Record{Name: "app", Version: fmt.Sprintf("1.%d.0", i), Artifacts: map[string]string{}}, longAgo)
		must(t, err)
	}
	proxy := srv.Faulty(t, func(c testserver.Call, _ int) testserver.Fault {
		if c.Method == http.MethodGet && strings.Contains(c.Path, "/versions/") {
			return testserver.SlowDown
		}
		return testserver.Pass
	})
	settings := srv.Settings()
	settings.Endpoint, settings.MaxAttempts, settings.MaxConcurrency = proxy.Endpoint, 2, 4
	b, err := s3store.New(ctx, bucket, "p", settings)
	must(t, err)
	st := store.New(b)
	before := everything(t, st)
	_, err = Collect(ctx, st, policy, later())
	if u, be := (*UntrustedError)(nil), store.BackendError(nil); errors.As(err, &u) || !errors.As(err, &be) {
		t.Fatalf("a store failing its reads: %v; want the store's error, no UntrustedError", err)
	}
	read := map[string]bool{}
	for _, c := range proxy.Calls(http.MethodGet, "/versions/") {
		read[c.Path] = true
	}
	if len(read) >= n {
		t.Errorf("the collection read all %d records from a failing store; want it to stop at the first failure", len(read))
	}
	unchanged(t, st, before, "a collection stopped by a failing store")
}

// TestUntrustedKeysShown: keys from the store's listing are printed so
// that a name holding a newline or a bidirectional control (U+202E)
// cannot forge a line of the message or reorder it.
func TestUntrustedKeysShown(t *testing.T) {
	b := mustFilestore(t).(*filestore.Backend) //nolint:forcetypeassert // mustFilestore makes a file store
	st := store.New(b)
	putBlob(t, st, "content\n")
	forged := []string{"x\nnothing was deleted: the store is consistent", "y\u202Etxt.exe"}
	must(t, os.MkdirAll(filepath.Join(b.Root(), "gc", "leases"), 0o755))
	for _, name := range forged {
		must(t, os.WriteFile(filepath.Join(b.Root(), "gc", "leases", name), []byte("mine\n"), 0o644))
	}
	_, err := Collect(ctx, st, policy, later())
	msg := fmt.Sprint(err)
	if !strings.Contains(msg, "2 objects cannot be read or trusted") {
		t.Fatalf("two foreign leases: %v", err)
	}
	for _, line := range strings.Split(msg, "\n") {
		if strings.HasPrefix(line, "nothing was deleted: the store") {
			t.Errorf("a key forged the line %q:\n%s", line, msg)
		}
	}
	if strings.ContainsRune(msg, '\u202E') || !strings.Contains(msg, `"gc/leases/x\nnothing was deleted`) || !strings.Contains(msg, `"gc/leases/y\u202Etxt.exe"`) {
		t.Errorf("the keys are not shown escaped:\n%s", msg)
	}
}
