package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// answer is the error go-containerregistry makes of a registry's answer
// (status and JSON error body), parsed by its own transport.CheckError.
func answer(t *testing.T, status int, body string) error {
	t.Helper()
	u, err := url.Parse("https://registry.example/v2/team/app/manifests/v1")
	if err != nil {
		t.Fatal(err)
	}
	resp := &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader(body)), Request: &http.Request{Method: http.MethodPut, URL: u}}
	err = transport.CheckError(resp, http.StatusOK, http.StatusCreated)
	if err == nil {
		t.Fatalf("%d: no error", status)
	}
	return err
}

// TestErrorMessages: each kind of refusal a registry answers is named,
// with the registry, repository and operation, and what to do; a
// password the registry echoes is not repeated.
func TestErrorMessages(t *testing.T) {
	const secret = "hunter2-registry-password"
	for _, tc := range []struct {
		name    string
		op      Op
		ref, mt string
		status  int
		body    string
		kind    Kind
		want    []string
	}{
		{"401", OpReadManifest, "v1", "", 401, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`,
			KindUnauthorized, []string{"read manifest registry.example/team/app:v1", "docker login registry.example", "UNAUTHORIZED: authentication required"}},
		{"403 push", OpPushBlob, "sha256:" + strings.Repeat("a", 64), "", 403, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`,
			KindDenied, []string{"push blob sha256:aaaa", "to registry.example/team/app", "may not push to registry.example/team/app", "push permission"}},
		{"403 pull", OpReadManifest, "v1", "", 403, `{"errors":[{"code":"DENIED","message":"denied"}]}`,
			KindDenied, []string{"may not pull from registry.example/team/app", "pull permission"}},
		{"404 repository", OpPushManifest, "sha256:" + strings.Repeat("b", 64), "", 404, `{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}`,
			KindNotFound, []string{"repository registry.example/team/app does not exist: create it", "ECR"}},
		{"404 tag", OpResolve, "v9", "", 404, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`,
			KindNotFound, []string{"registry.example/team/app has no manifest v9", "check the name"}},
		{"400 index refused", OpPushManifest, "sha256:" + strings.Repeat("c", 64), "application/vnd.oci.image.index.v1+json", 400,
			`{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}`,
			KindUnsupported, []string{"may not support OCI image indexes (multi-platform images)", "application/vnd.oci.image.index.v1+json"}},
		{"415 manifest refused", OpPushManifest, "sha256:" + strings.Repeat("c", 64), "application/vnd.oci.image.manifest.v1+json", 415, ``,
			KindUnsupported, []string{"may not support OCI image manifests", "415 Unsupported Media Type"}},
		{"ECR immutable tag", OpTag, "v1", "application/vnd.oci.image.manifest.v1+json", 400,
			`{"errors":[{"code":"TAG_INVALID","message":"The image tag 'v1' already exists in the 'team/app' repository and cannot be overwritten because the repository is immutable."}]}`,
			KindTagImmutable, []string{"tag registry.example/team/app:v1", "tags are immutable", "pushed by digest and is there", "a tag is only a pointer"}},
		{"Harbor immutable tag", OpTag, "v1", "application/vnd.oci.image.manifest.v1+json", 412,
			`{"errors":[{"code":"PRECONDITION","message":"Failed to process request due to 'team/app:v1' configured as immutable."}]}`,
			KindTagImmutable, []string{"tags are immutable"}},
		{"429", OpReadManifest, "v1", "", 429, `{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}`,
			KindRateLimited, []string{"limiting requests", "log in"}},
		{"500 echoing a password", OpReadManifest, "v1", "", 500, `{"errors":[{"code":"UNKNOWN","message":"backend said: bad password ` + secret + `"}]}`,
			KindOther, []string{"answered 500 Internal Server Error", "<redacted>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := classify(tc.op, "registry.example", "team/app", tc.ref, tc.mt, answer(t, tc.status, tc.body), []string{secret})
			var e *Error
			if !errors.As(err, &e) || e.Kind != tc.kind || e.Status != tc.status {
				t.Fatalf("%#v, want kind %d status %d", err, tc.kind, tc.status)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, secret) {
				t.Errorf("message holds the password: %q", msg)
			}
		})
	}
	// What is the caller's own is not the registry's: passed through.
	for _, err := range []error{context.Canceled, &DigestError{What: "layer 1"}} {
		if got := classify(OpPushBlob, "r", "p", "", "", err, nil); got != err {
			t.Errorf("classify(%v) = %v, want it unchanged", err, got)
		}
	}
}

// TestManifestRefused: a manifest type the CNCF registry does not take
// (Docker schema 1, which distribution v3 dropped) is refused as
// unsupported, naming its media type.
func TestManifestRefused(t *testing.T) {
	noDockerConfig(t)
	srv := testserver.StartRegistry(t, testserver.RegistryOptions{})
	c := newClient(t, Options{})
	img := buildImage(t, nil, linuxAMD64, "a")
	if _, err := c.Push(context.Background(), srv.Host+"/app", img.Image, nil, img.open); err != nil {
		t.Fatal(err)
	}
	const schema1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	d := image.Descriptor{MediaType: schema1, Digest: img.Digest, Size: int64(len(img.Manifest))}
	err := c.Tag(context.Background(), srv.Host+"/app", "v1", d, img.Manifest)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindUnsupported || e.Code != "MANIFEST_INVALID" || !strings.Contains(err.Error(), schema1) {
		t.Errorf("%v, want the schema 1 manifest refused as unsupported", err)
	}
}
