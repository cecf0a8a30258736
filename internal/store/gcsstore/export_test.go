package gcsstore

import (
	"crypto/tls"
	"time"
)

// SetHost points b at host (scheme://host:port) instead of Cloud
// Storage, with the credentials it finds as it would there: what tests
// of authentication need, since STORAGE_EMULATOR_HOST turns it off.
func SetHost(b *Backend, host string) {
	b.host = host
	b.endpoint = "the test server " + host
}

// SetPing sets the HTTP/2 health check of the backends made from now on
// until the test ends.
func SetPing(t interface{ Cleanup(func()) }, after, timeout time.Duration) {
	a, o := pingAfter, pingTimeout
	pingAfter, pingTimeout = after, timeout
	t.Cleanup(func() { pingAfter, pingTimeout = a, o })
}

// SetTLS makes b trust what cfg does (a test server's certificate).
func SetTLS(b *Backend, cfg *tls.Config) { b.base.TLSClientConfig = cfg }

// SetTokenTimeout sets the bound of a request for a token, for the
// backends made from now on until the test ends.
func SetTokenTimeout(t interface{ Cleanup(func()) }, d time.Duration) {
	o := tokenTimeout
	tokenTimeout = d
	t.Cleanup(func() { tokenTimeout = o })
}
