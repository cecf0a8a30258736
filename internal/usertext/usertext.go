// Package usertext checks text a user writes that other people read later
// (a yank's or a channel move's reason, a metadata key, an artifact's
// name), and shows text read back from the store so that it cannot hide
// or reorder what is printed around it.
//
// Refused: control characters (a newline, an escape sequence), line and
// paragraph separators (U+2028, U+2029) and format characters, which do
// not show as themselves: bidirectional controls (U+202A–U+202E,
// U+2066–U+2069, U+200E, U+200F, U+061C) reorder the text around them, so
// that "ok\u202Eliaf" reads "okfail"; zero-width characters (U+200B,
// U+2060, U+FEFF) make two texts look the same. Two exceptions keep
// ordinary writing and emoji: a zero-width joiner or non-joiner (U+200D,
// U+200C) between two non-ASCII letters, marks, digits or symbols
// (Persian and Indic spelling; emoji sequences such as 👩 U+200D 💻), and
// the tag characters of an emoji flag (🏴, U+E0020–U+E007E, U+E007F).
// Not between Latin, Greek, Cyrillic or CJK letters, which never join:
// there "пр\u200Dод" would only pass for "прод". The other characters
// Unicode says render as nothing (default-ignorable) are refused too: the
// Hangul fillers (U+3164), the combining grapheme joiner (U+034F), and a
// variation selector that follows no emoji or character it selects a
// form of ("k\uFE0Fey"). Anything else is accepted: accents, other
// scripts, emoji, spaces.
//
// The package has no dependency on Terraform.
package usertext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error is text holding a refused character.
type Error struct {
	What string // "the reason", "the metadata key \"x\""
	Rune rune   // utf8.RuneError for a byte that is not UTF-8
	Byte byte   // that byte
	Char int    // the position of the character, from 1
}

func (e *Error) Error() string {
	if e.Rune == utf8.RuneError {
		return fmt.Sprintf("%s is not valid UTF-8: the byte 0x%02X at character %d begins no character. Write it as UTF-8 text.", e.What, e.Byte, e.Char)
	}
	return fmt.Sprintf("%s holds %s at character %d, %s: it would not show as written to whoever reads it. "+
		"Remove it, and write the text on one line, without invisible characters.", e.What, Name(e.Rune), e.Char, kind(e.Rune))
}

// Check returns an *Error naming the first refused character of s, what
// being how the message names s ("the reason").
func Check(what, s string) error {
	char := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		char++
		if r == utf8.RuneError && size == 1 {
			return &Error{What: what, Rune: r, Byte: s[i], Char: char}
		}
		if n := flagTags(s[i:]); n > 0 { // a flag and its tags
			char += utf8.RuneCountInString(s[i:i+n]) - 1
			i += n
			continue
		}
		if refused(s, i, r, size) {
			return &Error{What: what, Rune: r, Char: char}
		}
		i += size
	}
	return nil
}

// Show returns s to print: as it is when Check accepts it; else in double
// quotes, each refused character written as an escape (\u202E, \n, \xFF)
// and each quote and backslash escaped, so that nothing in it can change
// how a message reads.
func Show(s string) string {
	if Check("", s) == nil {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	escape(&b, s, true)
	b.WriteByte('"')
	return b.String()
}

// Quote returns s in double quotes, each refused character written as an
// escape and each quote and backslash escaped, as Show writes text it
// quotes: for a name read from the store, quoted whatever it holds.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	escape(&b, s, true)
	b.WriteByte('"')
	return b.String()
}

// Escape returns a line of a program's output to print among other text
// (the last lines of a failed build step): each character Check refuses
// written as an escape (\u001B, \xFF, \u202E), but for tabs, which are
// kept, and with no quotes added.
func Escape(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r != '\t' && (r < ' ' || r >= 0x7F) }) {
		return s // printable ASCII, the common case
	}
	var b strings.Builder
	escape(&b, s, false)
	return b.String()
}

// escape writes s to b, each refused character as an escape; quoted, each
// quote and backslash escaped too, and tabs.
func escape(b *strings.Builder, s string, quoted bool) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if n := flagTags(s[i:]); n > 0 {
			b.WriteString(s[i : i+n])
			i += n
			continue
		}
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(b, `\x%02X`, s[i])
		case quoted && (r == '"' || r == '\\'):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t' && quoted:
			b.WriteString(`\t`)
		case r == '\t':
			b.WriteByte('\t')
		case refused(s, i, r, size) && r > 0xFFFF:
			fmt.Fprintf(b, `\U%08X`, r)
		case refused(s, i, r, size):
			fmt.Fprintf(b, `\u%04X`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
}

// refused tells whether the character r, at byte i of s and size bytes
// long, is refused.
func refused(s string, i int, r rune, size int) bool {
	switch {
	case unicode.In(r, unicode.Cc, unicode.Zl, unicode.Zp):
		return true
	case !unicode.Is(unicode.Cf, r):
		return ignorable(s, i, r)
	case r == zwj || r == zwnj:
		before, _ := utf8.DecodeLastRuneInString(s[:i])
		after, _ := utf8.DecodeRuneInString(s[i+size:])
		return !joinable(before) || !joinable(after)
	}
	return true
}

// ignorable tells whether r is a default-ignorable character that is not
// a format character (those are refused already): rendered as nothing,
// as Unicode defines them. A variation selector is accepted after a
// character it can select a form of: a non-ASCII letter, mark, digit or
// symbol (❤️, an ideographic variant), or an ASCII digit, '#' or '*'
// (the keycap 1️⃣); the other such characters — the combining grapheme
// joiner U+034F, the Hangul fillers U+115F, U+1160, U+3164 and U+FFA0,
// reserved ones — are refused wherever they stand.
func ignorable(s string, i int, r rune) bool {
	switch {
	case unicode.Is(unicode.Variation_Selector, r):
		before, _ := utf8.DecodeLastRuneInString(s[:i])
		return i == 0 || !selectable(before) && !strings.ContainsRune("0123456789#*", before)
	case unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r):
		return true
	}
	return false
}

// selectable tells whether a variation selector may follow r.
func selectable(r rune) bool {
	return r > unicode.MaxASCII && r != utf8.RuneError && unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.S)
}

const (
	zwnj = '\u200C' // ZERO WIDTH NON-JOINER
	zwj  = '\u200D' // ZERO WIDTH JOINER

	blackFlag = '\U0001F3F4'
	tagBase   = '\U000E0000'
	tagFirst  = '\U000E0020'
	tagLast   = '\U000E007E'
	cancelTag = '\U000E007F'
)

// joinable tells whether a joiner may stand next to r: a non-ASCII
// letter, mark, digit or symbol (the ZWJ of an emoji sequence is between an
// emoji, or its skin tone or presentation selector, and another) but for
// the letters of scripts whose writing never joins, where a joiner only
// makes two words that look the same differ ("прод" and "пр\u200Dод").
func joinable(r rune) bool {
	return selectable(r) && !unicode.In(r, nonJoining...)
}

// nonJoining are the scripts whose text has no use for a joiner or a
// non-joiner: Latin, Greek and Cyrillic (the scripts of look-alikes), and
// the other common ones written without ligatures a joiner requests.
var nonJoining = []*unicode.RangeTable{
	unicode.Latin, unicode.Greek, unicode.Cyrillic, unicode.Armenian, unicode.Georgian,
	unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul,
}

// flagTags returns the length of the emoji tag sequence at the start of
// s (🏴, tags, a cancel tag: the flag of Scotland), or 0. Only the shape
// of a subdivision flag is accepted (Unicode TS #51: an ISO 3166-2 code,
// two lowercase letters then one to three lowercase letters or digits, as
// tag characters): tag characters carry invisible ASCII, so any other run
// of them would smuggle text no terminal or plan shows.
func flagTags(s string) int {
	r, n := utf8.DecodeRuneInString(s)
	if r != blackFlag {
		return 0
	}
	tags := 0
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		n += size
		switch {
		case tags < 2 && isTag(r, 'a', 'z'), tags >= 2 && tags < 5 && (isTag(r, 'a', 'z') || isTag(r, '0', '9')):
			tags++
		case r == cancelTag && tags >= 3:
			return n
		default:
			return 0
		}
	}
	return 0
}

// isTag tells whether r is the tag character of an ASCII character from
// lo to hi (tags are ASCII moved to U+E0000).
func isTag(r, lo, hi rune) bool { return r >= tagBase+lo && r <= tagBase+hi }

// names of the refused characters most often met, as the Unicode standard
// names them.
var names = map[rune]string{
	0x00: "NULL", 0x07: "BELL", 0x08: "BACKSPACE", 0x09: "CHARACTER TABULATION (a tab)", 0x0A: "LINE FEED (a newline)",
	0x0B: "LINE TABULATION", 0x0C: "FORM FEED", 0x0D: "CARRIAGE RETURN", 0x1B: "ESCAPE", 0x7F: "DELETE",
	0x85: "NEXT LINE", 0xAD: "SOFT HYPHEN", 0x061C: "ARABIC LETTER MARK", 0x180E: "MONGOLIAN VOWEL SEPARATOR",
	0x200B: "ZERO WIDTH SPACE", 0x200C: "ZERO WIDTH NON-JOINER", 0x200D: "ZERO WIDTH JOINER",
	0x200E: "LEFT-TO-RIGHT MARK", 0x200F: "RIGHT-TO-LEFT MARK",
	0x2028: "LINE SEPARATOR", 0x2029: "PARAGRAPH SEPARATOR",
	0x202A: "LEFT-TO-RIGHT EMBEDDING", 0x202B: "RIGHT-TO-LEFT EMBEDDING", 0x202C: "POP DIRECTIONAL FORMATTING",
	0x202D: "LEFT-TO-RIGHT OVERRIDE", 0x202E: "RIGHT-TO-LEFT OVERRIDE",
	0x2060: "WORD JOINER", 0x2061: "FUNCTION APPLICATION", 0x2062: "INVISIBLE TIMES", 0x2063: "INVISIBLE SEPARATOR",
	0x2064: "INVISIBLE PLUS",
	0x2066: "LEFT-TO-RIGHT ISOLATE", 0x2067: "RIGHT-TO-LEFT ISOLATE", 0x2068: "FIRST STRONG ISOLATE",
	0x2069: "POP DIRECTIONAL ISOLATE", 0xFEFF: "ZERO WIDTH NO-BREAK SPACE (a byte order mark)",
	0x034F: "COMBINING GRAPHEME JOINER", 0x115F: "HANGUL CHOSEONG FILLER", 0x1160: "HANGUL JUNGSEONG FILLER",
	0x3164: "HANGUL FILLER", 0xFFA0: "HALFWIDTH HANGUL FILLER", 0xFE0E: "VARIATION SELECTOR-15", 0xFE0F: "VARIATION SELECTOR-16",
}

// Name names a character by its code point, and by its Unicode name when
// it is one of the usual suspects: "U+202E RIGHT-TO-LEFT OVERRIDE".
func Name(r rune) string {
	if n, ok := names[r]; ok {
		return fmt.Sprintf("U+%04X %s", r, n)
	}
	return fmt.Sprintf("U+%04X", r)
}

// bidi are the bidirectional controls.
var bidi = &unicode.RangeTable{R16: []unicode.Range16{
	{Lo: 0x061C, Hi: 0x061C, Stride: 1},
	{Lo: 0x200E, Hi: 0x200F, Stride: 1},
	{Lo: 0x202A, Hi: 0x202E, Stride: 1},
	{Lo: 0x2066, Hi: 0x2069, Stride: 1},
}}

// kind says what a refused character does.
func kind(r rune) string {
	switch {
	case unicode.Is(bidi, r):
		return "a bidirectional control, which reorders the text around it"
	case r == '\n' || r == '\r' || r == 0x85 || unicode.In(r, unicode.Zl, unicode.Zp):
		return "a line break"
	case unicode.Is(unicode.Cc, r):
		return "a control character"
	case r == zwj || r == zwnj:
		return "an invisible joiner, allowed only between two non-ASCII letters or symbols (as in emoji, Arabic or Indic writing; not Latin, Greek or Cyrillic)"
	case r >= tagFirst && r <= cancelTag:
		return "an invisible tag character, allowed only in an emoji flag"
	case unicode.Is(unicode.Variation_Selector, r):
		return "an invisible variation selector, allowed only after an emoji or a non-ASCII character it selects a form of"
	case !unicode.Is(unicode.Cf, r):
		return "a character that shows as nothing"
	}
	return "an invisible formatting character"
}
