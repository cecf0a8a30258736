package registry

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
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
		return fmt.Errorf("%q is not a registry host: %s", addr, usertext.Escape(err.Error()))
	}
	if !hostPattern().MatchString(addr) {
		return fmt.Errorf("%q is not a registry host: a host is ASCII letters, digits, '-' and '.' (or an IPv6 address in "+
			"brackets), and an optional :port, as in ghcr.io or 127.0.0.1:5000", addr)
	}
	return nil
}

// hostPattern is a registry host as the distribution spec's reference
// grammar has it: domain components of ASCII letters, digits and '-', or
// an IPv6 address in brackets, then an optional port. go-containerregistry
// checks it as a URI authority, which lets through any Unicode letter and
// invisible or reordering characters (U+200B, U+202E) that would show in
// every plan naming the image as something else than they are.
var hostPattern = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$`)
})

// CheckRepository reports whether repo names a repository to push to:
// "registry/repository", without a tag or a digest.
func CheckRepository(repo string) error {
	if strings.Contains(repo, "@") {
		return fmt.Errorf("%q has a digest: give the repository only, as in ghcr.io/acme/api", repo)
	}
	r, err := name.NewRepository(repo, name.StrictValidation)
	if err != nil {
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			return fmt.Errorf("%q has a tag: give the repository only, as in ghcr.io/acme/api, and the tags in `tags`", repo)
		}
		return fmt.Errorf("%q is not a repository: %s. Write it as registry/repository, as in ghcr.io/acme/api or 127.0.0.1:5000/api", repo, usertext.Escape(err.Error()))
	}
	// Strict validation refuses a repository without a registry host;
	// go-containerregistry spells docker.io as index.docker.io.
	if host, _, _ := strings.Cut(repo, "/"); host != r.RegistryStr() && (host != "docker.io" || r.RegistryStr() != name.DefaultRegistry) {
		return fmt.Errorf("%q names no registry: write it with the registry's host first, as in ghcr.io/acme/api or docker.io/library/%s", repo, repo)
	}
	if !hostPattern().MatchString(r.RegistryStr()) {
		return fmt.Errorf("%q is not a repository: its registry host is ASCII letters, digits, '-' and '.' (or an IPv6 "+
			"address in brackets), and an optional :port, as in ghcr.io/acme/api or 127.0.0.1:5000/api", repo)
	}
	if !repositoryPath().MatchString(r.RepositoryStr()) {
		return fmt.Errorf("%q is not a repository: each part between '/' is lower-case letters and digits, "+
			"separated inside by one '.', one or two '_', or '-'s, as in ghcr.io/acme/my-api (no empty part, no "+
			"separator first or last)", repo)
	}
	return nil
}

// repositoryPath is the distribution spec's repository name (the path
// after the registry). go-containerregistry checks only its characters,
// so "a//b", "a..b" or "-a" passed and failed at apply.
var repositoryPath = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
})

// CheckDigestRef reports whether ref is "registry/repository@sha256:…".
func CheckDigestRef(ref string) error {
	_, _, err := SplitDigestRef(ref)
	return err
}

// SplitDigestRef splits "registry/repository@sha256:…" into the
// repository and the digest.
func SplitDigestRef(ref string) (string, digest.Sum, error) {
	repo, d, ok := strings.Cut(ref, "@")
	if !ok {
		return "", digest.Sum{}, fmt.Errorf("%q is not pinned by digest: it must read registry/repository@sha256:<64 hex>", ref)
	}
	if strings.LastIndex(repo, ":") > strings.LastIndex(repo, "/") {
		return "", digest.Sum{}, fmt.Errorf("%q has both a tag and a digest: keep the digest only (registry/repository@sha256:…)", ref)
	}
	if err := CheckRepository(repo); err != nil {
		return "", digest.Sum{}, err
	}
	sum, err := digest.Parse(d)
	if err != nil {
		return "", digest.Sum{}, err
	}
	return repo, sum, nil
}

// tagPattern is a tag as the OCI distribution spec has it.
var tagPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`) })

// CheckTag reports whether t can be a tag.
func CheckTag(t string) error {
	if !tagPattern().MatchString(t) {
		return fmt.Errorf("%q is not a tag: a tag is 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'", t)
	}
	return nil
}
