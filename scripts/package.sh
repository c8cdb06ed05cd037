#!/bin/bash
# Build lockstep's .deb and .rpm packages with nfpm (make package):
#   dist/lockstep_VERSION_amd64.deb   dist/lockstep-VERSION-1.x86_64.rpm
#   dist/lockstep_VERSION_arm64.deb   dist/lockstep-VERSION-1.aarch64.rpm   and dist/SHA256SUMS
# lockstepd and lockstepctl are cross-compiled without cgo (stripped: no symbol table or DWARF; panics
# still name functions) into BIN_ROOT/linux-ARCH/. nfpm is built
# from the version pinned in packaging/tools/go.mod (a module of its own, so that a build tool's
# dependencies never change the daemon's). Settings, all optional, from the environment:
#   PKG_ARCHES  Go architectures (default "amd64 arm64")     PKG_FORMATS  default "deb rpm"
#   DIST        output dir (default dist)                    BIN_ROOT     binaries (default bin)
#   UNITS_DIR   units and the other packaged system files (default units)
#   MAN_DIR     man pages *.1 and *.8 (default docs/man; packaged only if there are any)
#   VERSION     default: the VERSION file (release tags v* should match it)
#   SOURCE_DATE_EPOCH  every file's mtime (default: the last commit's time), for reproducible builds
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

PKG_ARCHES=${PKG_ARCHES:-amd64 arm64}
PKG_FORMATS=${PKG_FORMATS:-deb rpm}
DIST=${DIST:-dist}
BIN_ROOT=${BIN_ROOT:-bin}
UNITS_DIR=${UNITS_DIR:-units}
MAN_DIR=${MAN_DIR:-docs/man}
if [ -z "${VERSION:-}" ]; then
  VERSION=0.1.0
  [ -f VERSION ] && VERSION=$(tr -d ' \n' < VERSION)
fi
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export VERSION UNITS_DIR SOURCE_DATE_EPOCH
# The same tags as the Makefile; never cgo (make test sets CGO_ENABLED=1 for the race detector).
export CGO_ENABLED=0
export GOFLAGS=${GOFLAGS:--tags=remote,containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper}
GO=${GO:-go}

# Every packaged file from UNITS_DIR must exist: a clear list beats nfpm's first "no such file".
units=(lockstepd.service lockstepd.socket lockstep-reconcile.service lockstep-reconcile.timer
  user/lockstepd.service user/lockstepd.socket user/lockstep-reconcile.service user/lockstep-reconcile.timer
  org.lockstep.Reconciler1.conf org.lockstep.Reconciler1.service lockstep.sysusers lockstep.tmpfiles
  lockstepd.env 90-lockstep.preset)
missing=()
for u in "${units[@]}"; do [ -f "$UNITS_DIR/$u" ] || missing+=("$UNITS_DIR/$u"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "package.sh: missing files to package: ${missing[*]}" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

NFPM=${NFPM:-$BIN_ROOT/nfpm}
if [ ! -x "$NFPM" ] || [ packaging/tools/go.mod -nt "$NFPM" ]; then
  echo "building nfpm (packaging/tools/go.mod) into $NFPM"
  mkdir -p "$(dirname "$NFPM")"
  "$GO" build -C packaging/tools -trimpath -o "$(realpath -m "$NFPM")" github.com/goreleaser/nfpm/v2/cmd/nfpm
fi

# The config, plus the man pages when there are any (nfpm fails on a glob that matches nothing) and
# the Debian changelog. Debian wants both gzipped; -9n: best compression, no name or time in the
# gzip header (reproducible).
cp packaging/nfpm.yaml "$work/nfpm.yaml"
gzip -9n < packaging/changelog > "$work/changelog.gz"
cat >> "$work/nfpm.yaml" <<YAML

  # Appended by scripts/package.sh: the changelog of this native package
  - src: $work/changelog.gz
    dst: /usr/share/doc/lockstep/changelog.gz
    packager: deb
    file_info: {mode: 0o644}
YAML
shopt -s nullglob
for section in 1 8; do
  mans=("$MAN_DIR"/*."$section")
  [ ${#mans[@]} -gt 0 ] || continue
  mkdir -p "$work/man$section"
  for m in "${mans[@]}"; do gzip -9n < "$m" > "$work/man$section/$(basename "$m").gz"; done
  cat >> "$work/nfpm.yaml" <<YAML
  # Man pages ($section), appended by scripts/package.sh
  - src: $work/man$section/*.$section.gz
    dst: /usr/share/man/man$section/
    file_info: {mode: 0o644}
YAML
done
shopt -u nullglob

mkdir -p "$DIST"
for arch in $PKG_ARCHES; do
  export ARCH=$arch BIN_DIR=$BIN_ROOT/linux-$arch
  echo "building $BIN_DIR/lockstepd, $BIN_DIR/lockstepctl"
  for cmd in lockstepd lockstepctl; do
    GOOS=linux GOARCH=$arch "$GO" build -trimpath -ldflags='-s -w' -o "$BIN_DIR/$cmd" "./cmd/$cmd"
  done
  for format in $PKG_FORMATS; do
    "$NFPM" package --config "$work/nfpm.yaml" --packager "$format" --target "$DIST/"
  done
done
(cd "$DIST" && sha256sum -- *.deb *.rpm 2>/dev/null > SHA256SUMS || true)
ls -l "$DIST"
