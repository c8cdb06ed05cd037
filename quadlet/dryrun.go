package quadlet

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// DryRun runs the Quadlet generator binary over dir and returns, for file, the generator's own
// message when it produced no unit (err non-nil), as systemd would never tell.
func DryRun(generator, dir, file string) (string, error) {
	cmd := exec.Command(generator, "-dryrun")
	cmd.Env = append(os.Environ(), "QUADLET_UNIT_DIRS="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	text := out.String()
	service := strings.TrimSuffix(file, ".container") + ".service"
	if strings.Contains(text, "---"+service+"---") {
		return "", nil
	}
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, file) && !strings.Contains(l, "Loading source unit file") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	msg := strings.Join(lines, "; ")
	if msg == "" {
		msg = strings.TrimSpace(text)
	}
	if runErr != nil && msg == "" {
		msg = runErr.Error()
	}
	return msg, fmt.Errorf("quadlet generator rejected %s: %s", file, msg)
}
