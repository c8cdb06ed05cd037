package reconciler

import (
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/outcome"
)

// actionFailure is the report's failure of action a: about its app, or, for a stack's container,
// about that container (named, and its name before the message, as ever).
func actionFailure(a Action, msg string, class outcome.Class) Failure {
	f := Failure{App: a.App, Error: withMember(a, msg), Class: class, Subject: outcome.SubjectApp}
	if m := member(a); m != "" {
		f.Subject, f.Name = outcome.SubjectContainer, m
	}
	return f
}

// problemFailure is the failure of a manifest problem: about its file, for the app the file is named
// after.
func problemFailure(p manifest.Problem) Failure {
	return Failure{App: problemApp(p), Error: p.String(), Class: outcome.ClassInvalidManifest,
		Subject: outcome.SubjectManifest, Name: p.File}
}

// waitClass is the class of a wait: backoff, or a dependency not yet healthy.
func waitClass(a Action) outcome.Class {
	if !a.WaitUntil.IsZero() {
		return outcome.ClassBackoff
	}
	return outcome.ClassWaiting
}

// member is the stack container an action is about, "" for a one-container app.
func member(a Action) string {
	if a.Desired != nil {
		return a.Desired.Member
	}
	if a.Container != nil {
		return a.Container.Labels[LabelContainer]
	}
	return ""
}
