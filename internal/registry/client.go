package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
)

// maxConfig bounds an image config read into memory (configs are a few
// KiB; a registry serving more is not serving a config).
const maxConfig = 16 << 20

// Client is a registry client for one operation: it remembers what it
// read, so a manifest is read at most once, and reuses each repository's
// token across calls.
type Client struct {
	opts    Options
	policy  *policy
	secrets []string
	puller  *remote.Puller
	pusher  *remote.Pusher

	mu    sync.Mutex
	bases map[string]*image.Base // by reference and platform
}

// New returns a Client; it makes no request.
func New(o Options) (*Client, error) {
	p, err := newPolicy(o)
	if err != nil {
		return nil, err
	}
	kc, err := keychain(o.Credentials)
	if err != nil {
		return nil, err
	}
	ropts := []remote.Option{remote.WithTransport(p), remote.WithAuthFromKeychain(kc), remote.WithJobs(4)}
	if o.UserAgent != "" {
		ropts = append(ropts, remote.WithUserAgent(o.UserAgent))
	}
	pusher, err := remote.NewPusher(ropts...)
	if err != nil {
		return nil, err
	}
	puller, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, err
	}
	return &Client{opts: o, policy: p, secrets: secrets(o.Credentials), puller: puller, pusher: pusher, bases: map[string]*image.Base{}}, nil
}

// nameOpts are the options references to host are parsed with: Insecure
// for a registry listed as plain HTTP, so that go-containerregistry tries
// HTTP there at all (the policy allows it); loopback hosts need none.
func (c *Client) nameOpts(host string) []name.Option {
	if !isLoopback(hostname(host)) && c.policy.plainAllowed(host) {
		return []name.Option{name.Insecure}
	}
	return nil
}

func hostname(host string) string {
	if i := strings.LastIndex(host, ":"); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// parseRef parses ref ("registry/repository:tag" or "…@sha256:…").
func (c *Client) parseRef(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", ref, err)
	}
	if o := c.nameOpts(r.Context().RegistryStr()); o != nil {
		return name.ParseReference(ref, o...)
	}
	return r, nil
}

// parseRepo parses repository ("registry/repository").
func (c *Client) parseRepo(repository string) (name.Repository, error) {
	r, err := name.NewRepository(repository)
	if err != nil {
		return name.Repository{}, fmt.Errorf("repository %q: %w", repository, err)
	}
	if o := c.nameOpts(r.RegistryStr()); o != nil {
		return name.NewRepository(repository, o...)
	}
	return r, nil
}

func (c *Client) failRef(op Op, r name.Reference, err error) error {
	return c.fail(op, r.Context().RegistryStr(), r.Context().RepositoryStr(), r.Identifier(), err)
}

// Resolve reads what ref (a tag or a digest reference) names now.
func (c *Client) Resolve(ctx context.Context, ref string) (*Resolved, error) {
	r, err := c.parseRef(ref)
	if err != nil {
		return nil, err
	}
	d, err := c.puller.Get(ctx, r)
	if err != nil {
		return nil, c.failRef(OpResolve, r, err)
	}
	desc, err := descriptorOf(d.Descriptor)
	if err != nil {
		return nil, c.failRef(OpResolve, r, err)
	}
	// go-containerregistry hashed the body (and checked it against a
	// digest reference); the descriptor is of these bytes.
	out := &Resolved{Repository: r.Context().Name(), Descriptor: desc, Manifest: d.Manifest}
	if d.MediaType.IsIndex() {
		if out.Platforms, err = indexEntries(d.Manifest); err != nil {
			return nil, c.failRef(OpResolve, r, err)
		}
	}
	return out, nil
}

// indexEntries reads the manifests an index lists, with their platforms
// (the zero Platform where an entry names none); never nil.
func indexEntries(index []byte) ([]image.IndexEntry, error) {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(index))
	if err != nil {
		return nil, fmt.Errorf("parsing the index: %w", err)
	}
	entries := []image.IndexEntry{}
	for _, m := range idx.Manifests {
		d, err := descriptorOf(m)
		if err != nil {
			return nil, err
		}
		e := image.IndexEntry{Descriptor: d}
		if m.Platform != nil {
			e.Platform = image.Platform{OS: m.Platform.OS, Architecture: m.Platform.Architecture, Variant: m.Platform.Variant}
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// Platform reads the platform of an image manifest Resolve returned,
// from its config (one request, the config verified against its digest).
func (c *Client) Platform(ctx context.Context, res *Resolved) (image.Platform, error) {
	repo, err := c.parseRepo(res.Repository)
	if err != nil {
		return image.Platform{}, err
	}
	mref := repo.Digest(res.Digest.String())
	if res.Platforms != nil {
		return image.Platform{}, fmt.Errorf("%s is an index, not an image manifest", mref)
	}
	m, err := v1.ParseManifest(bytes.NewReader(res.Manifest))
	if err != nil {
		return image.Platform{}, c.failRef(OpReadManifest, mref, fmt.Errorf("parsing the manifest: %w", err))
	}
	cref := repo.Digest(m.Config.Digest.String())
	config, err := c.readBlob(ctx, cref, m.Config.Size, "config of "+mref.String())
	if err != nil {
		return image.Platform{}, c.failRef(OpReadBlob, cref, err)
	}
	p, err := image.ConfigPlatform(config)
	if err != nil {
		return image.Platform{}, c.failRef(OpReadBlob, cref, fmt.Errorf("the config: %w", err))
	}
	return p, nil
}

func descriptorOf(d v1.Descriptor) (image.Descriptor, error) {
	sum, err := digest.Parse(d.Digest.String())
	if err != nil {
		return image.Descriptor{}, fmt.Errorf("descriptor digest %s: only sha256 is supported: %w", d.Digest, err)
	}
	return image.Descriptor{MediaType: string(d.MediaType), Digest: sum, Size: d.Size}, nil
}

// Base reads the image ref names (a digest reference), picking platform p
// from an index, and returns its manifest and config, verified against
// their digests. Read once per Client.
func (c *Client) Base(ctx context.Context, ref string, p image.Platform) (*image.Base, error) {
	key := ref + " " + p.String()
	c.mu.Lock()
	b := c.bases[key]
	c.mu.Unlock()
	if b != nil {
		return b, nil
	}
	r, err := c.parseRef(ref)
	if err != nil {
		return nil, err
	}
	dr, ok := r.(name.Digest)
	if !ok {
		return nil, fmt.Errorf("base image %q is a tag, which may move: give a digest reference (repository@sha256:…); "+
			"data.immutable_image resolves a tag to one", ref)
	}
	d, err := c.puller.Get(ctx, dr)
	if err != nil {
		return nil, c.failRef(OpReadManifest, dr, err)
	}
	manifest, mediaType := d.Manifest, d.MediaType
	if err := verify(manifest, dr.DigestStr(), -1, "manifest "+dr.String()); err != nil {
		return nil, c.failRef(OpReadManifest, dr, err)
	}
	if mediaType.IsIndex() {
		entries, err := indexEntries(manifest)
		if err != nil {
			return nil, c.failRef(OpReadManifest, dr, err)
		}
		m, err := image.PickPlatform(entries, p)
		if err != nil {
			return nil, fmt.Errorf("base image %s: %w", ref, err)
		}
		dr = r.Context().Digest(m.Digest.String())
		d, err := c.puller.Get(ctx, dr)
		if err != nil {
			return nil, c.failRef(OpReadManifest, dr, err)
		}
		manifest, mediaType = d.Manifest, d.MediaType
		if err := verify(manifest, m.Digest.String(), m.Size, "manifest "+dr.String()); err != nil {
			return nil, c.failRef(OpReadManifest, dr, err)
		}
	}
	if !mediaType.IsImage() {
		return nil, fmt.Errorf("base image %s is a %s, not an image manifest or index", ref, mediaType)
	}
	m, err := v1.ParseManifest(bytes.NewReader(manifest))
	if err != nil {
		return nil, c.failRef(OpReadManifest, dr, fmt.Errorf("parsing the manifest: %w", err))
	}
	cref := r.Context().Digest(m.Config.Digest.String())
	config, err := c.readBlob(ctx, cref, m.Config.Size, "config of "+dr.String())
	if err != nil {
		return nil, c.failRef(OpReadBlob, cref, err)
	}
	if p != (image.Platform{}) {
		got, err := image.ConfigPlatform(config)
		if err != nil {
			return nil, c.failRef(OpReadBlob, cref, fmt.Errorf("parsing the config: %w", err))
		}
		if !got.Matches(p) { // as package image checks it: arm64's v8 may be left out
			return nil, fmt.Errorf("base image %s is for %s, not %s: give an image (or an index) for %s", ref, got, p, p)
		}
	}
	b = &image.Base{Ref: dr.String(), MediaType: string(mediaType), Manifest: manifest, Config: config}
	c.mu.Lock()
	c.bases[key] = b
	c.mu.Unlock()
	return b, nil
}

// readBlob reads the blob ref (at most maxConfig bytes), verified.
func (c *Client) readBlob(ctx context.Context, ref name.Digest, size int64, what string) ([]byte, error) {
	if size > maxConfig {
		return nil, fmt.Errorf("%s: %d bytes, more than a config can be (%d)", what, size, maxConfig)
	}
	l, err := c.puller.Layer(ctx, ref)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }() // read only
	b, err := io.ReadAll(io.LimitReader(rc, maxConfig+1))
	if err != nil {
		return nil, err
	}
	if err := verify(b, ref.DigestStr(), size, what); err != nil {
		return nil, err
	}
	return b, nil
}

// verify checks that b is size bytes (any size when size < 0) hashing to
// want.
func verify(b []byte, want string, size int64, what string) error {
	if size < 0 {
		size = int64(len(b))
	}
	if got := digest.Bytes(b).String(); got != want || int64(len(b)) != size {
		return &DigestError{What: what, Want: want, Got: got, WantSize: size, Size: int64(len(b)), FromRemote: true}
	}
	return nil
}

// TagTarget reads the digest tag points at, ok false when there is none.
func (c *Client) TagTarget(ctx context.Context, repository, tag string) (d digest.Sum, ok bool, err error) {
	repo, err := c.parseRepo(repository)
	if err != nil {
		return d, false, err
	}
	t := repo.Tag(tag)
	desc, err := c.puller.Head(ctx, t)
	var te *transport.Error
	switch {
	case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
		// A HEAD answer has no body, so no code: a 404 here is the tag
		// missing, or its repository (no tag there either).
		return d, false, nil
	case errors.As(err, &te):
		return d, false, c.failRef(OpResolve, t, err)
	case err != nil:
		// No Docker-Content-Digest (or no Content-Length) on the HEAD, as
		// some registries answer: read the manifest and hash it.
		g, gerr := c.puller.Get(ctx, t)
		if errors.As(gerr, &te) && te.StatusCode == http.StatusNotFound {
			return d, false, nil
		}
		if gerr != nil {
			return d, false, c.failRef(OpResolve, t, gerr)
		}
		desc = &g.Descriptor
	}
	sum, err := digest.Parse(desc.Digest.String())
	if err != nil {
		return d, false, c.failRef(OpResolve, t, err)
	}
	return sum, true, nil
}
