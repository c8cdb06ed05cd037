# Shared settings of the test-host scripts (sourced). From the fresh-hosts recipe; HOST_ROOTFS is a
# debootstrapped root or an overlay lower list (LAYER:...:ROOT, topmost first, as mk-layer.sh prints).
HOST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HOST_NAME=${HOST_NAME:-s1}
HOST_BASE=${HOST_BASE:-/var/lib/lockstep-hosts}          # never under /tmp, /var/tmp or /run
HOST_STATE=$HOST_BASE/state/$HOST_NAME
HOST_CG=lockstep-host-$HOST_NAME
HOST_ROOTFS=${HOST_ROOTFS:-}                       # e.g. /var/lib/lockstep-hosts/layers/t1:/var/lib/lockstep-hosts/roots/trixie-HASH
HOST_ROOT_MODE=${HOST_ROOT_MODE:-overlay}          # overlay: the lower layers stay pristine (writes go to state/upper); bind: writes go into rootfs (one dir)
HOST_CGROUP_MODE=${HOST_CGROUP_MODE:-hybrid}       # hybrid: host v1 hierarchies + cgroup2 at unified; unified: only cgroup2 at /sys/fs/cgroup
export HOST_DIR HOST_NAME HOST_BASE HOST_STATE HOST_CG HOST_ROOTFS HOST_ROOT_MODE HOST_CGROUP_MODE

# The machinery shared with test/sandbox/harness: ns_pid1, ns_boot, ns_stop, ns_exec_in.
NS_STATE=$HOST_STATE NS_CG=$HOST_CG
export NS_STATE NS_CG
source "$HOST_DIR/../nsbox/nsbox.sh"

# the bottom directory of HOST_ROOTFS (the debootstrapped root itself)
s_root_bottom() { echo "${HOST_ROOTFS##*:}"; }
