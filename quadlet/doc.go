// Package quadlet renders companion specs into Quadlet .container units, deterministically.
package quadlet
