// Package statcache remembers file digests by what stat(2) says about a
// file, as git's index does, so that a re-plan of an unchanged tree reads
// no file content.
//
// An entry is (path, size, mtime ns, ctime ns, inode, device, mode) →
// sha256. A file whose stat still matches its entry is not read again.
// It must never make a digest wrong:
//
//   - Racy timestamps: a file changed within the filesystem's timestamp
//     granularity of being hashed could change again without its mtime
//     moving. Such an entry (mtime not safely older than the moment the
//     file was hashed) is never trusted; the file is read again, as git
//     re-checks "racily clean" entries.
//   - ctime and inode are compared too: chmod, rename-over and restores
//     that keep the mtime still change them.
//   - A cache file that is corrupt, of another version or of another tree
//     is ignored and rebuilt; it can cost time, never correctness.
//   - Only plans use the cache. Apply reads and hashes every file it
//     stores, and checks the result against the plan.
//
// The cache lives in the user cache directory (XDG_CACHE_HOME on Linux),
// one file per tree, not in any provider setting: provider functions run
// unconfigured. IMMUTABLE_CACHE_DIR moves it; IMMUTABLE_STAT_CACHE=off
// disables it.
//
// The package has no dependency on Terraform.
package statcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// EnvDisable turns the cache off when set to "off".
const EnvDisable = "IMMUTABLE_STAT_CACHE"

// EnvDir overrides the directory of the cache.
const EnvDir = "IMMUTABLE_CACHE_DIR"

// magic starts every cache file; a file without it is foreign.
const magic = "immutable-statcache-v2\n"

// RacyWindow is how much older than the moment of hashing a file's mtime
// must be for its entry to be trusted: more than the coarsest timestamp
// granularity of common filesystems (FAT's 2 s).
const RacyWindow = 2 * time.Second

// Stat is what an entry is matched on.
type Stat struct {
	Size    int64
	MtimeNS int64
	CtimeNS int64
	Ino     uint64
	Dev     uint64
	Mode    uint32
}

type entry struct {
	Stat     Stat
	Sum      digest.Sum
	HashedAt int64 // ns: when reading the file began
}

// The file is magic, then the root and each entry in a fixed binary
// layout (little-endian), so that loading 100,000 entries takes
// milliseconds, not the half second gob took:
//
//	u32 len, root
//	repeated: u32 len, path; i64 size, mtime, ctime; u64 ino, dev;
//	          u32 mode; [32]byte sha256; i64 hashedAt
const recordFixed = 8*3 + 8*2 + 4 + 32 + 8

func encode(root string, entries map[string]entry) []byte {
	n := len(magic) + 4 + len(root)
	for p := range entries {
		n += 4 + len(p) + recordFixed
	}
	b := make([]byte, 0, n)
	le := binary.LittleEndian
	b = append(b, magic...)
	b = le.AppendUint32(b, uint32(len(root)))
	b = append(b, root...)
	for p, e := range entries {
		b = le.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
		b = le.AppendUint64(b, uint64(e.Stat.Size))
		b = le.AppendUint64(b, uint64(e.Stat.MtimeNS))
		b = le.AppendUint64(b, uint64(e.Stat.CtimeNS))
		b = le.AppendUint64(b, e.Stat.Ino)
		b = le.AppendUint64(b, e.Stat.Dev)
		b = le.AppendUint32(b, e.Stat.Mode)
		b = append(b, e.Sum[:]...)
		b = le.AppendUint64(b, uint64(e.HashedAt))
	}
	return b
}

// decode reads a cache file; ok is false for anything corrupt, of another
// version, or of another root.
func decode(raw []byte, root string) (map[string]entry, bool) {
	le := binary.LittleEndian
	rest, ok := bytes.CutPrefix(raw, []byte(magic))
	if !ok {
		return nil, false
	}
	str := func() (string, bool) {
		if len(rest) < 4 {
			return "", false
		}
		n := le.Uint32(rest)
		if uint64(len(rest)-4) < uint64(n) {
			return "", false
		}
		s := string(rest[4 : 4+n])
		rest = rest[4+n:]
		return s, true
	}
	if r, ok := str(); !ok || r != root {
		return nil, false
	}
	entries := map[string]entry{}
	for len(rest) > 0 {
		p, ok := str()
		if !ok || len(rest) < recordFixed {
			return nil, false
		}
		var e entry
		e.Stat.Size = int64(le.Uint64(rest[0:]))
		e.Stat.MtimeNS = int64(le.Uint64(rest[8:]))
		e.Stat.CtimeNS = int64(le.Uint64(rest[16:]))
		e.Stat.Ino = le.Uint64(rest[24:])
		e.Stat.Dev = le.Uint64(rest[32:])
		e.Stat.Mode = le.Uint32(rest[40:])
		copy(e.Sum[:], rest[44:76])
		e.HashedAt = int64(le.Uint64(rest[76:]))
		rest = rest[recordFixed:]
		entries[p] = e
	}
	return entries, true
}

// Cache is the on-disk cache in one directory.
type Cache struct {
	dir string
}

// Default returns the cache in the user cache directory, or nil when it
// is disabled or there is no such directory.
func Default() *Cache {
	if os.Getenv(EnvDisable) == "off" {
		return nil
	}
	if dir := os.Getenv(EnvDir); dir != "" {
		return New(dir)
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return nil
	}
	return New(filepath.Join(dir, "terraform-provider-immutable", "statcache-v1"))
}

// New returns a cache in dir (created on first save).
func New(dir string) *Cache { return &Cache{dir: dir} }

// Dir is where the cache files live.
func (c *Cache) Dir() string { return c.dir }

// Table is the cache of one tree (or one file), loaded in memory.
type Table struct {
	path    string
	root    string
	mu      sync.Mutex
	old     map[string]entry
	new     map[string]entry
	changed bool
	Hits    int
	Misses  int
}

func (c *Cache) fileFor(root string) string {
	h := sha256.Sum256([]byte(root))
	return filepath.Join(c.dir, hex.EncodeToString(h[:12])+".gob")
}

// Load reads the table of root (an absolute, symlink-free path). A missing,
// corrupt or foreign file gives an empty table.
func (c *Cache) Load(root string) *Table {
	t := &Table{path: c.fileFor(root), root: root, old: map[string]entry{}, new: map[string]entry{}}
	raw, err := os.ReadFile(t.path)
	if err != nil {
		return t
	}
	if entries, ok := decode(raw, root); ok {
		t.old = entries
	}
	return t
}

// Lookup returns the digest of rel if its stat matches a trusted entry.
func (t *Table) Lookup(rel string, st Stat) (digest.Sum, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.old[rel]
	if ok && e.Stat == st && st.MtimeNS < e.HashedAt-int64(RacyWindow) {
		t.new[rel] = e
		t.Hits++
		return e.Sum, true
	}
	t.Misses++
	return digest.Sum{}, false
}

// Record remembers the digest of rel, hashed from hashedAt on.
func (t *Table) Record(rel string, st Stat, sum digest.Sum, hashedAt time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.new[rel] = entry{Stat: st, Sum: sum, HashedAt: hashedAt.UnixNano()}
	t.changed = true
}

// Save writes the table atomically if anything changed: entries seen in
// this walk only, so files that left the tree leave the cache.
func (t *Table) Save() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.changed && len(t.new) == len(t.old) {
		return nil
	}
	b := encode(t.root, t.new)
	dir := filepath.Dir(t.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), t.path)
	}
	if err != nil {
		// Leave no temporary file behind; a failure to remove it is
		// reported with the failure that left it.
		return errors.Join(err, os.Remove(tmp.Name()))
	}
	return nil
}

// hashFile hashes one file through the table.
func (t *Table) hashFile(ctx context.Context, abs, rel string, info fs.FileInfo) (digest.Sum, int64, error) {
	st, ok := StatOf(info)
	if ok {
		if sum, hit := t.Lookup(rel, st); hit {
			return sum, st.Size, nil
		}
	}
	start := time.Now()
	sum, size, err := digest.HashListed(ctx, abs, info)
	if err != nil {
		return sum, size, err
	}
	// Record only what was read as stat described it: a file that grew or
	// shrank while it was read is not remembered.
	if ok && size == st.Size {
		t.Record(rel, st, sum, start)
	}
	return sum, size, nil
}

// TreeWalks counts the trees HashTree has walked in this process, for
// tests and benchmarks that check work is shared.
var TreeWalks atomic.Int64

// HashTree is digest.HashTree through the cache (c may be nil).
func HashTree(ctx context.Context, c *Cache, root string, opts digest.Options) (*digest.Listing, error) {
	TreeWalks.Add(1)
	if c == nil {
		return digest.HashTree(ctx, root, opts)
	}
	resolved, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	if resolved, err = filepath.Abs(resolved); err != nil {
		return nil, err
	}
	t := c.Load(resolved)
	m, err := digest.Walk(ctx, resolved, opts, t.hashFile)
	if err != nil {
		return nil, err
	}
	// A cache that cannot be written only costs time on the next walk;
	// the digest is right either way.
	_ = t.Save()
	return m, nil
}

// HashFile is digest.HashFile through the cache (c may be nil).
func HashFile(ctx context.Context, c *Cache, path string) (digest.Sum, int64, error) {
	if c == nil {
		return digest.HashFile(ctx, path)
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return digest.Sum{}, 0, err
	}
	if resolved, err = filepath.Abs(resolved); err != nil {
		return digest.Sum{}, 0, err
	}
	info, err := os.Stat(resolved)
	if err != nil {
		return digest.Sum{}, 0, err
	}
	if !info.Mode().IsRegular() {
		return digest.Sum{}, 0, errors.New(path + " is not a regular file")
	}
	t := c.Load(resolved)
	sum, size, err := t.hashFile(ctx, resolved, "", info)
	if err == nil {
		_ = t.Save() // as in HashTree: an unsaved cache only costs time
	}
	return sum, size, err
}
