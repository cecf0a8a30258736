//go:build !unix

package export

import "os"

// openFlags open a file of an export to read it (no named pipes or
// symlink tricks to guard against here beyond the Lstat checks).
const openFlags = os.O_RDONLY
