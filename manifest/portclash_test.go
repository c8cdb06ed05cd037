package manifest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/internal/portclash"
)

// portApps writes two apps publishing n distinct host ports each (a: 20000.., b: 40000..), b's
// first port also published by a (one clash).
func portApps(t testing.TB, n int) string {
	dir := t.TempDir()
	for _, app := range []struct {
		id   string
		base int
	}{{"a", 20000}, {"b", 40000}} {
		var ports []string
		for i := range n {
			ports = append(ports, fmt.Sprintf(`"127.0.0.1:%d:%d"`, app.base+i, 1+i%60000))
		}
		if app.id == "b" {
			ports[0] = `"20000:1"`
		}
		y := fmt.Sprintf("app:\n  id: %s\n  name: %s\n  version: '1'\n  container:\n    image: localhost/x:1\n    ports: [%s]\n", app.id, app.id, strings.Join(ports, ", "))
		os.WriteFile(filepath.Join(dir, app.id+".yaml"), []byte(y), 0o644)
	}
	return dir
}

// The host-port clash check compares only ports that share a number and protocol: 25,000 ports in
// two manifests are compared about 25,000 times, not 300 million (18 s a pass before), and the
// one clash is still found.
func TestPortClashCheckIsLinear(t *testing.T) {
	dir := portApps(t, 12_500)
	before := portclash.Comparisons.Load()
	set, err := LoadDir(dir, roots)
	if err != nil {
		t.Fatal(err)
	}
	if n := portclash.Comparisons.Load() - before; n > 25_000 {
		t.Fatalf("%d port comparisons for 25,000 ports", n)
	}
	var clashes []string
	for _, p := range set.Problems {
		if strings.Contains(p.Reason, "is also published by app") {
			clashes = append(clashes, p.String())
		}
	}
	if len(clashes) != 1 || !strings.Contains(clashes[0], "host port 20000/tcp is also published by app") {
		t.Fatalf("clashes %v", clashes)
	}
}

func BenchmarkPortClashCheck(b *testing.B) {
	dir := portApps(b, 12_500)
	for b.Loop() {
		if _, err := LoadDir(dir, roots); err != nil {
			b.Fatal(err)
		}
	}
}
