package gcsstore

// SetHost points b at host (scheme://host:port) instead of Cloud
// Storage, with the credentials it finds as it would there: what tests
// of authentication need, since STORAGE_EMULATOR_HOST turns it off.
func SetHost(b *Backend, host string) {
	b.host = host
	b.endpoint = "the test server " + host
}
