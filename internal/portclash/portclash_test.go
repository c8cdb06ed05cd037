package portclash

import (
	"fmt"
	"testing"
)

func TestClashes(t *testing.T) {
	ports := []Port{
		{"a", "127.0.0.1", 80, "tcp"}, // 0
		{"b", "127.0.0.2", 80, "tcp"}, // 1: another address: no clash with 0
		{"c", "", 80, "tcp"},          // 2: every address: clashes with 0 and 1
		{"a", "", 80, "tcp"},          // 3: a's own: clashes with 1 and 2, not 0
		{"d", "127.0.0.1", 80, "udp"}, // 4: another protocol
		{"e", "::", 443, "tcp"},       // 5
		{"f", "::1", 443, "tcp"},      // 6: clashes with 5
	}
	got := fmt.Sprint(Clashes(ports))
	if want := "[[0 2] [1 2] [1 3] [2 3] [5 6]]"; got != want {
		t.Fatalf("clashes %s, want %s", got, want)
	}
}
