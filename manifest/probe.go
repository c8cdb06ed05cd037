package manifest

import (
	"fmt"
	"net/url"
	"strings"
)

// checkProbes checks container.probes against the container's ports: each probe names the container
// port of a published TCP mapping, at most once, and an absolute HTTP path.
func checkProbes(field string, probes []Probe, ports []string, bad badFunc) {
	published := map[int]bool{}
	for _, s := range ports {
		if p, err := ParsePort(s); err == nil && p.HostPort != 0 && p.Protocol == "tcp" {
			published[int(p.ContainerPort)] = true
		}
	}
	portsField := strings.TrimSuffix(field, ".probes") + ".ports"
	seen := map[int]int{}
	for i, pr := range probes {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case pr.Port == 0:
			bad(f+".port", "missing: the container port of a published TCP port in %s", portsField)
		case pr.Port < 0 || pr.Port > 65535:
			bad(f+".port", "%d is not a port number from 1 to 65535", pr.Port)
		case !published[pr.Port]:
			bad(f+".port", "%d is not the container port of a published TCP port in %s", pr.Port, portsField)
		default:
			if j, ok := seen[pr.Port]; ok {
				bad(f+".port", "port %d is already probed by %s[%d]", pr.Port, field, j)
			}
			seen[pr.Port] = i
		}
		if err := checkProbePath(pr.Path); err != nil {
			bad(f+".path", "%q: %v", pr.Path, err)
		}
	}
}

func checkProbePath(p string) error {
	if p == "" {
		return fmt.Errorf("missing: an absolute path such as /api/health")
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("must start with /")
	}
	if strings.ContainsAny(p, " #") {
		return fmt.Errorf("must not contain a space or #")
	}
	if _, err := url.ParseRequestURI(p); err != nil {
		return fmt.Errorf("not a valid request path")
	}
	return nil
}
