//go:build tools

// Package tofu exists only so that `go mod tidy` keeps OpenTofu's CLI in
// this module's requirements.
package tofu

import _ "github.com/opentofu/opentofu/cmd/tofu"
