package gc

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// TestEveryUntrustedKeyNamed: foreign files under releases/*/versions/
// and gc/leases/ stop the collection before anything is deleted, and one
// run names all of them, not one per run.
func TestEveryUntrustedKeyNamed(t *testing.T) {
	w := newWorld(t, store.New(mustFilestore(t)))
	bad := []string{"gc/leases/README", "releases/api/versions/notes/x.txt", "releases/web/versions/garbage"}
	for _, k := range bad {
		must(t, w.st.Backend().Create(ctx, k, strings.NewReader("mine\n")))
	}
	before := everything(t, w.st)
	_, err := Collect(ctx, w.st, policy, later())
	var u *UntrustedError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "nothing was deleted: 3 objects cannot be read or trusted") {
		t.Fatalf("three foreign files: %v; want an UntrustedError naming the three", err)
	}
	for _, k := range bad {
		if !strings.Contains(err.Error(), "\n  "+k+" (") {
			t.Errorf("the message does not name %s:\n%v", k, err)
		}
	}
	unchanged(t, w.st, before, "a collection stopped by foreign files")
}

// TestUntrustedKeysBounded: many foreign files are named up to
// maxUntrusted, the rest counted.
func TestUntrustedKeysBounded(t *testing.T) {
	w := newWorld(t, store.New(mustFilestore(t)))
	for i := range maxUntrusted + 5 {
		must(t, w.st.Backend().Create(ctx, fmt.Sprintf("%snote-%02d", store.LeasesPrefix, i), strings.NewReader("mine\n")))
	}
	before := everything(t, w.st)
	_, err := Collect(ctx, w.st, policy, later())
	msg := fmt.Sprint(err)
	if !strings.Contains(msg, fmt.Sprintf("%d objects cannot be read or trusted", maxUntrusted+5)) || !strings.Contains(msg, "\n  and 5 more\n") ||
		strings.Count(msg, "\n  "+store.LeasesPrefix) != maxUntrusted || !strings.Contains(msg, "note-19 (") || strings.Contains(msg, "note-20 (") {
		t.Fatalf("%d foreign leases: %v", maxUntrusted+5, err)
	}
	unchanged(t, w.st, before, "a collection stopped by foreign files")
}
