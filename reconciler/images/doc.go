// Package images makes a container's image present before the container is touched: built when the
// manifest has a build (output logged line by line, STEP and COMMIT at Info), else pulled under the
// operator's RegistryPolicy (allowed registries; TLS verification off only when both the manifest's
// registry.insecure and the operator's --insecure-registries name the registry), with the service's
// progress lines logged at Info at most once a second. An image already in local storage is used as
// it is; nothing here removes an image (the reconciler's records and Purge do).
//
// Image policy: an app's image is built locally when its manifest has a build, else pulled, and only
// from a registry the operator allows. TLS verification is turned off only for a registry that both
// the app's manifest (registry.insecure) and the operator (RegistryPolicy.Insecure) name: a manifest,
// which may come from a vendor's catalog, cannot grant itself trust. Images are recorded per app in
// the state dir and removed only by Purge.
package images
