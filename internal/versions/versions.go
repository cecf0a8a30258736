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
	"strings"

	goversion "github.com/hashicorp/go-version"
)

// semverRe is MAJOR.MINOR.PATCH with an optional pre-release, no "v"
// prefix and no build metadata: the exact form stored as a key, so that
// one version has one spelling.
var semverRe = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

// Parse reads a release version. It accepts only the canonical form.
func Parse(s string) (*goversion.Version, error) {
	if !semverRe.MatchString(s) {
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
	return goversion.NewVersion(s)
}

// Constraint reads a version constraint such as "~> 1.4" or ">= 1.0, < 2.0".
func Constraint(s string) (goversion.Constraints, error) {
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
	return fmt.Sprintf("%d.%d.%d", major, minor, patch), nil
}

// Sorted parses and sorts version strings in ascending semver order,
// skipping any that are not release versions.
func Sorted(list []string) []*goversion.Version {
	out := make([]*goversion.Version, 0, len(list))
	for _, s := range list {
		if v, err := Parse(s); err == nil {
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
