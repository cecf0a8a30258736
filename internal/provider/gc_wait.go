package provider

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// A publish that reuses objects a garbage collection is deleting waits
// for it (store.Hold), up to store.MarkerTTL: a collection killed part-way
// leaves its marker, and the apply then shows only "Still creating…" for
// up to two minutes. Terraform shows nothing a provider logs below its
// TF_LOG level, and no progress of an operation: a diagnostic, shown when
// the operation ends, is the one way to tell the user why it took so
// long and what to do. Each Create watches its context's waits
// (watchGCWaits) and ends with a warning for each one worth telling.

// gcWaitNotable is the shortest wait for a collection that finished that
// is told: shorter ones are a collection doing its work.
const gcWaitNotable = 5 * time.Second

type gcWaitsKey struct{}

// gcWaits are the waits for collectors' markers of one operation.
type gcWaits struct {
	mu    sync.Mutex
	waits []store.MarkerWait
}

// watchGCWaits returns a context whose waits for collectors' markers are
// recorded, and a function that adds a warning to diags for each one
// (call it when the operation ends: defer told(&resp.Diagnostics)).
func watchGCWaits(ctx context.Context) (context.Context, func(diags *diag.Diagnostics)) {
	w := &gcWaits{}
	return context.WithValue(ctx, gcWaitsKey{}, w), func(diags *diag.Diagnostics) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, mw := range w.waits {
			if mw.Expired || mw.Waited >= gcWaitNotable {
				diags.AddWarning(gcWaitWarning(mw))
			}
		}
	}
}

// gcWaited is the store's Waited: it records the wait in the operation's
// context, and logs it.
func gcWaited(ctx context.Context, mw store.MarkerWait) {
	tflog.Warn(ctx, "waited for a garbage collection deleting objects this apply reuses", map[string]any{
		"marker": mw.Marker, "waited": mw.Waited.Round(time.Second).String(), "interrupted": mw.Expired,
	})
	if w, ok := ctx.Value(gcWaitsKey{}).(*gcWaits); ok {
		w.mu.Lock()
		w.waits = append(w.waits, mw)
		w.mu.Unlock()
	}
}

// gcWaitWarning is the warning's summary and detail.
func gcWaitWarning(mw store.MarkerWait) (summary, detail string) {
	waited := mw.Waited.Round(time.Second)
	if waited == 0 {
		waited = mw.Waited.Round(time.Millisecond)
	}
	if mw.Expired {
		return "Waited for an interrupted garbage collection", fmt.Sprintf(
			"This apply reuses objects that a garbage collection (terraform-provider-immutable gc) had marked for deletion "+
				"in %s, so it waited %s for that collection. The collection was interrupted (killed, or its machine lost): "+
				"its marker stayed until it expired at %s, after which the collection can delete nothing more, so the apply "+
				"went on with what it found, and what it published is complete. Applies no longer wait for this marker. "+
				"Run the collection again (terraform-provider-immutable gc, with the same --store) to finish what it started "+
				"and remove the marker; a collection stopped part-way leaves the store consistent.",
			mw.Marker, waited, mw.Expires.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	return "Waited for a garbage collection", fmt.Sprintf(
		"This apply reuses objects that a garbage collection (terraform-provider-immutable gc) was deleting under the marker "+
			"%s, so it waited %s for that collection to finish (at most %s) before it checked what the store holds; "+
			"what it published is complete. To avoid such waits, run the collection when few applies run, or with a "+
			"smaller --batch-size.", mw.Marker, waited, store.MarkerTTL)
}
