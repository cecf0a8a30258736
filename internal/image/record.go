package image

// The store's record of an image: what immutable_image built, written
// once at apply under the image's manifest digest (store.ImageKey), so
// that a release naming the image by digest can be compared layer by
// layer (release diff) and the collector keeps what the image is made of
// (package gc).
//
// A record names its manifest and config, stored as blobs beside it, and
// the image's own layers in order (the base's layers live in the base's
// registry, not in the store): each layer's descriptor and diff_id, and
// what it was made of — the stored tree (or file), where it landed, its
// owner and modes, its compression. The record implies its manifest and
// config blobs and its trees, as a listing implies its blobs: PutRecord
// stores the blobs first and checks the trees under a lease; a collector
// deletes a record before anything it names.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// RecordSpec names the stored form of a record.
const RecordSpec = "immutable-image-record-v1"

// layerMediaTypes are the media types a layer of each compression may
// have: an image on a Docker-typed base may keep Docker's.
var layerMediaTypes = map[Compression][]string{
	Gzip:         {MediaTypeLayerGzip, MediaTypeDockerLayerGzip},
	Uncompressed: {MediaTypeLayer},
}

// Bounds of what is read back: a record of a few hundred layers is tens of
// kilobytes; registries refuse manifests over 4 MiB.
const (
	MaxRecordSize   = 4 << 20
	maxManifestSize = 4 << 20
	maxConfigSize   = 16 << 20
)

// Record is the store's record of an image built by immutable_image.
type Record struct {
	Spec string `json:"spec"`
	// Digest is the manifest's, "sha256:<hex>"; the record's key.
	Digest    string `json:"digest"`
	MediaType string `json:"media_type"`
	// Config is the config's digest.
	Config string `json:"config"`
	// Base is the base image's reference, "registry/repository@sha256:…";
	// empty for an image from scratch.
	Base     string         `json:"base,omitempty"`
	Platform RecordPlatform `json:"platform"`
	// Layers are the image's own layers, in order: the last len(Layers)
	// of its manifest's.
	Layers []RecordLayer `json:"layers"`
}

// RecordPlatform is Platform as a record spells it.
type RecordPlatform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

func (p RecordPlatform) platform() Platform { return Platform(p) }

// RecordLayer is one layer of a record: its descriptor and diff_id, and
// what it was made of (LayerSpec).
type RecordLayer struct {
	Digest    string `json:"digest"`
	DiffID    string `json:"diff_id"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
	// Tree is the sha256 of the tree's listing, or of the file's bytes.
	Tree        string      `json:"tree"`
	Path        string      `json:"path"`
	UID         int         `json:"uid"`
	GID         int         `json:"gid"`
	FileMode    fs.FileMode `json:"file_mode"`
	DirMode     fs.FileMode `json:"dir_mode"`
	Compression Compression `json:"compression"`
}

// NewRecord is the record of img, built on base (nil: from scratch) with
// its own layers, in order.
func NewRecord(img *Image, base *Base, layers []Layer) *Record {
	r := &Record{
		Spec: RecordSpec, Digest: img.Digest.String(), MediaType: img.MediaType, Config: img.ConfigDigest.String(),
		Platform: RecordPlatform(img.Platform),
		Layers:   make([]RecordLayer, len(layers)),
	}
	if base != nil {
		r.Base = base.Ref
	}
	own := len(img.Layers) - len(layers) // the base's come first
	for i, l := range layers {
		// The media type the manifest gives the layer: on a Docker base,
		// Docker's for the same gzip bytes, not the encoder's OCI one.
		mediaType := l.MediaType
		if own >= 0 && own+i < len(img.Layers) {
			mediaType = img.Layers[own+i].MediaType
		}
		r.Layers[i] = RecordLayer{
			Digest: l.Digest.String(), DiffID: l.DiffID.String(), Size: l.Size, MediaType: mediaType,
			Tree: l.Spec.Tree.String(), Path: l.Spec.Path, UID: l.Spec.UID, GID: l.Spec.GID,
			FileMode: l.Spec.FileMode, DirMode: l.Spec.DirMode, Compression: l.Spec.Compression,
		}
	}
	return r
}

// Key is where the record lives, or "" when its digest does not parse.
func (r *Record) Key() string {
	sum, err := digest.Parse(r.Digest)
	if err != nil {
		return ""
	}
	return store.ImageKey(sum)
}

// References are the store keys the record names: its manifest's and
// config's blobs, and each layer's tree (its listing and its blob, as
// store.HeldKeys names an artifact: one of them is stored). The record
// must be well formed (Check).
func (r *Record) References() []string {
	keys := make([]string, 0, 2+2*len(r.Layers))
	for _, s := range []string{r.Digest, r.Config} {
		if sum, err := digest.Parse(s); err == nil {
			keys = append(keys, store.BlobKey(sum))
		}
	}
	for _, l := range r.Layers {
		keys = append(keys, store.HeldKeys(l.Tree)...)
	}
	return keys
}

// A base is a reference pinned by digest; package registry parses it
// fully when it reads it, a record only checks its shape.
var baseRe = regexp.MustCompile(`^[^@\s]+@sha256:[0-9a-f]{64}$`)

// modeBits are the bits a layer's modes may have: permissions, setuid,
// setgid, sticky.
const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// Check reports whether r is a well-formed record, saying what is wrong:
// its spec, digests, media types, platform and layers. It reads nothing.
func (r *Record) Check() error {
	switch {
	case r.Spec != RecordSpec:
		return fmt.Errorf("its spec is %q, not %q", r.Spec, RecordSpec)
	case r.MediaType != MediaTypeManifest && r.MediaType != MediaTypeDockerManifest:
		return fmt.Errorf("its manifest's media type %q is not an image manifest's", r.MediaType)
	case r.Base != "" && !baseRe.MatchString(r.Base):
		return fmt.Errorf("its base %q is not a reference pinned by digest (registry/repository@sha256:<64 hex>)", r.Base)
	}
	if err := r.Platform.platform().check(); err != nil {
		return fmt.Errorf("its platform: %w", err)
	}
	if _, err := digest.Parse(r.Digest); err != nil {
		return fmt.Errorf("its manifest digest: %w", err)
	}
	if _, err := digest.Parse(r.Config); err != nil {
		return fmt.Errorf("its config digest: %w", err)
	}
	for i, l := range r.Layers {
		if err := l.check(); err != nil {
			return fmt.Errorf("layer %d: %w", i+1, err)
		}
	}
	return nil
}

func (l *RecordLayer) check() error {
	for _, d := range []struct{ what, s string }{{"digest", l.Digest}, {"diff_id", l.DiffID}, {"tree", l.Tree}} {
		if _, err := digest.Parse(d.s); err != nil {
			return fmt.Errorf("its %s: %w", d.what, err)
		}
	}
	types, ok := layerMediaTypes[l.Compression]
	switch {
	case !ok:
		return fmt.Errorf("its compression %q is neither %q nor %q", l.Compression, Gzip, Uncompressed)
	case !contains(types, l.MediaType):
		return fmt.Errorf("its media type %q is not one of a layer compressed %q (%s)", l.MediaType, l.Compression, strings.Join(types, ", "))
	case l.Compression == Uncompressed && l.Digest != l.DiffID:
		return fmt.Errorf("it is uncompressed, but its digest %s is not its diff_id %s", l.Digest, l.DiffID)
	case l.Size < 0:
		return fmt.Errorf("its size is %d", l.Size)
	case CheckPath(l.Path) != nil:
		return fmt.Errorf("its path: %w", CheckPath(l.Path))
	case l.UID < 0 || l.GID < 0:
		return fmt.Errorf("its owner %d:%d is negative", l.UID, l.GID)
	case l.FileMode&^modeBits != 0 || l.DirMode&^modeBits != 0:
		return fmt.Errorf("its modes %v and %v are not permissions", l.FileMode, l.DirMode)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// recordManifestJSON and recordConfigJSON are the parts of an image manifest and
// config that a record repeats.
type recordManifestJSON struct {
	MediaType string                 `json:"mediaType"`
	Config    recordDescriptorJSON   `json:"config"`
	Layers    []recordDescriptorJSON `json:"layers"`
}

type recordDescriptorJSON struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

type recordConfigJSON struct {
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// agrees reports whether r says of its image what the image's manifest
// and config bytes say: their digests, the manifest's media type and
// config, the platform, and that its layers are the manifest's last ones
// (all of them without a base), with their diff_ids last in the config.
func (r *Record) agrees(manifest, config []byte) error {
	if got := digest.Bytes(manifest).String(); got != r.Digest {
		return fmt.Errorf("its manifest hashes to %s, not %s", got, r.Digest)
	}
	if got := digest.Bytes(config).String(); got != r.Config {
		return fmt.Errorf("its config hashes to %s, not %s", got, r.Config)
	}
	var m recordManifestJSON
	if err := json.Unmarshal(manifest, &m); err != nil {
		return fmt.Errorf("its manifest is not JSON: %v", err)
	}
	var c recordConfigJSON
	if err := json.Unmarshal(config, &c); err != nil {
		return fmt.Errorf("its config is not JSON: %v", err)
	}
	platform, err := ConfigPlatform(config)
	if err != nil {
		return fmt.Errorf("its config: %v", err)
	}
	own, all := len(r.Layers), len(m.Layers)
	switch {
	case m.MediaType != r.MediaType && (m.MediaType != "" || r.MediaType != MediaTypeManifest): // optional in OCI's
		return fmt.Errorf("its manifest's media type is %q, not %q", m.MediaType, r.MediaType)
	case m.Config.Digest != r.Config:
		return fmt.Errorf("its manifest names the config %s, not %s", m.Config.Digest, r.Config)
	case platform != r.Platform.platform():
		return fmt.Errorf("its config is for %s, not %s", platform, r.Platform.platform())
	case len(c.RootFS.DiffIDs) != all:
		return fmt.Errorf("its manifest has %d layers and its config %d diff_ids", all, len(c.RootFS.DiffIDs))
	case own > all || r.Base == "" && own != all:
		base := "from scratch"
		if r.Base != "" {
			base = "on " + r.Base
		}
		return fmt.Errorf("it records %d layers of its own, built %s, and its manifest has %d", own, base, all)
	}
	for i, l := range r.Layers {
		d, diffID := m.Layers[all-own+i], c.RootFS.DiffIDs[all-own+i]
		if d.Digest != l.Digest || d.Size != l.Size || d.MediaType != l.MediaType || diffID != l.DiffID {
			return fmt.Errorf("layer %d is %s (%d bytes, %s, diff_id %s) in its manifest and config, not %s (%d bytes, %s, diff_id %s)",
				i+1, d.Digest, d.Size, d.MediaType, diffID, l.Digest, l.Size, l.MediaType, l.DiffID)
		}
	}
	return nil
}

// encode is the stored form of a record.
func (r *Record) encode() []byte {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		panic(err) // strings, numbers and slices of them always encode
	}
	return append(b, '\n')
}

// InvalidRecordError is a record PutRecord refused before anything was
// held or written: it is not well formed, or it does not agree with the
// manifest and config given with it.
type InvalidRecordError struct {
	Digest string
	Err    error
}

func (e *InvalidRecordError) Error() string {
	return fmt.Sprintf("the record of image %s cannot be stored: %v", e.Digest, e.Err)
}

func (e *InvalidRecordError) Unwrap() error { return e.Err }

// TreeMissingError is a layer whose tree is not in the store: a record
// naming it would describe the image by content nobody can read.
type TreeMissingError struct {
	Image string
	Layer int // from 1
	Tree  string
}

func (e *TreeMissingError) Error() string {
	return fmt.Sprintf("layer %d of image %s is made of %s, which is neither a tree listing nor a blob in the store", e.Layer, e.Image, e.Tree)
}

// RecordConflictError is a record already stored under the image's
// digest that is not the one being stored: records are written once.
type RecordConflictError struct {
	Key string
	// Existing is the stored record, when it reads; nil when it does not.
	Existing *Record
	Err      error // why it does not read, when it does not
}

func (e *RecordConflictError) Error() string {
	if e.Existing == nil {
		return fmt.Sprintf("%s already holds a record that cannot be read (%v), so it was left as it is", e.Key, e.Err)
	}
	return fmt.Sprintf("%s already holds another record of the same image (its layers were recorded as made of other "+
		"trees, paths, owners or modes); records are written once, so it was left as it is", e.Key)
}

// CorruptRecordError is a stored record that cannot be trusted: not one
// PutRecord writes, not of the image it is stored under, or disagreeing
// with that image's manifest or config.
type CorruptRecordError struct {
	Key    string
	Detail string
}

func (e *CorruptRecordError) Error() string {
	return fmt.Sprintf("the image record %s was altered after it was stored: %s", e.Key, e.Detail)
}

// PutRecord stores rec, with the manifest and config bytes it describes,
// by the writer's protocol (package release, protocol.go):
//
//  0. Validate: rec is well formed and agrees with manifest and config,
//     or it is an *InvalidRecordError, and nothing is held or written.
//  1. Hold the record's key and every key it names (References).
//  2. Check that each layer's tree is stored (a listing or a blob), or
//     it is a *TreeMissingError.
//  3. Write the manifest and config as blobs (content addressed: present
//     ones are not written again), then the record, once.
//
// A record already stored is read back: the same bytes are accepted (an
// apply completed again), anything else is a *RecordConflictError. If it
// stops before its first write, the lease is dropped; once a write was
// attempted it stays (store.Lease.Drop).
func PutRecord(ctx context.Context, st *store.Store, rec *Record, manifest, config []byte) error {
	if err := rec.Check(); err != nil {
		return &InvalidRecordError{Digest: rec.Digest, Err: err}
	}
	if err := rec.agrees(manifest, config); err != nil {
		return &InvalidRecordError{Digest: rec.Digest, Err: err}
	}
	body := rec.encode()
	if len(body) > MaxRecordSize {
		return &InvalidRecordError{Digest: rec.Digest, Err: fmt.Errorf("it would be %d bytes, over the %d a record may be", len(body), MaxRecordSize)}
	}
	key := rec.Key()
	lease, err := st.Hold(ctx, append([]string{key}, rec.References()...)...)
	if err != nil {
		return err
	}
	wrote := false
	defer func() {
		if !wrote {
			lease.Drop(ctx)
		}
	}()
	for i, l := range rec.Layers {
		sum, _ := digest.Parse(l.Tree) // Check parsed it
		kind, err := st.Lookup(ctx, sum)
		if err != nil {
			return err
		}
		if kind == store.Missing {
			return &TreeMissingError{Image: rec.Digest, Layer: i + 1, Tree: l.Tree}
		}
	}
	wrote = true
	for _, b := range [][]byte{manifest, config} {
		if _, err := st.PutBlob(ctx, digest.Bytes(b), bytes.NewReader(b)); err != nil {
			return err
		}
	}
	err = st.Backend().Create(ctx, key, bytes.NewReader(body))
	if !errors.Is(err, store.ErrExists) {
		return err
	}
	existing, err := readRecord(ctx, st.Backend(), key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%s: the store reported it exists, then that it does not", key)
	case err != nil && !errors.As(err, new(*CorruptRecordError)):
		return err
	case err != nil:
		return &RecordConflictError{Key: key, Err: err}
	case !bytes.Equal(existing.raw, body):
		return &RecordConflictError{Key: key, Existing: existing.rec}
	}
	return nil
}

type rawRecord struct {
	rec *Record
	raw []byte
}

// readRecord reads the record at key, strictly: a record of this spec,
// well formed. Not yet checked against its key or its blobs.
func readRecord(ctx context.Context, b store.Backend, key string) (*rawRecord, error) {
	rc, err := b.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }() // read-only: what was read is checked
	raw, err := io.ReadAll(io.LimitReader(rc, MaxRecordSize+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxRecordSize {
		return nil, &CorruptRecordError{Key: key, Detail: fmt.Sprintf("it is over %d bytes, more than a record may be", MaxRecordSize)}
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, &CorruptRecordError{Key: key, Detail: "it is not a valid record: " + err.Error()}
	}
	if dec.More() {
		return nil, &CorruptRecordError{Key: key, Detail: "it holds more than one record"}
	}
	if err := r.Check(); err != nil {
		return nil, &CorruptRecordError{Key: key, Detail: err.Error()}
	}
	return &rawRecord{rec: &r, raw: raw}, nil
}

// GetRecord reads and verifies the record of the image whose manifest has
// the sha256 manifest: it is well formed, names that digest, and agrees
// with the manifest and config blobs it names (each read and verified
// against its digest). No record is store.ErrNotFound; one that cannot be
// trusted is a *CorruptRecordError (a manifest or config blob that is
// missing or altered too: a record implies its blobs).
func GetRecord(ctx context.Context, st *store.Store, manifest digest.Sum) (*Record, error) {
	key := store.ImageKey(manifest)
	r, err := readRecord(ctx, st.Backend(), key)
	if err != nil {
		return nil, err
	}
	rec := r.rec
	if rec.Digest != manifest.String() {
		return nil, &CorruptRecordError{Key: key, Detail: "it is the record of image " + rec.Digest}
	}
	config, _ := digest.Parse(rec.Config) // Check parsed it
	blobs := make([][]byte, 2)
	for i, b := range []struct {
		what  string
		sum   digest.Sum
		limit int64
	}{{"manifest", manifest, maxManifestSize}, {"config", config, maxConfigSize}} {
		data, err := readBlob(ctx, st, b.sum, b.limit)
		if err != nil {
			return nil, &CorruptRecordError{Key: key, Detail: fmt.Sprintf("its %s %s does not read: %v", b.what, b.sum, err)}
		}
		blobs[i] = data
	}
	if err := rec.agrees(blobs[0], blobs[1]); err != nil {
		return nil, &CorruptRecordError{Key: key, Detail: err.Error()}
	}
	return rec, nil
}

// readBlob reads a whole blob of at most limit bytes, verified.
func readBlob(ctx context.Context, st *store.Store, sum digest.Sum, limit int64) ([]byte, error) {
	rc, err := st.OpenBlob(ctx, sum)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }() // read-only: what was read is checked
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("it is over %d bytes", limit)
	}
	return b, nil
}
