package gcsstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/versions"
)

// TestEmulatorHostRefused: a STORAGE_EMULATOR_HOST that is neither
// host:port nor http(s)://host[:port] is refused at New, naming the
// variable, what is wrong and the forms it takes, instead of failing
// requests in a way that blames the network or the bucket; user info in
// it is never shown.
func TestEmulatorHostRefused(t *testing.T) {
	for _, c := range []struct{ value, why string }{
		{"ftp://x:1", `the scheme "ftp"`},
		{" 127.0.0.1:4443", "spaces"},
		{"127.0.0.1:4443 ", "spaces"},
		{"127.0.0.1:4443/storage/v1", `the path "/storage/v1"`},
		{"http://127.0.0.1:4443/storage/v1", `the path "/storage/v1"`},
		{"http://user:SECRETPW@127.0.0.1:1", "user info"},
		{"user:SECRETPW@127.0.0.1:1", "user info"},
		{"http://127.0.0.1:4443?x=1", "query"},
		{"127.0.0.1", "no port"},
		{"127.0.0.1:99999", "not one of 1-65535"},
		{"http://:4443", "no host"},
	} {
		t.Setenv(gcsstore.EnvEmulator, c.value)
		b, err := gcsstore.New("bucket", "", gcsstore.Settings{MaxAttempts: 1})
		var ee *gcsstore.EmulatorError
		if !errors.As(err, &ee) {
			t.Errorf("%q: want an *EmulatorError at New, got %v, %v", c.value, b, err)
			continue
		}
		for _, want := range []string{gcsstore.EnvEmulator, c.why, "host:port", "http://host[:port]", "nothing was sent"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q: the error does not say %q: %v", c.value, want, err)
			}
		}
		if strings.Contains(err.Error(), "SECRETPW") {
			t.Errorf("%q: the error shows the password: %v", c.value, err)
		}
	}
}

// TestEmulatorHostForms: host:port, http://host:port and
// https://host[:port] (a trailing "/" allowed) are taken; a bare
// host:port is plain HTTP.
func TestEmulatorHostForms(t *testing.T) {
	r := startRecorder(t)
	host := strings.TrimPrefix(r.url, "http://")
	for _, v := range []string{host, r.url, r.url + "/", strings.ToUpper("http") + "://" + host} {
		t.Setenv(gcsstore.EnvEmulator, v)
		if _, err := newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 1}).Exists(context.Background(), "x"); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	for _, v := range []string{"https://storage.example:8443", "https://storage.example", "[::1]:4443"} {
		t.Setenv(gcsstore.EnvEmulator, v)
		if _, err := gcsstore.New("bucket", "", gcsstore.Settings{}); err != nil {
			t.Errorf("%q refused: %v", v, err)
		}
	}
}

// TestPrefixTooLong: a prefix with which the store's longest keys would
// pass Cloud Storage's 1024 bytes of object name is refused at New,
// naming the most it takes; one of that length is taken, and its longest
// key fits.
func TestPrefixTooLong(t *testing.T) {
	t.Setenv(gcsstore.EnvEmulator, "127.0.0.1:1")
	if gcsstore.MaxPrefixLength != 1024-store.MaxKeyLength-1 || gcsstore.MaxPrefixLength < 600 {
		t.Fatalf("MaxPrefixLength %d", gcsstore.MaxPrefixLength)
	}
	fits := "a/" + strings.Repeat("p", gcsstore.MaxPrefixLength-2)
	long := fits + "p"
	_, err := gcsstore.New("bucket", long, gcsstore.Settings{})
	var pe *gcsstore.PrefixError
	if !errors.As(err, &pe) {
		t.Fatalf("a prefix of %d bytes: want a *PrefixError, got %v", len(long), err)
	}
	for _, want := range []string{fmt.Sprintf("is %d bytes long", len(long)), fmt.Sprintf("at most %d are allowed", gcsstore.MaxPrefixLength),
		"1024 bytes", "`store`"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	b, err := gcsstore.New("bucket", fits, gcsstore.Settings{})
	if err != nil {
		t.Fatalf("a prefix of %d bytes: %v", len(fits), err)
	}
	name := strings.Repeat("n", store.MaxNameLength)
	version := "1.0.0-" + strings.Repeat("a", versions.MaxLength-len("1.0.0-"))
	if n := len(b.ObjectKey(store.IndexKey(name, digest.Bytes(nil), version))); n != gcsstore.MaxObjectName {
		t.Errorf("the longest key under the longest prefix is a name of %d bytes, want %d", n, gcsstore.MaxObjectName)
	}
}

// TestObjectNameTooLong: a key whose object name is over 1024 bytes is
// refused before anything is sent.
func TestObjectNameTooLong(t *testing.T) {
	r := startRecorder(t)
	b := newBackend(t, "bucket", gcsstore.Settings{MaxAttempts: 1})
	err := b.Create(context.Background(), strings.Repeat("k", gcsstore.MaxObjectName), strings.NewReader("x"))
	if err == nil || !strings.Contains(err.Error(), "at most 1024 bytes") || !strings.Contains(err.Error(), "nothing was sent") {
		t.Fatalf("want the name refused, got %v", err)
	}
	if len(r.uris) != 0 {
		t.Errorf("requests sent: %q", r.uris)
	}
}
