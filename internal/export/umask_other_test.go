//go:build !unix

package export

import (
	"errors"
	"io/fs"
)

func fsUmask(int) int { return 0 }

func inodeOf(fs.FileInfo) uint64 { return 0 }

func mkfifo(string) error { return errors.ErrUnsupported }
