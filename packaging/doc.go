// Package packaging holds lockstep's package definitions and their tests.
package packaging
