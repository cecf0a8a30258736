// Package storeurl opens a store from the URL a user writes in the
// provider's `store` setting.
package storeurl

import (
	"fmt"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// Default is the store used when none is configured: a directory beside
// the working directory Terraform runs in.
const Default = "file://.immutable"

// Schemes lists the URL schemes Open accepts.
var Schemes = []string{"file"}

// Open returns the store a URL names. It creates nothing.
//
// file://PATH is a directory; PATH may be relative (file://.immutable,
// resolved against the working directory) or absolute (file:///var/lib/x).
func Open(raw string) (*store.Store, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("%q is not a store URL: write it as file://PATH (for example %q)", raw, Default)
	}
	switch scheme {
	case "file":
		if rest == "" {
			return nil, fmt.Errorf("%q names no directory: write file://PATH, for example %q or file:///var/lib/immutable", raw, Default)
		}
		if strings.HasPrefix(rest, "localhost/") {
			rest = strings.TrimPrefix(rest, "localhost")
		}
		b, err := filestore.New(rest)
		if err != nil {
			return nil, err
		}
		return store.New(b), nil
	}
	return nil, fmt.Errorf("the store URL %q has the unknown scheme %q: supported schemes are %s", raw, scheme+"://", strings.Join(Schemes, ", "))
}
