package dbusapi

import (
	"github.com/godbus/dbus/v5"

	"github.com/lockstep/lockstep/reconciler"
)

// ReportSignature is the D-Bus type of a report.
const ReportSignature = "a{sv}"

// EncodeReport turns a report into the a{sv} of the D-Bus API (docs/dbus-api.md). A nil report (no
// pass has completed yet) encodes as pass 0 with empty lists.
func EncodeReport(r *reconciler.Report) map[string]dbus.Variant {
	if r == nil {
		r = &reconciler.Report{}
	}
	usec := func(r *reconciler.Report, finished bool) uint64 {
		t := r.StartedAt
		if finished {
			t = r.FinishedAt
		}
		if t.IsZero() {
			return 0
		}
		return uint64(t.UnixMicro())
	}
	actions := make([]action, 0, len(r.Actions))
	for _, a := range r.Actions {
		actions = append(actions, action{a.App, a.Action, a.Cause})
	}
	failures := make([]failure, 0, len(r.Failures))
	for _, f := range r.Failures {
		failures = append(failures, failure{f.App, f.Error})
	}
	return map[string]dbus.Variant{
		"PassId":        dbus.MakeVariant(r.PassID),
		"Trigger":       dbus.MakeVariant(r.Trigger),
		"StartedUsec":   dbus.MakeVariant(usec(r, false)),
		"FinishedUsec":  dbus.MakeVariant(usec(r, true)),
		"Actions":       dbus.MakeVariant(actions),
		"Failures":      dbus.MakeVariant(failures),
		"Apps":          dbus.MakeVariant(statuses(r.Apps)),
		"Companions":    dbus.MakeVariant(statuses(r.Companions)),
		"CompanionMode": dbus.MakeVariant(r.CompanionMode),
	}
}

// action is one entry of Actions, (sss): app, action, cause.
type action struct{ App, Action, Cause string }

// failure is one entry of Failures, (ss): app, error.
type failure struct{ App, Error string }

func statuses(in []reconciler.AppStatus) []map[string]dbus.Variant {
	out := make([]map[string]dbus.Variant, 0, len(in))
	for _, a := range in {
		out = append(out, map[string]dbus.Variant{
			"Id":          dbus.MakeVariant(a.ID),
			"State":       dbus.MakeVariant(a.State),
			"Health":      dbus.MakeVariant(a.Health),
			"Image":       dbus.MakeVariant(a.Image),
			"ContainerId": dbus.MakeVariant(a.ContainerID),
			"LastAction":  dbus.MakeVariant(a.LastAction),
		})
	}
	return out
}
