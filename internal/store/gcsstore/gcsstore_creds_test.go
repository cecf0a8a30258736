package gcsstore_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
)

// keyFile writes a service-account key file holding privateKey and
// tokenURI, and points GOOGLE_APPLICATION_CREDENTIALS at it.
func keyFile(t *testing.T, privateKey, tokenURI string) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "p", "private_key_id": "k1", "private_key": privateKey,
		"client_email": "ci@p.iam.gserviceaccount.com", "client_id": "1", "token_uri": tokenURI,
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(gcsstore.EnvEmulator, "")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", path)
	return path
}

// credentialErrors checks that every operation fails with a credentials
// error naming the key file and saying each of wants, never blaming
// Cloud Storage or the network, nor repeating the key.
func credentialErrors(t *testing.T, path, secret string, wants ...string) {
	t.Helper()
	for name, op := range ops(newBackend(t, "bucket", gcsstore.Settings{})) {
		err := op()
		var e *gcsstore.Error
		if !errors.As(err, &e) {
			t.Errorf("%s: want a *gcsstore.Error, got %T %v", name, err, err)
			continue
		}
		for _, want := range append([]string{path, "GOOGLE_APPLICATION_CREDENTIALS"}, wants...) {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: the error does not say %q: %v", name, want, err)
			}
		}
		if strings.Contains(err.Error(), "cannot reach Google Cloud Storage") || strings.Contains(err.Error(), "Check the network") {
			t.Errorf("%s: the error blames Cloud Storage: %v", name, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error repeats the key: %v", name, err)
		}
		if strings.Contains(err.Error(), "set GOOGLE_APPLICATION_CREDENTIALS to") {
			t.Errorf("%s: the error asks to set GOOGLE_APPLICATION_CREDENTIALS, which is set: %v", name, err)
		}
	}
}

// TestKeyFileNotAKey: GOOGLE_APPLICATION_CREDENTIALS naming a file that
// is missing, a directory, not JSON, or JSON of no known key type fails
// every operation naming the variable and the file and saying what is
// wrong with it (never its content), without any request.
func TestKeyFileNotAKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.json"), "does not exist"},
		{dir, "is a directory"},
		{write("garbage.json", "SECRETGARBAGE{not json"), "is not JSON"},
		{write("other.json", `{"type":"SECRETTYPE","private_key":"SECRETKEY"}`), "is not a key of a known type"},
		{write("untyped.json", `{"private_key":"SECRETKEY"}`), "is not a key of a known type: its \"type\" is no type"},
	} {
		t.Setenv(gcsstore.EnvEmulator, "")
		t.Setenv(gcsstore.EnvCredentials, c.path)
		credentialErrors(t, c.path, "SECRET", c.want)
	}
}

// TestMalformedKeyFile: a service-account key whose private_key is junk
// fails every operation saying the key file does not parse, naming the
// file (never its content), without any request.
func TestMalformedKeyFile(t *testing.T) {
	const junk = "-----BEGIN PRIVATE KEY-----\nSECRETJUNKnotakey\n-----END PRIVATE KEY-----\n"
	path := keyFile(t, junk, "https://oauth2.googleapis.com/token")
	credentialErrors(t, path, "SECRETJUNK", "does not parse")
	// Nothing of a token endpoint: none was asked.
	if err := ops(newBackend(t, "bucket", gcsstore.Settings{}))["open"](); err == nil || strings.Contains(err.Error(), "token endpoint") {
		t.Errorf("the error speaks of a token endpoint: %v", err)
	}
}

// TestUnreachableTokenEndpoint: a well-formed key whose token endpoint
// nothing listens on fails saying the token endpoint cannot be reached,
// naming the key file, not Cloud Storage.
func TestUnreachableTokenEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil { // nothing listens there now
		t.Fatal(err)
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	path := keyFile(t, pemKey, "http://"+addr+"/token")
	credentialErrors(t, path, pemKey[40:80], "token endpoint", "http://"+addr+"/token", "cannot be reached")
}
