package release

import (
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// TestTombstoneSize: TombstoneSize, which the collector counts the room a
// tombstone takes by, is the size TombstoneBody writes for a release
// digest.
func TestTombstoneSize(t *testing.T) {
	body := TombstoneBody(digest.Bytes([]byte("a release\n")).String())
	if len(body) != TombstoneSize || body[len(body)-1] != '\n' {
		t.Fatalf("a tombstone is %q (%d bytes); TombstoneSize is %d", body, len(body), TombstoneSize)
	}
}
