package registry

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// CheckAddress reports whether addr is a registry address as image
// references spell it: a host and an optional port, no scheme, no path.
func CheckAddress(addr string) error {
	switch {
	case addr == "":
		return fmt.Errorf("the address is empty: give the registry's host, as in ghcr.io or 127.0.0.1:5000")
	case strings.Contains(addr, "://"):
		return fmt.Errorf("%q has a scheme: give the host and port only (as in an image reference); HTTPS is the default, plain_http allows HTTP", addr)
	case strings.ContainsAny(addr, "/@ \t\r\n"):
		return fmt.Errorf("%q is not a registry host: give the host and optional port only, without a repository path", addr)
	}
	if _, err := name.NewRegistry(addr, name.StrictValidation); err != nil {
		return fmt.Errorf("%q is not a registry host: %v", addr, err)
	}
	return nil
}
