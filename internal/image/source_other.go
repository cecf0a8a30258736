//go:build !unix

package image

// openNonblock: no FIFO can stall an open here.
const openNonblock = 0
