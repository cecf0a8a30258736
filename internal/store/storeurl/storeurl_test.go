package storeurl

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	wd, _ := filepath.Abs(".")
	for raw, want := range map[string]string{
		"file://.immutable":     "file://" + filepath.Join(wd, ".immutable"),
		"file:///var/lib/x":     "file:///var/lib/x",
		"file://localhost/tmp/": "file:///tmp",
		"s3://bucket":           "s3://bucket",
		"s3://bucket/a/b/":      "s3://bucket/a/b",
	} {
		s, err := Open(context.Background(), raw, Options{})
		if err != nil || s.String() != want {
			t.Errorf("Open(%q) = %v, %v; want %s", raw, s, err, want)
		}
	}
	for raw, msg := range map[string]string{
		"ftp://host/x":  `unknown scheme "ftp://"`,
		"/just/a/path":  "not a store URL",
		"file://":       "names no directory",
		"s3://":         "names no bucket",
		"s3://bkt/../x": "unclean prefix",
	} {
		if _, err := Open(context.Background(), raw, Options{}); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Open(%q) error = %v; want it to say %q", raw, err, msg)
		}
	}
}

// TestRefusesCredentials: a URL with user info is refused, saying where
// credentials go, and no message repeats the key or the secret — also
// when the secret holds a "/" (AWS secret keys may) or the scheme is
// unknown.
func TestRefusesCredentials(t *testing.T) {
	const key, secret = "AKIAEXAMPLEKEYID", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRET"
	for raw, want := range map[string][]string{
		"s3://" + key + ":" + secret + "@bucket/p":          {"holds user info", `"s3://bucket/p"`, "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "`s3.profile`", "SSO", "role"},
		"s3://" + key + ":" + secret + "@bucket":            {"holds user info", `"s3://bucket"`},
		"s3://" + secret + "@bucket/p":                      {"holds user info", "cannot be told apart"}, // or a prefix with "@"
		"s3://" + key + "@bucket/p":                         {"holds user info"},
		"ftp://" + key + ":" + secret + "@host/x":           {"unknown scheme", `"ftp://REDACTED@host/x"`},
		"file://" + key + ":" + secret + "@localhost/tmp/x": {"holds user info", `"file:///tmp/x"`},
		key + ":" + secret + "@bucket/p":                    {"not a store URL", "REDACTED@bucket/p"},
		"s3:/" + key + ":" + secret + "@bucket/p":           {"not a store URL", "REDACTED@bucket/p"},
		key + ":" + secret + "@bucket://p":                  {"not a store URL", "REDACTED@bucket://p"},
		"s3://" + key + ":" + secret + "@bucket/../../p":    {"holds user info"},
	} {
		_, err := Open(context.Background(), raw, Options{})
		if err == nil {
			t.Errorf("Open(%q) accepted a URL with credentials", raw)
			continue
		}
		msg := err.Error()
		var uie *UserInfoError
		if strings.HasPrefix(raw, "s3://") && !errors.As(err, &uie) {
			t.Errorf("Open(%q) error is not a *UserInfoError", raw)
		}
		if strings.Contains(msg, key) || strings.Contains(msg, "wJalr") || strings.Contains(msg, "K7MDENG") || strings.Contains(msg, "CYSECRET") {
			t.Errorf("Open(%q) error repeats the credentials: %s", raw, msg)
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("Open(%q) error = %s; want it to say %s", raw, msg, w)
			}
		}
	}
}

// TestRefusesTilde: nothing expands "~" in a store URL; a store would be
// made in a directory named "~", so the URL is refused with the fix.
func TestRefusesTilde(t *testing.T) {
	for raw, want := range map[string]string{
		"file://~/x":     `store = "file://${pathexpand("~/x")}"`,
		"file://~":       `store = "file://${pathexpand("~")}"`,
		"file://~bob/x":  "absolute path",
		"file://~/a/b/c": "file://$HOME/a/b/c",
	} {
		_, err := Open(context.Background(), raw, Options{})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `starts with "~"`) {
			t.Errorf("Open(%q) error = %v; want it to say %s", raw, err, want)
		}
	}
	// A "~" further in is an ordinary name.
	if _, err := Open(context.Background(), "file:///tmp/~x", Options{}); err != nil {
		t.Errorf("Open(file:///tmp/~x): %v", err)
	}
}

// TestAtInPrefixIsNotCorrected: an "@" after a "/" may be part of a prefix
// or of a secret holding "/": refused, without suggesting a "fixed" URL
// that would name another bucket.
func TestAtInPrefixIsNotCorrected(t *testing.T) {
	_, err := Open(context.Background(), "s3://bucket/team@2024", Options{})
	var uie *UserInfoError
	if !errors.As(err, &uie) || uie.Fixed != "" || strings.Contains(err.Error(), `"s3://2024"`) || !strings.Contains(err.Error(), "cannot be told apart") {
		t.Fatalf("got %v", err)
	}
}

// TestBucketNames: an endpoint written where the bucket goes is refused
// with the setting it belongs in.
func TestBucketNames(t *testing.T) {
	for raw, want := range map[string]string{
		"s3://localhost:9000/bucket": "s3.endpoint",
		"s3://My_Bucket/p":           "not a valid bucket name",
		"s3://ab":                    "not a valid bucket name",
	} {
		if _, err := Open(context.Background(), raw, Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q) = %v, want it to say %s", raw, err, want)
		}
	}
}

// TestURLOddities: user info without a password in a file URL, and
// queries, fragments or escapes in an s3 URL, are refused instead of being
// taken as a directory or a key prefix.
func TestURLOddities(t *testing.T) {
	for raw, want := range map[string]string{
		"file://AKIAKEY@localhost/x": "holds user info",
		"s3://bucket/p?secret=x":     "no query",
		"s3://bucket/p#frag":         "no query",
		"s3://bucket/sp%20ace":       "escapes",
	} {
		_, err := Open(context.Background(), raw, Options{})
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "secret=x") {
			t.Errorf("Open(%q) = %v, want it to say %s (and not repeat the query)", raw, err, want)
		}
	}
	if _, err := Open(context.Background(), "file://./a@b", Options{}); err != nil {
		t.Fatalf("a directory with @ in its name: %v", err)
	}
}

// TestOpenAzure: azblob://ACCOUNT/CONTAINER/PREFIX opens an Azure store;
// names Azure refuses, the portal's https:// address, a SAS in the URL
// and user info are refused saying what to write, never repeating a
// secret.
func TestOpenAzure(t *testing.T) {
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	for raw, want := range map[string]string{
		"azblob://acct/releases":        "azblob://acct/releases",
		"azblob://acct01/my-store/a/b/": "azblob://acct01/my-store/a/b",
	} {
		s, err := Open(context.Background(), raw, Options{})
		if err != nil || s.String() != want {
			t.Errorf("Open(%q) = %v, %v; want %s", raw, s, err, want)
		}
	}
	const sig = "sv=2024-01-01&sig=SECRETSIGNATURE"
	for raw, msg := range map[string]string{
		"azblob://acct":                                     "not a valid container name",
		"azblob://Acct/c01":                                 `the storage account "Acct"`,
		"azblob://acct/My_Container":                        "not a valid container name",
		"azblob://acct/a--b":                                "not a valid container name",
		"azblob://acct/store/../x":                          "unclean prefix",
		"azblob://acct.blob.core.windows.net/store/p":       "write azblob://acct/store/p",
		"https://acct.blob.core.windows.net/store/p":        "write the store as azblob://acct/store/p",
		"https://acct.blob.core.windows.net/store/p?" + sig: "takes no query",
		"azblob://acct/store?" + sig:                        "SharedAccessSignature",
		"azblob://user:SECRETSIGNATURE@acct/store":          "holds user info",
		"azblob://SECRETSIGNATURE@acct/store":               "holds user info",
		"azblob://acct/store/x%2F":                          "takes no query",
		"https://example.com/store/p":                       `unknown scheme "https://"`,
	} {
		_, err := Open(context.Background(), raw, Options{})
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Open(%q) error = %v; want it to say %q", raw, err, msg)
		}
		if err != nil && strings.Contains(err.Error(), "SECRETSIGNATURE") {
			t.Errorf("Open(%q) repeats the secret: %v", raw, err)
		}
	}
}

// TestOpenGCS: gs://BUCKET/PREFIX opens a Cloud Storage store, contacting
// nothing; a bad bucket, an unclean prefix, a query or credentials are
// refused, and no message repeats what came before an "@".
func TestOpenGCS(t *testing.T) {
	t.Setenv("STORAGE_EMULATOR_HOST", "") // credentials are not looked for before the first request either way
	for raw, want := range map[string]string{
		"gs://bucket":             "gs://bucket",
		"gs://my_bucket.e.g/a/b/": "gs://my_bucket.e.g/a/b",
	} {
		s, err := Open(context.Background(), raw, Options{})
		if err != nil || s.String() != want {
			t.Errorf("Open(%q) = %v, %v; want %s", raw, s, err, want)
		}
	}
	for raw, msg := range map[string]string{
		"gs://":                      "names no bucket",
		"gs://Bucket/x":              "not a valid Cloud Storage bucket name",
		"gs://-b/x":                  "not a valid Cloud Storage bucket name",
		"gs://bkt/a//b":              "unclean prefix",
		"gs://bkt/x?token=s3cr3t":    "takes no query",
		"gs://key:s3cr3t@bucket/x":   "cannot hold credentials",
		"gs://bkt/x/s3cr3t@bucket/y": "cannot hold credentials",
	} {
		_, err := Open(context.Background(), raw, Options{})
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Open(%q) error = %v; want it to say %q", raw, err, msg)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("Open(%q): the error repeats the secret: %v", raw, err)
		}
	}
}

// TestOddCharacters: white space at either end of a store URL or of a
// bucket or prefix segment, control characters, and backslashes in a
// bucket or prefix are refused for every scheme, quoting the value and
// saying what to write, instead of naming a new, empty store.
func TestOddCharacters(t *testing.T) {
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	t.Setenv("STORAGE_EMULATOR_HOST", "")
	for raw, wants := range map[string][]string{
		"gs://rel/web ":              {`"gs://rel/web "`, "white space at its start or end", `write "gs://rel/web"`},
		"azblob://acct/rel/web ":     {`"azblob://acct/rel/web "`, `write "azblob://acct/rel/web"`},
		"s3://rel/web ":              {`"s3://rel/web "`, `write "s3://rel/web"`},
		"file://.immutable ":         {`"file://.immutable "`, `write "file://.immutable"`},
		" gs://rel/web":              {`" gs://rel/web"`, `write "gs://rel/web"`},
		"gs://rel/web\n":             {`"gs://rel/web\n"`, `write "gs://rel/web"`},
		"gs://rel/web /x":            {`"gs://rel/web /x"`, `the segment "web "`, "Remove the white space"},
		"azblob://acct/rel/ web":     {`the segment " web"`},
		"s3://rel/web /":             {`the segment "web "`},
		"gs://rel/we\tb":             {`"gs://rel/we\tb"`, "a tab", "Remove it"},
		"s3://rel/we\x1bb":           {`"s3://rel/we\u001Bb"`, "Remove it"},
		"azblob://acct/rel/a\u202Eb": {`"azblob://acct/rel/a\u202Eb"`},
		`gs://rel/web\x`:             {`"gs://rel/web\\x"`, "backslash", `Write "gs://rel/web/x"`},
		`azblob://acct/rel\web`:      {"backslash", `Write "azblob://acct/rel/web"`},
		`s3://rel/a\b`:               {"backslash", `Write "s3://rel/a/b"`},
		"s3://k:se cret /x@rel/web ": {`"s3://REDACTED@rel/web "`},
	} {
		_, err := Open(context.Background(), raw, Options{})
		if err == nil {
			t.Errorf("Open(%q) accepted it", raw)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Open(%q) = %v; want it to say %s", raw, err, w)
			}
		}
		if strings.Contains(err.Error(), "cret") {
			t.Errorf("Open(%q) repeats the secret: %v", raw, err)
		}
	}
	for _, raw := range []string{"gs://rel/my web/x", "s3://rel/a b", "file://./a b", `file://./a\b`} {
		if _, err := Open(context.Background(), raw, Options{}); err != nil {
			t.Errorf("Open(%q): %v", raw, err)
		}
	}
}

// TestErrorsNameEveryScheme: a value that is no URL at all is answered
// with how to write each scheme Open accepts.
func TestErrorsNameEveryScheme(t *testing.T) {
	for _, raw := range []string{"/just/a/path", "bucket/prefix"} {
		_, err := Open(context.Background(), raw, Options{})
		if err == nil {
			t.Fatalf("Open(%q) accepted it", raw)
		}
		for _, s := range Schemes {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("Open(%q) = %v; want it to name %s", raw, err, s)
			}
		}
	}
}
