// Package actioncache is the action cache behind immutable_build: it runs
// build steps whose inputs are declared, and caches their outputs in the
// store by those inputs (as Bazel's action cache and Nix's store do): the
// key of a step is a pure function of what it declares, and an action
// record in the store maps a key to the output the step produced once. It
// has no dependency on Terraform.
package actioncache

import (
	"fmt"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// KeyVersion names the encoding of the key below; a change to it changes
// every key (and so rebuilds everything once), never silently reuses one.
const KeyVersion = "immutable-build-key-v1"

// Spec is everything a build step declares: what its key is made of.
type Spec struct {
	Command     []string              // argv; Command[0] is a tool name or a path inside the working directory
	Environment map[string]string     // variables set beside HOME, TMPDIR and PATH
	Tools       map[string]digest.Sum // program name → content digest of its binary
	Inputs      map[string]digest.Sum // name in the working directory → artifact digest
	Output      string                // relative path of the output in the working directory
	Salt        string                // changed on purpose to rebuild
	Platform    string                // GOOS/GOARCH; Key fills in this machine's when empty
}

// Platform is this process's operating system and architecture, which
// joins every key: a binary built here is not one built elsewhere.
func Platform() string { return runtime.GOOS + "/" + runtime.GOARCH }

// Component names of a key's parts, as the plan shows them.
const (
	PartCommand  = "command"
	PartOutput   = "output"
	PartPlatform = "platform"
	PartSalt     = "salt"
	PartEnv      = "env/"   // + variable name
	PartTool     = "tool/"  // + program name
	PartInput    = "input/" // + input name
)

// netstring encodes each string with its length, so no two lists of
// strings share an encoding ("a b" + "c" is not "a" + "b c").
func netstring(ss ...string) []byte {
	var b strings.Builder
	for _, s := range ss {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
		b.WriteByte(',')
	}
	return []byte(b.String())
}

// Parts returns the key's components, each mapped to a digest: input
// artifacts and tools by their own digests (so the plan shows the same
// digest as the artifact it came from), everything else by the sha256 of
// its netstring encoding. Nothing absolute, no time, no mode of the
// working tree takes part.
func (s *Spec) Parts() map[string]digest.Sum {
	platform := s.Platform
	if platform == "" {
		platform = Platform()
	}
	parts := map[string]digest.Sum{
		PartCommand:  digest.Bytes(netstring(s.Command...)),
		PartOutput:   digest.Bytes(netstring(s.Output)),
		PartPlatform: digest.Bytes(netstring(platform)),
	}
	if s.Salt != "" {
		parts[PartSalt] = digest.Bytes(netstring(s.Salt))
	}
	for k, v := range s.Environment {
		parts[PartEnv+k] = EnvPart(k, v)
	}
	for k, v := range s.Tools {
		parts[PartTool+k] = v
	}
	for k, v := range s.Inputs {
		parts[PartInput+k] = v
	}
	return parts
}

// EnvPart is the environment variable name=value's part of a build key:
// the sha256 of the netstring of name and value.
func EnvPart(name, value string) digest.Sum { return digest.Bytes(netstring(name, value)) }

// KeyOf is the key of a set of parts: the sha256 of the version line, then
// one line per part, sorted by component, "<component> sha256:<hex>".
func KeyOf(parts map[string]digest.Sum) digest.Sum {
	names := make([]string, 0, len(parts))
	for k := range parts {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(KeyVersion + "\n")
	for _, k := range names {
		b.WriteString(k + " " + parts[k].String() + "\n")
	}
	return digest.Bytes([]byte(b.String()))
}

// Key is the spec's key.
func (s *Spec) Key() digest.Sum { return KeyOf(s.Parts()) }

// ChangedParts names, sorted, the key components that differ between
// planned (component → digest as written, "sha256:<hex>") and now: changed,
// added or gone.
func ChangedParts(planned map[string]string, now map[string]digest.Sum) []string {
	var changed []string
	for k, v := range now {
		if s, ok := planned[k]; !ok || s != v.String() {
			changed = append(changed, k)
		}
	}
	for k := range planned {
		if _, ok := now[k]; !ok {
			changed = append(changed, k)
		}
	}
	sort.Strings(changed)
	return changed
}

// Reserved is the directory inside the working directory that holds HOME
// and TMPDIR; no input or output may use it.
const Reserved = ".build"

// Fixed are the variables the provider sets itself.
var Fixed = []string{"HOME", "TMPDIR", "PATH"}

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]*$`)
	envRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// CheckName checks an input or tool name: one path component of letters,
// digits and . _ + -, not starting with a dot or a dash.
func CheckName(what, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%s name %q must be one path component of letters, digits and . _ + -, not starting with a dot or a dash", what, name)
	}
	return nil
}

// CheckNoNUL refuses a string holding a NUL byte, which no argument or
// variable of a process can hold.
func CheckNoNUL(s string) error {
	if strings.ContainsRune(s, 0) {
		return fmt.Errorf("holds a NUL byte, which no program argument or variable can carry")
	}
	return nil
}

// CheckEnv checks a variable name.
func CheckEnv(name string) error {
	if !envRE.MatchString(name) {
		return fmt.Errorf("variable name %q must be letters, digits and underscores, not starting with a digit", name)
	}
	for _, f := range Fixed {
		if name == f {
			return fmt.Errorf("%s is set by the provider (HOME and TMPDIR inside the working directory, PATH to the declared tools) and cannot be declared", name)
		}
	}
	return nil
}

// CheckRel checks a relative path inside the working directory (the
// output, or a command run from an input): clean, slash-separated, not
// absolute, not leaving the directory, not the directory itself, not in
// the reserved directory.
func CheckRel(p string) error {
	switch {
	case p == "" || p == ".":
		return fmt.Errorf("must name a path inside the working directory, not the directory itself")
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("%q holds a NUL byte, which no path can", p)
	case strings.HasPrefix(p, "/") || strings.Contains(p, `\`):
		return fmt.Errorf("%q must be a relative, slash-separated path inside the working directory", p)
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." {
			return fmt.Errorf("%q must be a clean relative path (no empty, . or .. components)", p)
		}
	}
	if first, _, _ := strings.Cut(p, "/"); first == Reserved {
		return fmt.Errorf("%q is inside %s/, which holds HOME and TMPDIR", p, Reserved)
	}
	return nil
}
