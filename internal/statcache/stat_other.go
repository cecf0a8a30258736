//go:build !(linux || darwin || freebsd)

package statcache

import "io/fs"

// StatOf reports false where the platform's stat lacks what the cache
// matches on (inode, ctime): the cache is then never used.
func StatOf(fs.FileInfo) (Stat, bool) { return Stat{}, false }
