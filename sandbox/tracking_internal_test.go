package sandbox

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func TestClickURL(t *testing.T) {
	tests := []struct{ name, html, want string }{
		{"double quotes", `<a href="https://a.example/x">x</a>`, "https://a.example/x"},
		{"single quotes, upper case, spaces", `<A HREF = 'http://b.example/y?q=1'>`, "http://b.example/y?q=1"},
		{"unquoted", `<a href=https://c.example/z>z</a>`, "https://c.example/z"},
		{"entities decoded", `<a href="https://d.example/?a=1&amp;b=2">`, "https://d.example/?a=1&b=2"},
		{"skips mailto, anchors and scripts", `<a href="mailto:x@example.com"><a href="#top"><a href="javascript:alert(1)"><a href="https://e.example/">`, "https://e.example/"},
		{"skips a relative link", `<a href="/local">`, DefaultClickURL},
		{"skips an overlong link", `<a href="https://g.example/` + strings.Repeat("x", maxClickURL) + `">`, DefaultClickURL},
		{"no link", `<p>Hello</p>`, DefaultClickURL},
		{"no html", ``, DefaultClickURL},
	}
	for _, tt := range tests {
		if got := clickURL(tt.html); got != tt.want {
			t.Errorf("%s: clickURL = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestFromParts(t *testing.T) {
	tests := []struct{ from, address, domain string }{
		{"Shop <News@Example.COM>", "News@Example.COM", "example.com"},
		{"news@example.com", "news@example.com", "example.com"},
		{`"Doe, Jane" <jane@mail.example>`, "jane@mail.example", "mail.example"},
		{"Broken <news@example.com", "news@example.com", "example.com"},
		{"nobody", "nobody", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		if a, d := fromParts(tt.from); a != tt.address || d != tt.domain {
			t.Errorf("fromParts(%q) = %q, %q; want %q, %q", tt.from, a, d, tt.address, tt.domain)
		}
	}
}

func TestNewUUID(t *testing.T) {
	v4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	for range 1000 {
		id := newUUID(rng)
		if !v4.MatchString(id) || seen[id] {
			t.Fatalf("newUUID = %q: not a fresh version 4 UUID", id)
		}
		seen[id] = true
	}
}
