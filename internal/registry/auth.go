package registry

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// keychain finds a registry's credentials: those in Options first, then
// Docker's (config.json under DOCKER_CONFIG or ~/.docker, and the
// docker-credential-* helpers it names, as docker and crane find them),
// else none (anonymous).
func keychain(creds []Credential) (authn.Keychain, error) {
	k := staticKeychain{}
	for _, c := range creds {
		reg, err := name.NewRegistry(strings.TrimSpace(c.Registry))
		if err != nil || c.Registry == "" {
			// The error names the registry, never the credentials.
			return nil, fmt.Errorf("credentials for registry %q: want a host or host:port, such as ghcr.io or 127.0.0.1:5000", c.Registry)
		}
		host := reg.RegistryStr() // docker.io is index.docker.io, as in references
		if _, dup := k[host]; dup {
			return nil, fmt.Errorf("credentials for registry %s given twice: give one username and password per registry", host)
		}
		k[host] = authn.AuthConfig{Username: c.Username, Password: c.Password}
	}
	return authn.NewMultiKeychain(k, authn.DefaultKeychain), nil
}

// staticKeychain holds the credentials from Options by registry host.
type staticKeychain map[string]authn.AuthConfig

// Resolve returns the credentials of r's registry; Anonymous sends the
// multi-keychain on to Docker's.
func (k staticKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if c, ok := k[r.RegistryStr()]; ok {
		return authn.FromConfig(c), nil
	}
	return authn.Anonymous, nil
}

// secrets are the passwords of creds, which no error message may hold.
func secrets(creds []Credential) []string {
	var s []string
	for _, c := range creds {
		if c.Password != "" {
			s = append(s, c.Password)
		}
	}
	return s
}
