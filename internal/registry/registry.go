// Package registry talks to OCI distribution registries for package
// image: it resolves references, reads a base image's manifest and config
// (once per Client, which the provider makes once per operation), and
// pushes images and indexes by digest, blobs first, asking before each
// upload. Credentials come from Options or, as docker and crane find them,
// from Docker's config.json and its credential helpers; they never reach
// an error message or a log. Plain HTTP is used only for loopback
// addresses and the registries listed in Options.PlainHTTP.
//
// It is built on go-containerregistry (pkg/name, pkg/authn, pkg/v1/remote,
// pkg/v1/remote/transport), the reference Go client of the distribution
// API: crane, ko, kaniko and the Chainguard OCI provider use it, so the
// registries' quirks it meets (token auth and its scopes, Docker Hub's
// aliases, cross-repository mounts and their fallbacks, redirects to blob
// storage, retries of transient failures) are handled where thousands of
// users exercise them. It streams blobs both ways (no layer is held in
// memory) and verifies what it reads against its digest. It is served by
// the Go module proxy like every other dependency here. This package adds
// what the provider needs on top: the transport policy (HTTPS unless
// loopback or listed), credentials from the provider's configuration,
// errors that say what to do, verified streams of the image's own layers,
// and a count of what each push did.
//
// The package has no dependency on Terraform.
package registry

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
)

// DefaultResponseTimeout is long enough for a registry finishing the
// upload of a large blob (it hashes it before it answers).
const DefaultResponseTimeout = 5 * time.Minute

// Credential is a username and password for one registry host.
type Credential struct {
	Registry string // "ghcr.io", "127.0.0.1:5000"
	Username string
	Password string
}

// Options configure a Client.
type Options struct {
	// Credentials for registries; a registry not listed here is looked up
	// in Docker's config.json (DOCKER_CONFIG) and its credential helpers,
	// and reached anonymously when it is in neither.
	Credentials []Credential
	// PlainHTTP lists registries (host[:port]; a host alone allows every
	// port) reached over plain HTTP besides loopback addresses; every
	// other registry is HTTPS only.
	PlainHTTP []string
	// CAFile, when set, is a PEM bundle trusted besides the system's.
	CAFile string
	// Transport, when set, is the base transport (tests count requests);
	// with CAFile it must be an *http.Transport.
	Transport http.RoundTripper
	// ResponseTimeout bounds the wait for a registry's answer to one
	// request (its headers; a body then streams at its own pace): a
	// registry that stalls fails the operation instead of hanging plan or
	// apply. 0 means DefaultResponseTimeout.
	ResponseTimeout time.Duration
	// UserAgent names the provider and its version.
	UserAgent string
}

// Resolved is what a reference names: a manifest or an index, and for an
// index, its platform manifests.
type Resolved struct {
	// Repository is "registry/repository", as name.Repository spells it.
	Repository string
	image.Descriptor
	Manifest []byte
	// Platforms are an index's entries in its order (attestation entries,
	// platform unknown/unknown, included); nil for an image manifest.
	Platforms []image.IndexEntry
}

// Layers opens the bytes of an image's own layers (those not from its
// base), by their position in Image.Layers.
type Layers func(ctx context.Context, i int) (io.ReadCloser, error)

// PushStats counts what a push did with the image's blobs (its layers and
// config): uploaded, mounted from the base's repository, or found there.
// A base blob copied from another registry counts as uploaded.
type PushStats struct {
	Uploaded, Mounted, Existing int
}
