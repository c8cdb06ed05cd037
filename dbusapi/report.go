package dbusapi

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/godbus/dbus/v5"

	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/report"
)

// ReportSignature is the D-Bus type of a report.
const ReportSignature = "a{sv}"

// EncodeReport turns a report into the a{sv} of the D-Bus API (docs/dbus-api.md). A nil report (no
// pass has completed yet) encodes as pass 0 with empty lists.
func EncodeReport(r *report.Report) map[string]dbus.Variant {
	if r == nil {
		r = &report.Report{}
	}
	usec := func(r *report.Report, finished bool) uint64 {
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
		actions = append(actions, action{text(a.App), text(a.Action), text(a.Cause)})
	}
	failures := make([]failure, 0, len(r.Failures))
	for _, f := range r.Failures {
		failures = append(failures, failure{text(f.App), text(f.Error)})
	}
	return map[string]dbus.Variant{
		"PassId":         dbus.MakeVariant(r.PassID),
		"Trigger":        dbus.MakeVariant(text(r.Trigger)),
		"StartedUsec":    dbus.MakeVariant(usec(r, false)),
		"FinishedUsec":   dbus.MakeVariant(usec(r, true)),
		"Actions":        dbus.MakeVariant(actions),
		"Failures":       dbus.MakeVariant(failures),
		"Apps":           dbus.MakeVariant(statuses(r.Apps)),
		"Companions":     dbus.MakeVariant(statuses(r.Companions)),
		"CompanionMode":  dbus.MakeVariant(text(r.CompanionMode)),
		"HostProblems":   dbus.MakeVariant(hostProblems(r.HostProblems)),
		"FailureDetails": dbus.MakeVariant(failureDetails(r.Failures)),
	}
}

// failureDetails is FailureDetails, aa{sv}: one dict per entry of Failures, in the same order, with
// what (ss) cannot say: Class s, Subject s, Name s, each present only when not empty (a key added
// after 0.1.0, as keys are; Failures keeps its type for older clients).
func failureDetails(in []report.Failure) []map[string]dbus.Variant {
	out := make([]map[string]dbus.Variant, 0, len(in))
	for _, f := range in {
		m := map[string]dbus.Variant{}
		if f.Class != "" {
			m["Class"] = dbus.MakeVariant(text(string(f.Class)))
		}
		if f.Subject != "" {
			m["Subject"] = dbus.MakeVariant(text(string(f.Subject)))
		}
		if f.Name != "" {
			m["Name"] = dbus.MakeVariant(text(f.Name))
		}
		out = append(out, m)
	}
	return out
}

// decodeFailureDetails is the inverse of failureDetails, into fs. An older lockstepd sends none; a
// list that does not match Failures entry for entry is ignored rather than misattributed.
func decodeFailureDetails(in []map[string]dbus.Variant, fs []report.Failure) error {
	if len(in) != len(fs) {
		return nil
	}
	for i, m := range in {
		for k, set := range map[string]func(string){
			"Class":   func(s string) { fs[i].Class = outcome.Class(s) },
			"Subject": func(s string) { fs[i].Subject = outcome.Subject(s) },
			"Name":    func(s string) { fs[i].Name = s },
		} {
			if v, ok := m[k]; ok {
				s, ok := v.Value().(string)
				if !ok {
					return fmt.Errorf("report key FailureDetails[%d].%s has type %s, want s", i, k, v.Signature())
				}
				set(s)
			}
		}
	}
	return nil
}

// hostProblems is HostProblems, aa{sv}: Code s, Message s, Fix s, Apps as (a dict, so that keys can
// be added as Apps' are).
func hostProblems(in []report.HostProblem) []map[string]dbus.Variant {
	out := make([]map[string]dbus.Variant, 0, len(in))
	for _, p := range in {
		apps := make([]string, 0, len(p.Apps))
		for _, a := range p.Apps {
			apps = append(apps, text(a))
		}
		out = append(out, map[string]dbus.Variant{"Code": dbus.MakeVariant(text(p.Code)), "Message": dbus.MakeVariant(text(p.Message)),
			"Fix": dbus.MakeVariant(text(p.Fix)), "Apps": dbus.MakeVariant(apps)})
	}
	return out
}

// text makes s a valid D-Bus string: D-Bus strings are UTF-8 without NUL, and godbus refuses to
// encode a message holding any other, so one stray byte (a file name, a message from podman or the
// kernel) would make every Report() fail. Invalid bytes and NUL become U+FFFD.
func text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// action is one entry of Actions, (sss): app, action, cause.
type action struct{ App, Action, Cause string }

// failure is one entry of Failures, (ss): app, error.
type failure struct{ App, Error string }

func statuses(in []report.AppStatus) []map[string]dbus.Variant {
	out := make([]map[string]dbus.Variant, 0, len(in))
	for _, a := range in {
		m := map[string]dbus.Variant{
			"Id":          dbus.MakeVariant(text(a.ID)),
			"State":       dbus.MakeVariant(text(a.State)),
			"Health":      dbus.MakeVariant(text(a.Health)),
			"Image":       dbus.MakeVariant(text(a.Image)),
			"ContainerId": dbus.MakeVariant(text(a.ContainerID)),
			"LastAction":  dbus.MakeVariant(text(a.LastAction)),
			"NextAttempt": dbus.MakeVariant(text(a.NextAttempt)),
		}
		if a.App != "" {
			m["App"] = dbus.MakeVariant(text(a.App)) // a companion's app
		}
		if len(a.Containers) > 0 {
			// A stack's containers, aa{sv}: Name, State, Health, Image, ContainerId, LastAction.
			cs := make([]map[string]dbus.Variant, 0, len(a.Containers))
			for _, c := range a.Containers {
				cs = append(cs, map[string]dbus.Variant{
					"Name": dbus.MakeVariant(text(c.Name)), "State": dbus.MakeVariant(text(c.State)), "Health": dbus.MakeVariant(text(c.Health)),
					"Image": dbus.MakeVariant(text(c.Image)), "ContainerId": dbus.MakeVariant(text(c.ContainerID)), "LastAction": dbus.MakeVariant(text(c.LastAction)),
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
func DecodeReport(m map[string]dbus.Variant) (*report.Report, error) {
	r := &report.Report{Actions: []report.ActionRec{}, Failures: []report.Failure{},
		Apps: []report.AppStatus{}, Companions: []report.AppStatus{}}
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
		case *[]map[string]dbus.Variant:
			// What godbus decodes aa{sv} into: taken as is, without Store's deep copy.
			if m, ok := v.Value().([]map[string]dbus.Variant); ok {
				*d = m
				return nil
			}
		case *[]action:
			if rows, ok := structs(v.Value(), 3); ok {
				for _, r := range rows {
					*d = append(*d, action{r[0], r[1], r[2]})
				}
				return nil
			}
		case *[]failure:
			if rows, ok := structs(v.Value(), 2); ok {
				for _, r := range rows {
					*d = append(*d, failure{r[0], r[1]})
				}
				return nil
			}
		}
		if err := storeVariant(v, dst); err != nil {
			return fmt.Errorf("report key %s (%s): %w", key, v.Signature(), err)
		}
		return nil
	}
	var started, finished uint64
	var actions []action
	var failures []failure
	var apps, companions, problems, details []map[string]dbus.Variant
	for _, kv := range []struct {
		key string
		dst any
	}{
		{"PassId", &r.PassID}, {"Trigger", &r.Trigger}, {"StartedUsec", &started}, {"FinishedUsec", &finished},
		{"Actions", &actions}, {"Failures", &failures}, {"Apps", &apps}, {"Companions", &companions},
		{"HostProblems", &problems}, {"CompanionMode", &r.CompanionMode}, {"FailureDetails", &details},
	} {
		if err := get(kv.key, kv.dst); err != nil {
			return nil, err
		}
	}
	r.StartedAt, r.FinishedAt = fromUsec(started), fromUsec(finished)
	for _, a := range actions {
		r.Actions = append(r.Actions, report.ActionRec{App: a.App, Action: a.Action, Cause: a.Cause})
	}
	for _, f := range failures {
		r.Failures = append(r.Failures, report.Failure{App: f.App, Error: f.Error})
	}
	if err := decodeFailureDetails(details, r.Failures); err != nil {
		return nil, err
	}
	var err error
	if r.Apps, err = decodeStatuses("Apps", apps); err != nil {
		return nil, err
	}
	if r.Companions, err = decodeStatuses("Companions", companions); err != nil {
		return nil, err
	}
	if r.HostProblems, err = decodeHostProblems(problems); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeHostProblems is the inverse of hostProblems; no problems (or an older lockstepd, which sends
// no HostProblems) decode as nil.
func decodeHostProblems(in []map[string]dbus.Variant) ([]report.HostProblem, error) {
	var out []report.HostProblem
	for i, m := range in {
		p := report.HostProblem{Apps: []string{}}
		for k, dst := range map[string]*string{"Code": &p.Code, "Message": &p.Message, "Fix": &p.Fix} {
			if v, ok := m[k]; ok {
				s, ok := v.Value().(string)
				if !ok {
					return nil, fmt.Errorf("report key HostProblems[%d].%s has type %s, want s", i, k, v.Signature())
				}
				*dst = s
			}
		}
		if v, ok := m["Apps"]; ok {
			apps, ok := v.Value().([]string)
			if !ok {
				return nil, fmt.Errorf("report key HostProblems[%d].Apps has type %s, want as", i, v.Signature())
			}
			p.Apps = append(p.Apps, apps...)
		}
		out = append(out, p)
	}
	return out, nil
}

// structs reads what godbus decodes an array of structs of n strings into ([][]any), without
// reflection; ok is false for any other shape (then Store decides).
func structs(v any, n int) ([][]string, bool) {
	in, ok := v.([][]any)
	if !ok {
		return nil, false
	}
	out := make([][]string, 0, len(in))
	for _, fields := range in {
		if len(fields) != n {
			return nil, false
		}
		row := make([]string, n)
		for i, f := range fields {
			if row[i], ok = f.(string); !ok {
				return nil, false
			}
		}
		out = append(out, row)
	}
	return out, true
}

// reportTypes are the D-Bus types of the report's keys (docs/dbus-api.md).
var reportTypes = map[string]string{
	"PassId": "t", "Trigger": "s", "StartedUsec": "t", "FinishedUsec": "t",
	"Actions": "a(sss)", "Failures": "a(ss)", "Apps": "aa{sv}", "Companions": "aa{sv}", "HostProblems": "aa{sv}", "FailureDetails": "aa{sv}",
}

func fromUsec(u uint64) time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.UnixMicro(int64(u)).UTC()
}

func decodeStatuses(key string, in []map[string]dbus.Variant) ([]report.AppStatus, error) {
	out := make([]report.AppStatus, 0, len(in))
	for i, m := range in {
		var a report.AppStatus
		for k, dst := range map[string]*string{"Id": &a.ID, "App": &a.App, "State": &a.State, "Health": &a.Health, "Image": &a.Image,
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
			if err := storeVariant(v, &cs); err != nil {
				return nil, fmt.Errorf("report key %s[%d].Containers has type %s, want aa{sv}", key, i, v.Signature())
			}
			for j, cm := range cs {
				var c report.ContainerStatus
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

// storeVariant is v.Store(dst) that turns a panic of godbus's into an error: it panics on some valid
// but unexpected types (a variant holding a map with signature keys, found by fuzzing), and a
// malformed reply must not crash a client.
func storeVariant(v dbus.Variant, dst any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("cannot decode %s: %v", v.Signature(), p)
		}
	}()
	return v.Store(dst)
}
