//go:build tools

// Package goreleaser exists only so that `go mod tidy` keeps GoReleaser in
// this module's requirements.
package goreleaser

import _ "github.com/goreleaser/goreleaser/v2"
