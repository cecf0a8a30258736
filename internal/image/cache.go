package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/tmpfile"
)

// LayerCache remembers, on this machine, the descriptors of layers
// already encoded, so that apply's final plan (a new process) and later
// plans do not encode a layer again to learn its digest. An entry is
// keyed by everything the encoding depends on: the spec, the encoding's
// name and the Go release whose compress/gzip wrote it. What it says is
// a plan-time hint only: a push encodes the layer again and fails unless
// the bytes hash to the planned digest, so a damaged entry can stop an
// apply but never make it push something else.
type LayerCache struct{ dir string }

// NewLayerCache returns the cache in dir; nil (every lookup misses) when
// dir is "".
func NewLayerCache(dir string) *LayerCache {
	if dir == "" {
		return nil
	}
	return &LayerCache{dir: dir}
}

type cachedLayer struct {
	Key       string `json:"key"`
	MediaType string `json:"media_type"`
	Digest    string `json:"digest"`
	DiffID    string `json:"diff_id"`
	Size      int64  `json:"size"`
}

// encoderRevision changes whenever this package's encoder could write
// other bytes for a spec (before an encoding is released, it may change
// under its name): entries of an older encoder are then never read.
const encoderRevision = 2

// cacheKey spells everything a layer's bytes depend on.
func cacheKey(s LayerSpec) string {
	return fmt.Sprintf("%s r%d %s %s %s %d %d %o %o %s", Encoding, encoderRevision, runtime.Version(), s.Compression, s.Tree, s.UID, s.GID, uint32(s.FileMode), uint32(s.DirMode), s.Path)
}

func (c *LayerCache) file(key string) string {
	h := digest.Bytes([]byte(key)).Hex()
	return filepath.Join(c.dir, h[:2], h)
}

// Get returns the layer cached for spec.
func (c *LayerCache) Get(spec LayerSpec) (Layer, bool) {
	if c == nil {
		return Layer{}, false
	}
	key := cacheKey(spec)
	b, err := os.ReadFile(c.file(key))
	if err != nil {
		return Layer{}, false
	}
	var e cachedLayer
	if json.Unmarshal(b, &e) != nil || e.Key != key || e.Size <= 0 {
		return Layer{}, false
	}
	sum, err1 := digest.Parse(e.Digest)
	diff, err2 := digest.Parse(e.DiffID)
	if err1 != nil || err2 != nil || (spec.Compression == Uncompressed && sum != diff) {
		return Layer{}, false
	}
	return Layer{Descriptor: Descriptor{MediaType: e.MediaType, Digest: sum, Size: e.Size}, DiffID: diff, Spec: spec}, true
}

// Forget drops what the cache says of spec (after a push found the
// layer's bytes differ from it), so the next plan encodes it again.
func (c *LayerCache) Forget(spec LayerSpec) {
	if c == nil {
		return
	}
	_ = os.Remove(c.file(cacheKey(spec))) // best effort: a miss costs time only
}

// Put remembers l; failures are ignored (a miss only costs time).
func (c *LayerCache) Put(l Layer) {
	if c == nil {
		return
	}
	key := cacheKey(l.Spec)
	b, err := json.Marshal(cachedLayer{Key: key, MediaType: l.MediaType, Digest: l.Digest.String(), DiffID: l.DiffID.String(), Size: l.Size})
	if err != nil {
		return
	}
	name := c.file(key)
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return
	}
	f, err := tmpfile.Create(filepath.Dir(name), ".layer-")
	if err != nil {
		return
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr != nil || cerr != nil {
		_ = os.Remove(f.Name()) // best effort: an entry not written is a cache miss
		return
	}
	if os.Rename(f.Name(), name) != nil {
		_ = os.Remove(f.Name()) // best effort: an entry not written is a cache miss
	}
}
