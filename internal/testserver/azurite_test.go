package testserver

import (
	"strings"
	"testing"
	"time"
)

// TestAzuriteCrashFailsAtOnce: a server that exits before it listens
// fails the start at once, with its log, not at the readiness deadline.
func TestAzuriteCrashFailsAtOnce(t *testing.T) {
	start := time.Now()
	_, _, err := StartSharedAzurite("/bin/false")
	if err == nil || !strings.Contains(err.Error(), "exited before listening") {
		t.Fatalf("want an exit before listening, got %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v to notice", d)
	}
}
