package gcsstore_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
)

// tokenEndpoint is an OAuth token endpoint answering its requests in
// turn with statuses (0: the connection dropped, no answer), then 200
// with a token "tok" after the last.
func tokenEndpoint(t *testing.T, statuses ...int) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		w.Header().Set("Content-Type", "application/json")
		if i < len(statuses) && statuses[i] == 0 {
			panic(http.ErrAbortHandler) // the connection dropped
		}
		if i < len(statuses) {
			w.WriteHeader(statuses[i])
			_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"refused"}`)) // the client may have gone
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"tok","token_type":"Bearer","expires_in":3600}`)) // as above
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/token", &n
}

// serviceAccount writes a well-formed service-account key whose token
// endpoint is tokenURI, with extra fields, and points
// GOOGLE_APPLICATION_CREDENTIALS at it (and STORAGE_EMULATOR_HOST at
// nothing: the credentials are used).
func serviceAccount(t *testing.T, tokenURI string, extra map[string]string) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	f := map[string]string{
		"type": "service_account", "project_id": "p", "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "ci@p.iam.gserviceaccount.com", "client_id": "1", "token_uri": tokenURI,
	}
	for k, v := range extra {
		f[k] = v
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(gcsstore.EnvEmulator, "")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", path)
	t.Setenv(gcsstore.EnvQuotaProject, "")
	t.Setenv(gcsstore.EnvUniverse, "")
	return path
}

// authenticated is a backend with the credentials GOOGLE_APPLICATION_
// CREDENTIALS names, sending its requests to a recorder.
func authenticated(t *testing.T) (*gcsstore.Backend, *recorder) {
	t.Helper()
	emu := os.Getenv(gcsstore.EnvEmulator)
	r := startRecorder(t)
	t.Setenv(gcsstore.EnvEmulator, emu)
	b := newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 1})
	gcsstore.SetHost(b, r.url)
	return b, r
}

// TestTokenRetried: a token endpoint answering 503 or 429, or dropping
// the connection, is asked again (with backoff), and the request goes
// with the token it then gives; one answering 400 (invalid_grant: a
// refusal) is asked once.
func TestTokenRetried(t *testing.T) {
	for _, first := range [][]int{{http.StatusServiceUnavailable}, {0, http.StatusTooManyRequests}} {
		uri, n := tokenEndpoint(t, first...)
		serviceAccount(t, uri, nil)
		b, r := authenticated(t)
		if _, err := b.Exists(context.Background(), "blobs/x"); err != nil {
			t.Fatalf("a token endpoint answering %v first: %v", first, err)
		}
		if int(n.Load()) != len(first)+1 || len(r.headers) != 1 || r.headers[0].Get("Authorization") != "Bearer tok" {
			t.Fatalf("%v first: %d token requests, storage requests' headers %v; want %d, and one request with the token",
				first, n.Load(), r.headers, len(first)+1)
		}
	}

	uri, n := tokenEndpoint(t, http.StatusBadRequest, http.StatusBadRequest, http.StatusBadRequest)
	path := serviceAccount(t, uri, nil)
	b, r := authenticated(t)
	_, err := b.Exists(context.Background(), "blobs/x")
	var te *gcsstore.TokenError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), path) {
		t.Fatalf("want a token error naming the key file, got %v", err)
	}
	if n.Load() != 1 || len(r.uris) != 0 {
		t.Fatalf("%d token requests, %d storage requests; want a refusal asked once, nothing sent", n.Load(), len(r.uris))
	}
}

// TestTokenTimeout: a token endpoint that accepts and never answers is
// given up on after the token timeout (each of the tries), and the
// operation fails saying it cannot be reached, instead of hanging.
func TestTokenTimeout(t *testing.T) {
	gcsstore.SetTokenTimeout(t, 200*time.Millisecond)
	hung := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hung:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hung) })
	serviceAccount(t, srv.URL+"/token", nil)
	b, r := authenticated(t)
	start := time.Now()
	_, err := b.Exists(context.Background(), "blobs/x")
	var te *gcsstore.TokenError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "cannot be reached") {
		t.Fatalf("want a token endpoint that cannot be reached, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v", d)
	}
	if len(r.uris) != 0 {
		t.Errorf("%d storage requests without a token", len(r.uris))
	}
}

// TestQuotaProject: a quota project named by the credentials
// (quota_project_id) or GOOGLE_CLOUD_QUOTA_PROJECT (first) goes with
// every request (X-Goog-User-Project); none, no header.
func TestQuotaProject(t *testing.T) {
	for _, c := range []struct{ file, env, want string }{
		{"from-file", "", "from-file"}, {"from-file", "from-env", "from-env"}, {"", "", ""},
	} {
		uri, _ := tokenEndpoint(t)
		extra := map[string]string{}
		if c.file != "" {
			extra["quota_project_id"] = c.file
		}
		serviceAccount(t, uri, extra)
		t.Setenv(gcsstore.EnvQuotaProject, c.env)
		b, r := authenticated(t)
		if _, err := b.Exists(context.Background(), "blobs/x"); err != nil {
			t.Fatal(err)
		}
		if len(r.headers) != 1 || r.headers[0].Get("X-Goog-User-Project") != c.want {
			t.Errorf("file %q, env %q: X-Goog-User-Project %q, want %q", c.file, c.env, r.headers[0].Get("X-Goog-User-Project"), c.want)
		}
	}
}

// TestOtherUniverse: credentials of a universe other than googleapis.com
// (universe_domain), or GOOGLE_CLOUD_UNIVERSE_DOMAIN naming one, are
// refused, saying only the default universe is supported, and nothing
// is sent: not to storage.googleapis.com, not a token request.
func TestOtherUniverse(t *testing.T) {
	uri, n := tokenEndpoint(t)
	path := serviceAccount(t, uri, map[string]string{"universe_domain": "example.com"})
	b, r := authenticated(t)
	for name, op := range ops(b) {
		err := op()
		var ue *gcsstore.UniverseError
		if !errors.As(err, &ue) {
			t.Errorf("%s: want a *UniverseError, got %v", name, err)
			continue
		}
		// The key file names the universe, not GOOGLE_CLOUD_UNIVERSE_DOMAIN
		// (unset): the error says so.
		for _, want := range []string{path, "universe_domain", `"example.com"`, "only Google Cloud's default universe (googleapis.com)", "enterprise certificate proxy"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: the error does not say %q: %v", name, want, err)
			}
		}
		if strings.Contains(err.Error(), gcsstore.EnvUniverse) {
			t.Errorf("%s: the error blames %s, which is unset: %v", name, gcsstore.EnvUniverse, err)
		}
	}
	if n.Load() != 0 || len(r.uris) != 0 {
		t.Errorf("%d token requests, %d storage requests; want none", n.Load(), len(r.uris))
	}

	serviceAccount(t, uri, nil)
	t.Setenv(gcsstore.EnvUniverse, "example.com")
	_, err := gcsstore.New("bucket", "", gcsstore.Settings{})
	var ue *gcsstore.UniverseError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), gcsstore.EnvUniverse+` names the universe domain "example.com"`) {
		t.Errorf("want %s refused at New, got %v", gcsstore.EnvUniverse, err)
	}
}
