// Package companions is a pass's companion stage: it keeps the systemd units of the installed apps'
// companion containers (Quadlet .container files, or plain .service units on hosts without podman's
// generator) in line with the manifests, through an engine.Systemd. NewPlan, before the apps stage,
// lists what is wanted and which of lockstep's unit files no app wants; StopGone stops those first
// (Restart=always would bring them back); Apply, after the apps stage, deletes them, writes changed
// files (only files that start with lockstep's header are ever touched), makes one daemon-reload
// when anything changed on disk, and starts or restarts units, reporting every result as a row and,
// when it fails, a failure. A companion whose mount source does not exist yet waits, and Apply asks
// for a pass soon. The reconciler calls it; it never calls the reconciler.
package companions
