// Package httpapi serves the report, reconcile, health and Prometheus metrics over lockstep's unix socket.
package httpapi
