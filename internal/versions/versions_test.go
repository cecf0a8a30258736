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
