// Package image assembles OCI images from stored trees: the layer
// encoding (immutable-layer-v1, specified in the digest spec guide), the
// image config and manifest, the image index of several platforms, and
// the record the store keeps of an image's layers. Everything here is a
// deterministic function of its inputs: no clock, no randomness, no
// network (the registry client is package registry).
//
// The package has no dependency on Terraform.
package image

import (
	"context"
	"io"
	"io/fs"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// Encoding names the layer encoding this package writes (digest spec
// guide, "Image layers"). A new encoding gets a new name beside it.
const Encoding = "immutable-layer-v1"

// Compression is how a layer's tar is compressed.
type Compression string

const (
	// Gzip: the tar through Go's compress/gzip at gzip.BestSpeed, no name,
	// no modification time, OS byte 255 (the digest spec pins it).
	Gzip Compression = "gzip"
	// Uncompressed: the tar itself; digest and diff_id are equal.
	Uncompressed Compression = "none"
)

// LayerSpec is one layer of an image: a stored tree (or file) and where
// and how it lands in the image's filesystem.
type LayerSpec struct {
	// Tree is the sha256 of a tree's listing, or of a file's bytes (a
	// single-file artifact or build output).
	Tree digest.Sum
	// Path is where the tree lands (its root directory), or the file's
	// own path for a file: absolute, clean, no "." or ".." component.
	Path string
	// UID and GID own every entry of the layer.
	UID, GID int
	// FileMode, when not 0, is the permission of every regular file;
	// else a listing's "file" is 0644 and "exec" 0755 (a single file:
	// 0644).
	FileMode fs.FileMode
	// DirMode is the permission of every directory; 0 means 0755.
	DirMode     fs.FileMode
	Compression Compression
}

// Source gives a tree's listing and the bytes of its files, each
// verified against its sha256 as it is read.
type Source interface {
	// Listing returns the listing of tree sum, verified. When sum names a
	// file's bytes rather than a listing, isFile is true and l has one
	// entry: Path "", Kind file, SHA256 sum and the file's Size (which
	// the tar header needs before the bytes). A sum the source does not
	// hold is an error wrapping store.ErrNotFound.
	Listing(ctx context.Context, sum digest.Sum) (l *digest.Listing, isFile bool, err error)
	// Open returns the bytes of the file (or symlink target) sum; the
	// reader fails at EOF if they do not hash to sum. A sum the source
	// does not hold is an error wrapping store.ErrNotFound.
	Open(ctx context.Context, sum digest.Sum) (io.ReadCloser, error)
}

// Descriptor names a blob or manifest, as OCI descriptors do.
type Descriptor struct {
	MediaType string
	Digest    digest.Sum
	Size      int64
}

// Layer is an encoded layer: its descriptor (the compressed blob), the
// sha256 of its uncompressed tar (the diff_id) and what it was made from.
type Layer struct {
	Descriptor
	DiffID digest.Sum
	Spec   LayerSpec
}

// Platform is an image's os/architecture[/variant].
type Platform struct {
	OS, Architecture, Variant string
}

// Config is the part of an image's config a user sets.
type Config struct {
	Entrypoint   []string
	Cmd          []string
	Env          []string // "NAME=value", in order
	WorkingDir   string
	User         string
	ExposedPorts []string // "8080/tcp", "53/udp"
	Labels       map[string]string
}

// Base is the image an image is built on: its manifest and config as the
// registry serves them (read once per operation by package registry).
type Base struct {
	// Ref is "registry/repository@sha256:…" of the platform manifest.
	Ref       string
	MediaType string
	Manifest  []byte
	Config    []byte
}

// Image is an assembled image: its manifest and config bytes and
// digests, every layer's descriptor (the base's first) and diff_id.
type Image struct {
	MediaType    string
	Manifest     []byte
	Digest       digest.Sum
	Config       []byte
	ConfigDigest digest.Sum
	Layers       []Descriptor
	DiffIDs      []digest.Sum
	// Size is the manifest's, the config's and every layer's size summed.
	Size     int64
	Platform Platform
}

// Index is an assembled image index.
type Index struct {
	MediaType string
	Manifest  []byte
	Digest    digest.Sum
	Manifests []IndexEntry
}

// IndexEntry is one platform manifest of an index.
type IndexEntry struct {
	Descriptor
	Platform Platform
}

// String is "os/arch[/variant]".
func (p Platform) String() string {
	if p.Variant != "" {
		return p.OS + "/" + p.Architecture + "/" + p.Variant
	}
	return p.OS + "/" + p.Architecture
}
