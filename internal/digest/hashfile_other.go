//go:build !unix

package digest

import (
	"context"
	"io/fs"
	"os"
)

// HashFile returns the digest and size of one file, streamed.
func HashFile(ctx context.Context, path string) (Sum, int64, error) {
	f, err := OpenListed(path, nil)
	if err != nil {
		return Sum{}, 0, err
	}
	defer f.Close()
	return HashReader(ctx, f)
}

// HashListed hashes a file a walk listed as info; see the unix version.
func HashListed(ctx context.Context, path string, info fs.FileInfo) (Sum, int64, error) {
	f, err := OpenListed(path, info)
	if err != nil {
		return Sum{}, 0, err
	}
	defer f.Close()
	return HashReader(ctx, f)
}

// OpenListed opens path and checks that it is a regular file and, when
// info is given, the same file as info (os.SameFile).
func OpenListed(path string, info fs.FileInfo) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &ChangedError{Path: path, Now: TypeName(fi.Mode().Type())}
	}
	if info != nil && !os.SameFile(info, fi) {
		f.Close()
		return nil, &ChangedError{Path: path, Now: "another file"}
	}
	return f, nil
}
