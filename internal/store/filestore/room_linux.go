package filestore

import (
	"golang.org/x/sys/unix"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// statRoom reads the block size of the filesystem holding dir, and
// whether it has no inodes left; zero when statfs fails.
func statRoom(dir string) store.Room {
	var st unix.Statfs_t
	if dir == "" || unix.Statfs(dir, &st) != nil {
		return store.Room{}
	}
	return store.Room{
		BlockSize: int64(st.Bsize), //nolint:unconvert // int32 on 32-bit Linux
		NoInodes:  st.Files > 0 && st.Ffree == 0,
	}
}
