package gcsstore_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// ops are a backend's operations, each as a function of no arguments.
func ops(b *gcsstore.Backend) map[string]func() error {
	ctx := context.Background()
	return map[string]func() error{
		"exists": func() error { _, err := b.Exists(ctx, "blobs/x"); return err },
		"list":   func() error { _, err := b.List(ctx, "releases/"); return err },
		"open":   func() error { _, err := b.Open(ctx, "blobs/x"); return err },
		"create": func() error { return b.Create(ctx, "blobs/x", strings.NewReader("x")) },
		"delete": func() error { return b.Delete(ctx, "blobs/x") },
	}
}

// TestMissingBucket: every operation on a bucket that does not exist says
// so and names the setting, instead of reading as an empty store.
func TestMissingBucket(t *testing.T) {
	srv := testserver.StartGCS(t)
	srv.Env(t)
	for name, op := range ops(newBackend(t, "no-such-bucket", gcsstore.Settings{})) {
		if name == "delete" {
			continue // a missing object (in a missing bucket) is no error for a delete
		}
		err := op()
		var e *gcsstore.Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), `the bucket "no-such-bucket" does not exist`) || !strings.Contains(err.Error(), "`store`") {
			t.Errorf("%s: want a missing-bucket error naming the setting, got %v", name, err)
		}
	}
}

// gcsError answers every request with status and GCS's JSON error body.
func gcsError(t *testing.T, status int, reason, message string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"error":{"code":` + strconv.Itoa(status) + `,"message":"` + message +
			`","errors":[{"message":"` + message + `","domain":"global","reason":"` + reason + `"}]}}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestDenied: a 403 (what GCS answers a principal lacking a permission)
// names the permission the operation needs; a 401 (credentials rejected,
// a login expired) says to log in again. fake-gcs-server has no IAM, so
// a server answering as GCS does (its documented JSON error) stands in.
func TestDenied(t *testing.T) {
	t.Setenv(gcsstore.EnvEmulator, gcsError(t, http.StatusForbidden, "forbidden",
		"ci@p.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object."))
	b := newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 1})
	want := map[string]string{
		"exists": "storage.objects.get", "open": "storage.objects.get", "list": "storage.objects.list",
		"create": "storage.objects.create", "delete": "storage.objects.delete",
	}
	for name, op := range ops(b) {
		err := op()
		needs := "Grant the principal " + want[name]
		if name == "delete" {
			needs = "needs " + want[name]
		}
		if err == nil || !strings.Contains(err.Error(), "access denied") || !strings.Contains(err.Error(), needs) {
			t.Errorf("%s: want a 403 naming %s, got %v", name, want[name], err)
		}
	}
	if err := b.Delete(context.Background(), "blobs/x"); err == nil || !strings.Contains(err.Error(), "Only the collector should have it") {
		t.Errorf("a denied delete does not say only the collector needs it: %v", err)
	}

	t.Setenv(gcsstore.EnvEmulator, gcsError(t, http.StatusUnauthorized, "required", "Anonymous caller does not have storage.objects.get access."))
	b = newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 1})
	for name, op := range ops(b) {
		if err := op(); err == nil || !strings.Contains(err.Error(), "gcloud auth application-default login") {
			t.Errorf("%s: want a 401 saying to log in, got %v", name, err)
		}
	}
}

// TestUnreachable: an emulator host nothing listens on fails fast, saying
// what it could not reach and which variable named it.
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil { // nothing listens there now
		t.Fatal(err)
	}
	t.Setenv(gcsstore.EnvEmulator, "http://"+addr)
	start := time.Now()
	_, err = newBackend(t, "bucket", gcsstore.Settings{}).Exists(context.Background(), "blobs/x")
	if err == nil || !strings.Contains(err.Error(), "cannot reach") || !strings.Contains(err.Error(), gcsstore.EnvEmulator) {
		t.Fatalf("want an unreachable-endpoint error, got %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("gave up after %v: retries of an endpoint never reached are not bounded", d)
	}
}

// TestNoCredentials: with Application Default Credentials naming a key
// file that is not there, every operation fails saying that no
// credentials were found and how to provide them, not blaming the bucket.
func TestNoCredentials(t *testing.T) {
	t.Setenv(gcsstore.EnvEmulator, "")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "no-such-key.json"))
	for name, op := range ops(newBackend(t, "bucket", gcsstore.Settings{})) {
		err := op()
		var nc *gcsstore.NoCredentialsError
		if !errors.As(err, &nc) {
			t.Errorf("%s: want a no-credentials error, got %v", name, err)
			continue
		}
		for _, want := range []string{"no Google Cloud credentials were found", "gcloud auth application-default login", "GOOGLE_APPLICATION_CREDENTIALS"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error does not say %q: %v", name, want, err)
			}
		}
	}
}

// TestCancelStopsAHungRequest: a server that accepts and never answers
// cannot hold an apply once Terraform cancels (Ctrl-C), a large upload's
// neither.
func TestCancelStopsAHungRequest(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }() // stops the accept loop; nothing to lose
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer func() { _ = c.Close() }() // hold it open, say nothing
		}
	}()
	t.Setenv(gcsstore.EnvEmulator, "http://"+l.Addr().String())
	b := newBackend(t, "bucket", gcsstore.Settings{})
	for name, op := range map[string]func(ctx context.Context) error{
		"create": func(ctx context.Context) error {
			return b.Create(ctx, "blobs/x", bytes.NewReader(bytes.Repeat([]byte("x"), 20<<20)))
		},
		"exists": func(ctx context.Context) error { _, err := b.Exists(ctx, "blobs/x"); return err },
	} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		if err := op(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: want context.Canceled, got %v", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: cancel took %v", name, d)
		}
	}
}

// failDeletes answers the first n tries of every DELETE 503.
func failDeletes(n int) testserver.FaultFunc {
	return func(c testserver.Call, tries int) testserver.Fault {
		if c.Method == http.MethodDelete && tries < n {
			return testserver.SlowDown
		}
		return testserver.Pass
	}
}

// TestDeleteRetried: a delete answered 503 is tried again (though it
// names no generation: a delete that landed meets no object, which is no
// error), and one that keeps failing says how many times it was really
// tried.
func TestDeleteRetried(t *testing.T) {
	srv := testserver.StartGCS(t)
	srv.Env(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	if err := newBackend(t, bucket, gcsstore.Settings{}).Create(ctx, "blobs/x", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}

	proxy := srv.Faulty(t, failDeletes(2))
	b := behind(t, srv, proxy.Endpoint, bucket, gcsstore.Settings{MaxAttempts: 3})
	if err := b.Delete(ctx, "blobs/x"); err != nil {
		t.Fatalf("a delete answered 503 twice, with 3 attempts: %v", err)
	}
	if ok, err := b.Exists(ctx, "blobs/x"); err != nil || ok {
		t.Fatalf("after the delete: exists %v, %v", ok, err)
	}
	if n := len(proxy.Calls(http.MethodDelete, "")); n != 3 {
		t.Errorf("%d DELETE requests, want 3", n)
	}

	proxy = srv.Faulty(t, failDeletes(100))
	b = behind(t, srv, proxy.Endpoint, bucket, gcsstore.Settings{MaxAttempts: 2})
	err := b.Delete(ctx, "blobs/y")
	if err == nil || !strings.Contains(err.Error(), "gave up after 2 attempts") {
		t.Fatalf("want a 503 failure saying it gave up after 2 attempts, got %v", err)
	}
	if n := len(proxy.Calls(http.MethodDelete, "")); n != 2 {
		t.Errorf("%d DELETE requests, want 2", n)
	}
}

// TestDeniedListing: when an object is not found and the listing that
// tells a missing bucket from it (the bucket-existence probe) is denied,
// the message names storage.objects.list, the permission missing, not
// the one of the operation that was answered 404.
func TestDeniedListing(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, reason, message := http.StatusNotFound, "notFound", "No such object."
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/o") { // a listing
			status, reason, message = http.StatusForbidden, "forbidden", "ci@p.iam.gserviceaccount.com does not have storage.objects.list access."
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"error":{"code":` + strconv.Itoa(status) + `,"message":"` + message +
			`","errors":[{"message":"` + message + `","domain":"global","reason":"` + reason + `"}]}}`))
	}))
	t.Cleanup(srv.Close)
	t.Setenv(gcsstore.EnvEmulator, srv.URL)
	b := newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 1})
	for name, op := range ops(b) {
		if name == "delete" || name == "list" {
			continue // a missing object is no error for a delete; a listing is the listing itself
		}
		err := op()
		if err == nil || !strings.Contains(err.Error(), "access denied") || !strings.Contains(err.Error(), "Grant the principal storage.objects.list") {
			t.Errorf("%s: want a 403 naming storage.objects.list, got %v", name, err)
		}
	}
}
