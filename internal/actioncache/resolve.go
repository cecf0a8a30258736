package actioncache

// What a step declares that the world resolves: its tools, found on PATH
// and hashed; its caches, directories on this machine; its timeout.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/statcache"
)

// ToolError is a declared tool that cannot be used: Index is its place
// among the declared names, Err what FindTool said (a
// *ToolNotFoundError when it is not on PATH).
type ToolError struct {
	Index int
	Name  string
	Err   error
}

func (e *ToolError) Error() string { return fmt.Sprintf("cannot use the tool %q: %v", e.Name, e.Err) }
func (e *ToolError) Unwrap() error { return e.Err }

// FindTools resolves each named tool with FindTool, in order, and stops at
// the first that cannot be used (a *ToolError).
func FindTools(ctx context.Context, names []string, hash func(ctx context.Context, path string) (digest.Sum, int64, error)) (map[string]Tool, error) {
	tools := make(map[string]Tool, len(names))
	for i, name := range names {
		t, err := FindTool(ctx, name, hash)
		if err != nil {
			return nil, &ToolError{Index: i, Name: name, Err: err}
		}
		tools[name] = t
	}
	return tools, nil
}

// CacheDir holds the directories of a step's caches: beside the stat
// cache (statcache.EnvDir when set, else the user cache directory).
func CacheDir() (string, error) {
	if dir := os.Getenv(statcache.EnvDir); dir != "" {
		return filepath.Join(dir, "build-caches"), nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "terraform-provider-immutable", "build-caches"), nil
}

// CacheDirs maps each variable of caches (variable → cache name) to its
// cache's directory under CacheDir. The names are checked by CheckName.
func CacheDirs(caches map[string]string) (map[string]string, error) {
	base, err := CacheDir()
	if err != nil {
		return nil, err
	}
	dirs := make(map[string]string, len(caches))
	for v, name := range caches {
		dirs[v] = filepath.Join(base, name)
	}
	return dirs, nil
}

// CheckTimeout accepts a positive Go duration (90s, 10m).
func CheckTimeout(s string) error {
	d, err := time.ParseDuration(s)
	if err == nil && d <= 0 {
		err = errors.New("must be positive")
	}
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 90s or 10m: %v", s, err)
	}
	return nil
}
