package export

import (
	"io/fs"
	"os"
	"path"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// Dirs identifies the directories a Write of a Directory made, so that
// Remove can tell them from directories someone made again at the same
// paths (after an `rm -rf`, say): the target directory by inode and birth
// time (an inode number is reused at once by most filesystems), the
// listing's directories by a birth time between the target's and Until.
// The device is not compared then: btrfs subvolumes, overlayfs and NFS get
// a new device number at each mount. Where the filesystem keeps no birth
// time (Born 0), the target is told by device and inode, and the others
// not at all.
type Dirs struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Born  int64  `json:"born,omitempty"`  // the target's birth, ns since the epoch
	Until int64  `json:"until,omitempty"` // the latest birth of the listing's directories
}

// dirID is what the system tells of one directory.
type dirID struct {
	dev, ino uint64
	born     int64 // 0: not known
}

// madeDirs identifies tmp and the directories of m in it, just written.
// It returns nil when the system cannot tell (Remove then takes any
// directory at those paths for the export's).
func madeDirs(tmp string, m *digest.Listing) *Dirs {
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return nil
	}
	defer func() { _ = root.Close() }() // read-only
	top, ok := idAt(root, ".")
	if !ok {
		return nil
	}
	d := &Dirs{Dev: top.dev, Ino: top.ino, Born: top.born, Until: top.born}
	seen := map[string]bool{}
	for _, e := range m.Entries {
		for p := path.Dir(e.Path); p != "." && !seen[p]; p = path.Dir(p) {
			seen[p] = true
			id, ok := idAt(root, p)
			if !ok || id.dev != d.Dev {
				return nil
			}
			d.Until = max(d.Until, id.born)
		}
	}
	if d.Born == 0 {
		d.Until = 0
	}
	return d
}

// madeAt reports whether the directory name in root, found as fi, is one
// the Write that recorded d made: the target itself when top, else one of
// its listing's. A nil d (not recorded) takes every directory for the
// export's. A directory that cannot be opened to tell is an error; one
// the system cannot identify is not the export's.
func (d *Dirs) madeAt(root *os.Root, name string, fi fs.FileInfo, top bool) (bool, error) {
	if d == nil {
		return true, nil
	}
	f, err := root.Open(name)
	if err != nil {
		return false, err
	}
	defer func() { _ = f.Close() }() // read-only
	id, ok := idOf(f, fi)
	switch {
	case !ok:
		return false, nil
	case d.Born == 0 && top:
		return id.dev == d.Dev && id.ino == d.Ino, nil
	case d.Born == 0:
		return true, nil
	case top:
		return id.ino == d.Ino && id.born == d.Born, nil
	}
	return id.born >= d.Born && id.born <= d.Until, nil
}

// idOf identifies the directory open as f; with fi, only if it is still
// the directory fi describes.
func idOf(f *os.File, fi fs.FileInfo) (dirID, bool) {
	now, err := f.Stat()
	if err != nil || !now.IsDir() || (fi != nil && !os.SameFile(fi, now)) {
		return dirID{}, false
	}
	return dirIDOf(f)
}

// idAt identifies the directory name in root.
func idAt(root *os.Root, name string) (dirID, bool) {
	f, err := root.Open(name)
	if err != nil {
		return dirID{}, false
	}
	defer func() { _ = f.Close() }() // read-only
	return idOf(f, nil)
}
