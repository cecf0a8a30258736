package usertext

import (
	"errors"
	"strings"
	"testing"
	"unicode"
)

func TestCheck(t *testing.T) {
	for _, ok := range []string{
		"",
		"INC-4711: roll back",
		"déploiement ✓",
		"Straße, façade, naïve, Ærø",
		"回滚到上一个版本",
		"откат: ошибка в 1.4.2",
		"שחזור לגרסה הקודמת", // right-to-left script, no controls
		"تراجع إلى الإصدار السابق",
		"می\u200Cخواهم",               // Persian: a ZWNJ between letters
		"क्\u200Dष",                   // Devanagari: a ZWJ after a virama
		"🚀 ship it 🎉",                 // emoji
		"👩\u200D💻 fixed by on-call",   // ZWJ sequence
		"👩🏽\u200D🚀",                   // skin tone, then ZWJ
		"🏳\uFE0F\u200D🌈",              // presentation selector, then ZWJ
		"🇫🇷 🇯🇵",                       // regional indicators
		"#\uFE0F\u20E3 1\uFE0F\u20E3", // keycaps
		"🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", // the flag of Scotland
		"non\u00A0breaking space", // a space, not a format character
		"ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ",          // fullwidth letters, ideographic space
		"e\u0301 combining accent",
		"❤\uFE0F ❤\uFE0E", // emoji and text presentation
		"葛\U000E0100城市",   // an ideographic variation sequence
		"ᠠ\u180B",         // a Mongolian free variation selector
		"ܐ\u200Dܒ",        // Syriac: a ZWJ between letters
		"ক্\u200Dষ",       // Bengali
		`quotes " and \ backslashes`,
	} {
		if err := Check("the reason", ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
		if Show(ok) != ok {
			t.Errorf("Show(%q) = %q: accepted text is shown as it is", ok, Show(ok))
		}
	}

	for _, tc := range []struct {
		text string
		r    rune
		char int
		want string // in the message
	}{
		{"ok\u2028Error: fake", 0x2028, 3, "U+2028 LINE SEPARATOR at character 3, a line break"},
		{"a\u2029b", 0x2029, 2, "U+2029 PARAGRAPH SEPARATOR"},
		{"two\nlines", '\n', 4, "U+000A LINE FEED (a newline) at character 4, a line break"},
		{"cr\r", '\r', 3, "a line break"},
		{"tab\there", '\t', 4, "a control character"},
		{"\x1b[31mred", 0x1b, 1, "U+001B ESCAPE at character 1, a control character"},
		{"nul\x00", 0, 4, "U+0000 NULL"},
		{"del\x7f", 0x7f, 4, "U+007F DELETE"},
		{"c1 \u0085", 0x85, 4, "U+0085 NEXT LINE"},
		{"c1 \u009b", 0x9b, 4, "U+009B at character 4, a control character"},
		{"yank 1.4\u202E2.3", 0x202E, 9, "U+202E RIGHT-TO-LEFT OVERRIDE at character 9, a bidirectional control, which reorders the text around it"},
		{"\u202Aembedded", 0x202A, 1, "U+202A LEFT-TO-RIGHT EMBEDDING"},
		{"\u202Bembedded", 0x202B, 1, "RIGHT-TO-LEFT EMBEDDING"},
		{"pop\u202C", 0x202C, 4, "POP DIRECTIONAL FORMATTING"},
		{"\u202Doverride", 0x202D, 1, "LEFT-TO-RIGHT OVERRIDE"},
		{"\u2066isolate\u2069", 0x2066, 1, "U+2066 LEFT-TO-RIGHT ISOLATE"},
		{"é\u2067", 0x2067, 2, "RIGHT-TO-LEFT ISOLATE"},
		{"x\u2068", 0x2068, 2, "FIRST STRONG ISOLATE"},
		{"x\u2069", 0x2069, 2, "POP DIRECTIONAL ISOLATE"},
		{"mark\u200E", 0x200E, 5, "U+200E LEFT-TO-RIGHT MARK"},
		{"mark\u200F", 0x200F, 5, "U+200F RIGHT-TO-LEFT MARK"},
		{"\u061Carabic mark", 0x061C, 1, "ARABIC LETTER MARK"},
		{"zero\u200Bwidth", 0x200B, 5, "U+200B ZERO WIDTH SPACE at character 5, an invisible formatting character"},
		{"word\u2060joiner", 0x2060, 5, "WORD JOINER"},
		{"\uFEFFbom", 0xFEFF, 1, "U+FEFF ZERO WIDTH NO-BREAK SPACE"},
		{"soft\u00ADhyphen", 0xAD, 5, "U+00AD SOFT HYPHEN"},
		{"invisible\u2062times", 0x2062, 10, "INVISIBLE TIMES"},
		{"ann\uFFF9otation", 0xFFF9, 4, "U+FFF9 at character 4, an invisible formatting character"},
		// Joiners between ASCII letters, or at an end, hide nothing a
		// script needs.
		{"pr\u200Dod", 0x200D, 3, "U+200D ZERO WIDTH JOINER at character 3, an invisible joiner, allowed only between two non-ASCII letters or symbols"},
		{"a\u200Cb", 0x200C, 2, "ZERO WIDTH NON-JOINER"},
		{"🚀\u200D", 0x200D, 2, "ZERO WIDTH JOINER"},
		{"\u200D🚀", 0x200D, 1, "ZERO WIDTH JOINER"},
		{"🚀 \u200D🚀", 0x200D, 3, "ZERO WIDTH JOINER"},
		// Tag characters outside a flag sequence.
		{"tag\U000E0041", 0xE0041, 4, "U+E0041 at character 4, an invisible tag character, allowed only in an emoji flag"},
		{"🏴\U000E0067", 0xE0067, 2, "U+E0067"},                                                             // no cancel tag
		{"🏴\U000E007F", 0xE007F, 2, "U+E007F"},                                                             // no tag before it
		{"🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007Fx\u202E", 0x202E, 9, "character 9"}, // positions count the flag's characters
		// Tag characters smuggling invisible ASCII inside a flag's shape:
		// only an ISO 3166-2 subdivision code (two letters, then one to
		// three letters or digits) is a flag.
		{"rollback 🏴\U000E0069\U000E0067\U000E006E\U000E006F\U000E0072\U000E0065\U000E007F", 0xE0069, 11, "U+E0069"},
		{"🏴\U000E0067\U000E007F", 0xE0067, 2, "U+E0067"},                     // one tag: no subdivision
		{"🏴\U000E0047\U000E0042\U000E0053\U000E007F", 0xE0047, 2, "U+E0047"}, // upper case
		{"🏴\U000E0020\U000E0067\U000E0062\U000E007F", 0xE0020, 2, "U+E0020"}, // a tag space
		// Joiners between letters of scripts that never join: "прод" and
		// "пр\u200Dод" look the same.
		{"пр\u200Dод", 0x200D, 3, "not Latin, Greek or Cyrillic"},
		{"é\u200Cé", 0x200C, 2, "ZERO WIDTH NON-JOINER"},
		{"αβ\u200Dγ", 0x200D, 3, "ZERO WIDTH JOINER"},
		{"日本\u200D語", 0x200D, 3, "ZERO WIDTH JOINER"},
		// Default-ignorable characters that are not format characters
		// show as nothing.
		{"k\u034Fey", 0x034F, 2, "U+034F COMBINING GRAPHEME JOINER at character 2, a character that shows as nothing"},
		{"a\u3164b", 0x3164, 2, "U+3164 HANGUL FILLER"},
		{"\u115Fx", 0x115F, 1, "HANGUL CHOSEONG FILLER"},
		{"\uFFA0", 0xFFA0, 1, "HALFWIDTH HANGUL FILLER"},
		{"x\u1160", 0x1160, 2, "HANGUL JUNGSEONG FILLER"},
		{"k\uFE0Fey", 0xFE0F, 2, "U+FE0F VARIATION SELECTOR-16 at character 2, an invisible variation selector"},
		{"\uFE0E", 0xFE0E, 1, "VARIATION SELECTOR-15"},
		{"a\U000E0100", 0xE0100, 2, "variation selector"},
		{"x\U000E0080", 0xE0080, 2, "U+E0080"},
	} {
		err := Check("the reason", tc.text)
		var e *Error
		if !errors.As(err, &e) || e.Rune != tc.r || e.Char != tc.char || !strings.Contains(err.Error(), tc.want) ||
			!strings.HasPrefix(err.Error(), "the reason holds ") || !strings.Contains(err.Error(), "Remove it") {
			t.Errorf("%q: got %v; want U+%04X at %d, %q", tc.text, err, tc.r, tc.char, tc.want)
		}
	}

	err := Check("the metadata key", "a\xffb")
	var e *Error
	if !errors.As(err, &e) || e.Rune != unicode.ReplacementChar || e.Char != 2 || !strings.Contains(err.Error(), "not valid UTF-8: the byte 0xFF at character 2") {
		t.Errorf("invalid UTF-8: %v", err)
	}
}

// Every format, line and paragraph separator and control character is
// refused, but for the two joiners between non-ASCII symbols and the
// tags of a flag.
func TestCheckRefusesEveryCategory(t *testing.T) {
	for _, table := range []*unicode.RangeTable{unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp} {
		for _, r16 := range table.R16 {
			for r := rune(r16.Lo); r <= rune(r16.Hi); r += rune(r16.Stride) {
				if Check("x", "é"+string(r)+"é") == nil {
					t.Errorf("U+%04X accepted", r)
				}
			}
		}
		for _, r32 := range table.R32 {
			for r := rune(r32.Lo); r <= rune(r32.Hi); r += rune(r32.Stride) {
				if Check("x", "é"+string(r)+"é") == nil {
					t.Errorf("U+%04X accepted", r)
				}
			}
		}
	}
}

// Every default-ignorable character (Unicode's property: rendered as
// nothing) is refused where it selects nothing; the joiners stay accepted
// between two letters of a script that joins.
func TestCheckRefusesDefaultIgnorable(t *testing.T) {
	for _, table := range []*unicode.RangeTable{unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector} {
		for _, r16 := range table.R16 {
			for r := rune(r16.Lo); r <= rune(r16.Hi); r += rune(r16.Stride) {
				if Check("x", "a"+string(r)+"b") == nil {
					t.Errorf("U+%04X accepted", r)
				}
			}
		}
		for _, r32 := range table.R32 {
			for r := rune(r32.Lo); r <= rune(r32.Hi); r += rune(r32.Stride) {
				if Check("x", "a"+string(r)+"b") == nil {
					t.Errorf("U+%04X accepted", r)
				}
			}
		}
	}
	for _, r := range []rune{zwj, zwnj} {
		if err := Check("x", "ب"+string(r)+"ب"); err != nil {
			t.Errorf("U+%04X between Arabic letters: %v", r, err)
		}
	}
}

func TestShow(t *testing.T) {
	for in, want := range map[string]string{
		"INC-4711 ✓":            `INC-4711 ✓`,
		"ok\u2028Error: fake":   `"ok\u2028Error: fake"`,
		"yank 1.4\u202E2.3":     `"yank 1.4\u202E2.3"`,
		"say \"hi\"\n\\ \u200B": `"say \"hi\"\n\\ \u200B"`,
		"bad \xff byte\t":       `"bad \xFF byte\t"`,
		"🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F \x1b": "\"🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F \\u001B\"",
		"tag\U000E0041 😀":   `"tag\U000E0041 😀"`,
		"пр\u200Dод \u3164": `"пр\u200Dод \u3164"`,
	} {
		if got := Show(in); got != want {
			t.Errorf("Show(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain ASCII, \"quotes\" \\ and\ttabs": "plain ASCII, \"quotes\" \\ and\ttabs",
		"déjà vu 🚀":                            "déjà vu 🚀",
		"nul\x00 esc\x1b bad\xff rtl\u202E":    `nul\u0000 esc\u001B bad\xFF rtl\u202E`,
		"cr\r lf\n":                            `cr\r lf\n`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestQuote: a name is quoted whatever it holds, its refused characters,
// quotes and backslashes escaped.
func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"zzzz":                   `"zzzz"`,
		"a\"b\\c":                `"a\"b\\c"`,
		"\x1b[31mEVIL\u202e":     `"\u001B[31mEVIL\u202E"`,
		"caf\u00e9 \U0001F600\n": "\"caf\u00e9 \U0001F600\\n\"",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
