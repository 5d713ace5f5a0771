#!/bin/sh
# The Tiltfile's custom_build command: builds a Dockerfile.dev image of one binary of bin/ and
# imports it into the k3d cluster (no registry, nothing pushed).
#
#   dev/k3d-image.sh CLUSTER BINARY    (Tilt sets EXPECTED_REF, e.g. kpulse:dev)
#
# With a fixed tag (custom_build(tag='dev')) Tilt deploys the image under a content tag of its
# own, <name>:tilt-<first 16 hex digits of the image ID>, which it adds to the local Docker after
# this script. The cluster only sees what is imported, so the script imports both names:
# EXPECTED_REF and the content tag, which also changes with every new binary and so rolls the pod.
set -eu

cluster=${1:?usage: k3d-image.sh CLUSTER BINARY}
binary=${2:?usage: k3d-image.sh CLUSTER BINARY}
ref=${EXPECTED_REF:?EXPECTED_REF is set by Tilt}

cd "$(dirname "$0")/.."
[ -x "bin/$binary" ] || { echo "k3d-image.sh: no bin/$binary; the Tilt resource that builds it runs first" >&2; exit 1; }

docker build -f Dockerfile.dev --build-arg BINARY="$binary" -t "$ref" .
id=$(docker image inspect --format '{{.Id}}' "$ref")
hex=${id#sha256:}
content=${ref%:*}:tilt-$(printf '%s' "$hex" | cut -c1-16)
docker tag "$ref" "$content"
k3d image import --cluster "$cluster" "$ref" "$content"
