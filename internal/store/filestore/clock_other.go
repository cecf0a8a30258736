//go:build !linux && !freebsd

package filestore

import (
	"context"
	"time"
)

// StoreTime implements store.Clock (no UTIME_NOW here): a local filesystem's objects are
// stamped by this machine's clock.
func (b *Backend) StoreTime(context.Context) (time.Time, error) { return time.Now(), nil }
