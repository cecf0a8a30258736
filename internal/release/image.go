package release

// Releases carry container images: Record.Images maps a name to an image
// reference pinned by digest, "registry/repository@sha256:<64 hex>", such
// as immutable_image's ref. A release names images; it never contacts a
// registry. When the store holds the image's record (package image, one
// per image immutable_image built), a release diff compares the two
// images' layers, and the collector keeps the record, with what it names,
// as long as a kept version names the image.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/registry"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

// CheckImageName refuses an image name (a key of images) holding a
// character that does not show as itself, as CheckArtifactName.
func CheckImageName(n string) error {
	return usertext.Check("the image name "+usertext.Show(n), n)
}

// imageRefHint is what to give instead of a tag.
const imageRefHint = "use an immutable_image's `ref`, or data.immutable_image's `ref` to pin an image built elsewhere"

// CheckImageRef refuses anything but an image reference pinned by a sha256
// digest, spelled in full: "registry/repository@sha256:<64 hex>", with
// the registry given and no tag beside the digest. A tag is refused
// (it can move: a release pinned to it would not be one image).
func CheckImageRef(ref string) error {
	show := usertext.Show(ref)
	base, dig, hasDigest := strings.Cut(ref, "@")
	if !hasDigest {
		if _, err := name.NewTag(ref, name.StrictValidation); err == nil || strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") {
			return fmt.Errorf("%s is a tag, not an image digest reference: a tag can be moved to another image, and a "+
				"release must name one image for good. Give registry/repository@sha256:<digest>: %s", show, imageRefHint)
		}
		return fmt.Errorf("%s is not an image digest reference (registry/repository@sha256:<64 hex digits>): %s", show, imageRefHint)
	}
	d, err := name.NewDigest(ref, name.StrictValidation)
	if err != nil {
		// go-containerregistry quotes the input as it is: escaped, so
		// that nothing in it changes how the message reads.
		return fmt.Errorf("%s is not an image digest reference (registry/repository@sha256:<64 hex digits>): %s", show, usertext.Escape(err.Error()))
	}
	if err := registry.CheckAddress(d.RegistryStr()); err != nil {
		return fmt.Errorf("%s is not an image digest reference: %v", show, err)
	}
	if !strings.HasPrefix(dig, digest.Prefix) {
		return fmt.Errorf("%s is pinned by a %s digest: releases name images by their sha256 digest, as registries and "+
			"immutable_image give it", show, strings.SplitN(dig, ":", 2)[0])
	}
	if _, err := digest.Parse(d.DigestStr()); err != nil {
		return fmt.Errorf("%s is not an image digest reference: %s", show, usertext.Escape(err.Error()))
	}
	if t, err := name.NewTag(base, name.StrictValidation); err == nil {
		return fmt.Errorf("%s has a tag and a digest: the digest alone says which image it is, so give %s", show,
			usertext.Show(strings.TrimSuffix(base, ":"+t.TagStr())+"@"+dig))
	}
	return nil
}

// ImageDigest is the manifest digest of a reference CheckImageRef accepts.
func ImageDigest(ref string) (digest.Sum, error) {
	if err := CheckImageRef(ref); err != nil {
		return digest.Sum{}, err
	}
	return digest.Parse(ref[strings.LastIndex(ref, "@")+1:])
}

// ImageRecords reads the store's record of an image by its manifest
// digest: store.ErrNotFound when there is none.
type ImageRecords func(ctx context.Context, manifest digest.Sum) (*image.Record, error)

// StoreImageRecords reads image records from st, verified (image.GetRecord).
func StoreImageRecords(st *store.Store) ImageRecords {
	return func(ctx context.Context, manifest digest.Sum) (*image.Record, error) {
		return image.GetRecord(ctx, st, manifest)
	}
}

// ImageChange is an image present in both records with another
// reference.
type ImageChange struct {
	From, To string
	// Layers compares the two images' own layers when the store holds
	// both images' records; nil when it does not (Unknown says why).
	Layers  *LayerChanges
	Unknown string
}

// LayerChanges compares the own layers of two images, by digest.
type LayerChanges struct {
	// Base is the base each image was built on, when they differ.
	Base *ValueChange
	// Added are the newer image's layers the older lacks, in its order;
	// Removed the older's the newer lacks.
	Added, Removed []LayerRef
}

// LayerRef is one layer of an image record.
type LayerRef struct {
	Digest string
	Path   string // where its tree lands in the image
}

// Lines are the changes one a line: "~ base <from> -> <to>" (an empty
// side as "scratch"), "- <digest> <path>" for each removed layer, then
// "+ <digest> <path>" for each added one.
func (l *LayerChanges) Lines() []string {
	lines := []string{}
	if l.Base != nil {
		side := func(s string) string {
			if s == "" {
				return "scratch"
			}
			return usertext.Show(s)
		}
		lines = append(lines, "~ base "+side(l.Base.From)+" -> "+side(l.Base.To))
	}
	for _, r := range l.Removed {
		lines = append(lines, "- "+r.Digest+" "+usertext.Show(r.Path))
	}
	for _, r := range l.Added {
		lines = append(lines, "+ "+r.Digest+" "+usertext.Show(r.Path))
	}
	return lines
}

// compareImages fills d's image maps from the two records, reading
// nothing: CompareLayers reads the images' records.
func (d *Diff) compareImages(older, newer *Record) {
	d.ImagesAdded, d.ImagesRemoved, d.ImagesChanged = map[string]string{}, map[string]string{}, map[string]ImageChange{}
	for k, v := range newer.Images {
		if was, ok := older.Images[k]; !ok {
			d.ImagesAdded[k] = v
		} else if was != v {
			d.ImagesChanged[k] = ImageChange{From: was, To: v}
		}
	}
	for k, v := range older.Images {
		if _, ok := newer.Images[k]; !ok {
			d.ImagesRemoved[k] = v
		}
	}
}

// CompareLayers reads, through records, the records of both sides of each
// changed image (each image once) and compares their layers. An image the
// store holds no record of (built elsewhere, or collected) leaves the
// layers of its change unknown, saying so; a record that cannot be
// trusted is an error naming the image.
func (d *Diff) CompareLayers(ctx context.Context, records ImageRecords) error {
	names := make([]string, 0, len(d.ImagesChanged))
	for k := range d.ImagesChanged {
		names = append(names, k)
	}
	sort.Strings(names) // errors name the first image, always the same one
	type read struct {
		rec *image.Record
		err error
	}
	cache := map[digest.Sum]read{}
	get := func(ref string) (*image.Record, error) {
		sum, err := ImageDigest(ref)
		if err != nil {
			return nil, err
		}
		if r, ok := cache[sum]; ok {
			return r.rec, r.err
		}
		rec, err := records(ctx, sum)
		cache[sum] = read{rec, err}
		return rec, err
	}
	for _, k := range names {
		c := d.ImagesChanged[k]
		var recs [2]*image.Record
		var absent []string
		for i, ref := range []string{c.From, c.To} {
			rec, err := get(ref)
			switch {
			case errors.Is(err, store.ErrNotFound):
				absent = append(absent, ref)
			case err != nil:
				return fmt.Errorf("image %q (%s): %w", k, ref, err)
			}
			recs[i] = rec
		}
		if len(absent) > 0 {
			c.Unknown = fmt.Sprintf("the store holds no record of %s (an image not built by immutable_image on this "+
				"store, or one collected since), so its layers cannot be compared", strings.Join(absent, " or "))
		} else {
			c.Layers = compareLayers(recs[0], recs[1])
		}
		d.ImagesChanged[k] = c
	}
	return nil
}

func compareLayers(older, newer *image.Record) *LayerChanges {
	l := &LayerChanges{Added: []LayerRef{}, Removed: []LayerRef{}}
	if older.Base != newer.Base {
		l.Base = &ValueChange{From: older.Base, To: newer.Base}
	}
	in := func(rec *image.Record) map[string]bool {
		m := map[string]bool{}
		for _, x := range rec.Layers {
			m[x.Digest] = true
		}
		return m
	}
	was, is := in(older), in(newer)
	for _, x := range older.Layers {
		if !is[x.Digest] {
			l.Removed = append(l.Removed, LayerRef{Digest: x.Digest, Path: x.Path})
		}
	}
	for _, x := range newer.Layers {
		if !was[x.Digest] {
			l.Added = append(l.Added, LayerRef{Digest: x.Digest, Path: x.Path})
		}
	}
	return l
}
