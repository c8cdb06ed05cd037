// Package packaging holds lockstep's package definitions and their tests: nfpm.yaml (the .deb and
// the .rpm, built by scripts/package.sh), the maintainer scripts (scripts/), the Debian copyright
// file, changelog and lintian overrides, and lockstepctl's shell completions (completions/, written
// by make docs). The tests build the packages and check their contents, fields and scripts (in a
// chroot over a private mount namespace), run lintian on the .deb, and check that scripts/deps.sh
// installs everything the .deb depends on or recommends.
package packaging
