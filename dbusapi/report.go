package dbusapi

import (
	"fmt"
	"time"

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
		m := map[string]dbus.Variant{
			"Id":          dbus.MakeVariant(a.ID),
			"State":       dbus.MakeVariant(a.State),
			"Health":      dbus.MakeVariant(a.Health),
			"Image":       dbus.MakeVariant(a.Image),
			"ContainerId": dbus.MakeVariant(a.ContainerID),
			"LastAction":  dbus.MakeVariant(a.LastAction),
			"NextAttempt": dbus.MakeVariant(a.NextAttempt),
		}
		if len(a.Containers) > 0 {
			// A stack's containers, aa{sv}: Name, State, Health, Image, ContainerId, LastAction.
			cs := make([]map[string]dbus.Variant, 0, len(a.Containers))
			for _, c := range a.Containers {
				cs = append(cs, map[string]dbus.Variant{
					"Name": dbus.MakeVariant(c.Name), "State": dbus.MakeVariant(c.State), "Health": dbus.MakeVariant(c.Health),
					"Image": dbus.MakeVariant(c.Image), "ContainerId": dbus.MakeVariant(c.ContainerID), "LastAction": dbus.MakeVariant(c.LastAction),
				})
			}
			m["Containers"] = dbus.MakeVariant(cs)
		}
		out = append(out, m)
	}
	return out
}

// DecodeReport turns the a{sv} of the D-Bus API back into a report: the inverse of EncodeReport, with
// times at microsecond precision (in UTC; zero when the value is 0). Missing keys leave their field
// empty, so a newer lockstepd's extra keys and an older one's missing keys both decode; a key with the
// wrong type is an error.
func DecodeReport(m map[string]dbus.Variant) (*reconciler.Report, error) {
	r := &reconciler.Report{Actions: []reconciler.ActionRec{}, Failures: []reconciler.Failure{},
		Apps: []reconciler.AppStatus{}, Companions: []reconciler.AppStatus{}}
	get := func(key string, dst any) error {
		v, ok := m[key]
		if !ok {
			return nil
		}
		// Scalars by their Go type: Store would convert, say, a uint32 into a string of one rune.
		switch d := dst.(type) {
		case *uint64:
			u, ok := v.Value().(uint64)
			if !ok {
				return fmt.Errorf("report key %s has type %s, want %s", key, v.Signature(), reportTypes[key])
			}
			*d = u
			return nil
		case *string:
			s, ok := v.Value().(string)
			if !ok {
				return fmt.Errorf("report key %s has type %s, want %s", key, v.Signature(), reportTypes[key])
			}
			*d = s
			return nil
		}
		if err := v.Store(dst); err != nil {
			return fmt.Errorf("report key %s (%s): %w", key, v.Signature(), err)
		}
		return nil
	}
	var started, finished uint64
	var actions []action
	var failures []failure
	var apps, companions []map[string]dbus.Variant
	for _, kv := range []struct {
		key string
		dst any
	}{
		{"PassId", &r.PassID}, {"Trigger", &r.Trigger}, {"StartedUsec", &started}, {"FinishedUsec", &finished},
		{"Actions", &actions}, {"Failures", &failures}, {"Apps", &apps}, {"Companions", &companions},
	} {
		if err := get(kv.key, kv.dst); err != nil {
			return nil, err
		}
	}
	r.StartedAt, r.FinishedAt = fromUsec(started), fromUsec(finished)
	for _, a := range actions {
		r.Actions = append(r.Actions, reconciler.ActionRec{App: a.App, Action: a.Action, Cause: a.Cause})
	}
	for _, f := range failures {
		r.Failures = append(r.Failures, reconciler.Failure{App: f.App, Error: f.Error})
	}
	var err error
	if r.Apps, err = decodeStatuses("Apps", apps); err != nil {
		return nil, err
	}
	if r.Companions, err = decodeStatuses("Companions", companions); err != nil {
		return nil, err
	}
	return r, nil
}

// reportTypes are the D-Bus types of the report's keys (docs/dbus-api.md).
var reportTypes = map[string]string{
	"PassId": "t", "Trigger": "s", "StartedUsec": "t", "FinishedUsec": "t",
	"Actions": "a(sss)", "Failures": "a(ss)", "Apps": "aa{sv}", "Companions": "aa{sv}",
}

func fromUsec(u uint64) time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.UnixMicro(int64(u)).UTC()
}

func decodeStatuses(key string, in []map[string]dbus.Variant) ([]reconciler.AppStatus, error) {
	out := make([]reconciler.AppStatus, 0, len(in))
	for i, m := range in {
		var a reconciler.AppStatus
		for k, dst := range map[string]*string{"Id": &a.ID, "State": &a.State, "Health": &a.Health, "Image": &a.Image,
			"ContainerId": &a.ContainerID, "LastAction": &a.LastAction, "NextAttempt": &a.NextAttempt} {
			v, ok := m[k]
			if !ok {
				continue
			}
			s, ok := v.Value().(string)
			if !ok {
				return nil, fmt.Errorf("report key %s[%d].%s has type %s, want s", key, i, k, v.Signature())
			}
			*dst = s
		}
		if v, ok := m["Containers"]; ok {
			var cs []map[string]dbus.Variant
			if err := v.Store(&cs); err != nil {
				return nil, fmt.Errorf("report key %s[%d].Containers has type %s, want aa{sv}", key, i, v.Signature())
			}
			for j, cm := range cs {
				var c reconciler.ContainerStatus
				for k, dst := range map[string]*string{"Name": &c.Name, "State": &c.State, "Health": &c.Health,
					"Image": &c.Image, "ContainerId": &c.ContainerID, "LastAction": &c.LastAction} {
					if v, ok := cm[k]; ok {
						s, ok := v.Value().(string)
						if !ok {
							return nil, fmt.Errorf("report key %s[%d].Containers[%d].%s has type %s, want s", key, i, j, k, v.Signature())
						}
						*dst = s
					}
				}
				a.Containers = append(a.Containers, c)
			}
		}
		out = append(out, a)
	}
	return out, nil
}
