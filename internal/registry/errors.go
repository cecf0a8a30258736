package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Op is what a Client was doing when a registry failed it.
type Op string

const (
	OpResolve      Op = "resolve"
	OpReadManifest Op = "read manifest"
	OpReadBlob     Op = "read blob"
	OpPushBlob     Op = "push blob"
	OpPushManifest Op = "push manifest"
	OpTag          Op = "tag"
)

// Kind sorts registry failures by what the user does about them.
type Kind int

const (
	KindOther        Kind = iota
	KindUnauthorized      // 401: the credentials
	KindDenied            // 403: the permissions on the repository
	KindNotFound          // 404: the repository, tag or digest is missing
	KindUnsupported       // the registry refused a manifest's media type
	KindUnreachable       // no answer: address, network
	KindUntrusted         // the registry's TLS certificate is not trusted
	KindPlainHTTP         // refused here: plain HTTP to a registry not allowed it
	KindTagImmutable      // the registry refuses to move a tag
	KindRateLimited       // 429
	KindCorrupt           // the registry served bytes that do not match their digest
	KindStalled           // the registry took a request and did not answer in time
)

// Error is a registry operation that failed: where, doing what, what the
// registry answered, and (in its message) what to do. It never holds a
// credential.
type Error struct {
	Registry   string // host[:port]
	Repository string // the repository path, without the registry
	Op         Op
	Kind       Kind
	// Status is the HTTP status the registry answered, 0 for none.
	Status int
	// Code is the first error code the registry gave ("MANIFEST_UNKNOWN").
	Code string
	// MediaType is the manifest's, for pushes of manifests.
	MediaType string
	// Ref is the tag or digest concerned, when there is one.
	Ref string

	detail string // what the registry or the network said, redacted
	err    error
}

func (e *Error) Unwrap() error { return e.err }

func (e *Error) Error() string {
	repo := e.Registry + "/" + e.Repository
	var what string
	switch {
	case e.Ref != "" && (e.Op == OpPushBlob || e.Op == OpPushManifest):
		what = fmt.Sprintf("%s %s to %s", e.Op, e.Ref, repo)
	case e.Ref != "" && e.Op == OpReadBlob:
		what = fmt.Sprintf("%s %s from %s", e.Op, e.Ref, repo)
	case strings.HasPrefix(e.Ref, "sha256:"):
		what = fmt.Sprintf("%s %s@%s", e.Op, repo, e.Ref)
	case e.Ref != "":
		what = fmt.Sprintf("%s %s:%s", e.Op, repo, e.Ref)
	default:
		what = fmt.Sprintf("%s %s", e.Op, repo)
	}
	return fmt.Sprintf("%s: %s (%s)", what, e.advice(), e.detail)
}

// advice says what happened and what to do.
func (e *Error) advice() string {
	repo := e.Registry + "/" + e.Repository
	switch e.Kind {
	case KindUnauthorized:
		return fmt.Sprintf("the registry refused the credentials (401 Unauthorized): check the username and password for %s "+
			"(username and password in the provider's registry block for it, or `docker login %s`)", e.Registry, e.Registry)
	case KindDenied:
		if e.pushing() {
			return fmt.Sprintf("the credentials may not push to %s (403 Forbidden): grant them push permission on the repository", repo)
		}
		return fmt.Sprintf("the credentials may not pull from %s (403 Forbidden): grant them pull permission on the repository", repo)
	case KindNotFound:
		switch e.Code {
		case string(transport.NameUnknownErrorCode):
			return fmt.Sprintf("repository %s does not exist: create it (some registries, ECR among them, want a repository "+
				"created before the first push) or check its name", repo)
		case string(transport.BlobUnknownErrorCode), string(transport.ManifestBlobUnknownErrorCode):
			return "the registry lacks a blob or manifest this one refers to: push it first"
		}
		if e.Ref != "" {
			return fmt.Sprintf("%s has no manifest %s: the tag or digest is missing; check the name, or push it first", repo, e.Ref)
		}
		return fmt.Sprintf("not found at %s: the repository or tag is missing; check the name, or create the repository", repo)
	case KindUnsupported:
		return fmt.Sprintf("the registry refused a manifest of media type %s (%d %s): it may not support %s; "+
			"use a registry (or a version of it) that does", e.MediaType, e.Status, http.StatusText(e.Status), feature(e.MediaType))
	case KindUnreachable:
		return fmt.Sprintf("cannot reach the registry at %s: check the address, that it is up, and the network", e.Registry)
	case KindUntrusted:
		return fmt.Sprintf("the TLS certificate of %s is not trusted: give the CA that signed it (a PEM file) as ca_file in the "+
			"provider's registry block for it, or check that the address is the registry's", e.Registry)
	case KindPlainHTTP:
		return fmt.Sprintf("plain HTTP to %s is refused: registries other than loopback ones are reached over HTTPS only; "+
			"serve it over HTTPS, or set plain_http = true in the provider's registry block for it", e.Registry)
	case KindTagImmutable:
		return fmt.Sprintf("the registry refuses to move tag %s (its tags are immutable): the image itself was pushed by digest and is there; "+
			"a tag is only a pointer: use a new tag, or allow tags to move in the repository's settings", e.Ref)
	case KindRateLimited:
		return "the registry is limiting requests (429 Too Many Requests): wait and apply again, or log in (Docker Hub limits anonymous pulls)"
	case KindStalled:
		return fmt.Sprintf("the registry at %s took the request and did not answer within %s: it may be overloaded or stalled; "+
			"nothing was claimed in state, apply again once it answers", e.Registry, DefaultResponseTimeout)
	case KindCorrupt:
		return "the registry served bytes that do not match their digest: nothing of them was used; retry, and report it to the registry's operator if it persists"
	}
	if e.Status != 0 {
		return fmt.Sprintf("the registry answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return "the request failed"
}

func (e *Error) pushing() bool {
	return e.Op == OpPushBlob || e.Op == OpPushManifest || e.Op == OpTag
}

// feature names what a registry refusing mediaType lacks.
func feature(mediaType string) string {
	switch {
	case strings.Contains(mediaType, "oci.image.index"):
		return "OCI image indexes (multi-platform images)"
	case strings.Contains(mediaType, "oci.image.manifest"):
		return "OCI image manifests"
	case strings.Contains(mediaType, "manifest.list"):
		return "Docker manifest lists (multi-platform images)"
	}
	return "this manifest type"
}

// DigestError is content whose bytes do not match the digest or size it
// was named by.
type DigestError struct {
	What       string // "layer 2", "config of …"
	Want       string
	Got        string
	WantSize   int64
	Size       int64
	FromRemote bool
}

func (e *DigestError) Error() string {
	if e.Size != e.WantSize {
		return fmt.Sprintf("%s: %d bytes, its descriptor says %d", e.What, e.Size, e.WantSize)
	}
	return fmt.Sprintf("%s: its bytes hash to %s, its descriptor says %s", e.What, e.Got, e.Want)
}

// SourceError is a failure to read the image's own bytes (Push's open, or
// what it returned): the caller's, not the registry's.
type SourceError struct {
	What  string // "layer 2 (sha256:…)"
	Layer int    // its index in the image's layers, the base's first
	Err   error
}

func (e *SourceError) Error() string { return e.What + ": " + e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

// fail makes err, which op on registry/repository met, an *Error; errors
// of the caller's (a context cancelled, a local layer that does not match
// its descriptor) pass through unchanged.
func (c *Client) fail(op Op, registry, repository, ref string, err error) error {
	return classify(op, registry, repository, ref, "", err, c.secrets)
}

func classify(op Op, registry, repository, ref, mediaType string, err error, secrets []string) error {
	if err == nil {
		return nil
	}
	// The caller's own failures, and those classified where they happened
	// (a base registry's, met while copying from it), come out as they
	// are, without the HTTP request they interrupted around them.
	var (
		de    *DigestError
		se    *SourceError
		prior *Error
	)
	switch {
	case errors.As(err, &de) && !de.FromRemote:
		return de
	case errors.As(err, &se):
		return se
	case errors.As(err, &prior):
		return prior
	case stalled(err):
		// Before the context's: net/http's header timeout is also a
		// context.DeadlineExceeded, though no caller's deadline passed.
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	}
	e := &Error{Registry: registry, Repository: repository, Op: op, Ref: ref, MediaType: mediaType, err: err, detail: err.Error()}
	var te *transport.Error
	switch {
	case untrusted(err):
		// First: a loopback registry is tried over HTTPS and HTTP, and a
		// TLS one answers the HTTP try 400, which would hide this.
		e.Kind = KindUntrusted
	case errors.As(err, &te):
		e.Status = te.StatusCode
		var said []string
		for _, d := range te.Errors {
			if e.Code == "" {
				e.Code = string(d.Code)
			}
			said = append(said, d.String())
		}
		if len(said) == 0 {
			said = append(said, fmt.Sprintf("%d %s", te.StatusCode, http.StatusText(te.StatusCode)))
		}
		e.detail = "the registry said: " + strings.Join(said, "; ")
		e.Kind = kindOf(op, te)
	case stalled(err):
		// First: a loopback registry's failed HTTPS try comes before it
		// in the text.
		e.Kind = KindStalled
	case errors.As(err, new(*PlainHTTPError)) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		// Refused here, or (net/http's words, its only sign) a registry
		// that speaks plain HTTP where HTTPS was asked.
		e.Kind = KindPlainHTTP
	case errors.As(err, &de):
		e.Kind = KindCorrupt
	case unreachable(err):
		e.Kind = KindUnreachable
	}
	e.detail = redact(e.detail, secrets)
	return e
}

func kindOf(op Op, te *transport.Error) Kind {
	codes := map[transport.ErrorCode]bool{}
	var msgs []string
	for _, d := range te.Errors {
		codes[d.Code] = true
		msgs = append(msgs, d.Message)
	}
	msg := strings.ToLower(strings.Join(msgs, " "))
	switch {
	case op == OpTag && (codes[transport.TagInvalidErrorCode] || te.StatusCode == http.StatusConflict ||
		te.StatusCode == http.StatusPreconditionFailed || strings.Contains(msg, "immutable") ||
		strings.Contains(msg, "imagetagalreadyexists") || strings.Contains(msg, "already exists")):
		// ECR: 400 TAG_INVALID "… cannot be overwritten because the
		// repository is immutable"; Harbor: 412 "… configured as
		// immutable"; others 409.
		return KindTagImmutable
	case te.StatusCode == http.StatusUnauthorized || codes[transport.UnauthorizedErrorCode]:
		return KindUnauthorized
	case te.StatusCode == http.StatusForbidden || codes[transport.DeniedErrorCode]:
		return KindDenied
	case te.StatusCode == http.StatusTooManyRequests || codes[transport.TooManyRequestsErrorCode]:
		return KindRateLimited
	case (op == OpPushManifest || op == OpTag) && (te.StatusCode == http.StatusUnsupportedMediaType ||
		codes[transport.ManifestInvalidErrorCode] || codes[transport.UnsupportedErrorCode]):
		return KindUnsupported
	case te.StatusCode == http.StatusNotFound || codes[transport.NameUnknownErrorCode] || codes[transport.ManifestUnknownErrorCode] ||
		codes[transport.BlobUnknownErrorCode] || codes[transport.ManifestBlobUnknownErrorCode]:
		return KindNotFound
	}
	return KindOther
}

// stalled: the registry took a request and sent no answer within
// ResponseTimeout (net/http's words for ResponseHeaderTimeout).
func stalled(err error) bool {
	return strings.Contains(err.Error(), "timeout awaiting response headers")
}

// untrusted: the TLS handshake failed on the server's certificate.
func untrusted(err error) bool {
	var (
		certErr *tls.CertificateVerificationError
		uaErr   x509.UnknownAuthorityError
		hostErr x509.HostnameError
		invErr  x509.CertificateInvalidError
	)
	return errors.As(err, &certErr) || errors.As(err, &uaErr) || errors.As(err, &hostErr) || errors.As(err, &invErr)
}

// unreachable: no HTTP answer at all (refused, unresolvable, timed out,
// no TLS where TLS was expected).
func unreachable(err error) bool {
	var (
		dnsErr *net.DNSError
		opErr  *net.OpError
		recErr tls.RecordHeaderError
	)
	return errors.As(err, &dnsErr) || errors.As(err, &opErr) || errors.As(err, &recErr) || errors.Is(err, syscall.ECONNREFUSED)
}

// redact replaces every secret in s.
func redact(s string, secrets []string) string {
	for _, p := range secrets {
		s = strings.ReplaceAll(s, p, "<redacted>")
	}
	return s
}

// IsNotFound reports whether err is a registry's answer that the
// repository, tag or digest is not there.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == KindNotFound
}
