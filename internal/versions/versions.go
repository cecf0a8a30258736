// Package versions is the version logic of releases: strict semver
// parsing, bumping, ordering and selection by constraint, on
// hashicorp/go-version (the library Terraform itself uses for provider and
// module constraints, so `~> 1.4` means here what it means there).
//
// The package has no dependency on Terraform.
package versions

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	goversion "github.com/hashicorp/go-version"
)

// semverRe is MAJOR.MINOR.PATCH with an optional pre-release, no "v"
// prefix and no build metadata: the exact form stored as a key, so that
// one version has one spelling.
var semverRe = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

// MaxLength bounds a release version. A version is a file name in the
// store (releases/<name>/versions/<version>), and file systems refuse names
// over 255 bytes: a longer version would pass the plan and fail the apply.
const MaxLength = 128

// MaxNumber bounds each of MAJOR, MINOR and PATCH: every consumer can hold
// it exactly (it is below 2^53, so also a JSON or Terraform number), and
// bumping it cannot overflow.
const MaxNumber = 999_999_999_999_999

// checkNumbers checks the numeric parts of a version's core (the part
// before any pre-release), in: the version as written, for messages.
func checkNumbers(in string, parts []string) error {
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || n > MaxNumber {
			return fmt.Errorf("%q has the number %s as its %s part, which is too large: each number of a version must be at most %d",
				in, p, partNames[i], uint64(MaxNumber))
		}
	}
	return nil
}

var partNames = []string{"MAJOR", "MINOR", "PATCH"} // callers pass at most three parts

// Parse reads a release version. It accepts only the canonical form.
func Parse(s string) (*goversion.Version, error) {
	if len(s) > MaxLength {
		return nil, fmt.Errorf("the version is %d characters long; at most %d are allowed (a version is a file name in the store): shorten its pre-release part", len(s), MaxLength)
	}
	m := semverRe.FindStringSubmatch(s)
	if m == nil {
		hint := ""
		switch {
		case strings.HasPrefix(s, "v"):
			hint = fmt.Sprintf(" (drop the \"v\": %q)", strings.TrimPrefix(s, "v"))
		case strings.Contains(s, "+"):
			hint = " (build metadata after \"+\" is not allowed: it does not order versions)"
		case strings.Count(s, ".") < 2:
			hint = " (write all three parts, e.g. \"1.4.0\")"
		}
		return nil, fmt.Errorf("%q is not a release version: use semantic versioning MAJOR.MINOR.PATCH with an optional pre-release, such as \"1.4.2\" or \"2.0.0-rc.1\"%s", s, hint)
	}
	if err := checkNumbers(s, m[1:4]); err != nil {
		return nil, err
	}
	if pre := strings.TrimPrefix(m[4], "-"); pre != "" {
		for _, id := range strings.Split(pre, ".") {
			if len(id) > 1 && id[0] == '0' && strings.Trim(id, "0123456789") == "" {
				fixed := strings.TrimLeft(id, "0")
				if fixed == "" {
					fixed = "0"
				}
				return nil, fmt.Errorf("%q has the numeric pre-release part %q with a leading zero, which semantic versioning does not allow "+
					"(it would be a second spelling of %q): write %q", s, id, fixed, fixed)
			}
		}
	}
	return goversion.NewVersion(s)
}

// MaxConstraintLength bounds a version constraint.
const MaxConstraintLength = 1024

// constraintPartRe is one comma-separated part of a constraint, as
// go-version reads it: an operator, then a version whose numeric core is
// captured.
var constraintPartRe = regexp.MustCompile(`^\s*(?:<=|>=|!=|~>|<|>|=)?\s*v?([0-9]+(?:\.[0-9]+)*)(.*)$`)

// Constraint reads a version constraint such as "~> 1.4" or ">= 1.0, < 2.0".
// Each version in it has at most three numeric parts, each at most
// MaxNumber, and is at most MaxLength long: no release version could match
// anything else.
func Constraint(s string) (goversion.Constraints, error) {
	if len(s) > MaxConstraintLength {
		return nil, fmt.Errorf("the version constraint is %d characters long; at most %d are allowed", len(s), MaxConstraintLength)
	}
	for _, part := range strings.Split(s, ",") {
		m := constraintPartRe.FindStringSubmatch(part)
		if m == nil {
			continue // go-version explains below
		}
		v := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(part), "<>=!~"))
		if len(v) > MaxLength {
			return nil, fmt.Errorf("%q is not a version constraint: its version %.20q... is %d characters long; at most %d are allowed", s, v, len(v), MaxLength)
		}
		nums := strings.Split(m[1], ".")
		if len(nums) > 3 {
			return nil, fmt.Errorf("%q is not a version constraint: %q has %d numeric parts, but a release version has at most three, MAJOR.MINOR.PATCH (write e.g. \"1.4.0\", \"~> 1.4\")", s, m[1], len(nums))
		}
		if err := checkNumbers(v, nums); err != nil {
			return nil, fmt.Errorf("%q is not a version constraint: %v", s, err)
		}
	}
	c, err := goversion.NewConstraint(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a version constraint: write an exact version (\"1.4.2\") or constraints such as \"~> 1.4\" or \">= 1.0, < 2.0\" (%v)", s, err)
	}
	return c, nil
}

// Bumps are the values of version_bump.
var Bumps = []string{"patch", "minor", "major"}

// First is the version of a release's first publication.
const First = "1.0.0"

// Bump returns the next version after v: the pre-release, if any, is
// dropped, then the part named by bump is raised and the lower parts reset.
func Bump(v *goversion.Version, bump string) (string, error) {
	s := v.Segments64()
	major, minor, patch := s[0], s[1], s[2]
	switch bump {
	case "major":
		major, minor, patch = major+1, 0, 0
	case "minor":
		minor, patch = minor+1, 0
	case "patch", "":
		if v.Prerelease() == "" {
			patch++
		}
	default:
		return "", fmt.Errorf("unknown version_bump %q: use one of %s", bump, strings.Join(Bumps, ", "))
	}
	if major > MaxNumber || minor > MaxNumber || patch > MaxNumber {
		return "", fmt.Errorf("the version after %s would have a number above %d, the largest a version may have: give the next version explicitly", v.Original(), uint64(MaxNumber))
	}
	return fmt.Sprintf("%d.%d.%d", major, minor, patch), nil
}

// Sorted parses and sorts version strings in ascending semver order,
// skipping any that are not release versions.
func Sorted(list []string) []*goversion.Version {
	out := make([]*goversion.Version, 0, len(list))
	for _, s := range list {
		// Stored versions in the canonical form count even past the
		// bounds Parse sets for new ones (an older build may have published
		// them): skipping one would make "latest" go backwards.
		if !semverRe.MatchString(s) {
			continue
		}
		if v, err := goversion.NewVersion(s); err == nil {
			out = append(out, v)
		}
	}
	sort.Sort(goversion.Collection(out))
	return out
}

// Below returns the highest version lower than v, or nil.
func Below(sorted []*goversion.Version, v *goversion.Version) *goversion.Version {
	for i := len(sorted) - 1; i >= 0; i-- {
		if sorted[i].LessThan(v) {
			return sorted[i]
		}
	}
	return nil
}

// Select returns, in ascending order, the versions that match c (all when
// c is nil). Pre-releases match only when includePre is set or when c
// itself names a pre-release of the same version, as go-version decides.
func Select(sorted []*goversion.Version, c goversion.Constraints, includePre bool) []*goversion.Version {
	var out []*goversion.Version
	for _, v := range sorted {
		switch {
		case c == nil:
			if v.Prerelease() == "" || includePre {
				out = append(out, v)
			}
		case c.Check(v):
			out = append(out, v)
		case includePre && v.Prerelease() != "" && c.Check(v.Core()):
			out = append(out, v)
		}
	}
	return out
}

// Newest lists up to n versions, newest first, for messages.
func Newest(sorted []*goversion.Version, n int) string {
	var s []string
	for i := len(sorted) - 1; i >= 0 && len(s) < n; i-- {
		s = append(s, sorted[i].Original())
	}
	if len(s) == 0 {
		return "none"
	}
	if len(sorted) > n {
		return strings.Join(s, ", ") + fmt.Sprintf(" (and %d older)", len(sorted)-n)
	}
	return strings.Join(s, ", ")
}
