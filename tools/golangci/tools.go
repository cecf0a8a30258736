//go:build tools

// Package golangci exists only so that `go mod tidy` keeps golangci-lint in
// this module's requirements.
package golangci

import _ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
