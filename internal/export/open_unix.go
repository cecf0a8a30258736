//go:build unix

package export

import "syscall"

// openFlags open a file of an export to read it: never through a final
// symlink, and without waiting for a writer if it is a named pipe.
const openFlags = syscall.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOFOLLOW
