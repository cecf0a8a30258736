package release

import (
	"context"
	"fmt"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// A version deleted by retention (package gc) leaves a tombstone, written
// before its record is deleted (store.CollectedKey):
//
//	releases/<name>/collected/<version>   "<release digest>\n"
//
// so that the version is never published again with other content: a
// version, once published, names one content for ever, even after its
// bytes are gone.

// TombstoneBody is the content of the tombstone of a version whose
// record has the digest recordDigest ("sha256:<hex>").
func TombstoneBody(recordDigest string) []byte { return []byte(recordDigest + "\n") }

// TombstoneSize is a tombstone's size: a digest and a newline.
const TombstoneSize = len("sha256:") + 64 + 1

// CollectedKey is where the tombstone of a collected version lives.
func CollectedKey(name, version string) string { return store.CollectedKey(name, version) }

// CollectedError is a version that was published and then deleted by
// retention: it is not published again.
type CollectedError struct{ Name, Version string }

func (e *CollectedError) Error() string {
	return fmt.Sprintf("version %s of release %q was published and later deleted by the store's retention (garbage collection); "+
		"a version names one content for ever and is never published again: choose a higher version", e.Version, e.Name)
}

// checkNotCollected returns a *CollectedError when version has a tombstone.
func checkNotCollected(ctx context.Context, b interface {
	Exists(ctx context.Context, key string) (bool, error)
}, name, version string) error {
	ok, err := b.Exists(ctx, CollectedKey(name, version))
	if err != nil {
		return err
	}
	if ok {
		return &CollectedError{Name: name, Version: version}
	}
	return nil
}
