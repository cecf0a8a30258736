package registry

import (
	"context"
	"crypto/sha256"
	"errors"
	"hash"
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
	return &blobReader{rc: rc, want: d, h: sha256.New(), fail: fail}, nil
}

// blobReader verifies a blob as it is read.
type blobReader struct {
	rc   io.ReadCloser
	want image.Descriptor
	h    hash.Hash
	n    int64
	fail func(error) error
	err  error
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	b.h.Write(p[:n])
	b.n += int64(n)
	switch {
	case b.n > b.want.Size:
		b.err = b.mismatch()
		return 0, b.err
	case errors.Is(err, io.EOF):
		if b.sum() != b.want.Digest || b.n != b.want.Size {
			b.err = b.mismatch()
			return 0, b.err
		}
		b.err = io.EOF
	case err != nil && b.n == b.want.Size && b.sum() != b.want.Digest:
		// go-containerregistry checks the digest too, and says so
		// first, in an error of an internal package.
		b.err = b.mismatch()
		return 0, b.err
	case err != nil:
		b.err = b.fail(err) // the network failing mid-stream
		return n, b.err
	}
	return n, err
}

func (b *blobReader) sum() digest.Sum {
	var got digest.Sum
	b.h.Sum(got[:0])
	return got
}

func (b *blobReader) mismatch() error {
	got := b.sum()
	return b.fail(&DigestError{What: "blob " + b.want.Digest.String(), Want: b.want.Digest.String(), Got: got.String(),
		WantSize: b.want.Size, Size: b.n, FromRemote: true})
}

func (b *blobReader) Close() error { return b.rc.Close() }
