// Package archtest holds the test that keeps lockstep's packages layered (docs/architecture.md,
// "Packages and the direction of imports"): every package's imports of other lockstep packages must be
// in its row of the table in archtest_test.go. It has no code of its own.
package archtest
