package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Bus is a private dbus-daemon.
type Bus struct {
	Address string
	Socket  string
	conf    string
	cmd     *exec.Cmd
}

// BusConfig says how the private bus is set up.
type BusConfig struct {
	// Policies are policy files included as on the system bus (e.g. the project's
	// units/org.lockstep.Reconciler1.conf). With none, the bus lets everyone do everything.
	Policies []string
}

// StartBus starts a dbus-daemon with a system-bus-like configuration on a socket in a directory of
// its own that other users can reach: EXTERNAL authentication, the default deny rules of Debian's
// system bus, and the given policy files.
func StartBus(t TB, cfg BusConfig) *Bus {
	t.Helper()
	Need(t, "dbus-daemon")
	dir, err := os.MkdirTemp("/var/tmp", "lockstep-bus-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, fmt.Sprintf("bus-%d.sock", time.Now().UnixNano()))
	var b strings.Builder
	b.WriteString(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=` + sock + `</listen>
  <auth>EXTERNAL</auth>
`)
	if len(cfg.Policies) == 0 {
		// As Debian's session bus.
		b.WriteString(`  <policy context="default"><allow user="*"/><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
`)
	} else {
		// As Debian's /usr/share/dbus-1/system.conf.
		b.WriteString(`  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Peer"/>
  </policy>
`)
		for _, p := range cfg.Policies {
			abs, _ := filepath.Abs(p)
			b.WriteString("  <include>" + abs + "</include>\n")
		}
	}
	b.WriteString("</busconfig>\n")
	conf := filepath.Join(dir, fmt.Sprintf("bus-%d.conf", time.Now().UnixNano()))
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	bus := &Bus{Socket: sock, conf: conf}
	t.Cleanup(bus.Stop)
	if err := bus.start(); err != nil {
		t.Fatalf("%v", err)
	}
	return bus
}

func (b *Bus) start() error {
	cmd := exec.Command("dbus-daemon", "--config-file="+b.conf, "--nofork", "--nopidfile", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	logf, _ := os.OpenFile(b.conf+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting dbus-daemon: %v", err)
	}
	b.cmd = cmd
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			log, _ := os.ReadFile(b.conf + ".log")
			return fmt.Errorf("dbus-daemon did not start: %s", log)
		}
		b.Address = a
	case <-time.After(10 * time.Second):
		return fmt.Errorf("dbus-daemon did not print its address")
	}
	return nil
}

// Restart kills the dbus-daemon (every connection to it breaks, every name is released) and starts
// a new one with the same configuration and socket path.
func (b *Bus) Restart() error { return b.RestartAfter(0) }

// RestartAfter is Restart with the bus down for d in between.
func (b *Bus) RestartAfter(d time.Duration) error {
	b.Stop()
	os.Remove(b.Socket)
	time.Sleep(d)
	return b.start()
}

// Stop ends the dbus-daemon.
func (b *Bus) Stop() {
	if b.cmd != nil && b.cmd.Process != nil {
		b.cmd.Process.Kill()
		b.cmd.Wait()
		b.cmd = nil
	}
}

// Run runs a client command (busctl, gdbus, ...) with DBUS_SYSTEM_BUS_ADDRESS and
// DBUS_SESSION_BUS_ADDRESS pointing at this bus, optionally as another user through setpriv
// (asUser "nobody" runs it as nobody:nogroup with nobody's groups).
func (b *Bus) Run(asUser string, name string, args ...string) (string, error) {
	if asUser != "" {
		args = append([]string{"--reuid=" + asUser, "--regid=nogroup", "--init-groups", "--", name}, args...)
		name = "setpriv"
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+b.Address, "DBUS_SESSION_BUS_ADDRESS="+b.Address)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
