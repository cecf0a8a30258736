// Package registry talks to OCI distribution registries for package
// image: it resolves references, reads a base image's manifest and config
// (once per Client, which the provider makes once per operation), and
// pushes images and indexes by digest, blobs first, asking before each
// upload. Credentials come from Options or, as docker and crane find them,
// from Docker's config.json and its credential helpers; they never reach
// an error message or a log. Plain HTTP is used only for loopback
// addresses and the registries listed in Options.PlainHTTP.
//
// Built on go-containerregistry (pkg/v1/remote, pkg/authn, pkg/name).
// The package has no dependency on Terraform.
package registry

import (
	"context"
	"io"
	"net/http"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
)

// Credential is a username and password for one registry host.
type Credential struct {
	Registry string // "ghcr.io", "127.0.0.1:5000"
	Username string
	Password string
}

// Options configure a Client.
type Options struct {
	// Credentials for registries; a registry not listed here is looked up
	// in Docker's config.json (DOCKER_CONFIG) and its credential helpers.
	Credentials []Credential
	// PlainHTTP lists registries (host[:port]) reached over plain HTTP
	// besides loopback addresses; every other registry is HTTPS only.
	PlainHTTP []string
	// CAFile, when set, is a PEM bundle trusted besides the system's.
	CAFile string
	// Transport, when set, is the base transport (tests count requests).
	Transport http.RoundTripper
	// UserAgent names the provider and its version.
	UserAgent string
}

// Client is a registry client for one operation: it remembers what it
// read, so a manifest is read at most once.
type Client struct {
	opts Options
}

// New returns a Client; it makes no request.
func New(o Options) (*Client, error) {
	panic("registry.New: not implemented yet")
}

// Resolved is what a reference names: a manifest or an index, and for an
// index, its platform manifests.
type Resolved struct {
	// Repository is "registry/repository", as name.Repository spells it.
	Repository string
	image.Descriptor
	Manifest  []byte
	Platforms []image.IndexEntry
}

// Resolve reads what ref (a tag or a digest reference) names now.
func (c *Client) Resolve(ctx context.Context, ref string) (*Resolved, error) {
	panic("registry.Resolve: not implemented yet")
}

// Base reads the image ref names (a digest reference), picking platform p
// from an index, and returns its manifest and config, verified against
// their digests. Read once per Client.
func (c *Client) Base(ctx context.Context, ref string, p image.Platform) (*image.Base, error) {
	panic("registry.Base: not implemented yet")
}

// Layers opens the bytes of an image's own layers (those not from its
// base), by their position in Image.Layers.
type Layers func(ctx context.Context, i int) (io.ReadCloser, error)

// PushStats counts what a push did.
type PushStats struct {
	Uploaded, Mounted, Existing int
}

// Push pushes img to repository ("registry/repository") by digest: each
// blob the registry lacks (base blobs mounted from base's repository on
// the same registry, else copied from it), then the config, then the
// manifest by its digest. open gives the image's own layers, which are
// verified against their descriptors as they stream.
func (c *Client) Push(ctx context.Context, repository string, img *image.Image, base *image.Base, open Layers) (PushStats, error) {
	panic("registry.Push: not implemented yet")
}

// PushIndex pushes idx to repository by digest; its manifests must be
// there already.
func (c *Client) PushIndex(ctx context.Context, repository string, idx *image.Index) error {
	panic("registry.PushIndex: not implemented yet")
}

// Tag points tag of repository at the manifest d (already pushed there).
func (c *Client) Tag(ctx context.Context, repository, tag string, d image.Descriptor, manifest []byte) error {
	panic("registry.Tag: not implemented yet")
}

// TagTarget reads the digest tag points at, ok false when there is none.
func (c *Client) TagTarget(ctx context.Context, repository, tag string) (d digest.Sum, ok bool, err error) {
	panic("registry.TagTarget: not implemented yet")
}
