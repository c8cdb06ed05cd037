// Package manifest parses, validates and loads lockstep app manifests: the catalog and the installed set.
package manifest
