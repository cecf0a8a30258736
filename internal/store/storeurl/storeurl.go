// Package storeurl opens a store from the URL a user writes in the
// provider's `store` setting.
package storeurl

import (
	"context"
	"fmt"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
)

// Default is the store used when none is configured: a directory beside
// the working directory Terraform runs in.
const Default = "file://.immutable"

// Schemes lists the URL schemes Open accepts.
var Schemes = []string{"file://", "s3://"}

// Options carry backend settings that do not fit in a URL.
type Options struct {
	S3 s3store.Settings
}

// Open returns the store a URL names. It creates and contacts nothing.
//
//   - file://PATH is a directory; PATH may be relative (file://.immutable,
//     resolved against the working directory) or absolute (file:///var/lib/x).
//   - s3://BUCKET/OPTIONAL/PREFIX is a bucket of S3 or an S3-compatible store.
func Open(ctx context.Context, raw string, opts Options) (*store.Store, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("%q is not a store URL: write it as file://PATH (for example %q) or s3://BUCKET/PREFIX", raw, Default)
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
	case "s3":
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return nil, fmt.Errorf("%q names no bucket: write s3://BUCKET or s3://BUCKET/PREFIX", raw)
		}
		if strings.Contains(prefix, "//") || strings.Contains("/"+prefix+"/", "/../") || strings.Contains("/"+prefix+"/", "/./") {
			return nil, fmt.Errorf("%q has an unclean prefix %q: write segments separated by single slashes", raw, prefix)
		}
		b, err := s3store.New(ctx, bucket, prefix, opts.S3)
		if err != nil {
			return nil, err
		}
		return store.New(b), nil
	}
	return nil, fmt.Errorf("the store URL %q has the unknown scheme %q: supported schemes are %s", raw, scheme+"://", strings.Join(Schemes, ", "))
}
