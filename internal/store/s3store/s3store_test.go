package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/storetest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

func TestConformance(t *testing.T) {
	srv := testserver.StartS3(t)
	const prefix = "some/prefix"
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Backend {
			b, err := s3store.New(context.Background(), srv.NewBucket(t), prefix, srv.Settings())
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		LoseAnswer: func(t *testing.T, b store.Backend, key string) store.Backend {
			sb, ok := b.(*s3store.Backend)
			if !ok {
				t.Fatalf("backend is a %T, not an *s3store.Backend", b)
			}
			settings := srv.Settings()
			settings.Endpoint = srv.Faulty(t, loseFirstWrite(sb.ObjectKey(key))).Endpoint
			lb, err := s3store.New(context.Background(), sb.Bucket(), prefix, settings)
			if err != nil {
				t.Fatal(err)
			}
			return lb
		},
		Tamper: func(t *testing.T, b store.Backend, key string, data []byte) {
			sb, ok := b.(*s3store.Backend)
			if !ok {
				t.Fatalf("backend is a %T, not an *s3store.Backend", b)
			}
			_, err := sb.Client().PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String(sb.Bucket()), Key: aws.String(sb.ObjectKey(key)), Body: bytes.NewReader(data),
			})
			if err != nil {
				t.Fatal(err)
			}
		},
	})
}

// loseFirstWrite loses the answer of the first request that makes an
// object visible at one of keys (a PutObject, or the completion of a
// multipart upload): the object is stored, and its writer cannot know.
func loseFirstWrite(keys ...string) testserver.FaultFunc {
	return func(c testserver.Call, tries int) testserver.Fault {
		makesVisible := c.Method == http.MethodPut && !strings.Contains(c.Query, "partNumber") ||
			c.Method == http.MethodPost && strings.Contains(c.Query, "uploadId")
		for _, k := range keys {
			if makesVisible && tries == 0 && strings.HasSuffix(c.Path, "/"+k) {
				return testserver.LoseAnswer
			}
		}
		return testserver.Pass
	}
}

func newBackend(t *testing.T, bucket string, s s3store.Settings) *s3store.Backend {
	t.Helper()
	b, err := s3store.New(context.Background(), bucket, "p", s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBadSettings: wrong credentials, a missing bucket and an unreachable
// endpoint each fail fast with an error that names what to check.
func TestBadSettings(t *testing.T) {
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()

	t.Run("wrong credentials", func(t *testing.T) {
		srv.Env(t)
		t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
		_, err := newBackend(t, bucket, srv.Settings()).Exists(ctx, "blobs/x")
		var e *s3store.Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), "credentials") || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
			t.Fatalf("want a credentials error, got %v", err)
		}
		// With a body (a write), the server says which: rejected credentials.
		err = newBackend(t, bucket, srv.Settings()).Create(ctx, "blobs/x", strings.NewReader("x"))
		if !errors.As(err, &e) || !strings.Contains(err.Error(), "credentials") {
			t.Fatalf("want a credentials error on write, got %v", err)
		}
	})
	t.Run("missing bucket", func(t *testing.T) {
		srv.Env(t)
		b := newBackend(t, "no-such-bucket", srv.Settings())
		for name, op := range map[string]func() error{
			"exists": func() error { _, err := b.Exists(ctx, "blobs/x"); return err },
			"list":   func() error { _, err := b.List(ctx, "releases/"); return err },
			"open":   func() error { _, err := b.Open(ctx, "blobs/x"); return err },
			"create": func() error { return b.Create(ctx, "blobs/x", strings.NewReader("x")) },
		} {
			err := op()
			if err == nil || !strings.Contains(err.Error(), `the bucket "no-such-bucket" does not exist`) || !strings.Contains(err.Error(), "`store`") {
				t.Errorf("%s: want a missing-bucket error naming the setting, got %v", name, err)
			}
		}
	})
	t.Run("unreachable endpoint", func(t *testing.T) {
		srv.Env(t)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		if err := l.Close(); err != nil { // nothing listens there now
			t.Fatal(err)
		}
		s := srv.Settings()
		s.Endpoint = "http://" + addr
		start := time.Now()
		_, err = newBackend(t, bucket, s).Exists(ctx, "blobs/x")
		if err == nil || !strings.Contains(err.Error(), "cannot reach") || !strings.Contains(err.Error(), "s3.endpoint") {
			t.Fatalf("want an unreachable-endpoint error, got %v", err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("gave up after %v: retries are not bounded", d)
		}
	})
}

// TestCancelStopsAHungRequest: a server that accepts and never answers
// cannot hold an apply once Terraform cancels (Ctrl-C).
func TestCancelStopsAHungRequest(t *testing.T) {
	srv := testserver.StartS3(t)
	srv.Env(t)
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
	s := srv.Settings()
	s.Endpoint = "http://" + l.Addr().String()
	b := newBackend(t, "bucket", s)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	err = b.Create(ctx, "blobs/x", bytes.NewReader(bytes.Repeat([]byte("x"), 20<<20)))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %v", d)
	}
}

// stallingReader yields one part's worth, then waits for release.
type stallingReader struct {
	sent    int
	stalled chan struct{}
	release chan struct{}
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if r.sent >= s3store.PartSize+1 {
		close(r.stalled)
		<-r.release
		return 0, io.EOF
	}
	n := min(len(p), s3store.PartSize+1-r.sent)
	for i := range p[:n] {
		p[i] = 'y'
	}
	r.sent += n
	return n, nil
}

// TestServerStoppedMidUpload: the server dies during a multipart upload:
// the write fails clearly, saying a re-run is safe, nothing is visible
// after a restart, and the same write then completes.
func TestServerStoppedMidUpload(t *testing.T) {
	srv := testserver.StartS3(t)
	settings := srv.Settings()
	settings.MaxAttempts = 3 // each request of the failing upload, and its abort, gives up sooner
	b := newBackend(t, srv.NewBucket(t), settings)
	ctx := context.Background()
	r := &stallingReader{stalled: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- b.Create(ctx, "blobs/big", r) }()
	<-r.stalled // the first part is uploaded; the second is being read
	srv.Stop()
	close(r.release)
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "cannot reach") || !strings.Contains(err.Error(), "3 times in a row") ||
		!strings.Contains(err.Error(), "Re-running apply is safe") {
		t.Fatalf("want a clear error, got %v", err)
	}
	srv.Start()
	if ok, err := b.Exists(ctx, "blobs/big"); ok || err != nil {
		t.Fatalf("after restart: exists=%v err=%v", ok, err)
	}
	if err := b.Create(ctx, "blobs/big", bytes.NewReader(bytes.Repeat([]byte("y"), s3store.PartSize+1))); err != nil {
		t.Fatalf("re-run after restart: %v", err)
	}
}

// TestListPaginates: more than 1,000 keys under one prefix (one
// ListObjectsV2 page) are all listed.
func TestListPaginates(t *testing.T) {
	srv := testserver.StartS3(t)
	b := newBackend(t, srv.NewBucket(t), srv.Settings())
	ctx := context.Background()
	const n = 1234
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := b.Create(ctx, fmt.Sprintf("releases/app/versions/1.0.%d", i), strings.NewReader("x")); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	keys, err := b.List(ctx, "releases/app/versions/")
	if err != nil || len(keys) != n {
		t.Fatalf("listed %d keys (%v), want %d", len(keys), err, n)
	}
}

// TestNoCredentials: with no AWS credentials anywhere, every operation
// fails saying so and where to set them — not blaming the endpoint — and
// nothing is sent.
func TestNoCredentials(t *testing.T) {
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	testserver.NoCredentials(t)
	b := newBackend(t, bucket, srv.Settings())
	ctx := context.Background()
	for name, op := range map[string]func() error{
		"exists": func() error { _, err := b.Exists(ctx, "blobs/x"); return err },
		"list":   func() error { _, err := b.List(ctx, "releases/"); return err },
		"open":   func() error { _, err := b.Open(ctx, "blobs/x"); return err },
		"create": func() error { return b.Create(ctx, "blobs/x", strings.NewReader("x")) },
	} {
		err := op()
		var e *s3store.Error
		var nc *s3store.NoCredentialsError
		if !errors.As(err, &e) || !errors.As(err, &nc) {
			t.Errorf("%s: want a no-credentials error, got %v", name, err)
			continue
		}
		for _, want := range []string{"no AWS credentials were found", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "`s3.profile`"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error does not say %q: %v", name, want, err)
			}
		}
		if strings.Contains(err.Error(), "access denied") {
			t.Errorf("%s: error blames the endpoint: %v", name, err)
		}
	}
	srv.Env(t)
	if ok, err := newBackend(t, bucket, srv.Settings()).Exists(ctx, "blobs/x"); ok || err != nil {
		t.Fatalf("something was written without credentials: exists=%v err=%v", ok, err)
	}
}

// TestEndpointSource: the endpoint checked before anything is sent is the
// one the AWS SDK will use: the setting, else AWS_ENDPOINT_URL_S3, else
// AWS_ENDPOINT_URL, and none of the two when
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true (the SDK then ignores them,
// so a bad one there must not refuse the store).
func TestEndpointSource(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "localhost:1")
	t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "")
	for _, tc := range []struct {
		setting, s3, ignore, name, value string
	}{
		{"http://a:1", "http://b:2", "", "setting", "http://a:1"},
		{"", "http://b:2", "", "AWS_ENDPOINT_URL_S3", "http://b:2"},
		{"", "", "", "AWS_ENDPOINT_URL", "localhost:1"},
		{"", "http://b:2", "true", "", ""},
		{"http://a:1", "", "TRUE", "setting", "http://a:1"},
	} {
		t.Setenv("AWS_ENDPOINT_URL_S3", tc.s3)
		t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", tc.ignore)
		if name, value := s3store.EndpointSource("setting", tc.setting); name != tc.name || value != tc.value {
			t.Errorf("%+v: %q %q, want %q %q", tc, name, value, tc.name, tc.value)
		}
	}
}

// TestDeleteManyPartialFailure: credentials that may delete under one
// prefix only get a result per key from one DeleteObjects request: the
// keys S3 refused name the permission the collector needs and are still
// there; the others are gone.
func TestDeleteManyPartialFailure(t *testing.T) {
	srv := testserver.StartS3(t)
	ctx := context.Background()
	bucket := srv.NewBucket(t)
	root, err := s3store.New(ctx, bucket, "", srv.Settings())
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"a/1", "b/1", "a/2", "b/2"}
	for _, k := range keys {
		if err := root.Create(ctx, k, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	access, secret := srv.AddUser(t, bucket, "deleter", map[string][]string{
		"": {"s3:GetObject", "s3:ListBucket", "s3:PutObject"}, "a/": {"s3:DeleteObject"},
	})
	t.Setenv("AWS_ACCESS_KEY_ID", access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	proxy := srv.Count(t)
	settings := srv.Settings()
	settings.Endpoint = proxy.Endpoint
	b, err := s3store.New(ctx, bucket, "", settings)
	if err != nil {
		t.Fatal(err)
	}
	errs := b.DeleteMany(ctx, keys)
	if n := len(proxy.Calls("", "")); n != 1 {
		t.Fatalf("%d requests, want one DeleteObjects", n)
	}
	for i, k := range keys {
		ok, err := root.Exists(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		refused := strings.HasPrefix(k, "b/")
		switch {
		case refused && (errs[i] == nil || !strings.Contains(errs[i].Error(), "s3:DeleteObject") || !strings.Contains(errs[i].Error(), k)):
			t.Errorf("%s: result %v, want access denied naming it and s3:DeleteObject", k, errs[i])
		case refused && !ok:
			t.Errorf("%s: refused, and gone", k)
		case !refused && (errs[i] != nil || ok):
			t.Errorf("%s: result %v, still there: %v", k, errs[i], ok)
		}
	}
	if err := store.Failures(keys, errs); err == nil || !strings.Contains(err.Error(), "2 of 4 deletes failed (b/1, b/2;") {
		t.Errorf("Failures: %v", err)
	}
}
