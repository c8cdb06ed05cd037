// Package dbusapi exports lockstep's reconciler on D-Bus as org.lockstep.Reconciler1.
package dbusapi
