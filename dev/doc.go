// Package dev holds the contributor's dev loop: the manifests the Tiltfile (at the repository
// root) deploys to a local k3d cluster (kpulse.dev.yaml, echo-sink/, triggers/) and the scripts it
// runs. It has no code (dev/triggers describes its YAML for the demo); its tests evaluate the
// Tiltfile with stand-ins for Tilt's builtins, apply every manifest to a real kube-apiserver, run
// the Secret bootstrap and the build scripts for real, and break the triggers on the test bed's
// controllers mode to see each alert arrive at the echo sink. They also hold the Makefile to its
// list of fuzz targets.
package dev
