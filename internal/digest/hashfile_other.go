//go:build !unix

package digest

import (
	"context"
	"os"
)

// HashFile returns the digest and size of one file, streamed.
func HashFile(ctx context.Context, path string) (Sum, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return Sum{}, 0, err
	}
	defer f.Close()
	return HashReader(ctx, f)
}
