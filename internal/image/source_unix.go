//go:build unix

package image

import "syscall"

// openNonblock keeps an open from waiting for a writer on a FIFO put in a
// listed file's place (it is then refused as not regular).
const openNonblock = syscall.O_NONBLOCK
