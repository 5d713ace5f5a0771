#!/bin/sh
# Writes the assets of a GitHub release into OUTDIR, pinned to the release:
#   install.sh           whose default --version is TAG and whose image is ghcr.io/OWNER/kpulse
#   kpulse.yaml          deploy/kpulse.yaml with the image ghcr.io/OWNER/kpulse:TAG
#   chart/kpulse/        the Helm chart with that image repository, for `helm package`
# .github/workflows/release.yml runs it; deploy/install_test.go runs it too.
#
#   deploy/release-assets.sh v1.2.3 octo-org/kpulse dist
set -eu

die() {
	echo "release-assets.sh: $*" >&2
	exit 1
}

[ $# -eq 3 ] || die "usage: release-assets.sh TAG OWNER/REPO OUTDIR"
tag=$1
repo=$2
out=$3
case $tag in
v[0-9]*.[0-9]*.[0-9]*) ;;
*) die "TAG $tag: want vMAJOR.MINOR.PATCH[-PRERELEASE]" ;;
esac
case $repo in
*/*) ;;
*) die "OWNER/REPO $repo: want the GitHub repository, e.g. octo-org/kpulse" ;;
esac
# Image names are lower case; GitHub owners need not be.
owner=$(printf '%s' "${repo%%/*}" | tr '[:upper:]' '[:lower:]')
image=ghcr.io/$owner/kpulse

cd "$(dirname "$0")/.."
mkdir -p "$out"

sed -e "s|^release=latest\$|release=$tag|" \
	-e "s|^image_repo=ghcr.io/kpulse/kpulse\$|image_repo=$image|" \
	-e "s|^github_repo=kpulse/kpulse\$|github_repo=$repo|" \
	install.sh >"$out/install.sh"
chmod +x "$out/install.sh"
for want in "release=$tag" "image_repo=$image" "github_repo=$repo"; do
	grep -qx "$want" "$out/install.sh" || die "install.sh: could not set $want (did its header change?)"
done

sed -e "s|^\\(  *image: \\)ghcr.io/kpulse/kpulse:.*\$|\\1$image:$tag|" deploy/kpulse.yaml >"$out/kpulse.yaml"
[ "$(grep -c "image: $image:$tag\$" "$out/kpulse.yaml")" -eq 1 ] || die "kpulse.yaml: could not pin the image"

rm -rf "$out/chart"
mkdir -p "$out/chart"
cp -R deploy/helm/kpulse "$out/chart/kpulse"
sed -e "s|^  repository: ghcr.io/kpulse/kpulse\$|  repository: $image|" deploy/helm/kpulse/values.yaml >"$out/chart/kpulse/values.yaml"
grep -qx "  repository: $image" "$out/chart/kpulse/values.yaml" || die "chart: could not set image.repository"

echo "release-assets.sh: $tag assets for $repo in $out (image $image:$tag)"
