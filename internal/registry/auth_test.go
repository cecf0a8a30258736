package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

const (
	testUser     = "ci-bot"
	testPassword = "pa55-Xq7-not-for-logs"
)

func authRegistry(t *testing.T) *testserver.Registry {
	t.Helper()
	return testserver.StartRegistry(t, testserver.RegistryOptions{Users: map[string]string{testUser: testPassword}})
}

// TestCredentialsFromOptions: the registry's credentials from Options
// push; a wrong password or none is refused with a message that says to
// check the credentials, names the registry and holds no password.
func TestCredentialsFromOptions(t *testing.T) {
	noDockerConfig(t)
	srv := authRegistry(t)
	img := buildImage(t, nil, linuxAMD64, "a")
	ctx := context.Background()
	good := newClient(t, Options{Credentials: []Credential{{Registry: srv.Host, Username: testUser, Password: testPassword}}})
	if _, err := good.Push(ctx, srv.Host+"/app", img.Image, nil, img.open); err != nil {
		t.Fatal(err)
	}
	if _, err := good.Resolve(ctx, srv.Host+"/app@"+img.Digest.String()); err != nil {
		t.Fatal(err)
	}

	for _, o := range []Options{
		{Credentials: []Credential{{Registry: srv.Host, Username: testUser, Password: testPassword + "-wrong"}}},
		{},
	} {
		_, err := newClient(t, o).Push(ctx, srv.Host+"/app", img.Image, nil, img.open)
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindUnauthorized || e.Status != 401 {
			t.Fatalf("err %#v, want a 401 *Error", err)
		}
		msg := err.Error()
		for _, want := range []string{srv.Host + "/app", "docker login " + srv.Host, "username and password in the provider's registry block"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q lacks %q", msg, want)
			}
		}
		if strings.Contains(msg, testPassword) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), testPassword) {
			t.Errorf("message holds the password: %q", msg)
		}
	}

	_, err := newClient(t, Options{}).Resolve(ctx, srv.Host+"/app@"+img.Digest.String())
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindUnauthorized || e.Op != OpResolve {
		t.Errorf("anonymous Resolve: %v, want a 401", err)
	}
}

// TestCredentialsFromDockerConfig: with none in Options, the credentials
// come from DOCKER_CONFIG's config.json, as docker login leaves them, or
// from the credential helper it names.
func TestCredentialsFromDockerConfig(t *testing.T) {
	srv := authRegistry(t)
	img := buildImage(t, nil, linuxAMD64, "a")
	ctx := context.Background()

	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	auth := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))
	writeFile(t, filepath.Join(dir, "config.json"), fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, srv.Host, auth), 0o600)
	if _, err := newClient(t, Options{}).Push(ctx, srv.Host+"/app", img.Image, nil, img.open); err != nil {
		t.Fatalf("with config.json auths: %v", err)
	}

	// A credential helper: docker-credential-<name> on PATH, asked with
	// the server on stdin.
	bin := t.TempDir()
	writeFile(t, filepath.Join(bin, "docker-credential-immutabletest"), fmt.Sprintf(`#!/bin/sh
read server
[ "$1" = get ] && [ "$server" = %q ] || exit 1
printf '{"ServerURL":"%%s","Username":%q,"Secret":%q}' "$server"
`, srv.Host, testUser, testPassword), 0o755)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	writeFile(t, filepath.Join(dir, "config.json"), fmt.Sprintf(`{"credHelpers":{%q:"immutabletest"}}`, srv.Host), 0o600)
	if _, err := newClient(t, Options{}).Resolve(ctx, srv.Host+"/app@"+img.Digest.String()); err != nil {
		t.Fatalf("with a credential helper: %v", err)
	}

	// Options win over Docker's config.
	_, err := newClient(t, Options{Credentials: []Credential{{Registry: srv.Host, Username: testUser, Password: "wrong-one"}}}).
		Resolve(ctx, srv.Host+"/app@"+img.Digest.String())
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindUnauthorized {
		t.Errorf("Options' wrong password: %v, want a 401", err)
	}
}

// TestCredentialsChecked: a credential without a registry, or two for one
// registry, is refused by New, naming the registry and not the password.
func TestCredentialsChecked(t *testing.T) {
	for _, creds := range [][]Credential{
		{{Registry: "", Username: "u", Password: testPassword}},
		{{Registry: "docker.io", Username: "u", Password: testPassword}, {Registry: "index.docker.io", Username: "v", Password: testPassword}},
	} {
		_, err := New(Options{Credentials: creds})
		if err == nil || strings.Contains(err.Error(), testPassword) {
			t.Errorf("New(%d credentials): %v, want a refusal without the password", len(creds), err)
		}
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
