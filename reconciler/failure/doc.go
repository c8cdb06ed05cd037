// Package failure makes a pass's failures: each about its subject (an app, a stack's container, a
// manifest file), for its app, with its class (package outcome) set where it happens, and the
// message prefixed with a stack container's name as the report has always written it.
package failure
