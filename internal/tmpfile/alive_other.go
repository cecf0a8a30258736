//go:build !unix

package tmpfile

// alive cannot tell here: every file is kept.
func alive(int) bool { return true }
