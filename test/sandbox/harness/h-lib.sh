# shared settings for the harness scripts (sourced)
HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HARNESS_NAME=${HARNESS_NAME:-h1}
HARNESS_ROOT=${HARNESS_ROOT:-/var/lib/lockstep-sandbox}  # never under /tmp, /var/tmp or /run: private inside
HARNESS_STATE=$HARNESS_ROOT/state/$HARNESS_NAME
HARNESS_CG=harness-$HARNESS_NAME
export HARNESS_DIR HARNESS_NAME HARNESS_ROOT HARNESS_STATE HARNESS_CG

# The machinery shared with test/hosts: ns_pid1, ns_boot, ns_stop, ns_exec_in (the state dir and
# cgroup name are the harness's).
NS_STATE=$HARNESS_STATE NS_CG=$HARNESS_CG
export NS_STATE NS_CG
source "$HARNESS_DIR/../../nsbox/nsbox.sh"
