package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// TestOpenBlob: a blob pushed is read back byte for byte; one the
// registry lacks is KindNotFound; one the registry serves altered (its
// storage edited behind it) or of another size than its descriptor says
// fails as KindCorrupt before the reader's EOF.
func TestOpenBlob(t *testing.T) {
	noDockerConfig(t)
	srv := testserver.StartRegistry(t, testserver.RegistryOptions{})
	img := buildImage(t, nil, linuxAMD64, "a", "b")
	c := newClient(t, Options{})
	ctx := context.Background()
	repo := srv.Host + "/team/base"
	if _, err := c.Push(ctx, repo, img.Image, nil, img.open); err != nil {
		t.Fatal(err)
	}
	read := func(d image.Descriptor) ([]byte, error) {
		rc, err := c.OpenBlob(ctx, repo, d)
		if err != nil {
			return nil, err
		}
		defer func() { _ = rc.Close() }()
		return io.ReadAll(rc)
	}
	for i, d := range img.Layers {
		if b, err := read(d); err != nil || !bytes.Equal(b, img.own[i]) {
			t.Errorf("layer %d: %d bytes, %v", i, len(b), err)
		}
	}
	other := buildImage(t, nil, linuxAMD64, "never pushed")
	if _, err := read(other.Layers[0]); !IsNotFound(err) {
		t.Errorf("a blob not there: %v", err)
	}
	short := img.Layers[0]
	short.Size--
	if _, err := read(short); !isCorrupt(err) {
		t.Errorf("a blob longer than its descriptor: %v", err)
	}
	// The registry's own storage altered: it serves other bytes.
	d := img.Layers[1]
	data := filepath.Join(srv.Root, "docker", "registry", "v2", "blobs", "sha256", d.Digest.Hex()[:2], d.Digest.Hex(), "data")
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := read(d); !isCorrupt(err) {
		t.Errorf("a blob served altered: %v", err)
	}
}

func isCorrupt(err error) bool {
	var e *Error
	var de *DigestError
	return errors.As(err, &e) && e.Kind == KindCorrupt && errors.As(err, &de) && de.FromRemote
}
