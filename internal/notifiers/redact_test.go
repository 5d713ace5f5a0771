package notifiers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRedactorRules(t *testing.T) {
	r := NewRedactor([]string{"https://hooks.example.com/api/v1/hooks/Tk3n-abcdef?v=42&token=QQQQ"}, "Bearer zq", "j")
	tests := []struct{ in, want string }{
		// Parts shorter than four characters are left alone: they are not tokens, and redacting
		// them would mangle the text.
		{"unknown api version v1 (42)", "unknown api version v1 (42)"},
		{"no hook Tk3n-abcdef", "no hook <redacted>"},
		{"bad token QQQQ", "bad token <redacted>"},
		{"path /api/v1/hooks/Tk3n-abcdef?v=42&token=QQQQ", "path <redacted>"},
		{"encoded Tk3n%2Dabcdef", "encoded Tk3n%2Dabcdef"}, // '-' is never escaped: not a form a peer writes
		{"all bytes %54%6b%33%6e%2d%61%62%63%64%65%66", "all bytes <redacted>"},
		// Credentials go at any length.
		{"auth zq failed for j", "auth <redacted> failed for <redacted>"},
	}
	for _, tt := range tests {
		if got := r.Scrub(tt.in); got != tt.want {
			t.Errorf("scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := fmt.Sprintf("%+v %#v", r, r); strings.Contains(got, "Tk3n") || strings.Contains(got, "QQQQ") {
		t.Errorf("printing the redactor shows a secret: %s", got)
	}
	// An excerpt cut inside a token loses the token's start too.
	body := []byte(strings.Repeat("x", 195) + " Tk3n-abcdef and more")
	if got := r.Excerpt(body[:200], true, 200); strings.Contains(got, "Tk3") || !strings.HasSuffix(got, "x ") {
		t.Errorf("excerpt = %q", got)
	}
	if got := r.readExcerpt(strings.NewReader(string(body)), 200); strings.Contains(got, "Tk3") {
		t.Errorf("readExcerpt = %q", got)
	}
	if err := r.Wrap(context.Canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("wrap lost the error: %v", err)
	}
}
