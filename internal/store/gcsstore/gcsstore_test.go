package gcsstore_test

import (
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/storetest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

const prefix = "some/prefix"

// newBackend is a backend on bucket at whatever STORAGE_EMULATOR_HOST
// names now.
func newBackend(t *testing.T, bucket string, s gcsstore.Settings) *gcsstore.Backend {
	t.Helper()
	b, err := gcsstore.New(bucket, prefix, s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// behind is a backend on the same bucket reached through endpoint (a
// proxy) instead of the server; STORAGE_EMULATOR_HOST is read when the
// backend is made, and is the server's again afterwards.
func behind(t *testing.T, srv *testserver.GCS, endpoint, bucket string, s gcsstore.Settings) *gcsstore.Backend {
	t.Helper()
	t.Setenv(gcsstore.EnvEmulator, endpoint)
	b := newBackend(t, bucket, s)
	srv.Env(t)
	return b
}

func TestConformance(t *testing.T) {
	srv := testserver.StartGCS(t)
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Backend { return newBackend(t, srv.NewBucket(t), gcsstore.Settings{}) },
		LoseAnswer: func(t *testing.T, b store.Backend, key string) store.Backend {
			gb, ok := b.(*gcsstore.Backend)
			if !ok {
				t.Fatalf("backend is a %T, not a *gcsstore.Backend", b)
			}
			proxy := srv.Faulty(t, loseFirstWrite())
			return behind(t, srv, proxy.Endpoint, gb.Bucket(), gcsstore.Settings{})
		},
		Tamper: func(t *testing.T, b store.Backend, key string, data []byte) {
			gb, ok := b.(*gcsstore.Backend)
			if !ok {
				t.Fatalf("backend is a %T, not a *gcsstore.Backend", b)
			}
			srv.Put(t, gb.Bucket(), gb.ObjectKey(key), data)
		},
	})
}

// loseFirstWrite loses the answer of the first request that makes an
// object visible (the proxy serves one backend, which writes one key): the
// object is stored, and its writer cannot know. (Not by tries: every
// chunk of a resumable upload has the same method, path and query.) The
// proxy calls it under its lock.
func loseFirstWrite() testserver.FaultFunc {
	var lost bool
	return func(c testserver.Call, _ int) testserver.Fault {
		if !lost && testserver.MakesVisible(c) {
			lost = true
			return testserver.LoseAnswer
		}
		return testserver.Pass
	}
}
