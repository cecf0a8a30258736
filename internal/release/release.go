// Package release publishes and reads write-once release records in a
// store.
//
// A release is a name, a map of artifact digests, a map of container
// images (name → "registry/repository@sha256:…", image.go) and a map of
// metadata. Its digest is the sha256 of a canonical JSON encoding of
// exactly those (release spec v1, see Content.Encode): independent of the
// version and of time, so the same content always has the same digest.
//
// Its keys in the store (the store's layout.go spells them, and reads
// them back with store.ParseKey):
//
//	releases/<name>/versions/<version>          the record (JSON), written once
//	releases/<name>/digests/<hex>/<version>     an index entry: versions by content
//	releases/<name>/yanks/<version>/<seq>       yank entries (yank.go)
//	releases/<name>/collected/<version>         a tombstone (collected.go)
//	channels/<release>/<channel>/moves/<seq>    channel moves (channel.go)
//
// Every write follows the writer's protocol (protocol.go): validate the
// input, take the lease, check, write; drop the lease if nothing was
// written. Publish (a record)
// and MoveTo (a channel move) are its examples; a resource calls them and
// never store.Store.Hold itself.
//
// The package has no dependency on Terraform.
package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	goversion "github.com/hashicorp/go-version"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
	"github.com/immutable-infra/terraform-provider-immutable/internal/versions"
)

// Spec names the canonical encoding of release content.
const Spec = "immutable-release-v1"

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// MaxNameLength bounds a release name (and a channel's): the store's
// bound, which its keys' length is reckoned with.
const MaxNameLength = store.MaxNameLength

// CheckName validates a release name: lower-case letters, digits, '.', '_'
// and '-', starting with a letter or digit, so that no name can reach
// outside its place in the store.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("the release name is empty: give a name such as \"web-frontend\"")
	case len(name) > MaxNameLength:
		return fmt.Errorf("the release name is %d characters long; at most %d are allowed", len(name), MaxNameLength)
	case !nameRe.MatchString(name):
		return fmt.Errorf("%q is not a valid release name: use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit (such as \"web-frontend\")", name)
	}
	return nil
}

// CheckMetadataKey refuses a metadata key holding a character that does
// not show as itself (usertext.Check): keys are printed in plans, diffs
// and other workspaces. Values are data (a JSON document, a script), not
// checked.
func CheckMetadataKey(key string) error {
	return usertext.Check("the metadata key "+usertext.Show(key), key)
}

// CheckArtifactName refuses an artifact name (a key of artifacts) holding
// a character that does not show as itself, as CheckMetadataKey.
func CheckArtifactName(name string) error {
	return usertext.Check("the artifact name "+usertext.Show(name), name)
}

// Content is what a release digest covers.
type Content struct {
	Name      string            `json:"name"`
	Artifacts map[string]string `json:"artifacts"`
	// Images are container images by name: "registry/repository@sha256:…"
	// (CheckImageRef).
	Images   map[string]string `json:"images,omitempty"`
	Metadata map[string]string `json:"metadata"`
}

// Encode returns the canonical encoding: compact JSON with the keys of
// every object in byte order, no HTML escaping, and the spec name:
//
//	{"artifacts":{...},"images":{...},"metadata":{...},"name":"...","spec":"immutable-release-v1"}
//
// Missing artifacts and metadata encode as {}; images, when there are
// none, not at all, so that a release without images has the digest it had
// before releases carried images. For printable text this equals `jq -cS`.
func (c Content) Encode() []byte {
	v := struct {
		Artifacts map[string]string `json:"artifacts"`
		Images    map[string]string `json:"images,omitempty"`
		Metadata  map[string]string `json:"metadata"`
		Name      string            `json:"name"`
		Spec      string            `json:"spec"`
	}{nonNil(c.Artifacts), c.Images, nonNil(c.Metadata), c.Name, Spec}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // maps of strings always encode
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Digest is the release digest of the content.
func (c Content) Digest() digest.Sum { return digest.Bytes(c.Encode()) }

// Record is a published version.
type Record struct {
	Spec            string            `json:"spec"`
	Name            string            `json:"name"`
	Version         string            `json:"version"`
	Digest          string            `json:"digest"`
	Artifacts       map[string]string `json:"artifacts"`
	Images          map[string]string `json:"images,omitempty"`
	Metadata        map[string]string `json:"metadata"`
	PreviousVersion string            `json:"previous_version,omitempty"`
	PublishedAt     string            `json:"published_at"`

	// stored is the sha256 of the bytes Get read (zero for a record not
	// read from the store): what a signature of the record covers.
	stored digest.Sum
}

// StoredDigest is the sha256 of the stored bytes Get (GetStored) read the record
// from, which its signatures name (Trust.Check); the zero Sum for a
// record not read by Get.
func (r *Record) StoredDigest() digest.Sum { return r.stored }

// Content returns the part of the record the digest covers.
func (r *Record) Content() Content {
	return Content{Name: r.Name, Artifacts: r.Artifacts, Images: r.Images, Metadata: r.Metadata}
}

// VersionKey is where a version's record lives.
func VersionKey(name, version string) string { return store.VersionKey(name, version) }

// digestPrefix is the folder of the index entries of content d.
func digestPrefix(name string, d digest.Sum) string { return store.IndexPrefix(name, d) }

// TamperedError is a record whose content does not match its digest.
type TamperedError struct {
	Key    string
	Detail string
}

// Family is the family of the key altered: store.FamilyVersion,
// FamilyYank or FamilyMove (the key's folder says it even when the key
// itself is malformed).
func (e *TamperedError) Family() store.Family {
	k, _ := store.ParseKey(e.Key)
	return k.Family
}

func (e *TamperedError) Error() string {
	what := "the release record"
	switch e.Family() {
	case store.FamilyMove:
		what = "the channel move"
	case store.FamilyYank:
		what = "the yank entry"
	}
	return fmt.Sprintf("%s %s was altered after it was published: %s", what, usertext.Show(e.Key), e.Detail)
}

// MaxRecordSize bounds a release record, in bytes: Publish (and
// PlanVersion, for what it plans) refuses a record that Get would not read
// back.
const MaxRecordSize = 16 << 20

// TooLargeError is a release whose record would exceed MaxRecordSize.
// Nothing was written.
type TooLargeError struct {
	Name, Version string
	Size          int // bytes of the record
	Artifacts     int // bytes of the artifacts map in it
	Images        int // bytes of the images map in it
	Metadata      int // bytes of the metadata map in it
}

func (e *TooLargeError) Error() string {
	images := ""
	if e.Images > 0 {
		images = fmt.Sprintf(", its images %d", e.Images)
	}
	return fmt.Sprintf("version %s of release %q would be a record of %d bytes, but a release record may be at most %d bytes "+
		"(larger ones could never be read back); its metadata takes %d bytes and its artifacts %d%s",
		e.Version, e.Name, e.Size, MaxRecordSize, e.Metadata, e.Artifacts, images)
}

// Attribute names the input that takes most of the record: "metadata",
// "artifacts" or "images".
func (e *TooLargeError) Attribute() string {
	switch {
	case e.Images > e.Artifacts && e.Images > e.Metadata:
		return "images"
	case e.Artifacts > e.Metadata:
		return "artifacts"
	}
	return "metadata"
}

// OversizeRecordError is a stored record larger than MaxRecordSize, which
// Publish never writes: it is not read rather than read in part.
type OversizeRecordError struct {
	Key string
}

func (e *OversizeRecordError) Error() string {
	return fmt.Sprintf("the release record %s is larger than %d bytes, the most a release record may be, so it is not read: "+
		"it was written by a provider without that limit or outside Terraform", e.Key, MaxRecordSize)
}

// publishedAtPlaceholder has the width of PublishedAt: RFC 3339 in UTC, to the
// second, is always 20 bytes ("2006-01-02T15:04:05Z").
const publishedAtPlaceholder = "0000-00-00T00:00:00Z"

// encode returns the stored form of a complete record.
func (r *Record) encode() []byte {
	body, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		panic(err) // strings and maps of strings always encode
	}
	return append(body, '\n')
}

// sizeError returns a *TooLargeError if body, the encoding of r, exceeds
// MaxRecordSize.
func sizeError(r *Record, body []byte) error {
	if len(body) <= MaxRecordSize {
		return nil
	}
	a, _ := json.Marshal(r.Artifacts)
	i, _ := json.Marshal(r.Images)
	m, _ := json.Marshal(r.Metadata)
	return &TooLargeError{Name: r.Name, Version: r.Version, Size: len(body), Artifacts: len(a), Images: len(i), Metadata: len(m)}
}

// CheckSize returns a *TooLargeError if the record of c published as
// version (after previous) would exceed MaxRecordSize. It reads no clock:
// the publication time always has the same width.
func CheckSize(c Content, version, previous string) error {
	r := &Record{
		Spec: Spec, Name: c.Name, Version: version, Digest: c.Digest().String(),
		Artifacts: nonNil(c.Artifacts), Images: c.Images, Metadata: nonNil(c.Metadata),
		PreviousVersion: previous, PublishedAt: publishedAtPlaceholder,
	}
	return sizeError(r, r.encode())
}

// Get reads and verifies a record. A missing one is store.ErrNotFound; one
// larger than MaxRecordSize is an *OversizeRecordError.
func Get(ctx context.Context, b store.Backend, name, version string) (*Record, error) {
	r, _, err := GetStored(ctx, b, name, version)
	return r, err
}

// GetStored is Get, also returning the record's stored bytes: what its
// signatures are about (their first subject is the sha256 of these bytes).
// The record returned is decoded from these very bytes.
func GetStored(ctx context.Context, b store.Backend, name, version string) (*Record, []byte, error) {
	key := VersionKey(name, version)
	rc, err := b.Open(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = rc.Close() }() // read-only: what was read is checked, a close error loses nothing
	raw, err := io.ReadAll(io.LimitReader(rc, MaxRecordSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(raw) > MaxRecordSize {
		return nil, nil, &OversizeRecordError{Key: key}
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, nil, &TamperedError{Key: key, Detail: "it is not a valid record: " + err.Error()}
	}
	switch {
	case r.Spec != Spec:
		return nil, nil, &TamperedError{Key: key, Detail: fmt.Sprintf("unknown spec %q", r.Spec)}
	case r.Name != name || r.Version != version:
		return nil, nil, &TamperedError{Key: key, Detail: fmt.Sprintf("it names %s@%s", r.Name, r.Version)}
	case r.Content().Digest().String() != r.Digest:
		return nil, nil, &TamperedError{Key: key, Detail: fmt.Sprintf("its content hashes to %s, not the recorded %s", r.Content().Digest(), r.Digest)}
	}
	// Images are read as Publish writes them: what names a record in the
	// store (the collector keeps it) is checked, not only hashed.
	for _, k := range slices.Sorted(maps.Keys(r.Images)) {
		if err := CheckImageName(k); err != nil {
			return nil, nil, &TamperedError{Key: key, Detail: "its images: " + err.Error()}
		}
		if err := CheckImageRef(r.Images[k]); err != nil {
			return nil, nil, &TamperedError{Key: key, Detail: fmt.Sprintf("its image %s: %v", usertext.Show(k), err)}
		}
	}
	r.stored = digest.Bytes(raw)
	return &r, raw, nil
}

// List returns the published versions of a release, ascending.
func List(ctx context.Context, b store.Backend, name string) ([]*goversion.Version, error) {
	keys, err := b.List(ctx, store.VersionsPrefix(name))
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		keys[i] = strings.TrimPrefix(k, store.VersionsPrefix(name))
	}
	return versions.Sorted(keys), nil
}

// FindByDigest returns the versions already published with content d,
// ascending.
func FindByDigest(ctx context.Context, b store.Backend, name string, d digest.Sum) ([]*goversion.Version, error) {
	keys, err := b.List(ctx, digestPrefix(name, d))
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		keys[i] = strings.TrimPrefix(k, digestPrefix(name, d))
	}
	return versions.Sorted(keys), nil
}

// ConflictError is a version already published with other content.
type ConflictError struct {
	Existing *Record
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("version %s of release %q is already published with digest %s (published %s)",
		e.Existing.Version, e.Existing.Name, e.Existing.Digest, e.Existing.PublishedAt)
}

// Publish publishes r by the writer's protocol (see protocol.go): it
// validates r, holds every key r relies on (its artifacts' listings and
// blobs, its images' records, and its version), checks that each artifact is stored, and
// writes the record (WriteRecord: adoption of the same content,
// *ConflictError for other content, and so on).
//
// Invalid input is refused before anything is held or written: an
// *InvalidError (name, version, an artifact name, a metadata key), an
// *ArtifactDigestError (a digest that does not parse, artifacts in name
// order) or a *TooLargeError. An artifact that is not stored is an
// *ArtifactMissingError (artifacts checked in name order). A failure of
// the store is a *StepError saying at which step: StepHold, StepCheck
// (looking the artifacts up) or StepWrite (everything WriteRecord
// returns, *ConflictError and *CollectedError included). If it stops
// before the write, or the write was refused (*ConflictError,
// *CollectedError), the lease is dropped; otherwise it stays (see
// store.Lease.Drop).
//
// With SignWith, the record written is signed. A record found published
// with the same content is signed only if it is what this publish would
// have written in every field but its time (Record.differs, signFound),
// and its time recent (within a day before now; see recent) unless the
// request names its published_at; otherwise it is a *ForeignRecordError
// unless this key signed it already.
func Publish(ctx context.Context, st *store.Store, r *Record, now time.Time, opts ...Option) (*Record, error) {
	o := collect(opts)
	if err := r.validate(); err != nil {
		return nil, err
	}
	names := slices.Sorted(maps.Keys(r.Artifacts))
	sums := make([]digest.Sum, len(names))
	for i, k := range names {
		sum, err := digest.Parse(r.Artifacts[k])
		if err != nil {
			return nil, &ArtifactDigestError{Artifact: k, Err: err}
		}
		sums[i] = sum
	}
	held := []string{}
	for _, k := range names {
		held = append(held, store.HeldKeys(r.Artifacts[k])...)
	}
	// The record of each image, if the store holds one (an image built by
	// immutable_image): a collector deleting it as unreferenced must see
	// that this record is about to reference it. Not checked: an image
	// may come from anywhere, and a release does not contact a registry.
	for _, k := range slices.Sorted(maps.Keys(r.Images)) {
		sum, _ := ImageDigest(r.Images[k]) // validate checked it
		held = append(held, store.ImageKey(sum))
	}
	held = append(held, VersionKey(r.Name, r.Version))
	lease, err := hold(ctx, st, held...)
	if err != nil {
		return nil, err
	}
	wrote := false
	defer func() {
		if !wrote {
			lease.Drop(ctx)
		}
	}()
	for i, k := range names {
		kind, err := st.Lookup(ctx, sums[i])
		if err != nil {
			return nil, &StepError{Step: StepCheck, Err: err}
		}
		if kind == store.Missing {
			return nil, &ArtifactMissingError{Release: r.Name, Artifact: k, Digest: sums[i]}
		}
	}
	if err := o.runBeforeWrite(ctx); err != nil {
		return nil, err
	}
	requestedAt := r.PublishedAt
	rec, found, err := writeRecord(ctx, st.Backend(), r, now)
	// Refused before writing, or another apply's record in the way: this
	// record was not written. Any other error may hide a write that landed.
	wrote = err == nil || !errors.As(err, new(*ConflictError)) && !errors.As(err, new(*CollectedError)) && !errors.As(err, new(*TooLargeError))
	if err != nil {
		return nil, &StepError{Step: StepWrite, Err: err}
	}
	extra, err := rec.subjects()
	if err != nil {
		return nil, &SignatureError{Key: VersionKey(rec.Name, rec.Version), Err: err}
	}
	key := VersionKey(rec.Name, rec.Version)
	if !found {
		err = o.sign(ctx, st.Backend(), key, rec.encode(), KindRelease, extra)
	} else {
		differs := ""
		if o.signer != nil {
			differs, err = rec.differs(ctx, st.Backend(), r.PreviousVersion, requestedAt)
			if err != nil {
				return nil, &SignatureError{Key: key, Err: err}
			}
			if differs == "" && requestedAt == "" {
				// The time is the writer's: only an earlier attempt's, recent.
				// (A published_at requested is the caller's, compared above.)
				differs = recent("published_at", rec.PublishedAt, now)
			}
		}
		err = o.signFound(ctx, st.Backend(), key, rec.encode(), KindRelease, extra, differs)
	}
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// differs says how rec, a record of the same content found published,
// differs from what Publish would have written for a request naming
// previous and publishedAt ("": now), in every field but the time: ""
// when it does not. Its previous_version must be previous, and the
// highest version published below it: a caller that adopts a record found
// at plan (PlanVersion) takes previous from that very record, so previous
// alone would let whoever wrote the record choose it. An earlier attempt
// of this publish wrote exactly that (the versions below it have not
// changed since, barring a lower version published in between).
func (rec *Record) differs(ctx context.Context, b store.Backend, previous, publishedAt string) (string, error) {
	if rec.PreviousVersion != previous {
		return fmt.Sprintf("its previous_version is %q, not %q", rec.PreviousVersion, previous), nil
	}
	if publishedAt != "" && rec.PublishedAt != publishedAt {
		return fmt.Sprintf("its published_at is %s, not %s", rec.PublishedAt, publishedAt), nil
	}
	published, err := List(ctx, b, rec.Name)
	if err != nil {
		return "", err
	}
	v, err := versions.Parse(rec.Version)
	if err != nil {
		return "", err
	}
	if below := original(versions.Below(published, v)); below != rec.PreviousVersion {
		return fmt.Sprintf("its previous_version is %q, but the highest version published below it is %q", rec.PreviousVersion, below), nil
	}
	return "", nil
}

// ArtifactMissingError is an artifact of a record that is not in the
// store: a record naming it would point at content nobody can fetch.
type ArtifactMissingError struct {
	Release, Artifact string
	Digest            digest.Sum
}

func (e *ArtifactMissingError) Error() string {
	return fmt.Sprintf("artifact %q (%s) of release %q is not in the store", e.Artifact, e.Digest, e.Release)
}

// ArtifactDigestError is an artifact whose digest does not parse. Its
// text is the parser's.
type ArtifactDigestError struct {
	Artifact string
	Err      error
}

func (e *ArtifactDigestError) Error() string { return e.Err.Error() }

func (e *ArtifactDigestError) Unwrap() error { return e.Err }

// WriteRecord writes r once: the write step of Publish alone, with no
// lease and no check that its artifacts are stored (its input is
// validated as Publish's is). It is for stores
// being seeded (tests) where no collector runs; a resource calls Publish.
// If the version is already published with the
// same content, that record is returned and nothing is written (adoption).
// If it is published with other content, a *ConflictError is returned and
// nothing is written; if its record would exceed MaxRecordSize, a
// *TooLargeError. r.PublishedAt is set from now when empty.
//
// The index entry (releases/<name>/digests/<hex>/<version>) is written
// before the record: a publish interrupted between the two leaves an entry
// whose record is missing, which PlanVersion skips, so the next plan picks
// the same version again. The other order would leave a record nobody
// finds by content, and the next plan would publish it again under a new
// version.
func WriteRecord(ctx context.Context, b store.Backend, r *Record, now time.Time) (*Record, error) {
	rec, _, err := writeRecord(ctx, b, r, now)
	return rec, err
}

// writeRecord is WriteRecord, also saying whether the record returned was
// found published (adopted) rather than written.
func writeRecord(ctx context.Context, b store.Backend, r *Record, now time.Time) (rec *Record, found bool, err error) {
	if err := r.validate(); err != nil {
		return nil, false, err
	}
	r.Spec = Spec
	r.Digest = r.Content().Digest().String()
	if r.PublishedAt == "" {
		r.PublishedAt = now.UTC().Format(time.RFC3339)
	}
	r.Artifacts, r.Metadata = nonNil(r.Artifacts), nonNil(r.Metadata)
	if len(r.Images) == 0 {
		r.Images = nil // as Get reads a record without images back
	}
	body := r.encode()
	if err := sizeError(r, body); err != nil {
		return nil, false, err
	}
	// Already published: adopt or refuse, writing nothing.
	if existing, err := published(ctx, b, r); existing != nil || err != nil {
		return existing, existing != nil, err
	}
	if err := checkNotCollected(ctx, b, r.Name, r.Version); err != nil {
		return nil, false, err
	}
	sum, err := digest.Parse(r.Digest)
	if err != nil {
		return nil, false, err
	}
	if err := b.Create(ctx, digestPrefix(r.Name, sum)+r.Version, strings.NewReader(r.Version)); err != nil && !errors.Is(err, store.ErrExists) {
		return nil, false, err
	}
	err = b.Create(ctx, VersionKey(r.Name, r.Version), bytes.NewReader(body))
	if errors.Is(err, store.ErrExists) { // another publisher was faster
		existing, err := published(ctx, b, r)
		if existing == nil && err == nil {
			err = fmt.Errorf("%s: the store reported it exists, then that it does not", VersionKey(r.Name, r.Version))
		}
		return existing, existing != nil, err
	}
	if err != nil {
		return nil, false, err
	}
	return r, false, nil
}

// validate is the first step of the writer's protocol for r (see
// protocol.go): it checks r as WriteRecord would write it, reading and
// changing nothing: the name, each artifact name, each image's name and
// reference and each metadata key in order, the version, then the size of the whole record. (Publish checks
// the artifacts' digests too; WriteRecord, seeding stores, does not.)
func (r *Record) validate() error {
	if err := CheckName(r.Name); err != nil {
		return invalid(InputRelease, "", err)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Artifacts)) {
		if err := CheckArtifactName(k); err != nil {
			return invalid(InputArtifact, k, err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Images)) {
		if err := CheckImageName(k); err != nil {
			return invalid(InputImageName, k, err)
		}
		if err := CheckImageRef(r.Images[k]); err != nil {
			return invalid(InputImage, k, err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
		if err := CheckMetadataKey(k); err != nil {
			return invalid(InputMetadata, k, err)
		}
	}
	if _, err := versions.Parse(r.Version); err != nil {
		return invalid(InputVersion, "", err)
	}
	at := r.PublishedAt
	if at == "" {
		at = publishedAtPlaceholder // the width of every time WriteRecord sets
	}
	c := r.Content()
	w := &Record{
		Spec: Spec, Name: r.Name, Version: r.Version, Digest: c.Digest().String(),
		Artifacts: nonNil(r.Artifacts), Images: r.Images, Metadata: nonNil(r.Metadata),
		PreviousVersion: r.PreviousVersion, PublishedAt: at,
	}
	return sizeError(w, w.encode())
}

// published returns the record already published at r's version if it has
// r's content, a *ConflictError if it has other content, and nil, nil if
// there is none.
func published(ctx context.Context, b store.Backend, r *Record) (*Record, error) {
	existing, err := Get(ctx, b, r.Name, r.Version)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case existing.Digest != r.Digest:
		return nil, &ConflictError{Existing: existing}
	}
	return existing, nil
}
