// Package hostcheck finds what the host's podman cannot do for the installed apps, before the apps
// fail on it: networks without name resolution (CNI without the dnsname plugin, netavark without
// aardvark-dns, a network made with DNS disabled), rootless podman without newuidmap or subordinate
// ids, and no catatonit for `podman kube play` of exported YAML. Each finding is a Problem with a
// code, a message, the fix (the Debian package that provides what is missing) and the installed apps
// it affects.
//
// Classify is pure: facts and the apps' use of networks in, problems out. Probe gathers the facts
// once, from podman's API (GET /info: the network backend, networkBackendInfo's DNS path on podman
// >= 4.4, rootless, the id mappings; GET /networks/json: dns_enabled) and, where the API says
// nothing (podman 4.3 names no DNS helper; no podman names its pause binary), from the files podman
// itself would use: containers.conf (read with podman's own config library, CONTAINERS_CONF
// included) for helper_binaries_dir and cni_plugin_dirs, and PATH for newuidmap. Those lookups
// assume that lockstepd and the podman service run on the same host as the same user, as the
// packaged units do (system: root and /run/podman/podman.sock; user: the user and their socket); a
// podman URL pointing elsewhere gets only the API's half.
//
// A Checker holds the facts between passes: it probes on the first pass that reaches podman and
// again after Invalidate (the podman service connection re-established), never on every pass, so a
// no-op pass makes no request for it. It logs each problem once, when it appears, and when it goes.
package hostcheck
