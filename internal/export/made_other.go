//go:build !linux && !darwin && !freebsd

package export

import "os"

// dirIDOf cannot identify a directory here (Windows): Remove takes any
// directory at the export's paths for the export's, and removes it only
// when empty.
func dirIDOf(*os.File) (dirID, bool) { return dirID{}, false }
