package image

import (
	"fmt"
	"slices"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

type indexJSON struct {
	SchemaVersion int              `json:"schemaVersion"`
	MediaType     string           `json:"mediaType"`
	Manifests     []descriptorJSON `json:"manifests"`
}

// AssembleIndex builds the OCI image index of entries: at least one, each
// a platform manifest (OCI or Docker schema 2), platforms distinct. The
// manifests are listed by platform string ("linux/amd64" before
// "linux/arm64"), so the index does not depend on the entries' order.
func AssembleIndex(entries []IndexEntry) (*Index, error) {
	if len(entries) == 0 {
		return nil, fmt.Errorf("an image index needs at least one platform's image")
	}
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, func(a, b IndexEntry) int {
		return strings.Compare(a.Platform.String(), b.Platform.String())
	})
	idx := &Index{MediaType: MediaTypeIndex, Manifests: sorted}
	j := indexJSON{SchemaVersion: 2, MediaType: MediaTypeIndex}
	seen := map[Platform]IndexEntry{}
	for _, e := range sorted {
		if err := e.Platform.check(); err != nil {
			return nil, err
		}
		if prev, ok := seen[e.Platform.normal()]; ok {
			return nil, fmt.Errorf("the platform %s is given twice (as %s by %s and by %s): give each platform one image", e.Platform, prev.Platform, prev.Digest, e.Digest)
		}
		seen[e.Platform.normal()] = e
		switch e.MediaType {
		case MediaTypeManifest, MediaTypeDockerManifest:
		default:
			return nil, fmt.Errorf("the image of %s has media type %q: an index lists image manifests (%s or %s)", e.Platform, e.MediaType, MediaTypeManifest, MediaTypeDockerManifest)
		}
		if e.Size <= 0 {
			return nil, fmt.Errorf("the image of %s has size %d: give the size of its manifest", e.Platform, e.Size)
		}
		d := e.json()
		d.Platform = e.Platform.json()
		j.Manifests = append(j.Manifests, d)
	}
	var err error
	if idx.Manifest, err = marshal(j); err != nil {
		return nil, err
	}
	idx.Digest = digest.Bytes(idx.Manifest)
	return idx, nil
}
