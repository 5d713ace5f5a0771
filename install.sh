#!/bin/sh
# install.sh: installs, upgrades or removes kpulse with kubectl. POSIX sh; needs only kubectl
# (and curl or wget when the manifest has to be downloaded).
#
#   ./install.sh                        install or upgrade to this script's release
#   ./install.sh --version v1.2.3       install or upgrade to another release
#   ./install.sh --dry-run              print what would be applied; change nothing
#   ./install.sh --uninstall            remove kpulse, keep the Secret kpulse-secrets
#
# It is safe to run again and again. Two things are yours and are never overwritten:
#   - the Secret kpulse-secrets (your credentials): created empty only when it does not exist;
#   - the ConfigMap kpulse-config (your channels): created only when it does not exist
#     (--reset-config replaces it with the release's default).
# Everything else is applied with server-side apply, so the manifest of the release wins.
set -eu

# The release this script belongs to. The release workflow writes the tag here; "latest" in a
# checkout of the repository.
release=latest
# Where release images and assets come from (the release workflow writes the repository owner).
image_repo=ghcr.io/kpulse/kpulse
github_repo=kpulse/kpulse

usage() {
	cat <<EOF
Usage: install.sh [options]

Installs kpulse (release $release) into a Kubernetes cluster with kubectl, or upgrades it.

Options:
  --version TAG       release to install (default: $release), e.g. v1.2.3
  --namespace NAME    namespace to install into (default: kpulse)
  --context NAME      kubectl context to use (default: the current one)
  --manifest PATH|URL manifest to apply (default: deploy/kpulse.yaml beside this script,
                      else kpulse.yaml beside it, else the release's kpulse.yaml from GitHub)
  --image REPO        image repository (default: $image_repo); the tag is --version
  --timeout DURATION  how long to wait for the rollout (default: 3m)
  --no-wait           do not wait for the rollout
  --reset-config      replace an existing ConfigMap kpulse-config with the release's default
  --dry-run           print what would be applied, change nothing (needs no cluster)
  --uninstall         remove kpulse; the Secret kpulse-secrets and the namespace are kept
  --delete-secret     with --uninstall, also delete the Secret kpulse-secrets
  -h, --help          this help
EOF
}

die() {
	echo "install.sh: $*" >&2
	exit 1
}

say() { echo "install.sh: $*" >&2; }

version=$release
namespace=kpulse
context=
manifest=
timeout=3m
wait=true
reset_config=false
dry_run=false
uninstall=false
delete_secret=false

# needarg NAME VALUE: options that take a value must get one.
needarg() {
	[ -n "$2" ] || die "$1 needs a value (see --help)"
}

while [ $# -gt 0 ]; do
	opt=$1
	val=
	case $opt in
	--*=*)
		val=${opt#*=}
		opt=${opt%%=*}
		;;
	esac
	case $opt in
	--version | --namespace | --context | --manifest | --image | --timeout)
		if [ -z "$val" ]; then
			[ $# -ge 2 ] || die "$opt needs a value (see --help)"
			val=$2
			shift
		fi
		needarg "$opt" "$val"
		;;
	esac
	case $opt in
	--version) version=$val ;;
	--namespace) namespace=$val ;;
	--context) context=$val ;;
	--manifest) manifest=$val ;;
	--image) image_repo=$val ;;
	--timeout) timeout=$val ;;
	--no-wait) wait=false ;;
	--reset-config) reset_config=true ;;
	--dry-run) dry_run=true ;;
	--uninstall) uninstall=true ;;
	--delete-secret) delete_secret=true ;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown option $opt (see --help)" ;;
	esac
	shift
done

case $version in
latest | v[0-9]*) ;;
[0-9]*) version=v$version ;;
*) die "--version $version: want a release tag such as v1.2.3" ;;
esac
case $namespace in
*[!a-z0-9-]* | -* | *-) die "--namespace $namespace: not a valid namespace name" ;;
esac
if [ "$delete_secret" = true ] && [ "$uninstall" = false ]; then
	die "--delete-secret only goes with --uninstall"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kpulse-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# kc runs kubectl against the chosen context.
kc() {
	if [ -n "$context" ]; then
		kubectl --context "$context" "$@"
	else
		kubectl "$@"
	fi
}

# fetch URL FILE downloads with curl or wget.
fetch() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsSL "$1" -o "$2"
	elif command -v wget >/dev/null 2>&1; then
		wget -q -O "$2" "$1"
	else
		die "neither curl nor wget is installed to download $1; pass --manifest FILE"
	fi
}

# The manifest: an explicit --manifest, the one of this checkout or release folder, or the
# release's asset on GitHub. When the script is piped into sh, $0 is not this file.
if [ -z "$manifest" ] && [ -f "$0" ]; then
	here=$(cd "$(dirname "$0")" && pwd)
	if [ -f "$here/deploy/kpulse.yaml" ]; then
		manifest=$here/deploy/kpulse.yaml
	elif [ -f "$here/kpulse.yaml" ]; then
		manifest=$here/kpulse.yaml
	fi
fi
if [ -z "$manifest" ]; then
	if [ "$version" = latest ]; then
		manifest=https://github.com/$github_repo/releases/latest/download/kpulse.yaml
	else
		manifest=https://github.com/$github_repo/releases/download/$version/kpulse.yaml
	fi
fi
case $manifest in
http://* | https://*)
	say "downloading $manifest"
	fetch "$manifest" "$tmp/source.yaml" || die "could not download $manifest"
	;;
*)
	[ -f "$manifest" ] || die "no manifest at $manifest"
	cp "$manifest" "$tmp/source.yaml"
	;;
esac
grep -q '^kind: Deployment' "$tmp/source.yaml" || die "$manifest does not look like kpulse's manifest (no Deployment)"

# Render: pin the image to the release, move every object to the namespace.
awk -v ns="$namespace" -v image="$image_repo:$version" '
	/^---/ { kind = "" }
	/^kind: / { kind = $2 }
	/^  *image: .*kpulse:/ { sub(/image: .*/, "image: " image) }
	/^  *namespace: kpulse *$/ { sub(/namespace: kpulse/, "namespace: " ns) }
	kind == "Namespace" && /^  name: kpulse *$/ { sub(/name: kpulse/, "name: " ns) }
	{ print }
' "$tmp/source.yaml" >"$tmp/kpulse.yaml"

# without KIND... prints the rendered manifest minus the documents of those kinds.
without() {
	awk -v skip=" $* " '
		function flush() { if (doc != "" && index(skip, " " kind " ") == 0) printf "%s", doc; doc = ""; kind = "" }
		/^---/ { flush(); doc = $0 "\n"; next }
		/^kind: / { kind = $2 }
		{ doc = doc $0 "\n" }
		END { flush() }
	' "$tmp/kpulse.yaml"
}

stub_secret() {
	cat <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: kpulse-secrets
  namespace: $namespace
  labels:
    app.kubernetes.io/name: kpulse
    app.kubernetes.io/part-of: kpulse
  annotations:
    kpulse.dev/note: "Credentials for kpulse's channels. Created empty by install.sh; patch keys in, they are never overwritten."
type: Opaque
EOF
}

if [ "$dry_run" = true ]; then
	echo "# kpulse $version into namespace $namespace (dry run: nothing was applied)"
	echo "# kubectl apply --server-side --force-conflicts --field-manager=kpulse-install -f -"
	echo "# (the ConfigMap only if it does not exist yet, or with --reset-config)"
	cat "$tmp/kpulse.yaml"
	echo "---"
	echo "# kubectl create -f - (only if the Secret kpulse-secrets does not exist)"
	stub_secret
	exit 0
fi

command -v kubectl >/dev/null 2>&1 ||
	die "kubectl not found in PATH. Install it (https://kubernetes.io/docs/tasks/tools/) and point it at your cluster."
if ! err=$(kc get --raw=/version --request-timeout=15s 2>&1 >/dev/null); then
	ctx=${context:-$(kubectl config current-context 2>/dev/null || echo none)}
	die "cannot reach the cluster of kubectl context \"$ctx\": $err"
fi

exists() { kc -n "$namespace" get "$1" "$2" >/dev/null 2>&1; }

if [ "$uninstall" = true ]; then
	say "removing kpulse from namespace $namespace"
	# The namespace stays: it holds the Secret, and it may hold other things.
	without Namespace | kc delete --ignore-not-found -f -
	if [ "$delete_secret" = true ]; then
		kc -n "$namespace" delete secret kpulse-secrets --ignore-not-found
	else
		say "kept the Secret kpulse-secrets (your credentials); --uninstall --delete-secret removes it"
	fi
	say "kept the namespace $namespace; remove it with: kubectl delete namespace $namespace"
	exit 0
fi

say "installing kpulse $version into namespace $namespace"
# The Namespace object is applied only when the namespace is missing or is kpulse's own, so that
# --namespace never relabels a namespace someone else owns.
skip=
if kc get namespace "$namespace" >/dev/null 2>&1; then
	part_of=$(kc get namespace "$namespace" -o 'jsonpath={.metadata.labels.app\.kubernetes\.io/part-of}')
	[ "$part_of" = kpulse ] || skip=Namespace
fi
if [ "$reset_config" = false ] && exists configmap kpulse-config; then
	say "keeping your ConfigMap kpulse-config (--reset-config replaces it with the default)"
	skip="$skip ConfigMap"
fi
# shellcheck disable=SC2086 # $skip is a list of kinds
without $skip | kc apply --server-side --force-conflicts --field-manager=kpulse-install -f -

# The Secret: created empty only when missing, never applied, so a re-run or an upgrade cannot
# touch the credentials patched into it.
if exists secret kpulse-secrets; then
	say "keeping the existing Secret kpulse-secrets"
elif ! stub_secret | kc create -f - >/dev/null 2>"$tmp/create.err"; then
	# Someone created it between our look and our create: fine. Anything else is an error.
	exists secret kpulse-secrets || die "could not create the Secret kpulse-secrets: $(cat "$tmp/create.err")"
else
	say "created an empty Secret kpulse-secrets for your credentials"
fi

if [ "$wait" = true ]; then
	say "waiting up to $timeout for the rollout"
	kc -n "$namespace" rollout status deployment/kpulse --timeout="$timeout" ||
		die "kpulse did not become ready; see: kubectl -n $namespace describe deployment/kpulse; kubectl -n $namespace logs deployment/kpulse"
fi

cat <<EOF

kpulse $version is installed in namespace $namespace.

Next steps:
 1. Put credentials into the Secret kpulse-secrets (kept across re-installs and upgrades), e.g.
      kubectl -n $namespace patch secret kpulse-secrets --type merge \\
        -p '{"stringData":{"SLACK_BOT_TOKEN":"xoxb-..."}}'
    and name the key in a channel of the config (tokenFrom: SLACK_BOT_TOKEN):
      kubectl -n $namespace edit configmap kpulse-config
      kubectl -n $namespace rollout restart deployment/kpulse
 2. Check a channel through /test-channel:
      kubectl -n $namespace port-forward service/kpulse 8080:8080 &
      curl -s 'http://localhost:8080/test-channel?name=stdout'
EOF
