package failure

import (
	"path/filepath"
	"strings"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/reconciler/plan"
	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/spec"
)

// Of is the failure of action a: about its app, or, for a stack's container, about that container
// (named, and its name before the message).
func Of(a plan.Action, msg string, class outcome.Class) report.Failure {
	f := report.Failure{App: a.App, Error: WithMember(a, msg), Class: class, Subject: outcome.SubjectApp}
	if m := Member(a); m != "" {
		f.Subject, f.Name = outcome.SubjectContainer, m
	}
	return f
}

// Problem is the failure of a manifest problem: about its file, for the app the file is named after.
func Problem(p manifest.Problem) report.Failure {
	return report.Failure{App: ProblemApp(p), Error: p.String(), Class: outcome.ClassInvalidManifest,
		Subject: outcome.SubjectManifest, Name: p.File}
}

// ProblemApp names the app a manifest problem belongs to: the manifest file's name without extension.
func ProblemApp(p manifest.Problem) string {
	b := filepath.Base(p.File)
	return strings.TrimSuffix(strings.TrimSuffix(b, ".yaml"), ".yml")
}

// WaitClass is the class of a wait: backoff, or a dependency not yet healthy.
func WaitClass(a plan.Action) outcome.Class {
	if !a.WaitUntil.IsZero() {
		return outcome.ClassBackoff
	}
	return outcome.ClassWaiting
}

// Member is the stack container an action is about, "" for a one-container app.
func Member(a plan.Action) string {
	if a.Desired != nil {
		return a.Desired.Member
	}
	if a.Container != nil {
		return a.Container.Labels[spec.LabelContainer]
	}
	return ""
}

// WithMember prefixes a stack container's message with its name.
func WithMember(a plan.Action, msg string) string {
	if m := Member(a); m != "" {
		return m + ": " + msg
	}
	return msg
}
