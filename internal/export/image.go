package export

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
)

// An image (its manifest digest) is exported as an OCI image layout
// directory, or as one tar that `docker load`, `podman load` and skopeo
// read. Both hold the same files, named by their digests, so both are a
// listing known from the manifest alone:
//
//	oci-layout             {"imageLayoutVersion":"1.0.0"}
//	index.json             an index naming the manifest
//	blobs/sha256/<hex>     the manifest, the config and every layer
//	manifest.json          docker-archive only: [{Config, RepoTags, Layers}]
//
// The docker-archive is this listing as an uncompressed tar, in the
// listing's order, with fixed headers: `docker save` writes the same
// layout since Docker 25, and docker and podman load it (gzip layers
// included), so does crane's tarball reader.
const (
	OCILayout     Format = "oci-layout"
	DockerArchive Format = "docker-archive"
)

// IsTree reports whether an export in f is a directory, whose listing
// the plan knows: Directory and OCILayout.
func (f Format) IsTree() bool { return f == Directory || f == OCILayout }

// IsImage reports whether f exports an image.
func (f Format) IsImage() bool { return f == OCILayout || f == DockerArchive }

// The oci-layout file, and where blobs are in a layout.
const (
	layoutVersion = `{"imageLayoutVersion":"1.0.0"}`
	blobDir       = "blobs/sha256/"
)

// BlobOpener reads a blob an image's manifest names (its config or a
// layer). The reader need not verify: Image checks every byte against
// the descriptor as it streams, and fails at EOF on a mismatch.
type BlobOpener func(ctx context.Context, d image.Descriptor) (io.ReadCloser, error)

// Image is an image to export: its manifest, the blobs it names, and
// where their bytes come from.
type Image struct {
	Manifest image.Descriptor
	Config   image.Descriptor
	// Layers in the manifest's order, the base's first.
	Layers []image.Descriptor
	// Base is the reference of the image it is built on ("" for one from
	// scratch), for messages.
	Base     string
	manifest []byte
	open     BlobOpener
}

// ManifestError is a manifest an image export cannot read.
type ManifestError struct {
	Digest digest.Sum
	Reason string
}

func (e *ManifestError) Error() string {
	return fmt.Sprintf("the manifest %s %s", e.Digest, e.Reason)
}

type descriptorJSON struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// ParseImage reads the manifest whose bytes (already checked to hash to
// sum) are manifest. open gives its blobs' bytes; nil when only the
// listing is needed.
func ParseImage(sum digest.Sum, manifest []byte, open BlobOpener) (*Image, error) {
	var m struct {
		SchemaVersion int              `json:"schemaVersion"`
		MediaType     string           `json:"mediaType"`
		Config        descriptorJSON   `json:"config"`
		Layers        []descriptorJSON `json:"layers"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, &ManifestError{Digest: sum, Reason: "is not JSON: " + err.Error()}
	}
	switch {
	case m.SchemaVersion != 2:
		return nil, &ManifestError{Digest: sum, Reason: fmt.Sprintf("has schemaVersion %d, not 2", m.SchemaVersion)}
	case m.MediaType == "":
		m.MediaType = image.MediaTypeManifest // optional in OCI's, required in Docker's
	case m.MediaType != image.MediaTypeManifest && m.MediaType != image.MediaTypeDockerManifest:
		return nil, &ManifestError{Digest: sum, Reason: fmt.Sprintf("is a %s, not an image manifest", m.MediaType)}
	}
	im := &Image{
		Manifest: image.Descriptor{MediaType: m.MediaType, Digest: sum, Size: int64(len(manifest))},
		manifest: manifest,
		open:     open,
	}
	var err error
	if im.Config, err = descriptor(sum, "config", m.Config); err != nil {
		return nil, err
	}
	for i, l := range m.Layers {
		d, err := descriptor(sum, fmt.Sprintf("layer %d", i), l)
		if err != nil {
			return nil, err
		}
		im.Layers = append(im.Layers, d)
	}
	return im, nil
}

func descriptor(sum digest.Sum, what string, d descriptorJSON) (image.Descriptor, error) {
	s, err := digest.Parse(d.Digest)
	if err != nil {
		return image.Descriptor{}, &ManifestError{Digest: sum, Reason: fmt.Sprintf("names its %s by %q, not a sha256 digest", what, d.Digest)}
	}
	if d.Size < 0 || d.MediaType == "" {
		return image.Descriptor{}, &ManifestError{Digest: sum, Reason: fmt.Sprintf("gives its %s no media type or a negative size", what)}
	}
	return image.Descriptor{MediaType: d.MediaType, Digest: s, Size: d.Size}, nil
}

// blobPath is where a blob is in the layout.
func blobPath(s digest.Sum) string { return blobDir + s.Hex() }

// files returns the small files of the export in format, by path.
func (im *Image) files(format Format) map[string][]byte {
	type index struct {
		SchemaVersion int              `json:"schemaVersion"`
		MediaType     string           `json:"mediaType"`
		Manifests     []descriptorJSON `json:"manifests"`
	}
	idx, _ := json.Marshal(index{ // plain strings and numbers always encode
		SchemaVersion: 2,
		MediaType:     image.MediaTypeIndex,
		Manifests:     []descriptorJSON{{MediaType: im.Manifest.MediaType, Digest: im.Manifest.Digest.String(), Size: im.Manifest.Size}},
	})
	f := map[string][]byte{
		"oci-layout": []byte(layoutVersion),
		"index.json": idx,
	}
	if format == DockerArchive {
		type entry struct {
			Config   string
			RepoTags []string
			Layers   []string
		}
		e := entry{Config: blobPath(im.Config.Digest), Layers: []string{}}
		for _, l := range im.Layers {
			e.Layers = append(e.Layers, blobPath(l.Digest))
		}
		f["manifest.json"], _ = json.Marshal([]entry{e})
	}
	return f
}

// blobs returns the blobs of the image by path, each once.
func (im *Image) blobs() map[string]image.Descriptor {
	b := map[string]image.Descriptor{blobPath(im.Manifest.Digest): im.Manifest, blobPath(im.Config.Digest): im.Config}
	for _, l := range im.Layers {
		b[blobPath(l.Digest)] = l
	}
	return b
}

// Listing is the tree an export of the image in format (OCILayout or
// DockerArchive) holds, from the manifest alone.
func (im *Image) Listing(format Format) *digest.Listing {
	m := &digest.Listing{}
	for p, b := range im.files(format) {
		m.Entries = append(m.Entries, digest.Entry{Path: p, Kind: digest.KindFile, SHA256: digest.Bytes(b), Size: int64(len(b))})
	}
	for p, d := range im.blobs() {
		m.Entries = append(m.Entries, digest.Entry{Path: p, Kind: digest.KindFile, SHA256: d.Digest, Size: d.Size})
	}
	m.Sort()
	return m
}

// Opener returns the bytes of the listing's entries in format: the small
// files and the manifest from memory, the other blobs through the
// image's BlobOpener, each checked against its descriptor as it streams.
func (im *Image) Opener(format Format) archive.Opener {
	files := im.files(format)
	blobs := im.blobs()
	return func(ctx context.Context, e digest.Entry) (io.ReadCloser, error) {
		if b, ok := files[e.Path]; ok {
			return io.NopCloser(bytes.NewReader(b)), nil
		}
		d, ok := blobs[e.Path]
		switch {
		case !ok:
			return nil, fmt.Errorf("%s is not part of the image %s", e.Path, im.Manifest.Digest)
		case d.Digest == im.Manifest.Digest:
			return io.NopCloser(bytes.NewReader(im.manifest)), nil
		case im.open == nil:
			return nil, fmt.Errorf("the image %s was loaded without its blobs", im.Manifest.Digest)
		}
		rc, err := im.open(ctx, d)
		if err != nil {
			return nil, err
		}
		return Verified(rc, d), nil
	}
}

// BlobMismatchError is a blob whose bytes are not the ones its
// descriptor names.
type BlobMismatchError struct {
	Want      image.Descriptor
	Got       digest.Sum
	GotSize   int64
	MediaType string
}

func (e *BlobMismatchError) Error() string {
	return fmt.Sprintf("the blob %s (%d bytes) read as %d bytes hashing to %s", e.Want.Digest, e.Want.Size, e.GotSize, e.Got)
}

// Verified wraps rc so that it fails at EOF (or past the size) with a
// *BlobMismatchError unless what was read hashes to d's digest and has
// d's size.
func Verified(rc io.ReadCloser, d image.Descriptor) io.ReadCloser {
	v := digest.VerifyingReader(rc, d.Digest.String(), d.Digest, d.Size)
	v.OnMismatch = func(m *digest.MismatchError) error { return &BlobMismatchError{Want: d, Got: m.Got, GotSize: m.Size} }
	return struct {
		io.Reader
		io.Closer
	}{v, rc}
}

// tarEpoch is every member's modification time in a docker-archive, as
// in the archives of package archive.
var tarEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// writeTar writes the entries of m (regular files) to w as an
// uncompressed tar, in m's order, with fixed headers: owner 0, mode 0644,
// tarEpoch. Each entry is read to its end through open, so a verifying
// opener has checked it.
func writeTar(ctx context.Context, w io.Writer, m *digest.Listing, open archive.Opener) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	for _, e := range m.Entries {
		// Parent directories first, as `docker save` writes them: some
		// extractors make a missing parent with the umask's mode.
		var parents []string
		for d := path.Dir(e.Path); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			h := &tar.Header{Name: parents[i] + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: tarEpoch, Format: tar.FormatUSTAR}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		}
		h := &tar.Header{Name: e.Path, Typeflag: tar.TypeReg, Mode: 0o644, Size: e.Size, ModTime: tarEpoch, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if err := copyEntry(ctx, tw, open, e); err != nil {
			return err
		}
	}
	return tw.Close()
}

func copyEntry(ctx context.Context, w io.Writer, open archive.Opener, e digest.Entry) error {
	rc, err := open(ctx, e)
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	defer func() { _ = rc.Close() }() // read-only; what was read is checked
	n, err := digest.Copy(ctx, w, rc)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", e.Path, err)
	case n != e.Size:
		return fmt.Errorf("%s: read %d bytes, the listing says %d", e.Path, n, e.Size)
	}
	return nil
}
