package versions

import (
	"strings"
	"testing"

	goversion "github.com/hashicorp/go-version"
)

func TestParse(t *testing.T) {
	for _, ok := range []string{"1.0.0", "0.0.1", "10.20.30", "2.0.0-rc.1", "1.0.0-alpha-1"} {
		if _, err := Parse(ok); err != nil {
			t.Errorf("Parse(%q): %v", ok, err)
		}
	}
	for bad, hint := range map[string]string{"v1.0.0": `drop the "v"`, "1.4": "all three parts", "1.0.0+build": "build metadata", "01.0.0": "semantic versioning", "": "semantic versioning", "1.0.0-": "semantic"} {
		_, err := Parse(bad)
		if err == nil || !strings.Contains(err.Error(), hint) {
			t.Errorf("Parse(%q) = %v, want a hint %q", bad, err, hint)
		}
	}
}

func TestBump(t *testing.T) {
	for _, c := range []struct{ from, bump, want string }{
		{"1.4.2", "patch", "1.4.3"}, {"1.4.2", "minor", "1.5.0"}, {"1.4.2", "major", "2.0.0"},
		{"1.4.2", "", "1.4.3"}, {"2.0.0-rc.1", "patch", "2.0.0"}, {"2.0.0-rc.1", "minor", "2.1.0"},
	} {
		v, _ := Parse(c.from)
		if got, err := Bump(v, c.bump); err != nil || got != c.want {
			t.Errorf("Bump(%s, %s) = %s, %v; want %s", c.from, c.bump, got, err, c.want)
		}
	}
	v, _ := Parse("1.0.0")
	if _, err := Bump(v, "huge"); err == nil {
		t.Error("unknown bump accepted")
	}
}

func TestSelect(t *testing.T) {
	all := Sorted([]string{"1.10.0", "1.2.0", "1.4.0", "1.4.3", "2.0.0-rc.1", "2.0.0", "2.1.0-beta.1", "junk"})
	join := func(vs []*goversion.Version) string {
		var s []string
		for _, v := range vs {
			s = append(s, v.Original())
		}
		return strings.Join(s, ",")
	}
	if got := join(all); got != "1.2.0,1.4.0,1.4.3,1.10.0,2.0.0-rc.1,2.0.0,2.1.0-beta.1" {
		t.Fatalf("Sorted = %s", got)
	}
	for _, c := range []struct {
		constraint string
		pre        bool
		want       string
	}{
		{"", false, "1.2.0,1.4.0,1.4.3,1.10.0,2.0.0"},
		{"", true, "1.2.0,1.4.0,1.4.3,1.10.0,2.0.0-rc.1,2.0.0,2.1.0-beta.1"},
		{"~> 1.4", false, "1.4.0,1.4.3,1.10.0"},
		{"~> 1.4.0", false, "1.4.0,1.4.3"},
		{">= 1.0, < 2.0", false, "1.2.0,1.4.0,1.4.3,1.10.0"},
		{">= 2.0.0-rc.1", false, "2.0.0-rc.1,2.0.0"},
		{">= 2.0", true, "2.0.0-rc.1,2.0.0,2.1.0-beta.1"},
	} {
		var got string
		if c.constraint == "" {
			got = join(Select(all, nil, c.pre))
		} else {
			cs, err := Constraint(c.constraint)
			if err != nil {
				t.Fatal(err)
			}
			got = join(Select(all, cs, c.pre))
		}
		if got != c.want {
			t.Errorf("Select(%q, pre=%v) = %s, want %s", c.constraint, c.pre, got, c.want)
		}
	}
	v, _ := Parse("1.4.3")
	if got := Below(all, v).Original(); got != "1.4.0" {
		t.Errorf("Below(1.4.3) = %s", got)
	}
	if got := Newest(all, 3); got != "2.1.0-beta.1, 2.0.0, 2.0.0-rc.1 (and 4 older)" {
		t.Errorf("Newest = %s", got)
	}
	if _, err := Constraint("~> banana"); err == nil {
		t.Error("bad constraint accepted")
	}
}

// TestParseBounds: a version is a file name in the store and its numbers
// are int64s: an over-long version or an oversized number is refused with
// a message naming the limit, not a file-system or strconv error at apply.
func TestParseBounds(t *testing.T) {
	long := "1.0.0-" + strings.Repeat("a", 300)
	if _, err := Parse(long); err == nil || !strings.Contains(err.Error(), "306 characters long; at most 128") {
		t.Errorf("Parse(300-character pre-release) = %v, want the length limit", err)
	}
	atLimit := "1.0.0-" + strings.Repeat("a", MaxLength-6)
	if _, err := Parse(atLimit); err != nil {
		t.Errorf("a version of exactly %d characters: %v", MaxLength, err)
	}
	for _, bad := range []string{"99999999999999999999.0.0", "1.99999999999999999999.0", "1.0.1000000000000000", "1.0.18446744073709551616"} {
		_, err := Parse(bad)
		if err == nil || !strings.Contains(err.Error(), "too large: each number of a version must be at most 999999999999999") || strings.Contains(err.Error(), "strconv") {
			t.Errorf("Parse(%q) = %v, want a clear 'too large' message", bad, err)
		}
	}
	if _, err := Parse("999999999999999.999999999999999.999999999999999"); err != nil {
		t.Errorf("the largest numbers: %v", err)
	}
	top, _ := Parse("999999999999999.0.0")
	if _, err := Bump(top, "major"); err == nil || !strings.Contains(err.Error(), "give the next version explicitly") {
		t.Errorf("Bump past MaxNumber = %v, want an error", err)
	}
}

// TestConstraintBounds: a constraint accepts only versions a release could
// have: at most three numeric parts, bounded numbers and length.
func TestConstraintBounds(t *testing.T) {
	for _, ok := range []string{"1.0.0", "~> 1.4", ">= 1.0, < 2.0", "1", "= 2.0.0-rc.1", ">= v1.0", "!= 1.2.3"} {
		if _, err := Constraint(ok); err != nil {
			t.Errorf("Constraint(%q): %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"1.0.0.0.0":                             `"1.0.0.0.0" has 5 numeric parts, but a release version has at most three`,
		">= 1.0, < 2.0.0.1":                     `"2.0.0.1" has 4 numeric parts`,
		"~> 99999999999999999999.0":             "too large: each number of a version must be at most 999999999999999",
		"= 1.0.0-" + strings.Repeat("x", 200):   "characters long; at most 128 are allowed",
		strings.Repeat("1.0.0,", 200) + "1.0.0": "at most 1024 are allowed",
		"~> banana":                             "not a version constraint",
	} {
		_, err := Constraint(bad)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "strconv") {
			t.Errorf("Constraint(%.40q) = %v, want %q", bad, err, want)
		}
	}
}

// TestSortedKeepsStoredVersionsPastTheBounds: a version an older build
// published past today's bounds still counts when listing, so "latest"
// never goes backwards; junk keys are still skipped.
func TestSortedKeepsStoredVersionsPastTheBounds(t *testing.T) {
	long := "1.0.0-" + strings.Repeat("x", MaxLength)
	got := Sorted([]string{"1.0.0", long, "2000000000000000.0.0", "junk", "v3.0.0"})
	if len(got) != 3 || got[2].Original() != "2000000000000000.0.0" || got[0].Original() != long {
		t.Fatalf("Sorted = %v", got)
	}
}

// TestPrereleaseLeadingZero: "1.2.3-01" would be a second spelling of
// "1.2.3-1"; semver forbids it, as it forbids "01.2.3".
func TestPrereleaseLeadingZero(t *testing.T) {
	for _, bad := range []string{"1.2.3-01", "1.2.3-rc.01", "1.2.3-00"} {
		if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), "leading zero") {
			t.Errorf("Parse(%q) = %v", bad, err)
		}
	}
	for _, good := range []string{"1.2.3-0", "1.2.3-rc.10", "1.2.3-0a", "1.2.3-rc.0"} {
		if _, err := Parse(good); err != nil {
			t.Errorf("Parse(%q): %v", good, err)
		}
	}
}
