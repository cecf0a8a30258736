package registry

import (
	"context"
	"io"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
)

// OpenBlob streams the blob d of repository ("registry/repository"): a
// base image's layer, which an export of an image built on it (package
// export) writes out but the store does not hold. The reader checks every
// byte against d as it streams and fails (a *Error of KindCorrupt naming
// the blob) at EOF, or past d's size, unless they are d's bytes. Nothing
// is read into memory.
func (c *Client) OpenBlob(ctx context.Context, repository string, d image.Descriptor) (io.ReadCloser, error) {
	repo, err := c.parseRepo(repository)
	if err != nil {
		return nil, err
	}
	ref := repo.Digest(d.Digest.String())
	fail := func(err error) error { return c.failRef(OpReadBlob, ref, err) }
	l, err := c.puller.Layer(ctx, ref)
	if err != nil {
		return nil, fail(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fail(err)
	}
	return verifying(rc, d, "blob "+d.Digest.String(), true, func(v *digest.Verifier, err error) error {
		if v.N() == d.Size {
			// go-containerregistry checks the digest too, and says so
			// first, in an error of an internal package.
			if m := v.Check(); m != nil {
				return m
			}
		}
		return fail(err) // the network failing mid-stream
	}, fail), nil
}
