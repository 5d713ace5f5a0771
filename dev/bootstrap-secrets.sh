#!/bin/sh
# Creates kpulse's namespace and an empty Secret kpulse-secrets, each only if it does not exist.
# The Tiltfile runs it (resource kpulse-secrets-bootstrap) before kpulse starts. It never applies
# or replaces the Secret, so the credentials you patch into it survive every `tilt up`:
#
#   kubectl --context k3d-kpulse-test -n kpulse patch secret kpulse-secrets --type merge \
#     -p '{"stringData":{"SLACK_BOT_TOKEN":"xoxb-..."}}'
#
#   dev/bootstrap-secrets.sh [CONTEXT] [NAMESPACE]   (defaults: kubectl's current context, kpulse)
set -eu

context=${1:-}
namespace=${2:-kpulse}

kc() {
	if [ -n "$context" ]; then
		kubectl --context "$context" "$@"
	else
		kubectl "$@"
	fi
}

if kc get namespace "$namespace" >/dev/null 2>&1; then
	echo "namespace $namespace: exists"
else
	kc create namespace "$namespace"
fi

if kc -n "$namespace" get secret kpulse-secrets >/dev/null 2>&1; then
	echo "secret $namespace/kpulse-secrets: exists, left as it is"
else
	kc -n "$namespace" create secret generic kpulse-secrets
	echo "secret $namespace/kpulse-secrets: created empty; patch your credentials into it"
fi
