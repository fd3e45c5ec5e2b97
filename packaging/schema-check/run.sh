#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Schema check of the Kubernetes manifests, offline once its packages are
# installed: packaging/kubernetes/*.yaml (except kustomization.yaml), the
# examples (examples/*.yaml, examples/*/*.yaml), and "kubectl kustomize"
# output of the base and of each example kustomization when kubectl is
# installed (kubectl 1.21 or later for those that use a Component),
# validated against the Kubernetes and cert-manager API schemas
# bundled by the npm packages kubernetes-models and
# @kubernetes-models/cert-manager (pinned in package-lock.json).
#
#   packaging/schema-check/run.sh [KUSTOMIZE_DIR]
#
# The packages are installed with "npm ci" into a temporary directory, never
# into the source tree. Exit 0 valid, 1 invalid, 77 when node or npm is
# missing or the npm registry cannot be reached. Kubernetes checks these schemas too, but not before
# "kubectl apply"; unknown fields are not reported here (the schemas allow
# them), tests/integration/t_k8s_manifests.py checks the fields that matter.
# The Component's files (components/*) are partial objects, strategic-merge
# patches: they are checked in the kustomize output only.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
kdir=$(cd "${1:-$here/../kubernetes}" && pwd)

for t in node npm; do
	if ! command -v "$t" >/dev/null 2>&1; then
		echo "schema-check: SKIP: $t not found (Debian: apt-get install nodejs npm)"
		exit 77
	fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/moat-schema-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$here/validate.mjs" "$work/"
echo "schema-check: npm ci (kubernetes-models, @kubernetes-models/cert-manager, yaml) in $work"
if ! (cd "$work" && npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1); then
	cat "$work/npm.log"
	# Not the manifests' fault: the npm registry is out of reach.
	echo "schema-check: SKIP: npm ci could not install the schema packages"
	exit 77
fi

set --
for f in "$kdir"/*.yaml "$kdir"/examples/*.yaml "$kdir"/examples/*/*.yaml; do
	[ -f "$f" ] || continue
	[ "$(basename "$f")" = kustomization.yaml ] && continue
	set -- "$@" "$f"
done
if command -v kubectl >/dev/null 2>&1; then
	kubectl kustomize "$kdir" >"$work/kustomize-build.yaml" || {
		echo "schema-check: FAIL: kubectl kustomize $kdir"
		exit 1
	}
	set -- "$@" "$work/kustomize-build.yaml"
	# Components need kustomize 4 or later (kubectl 1.21 or later).
	if kubectl version --client 2>/dev/null |
		grep -Eq 'Kustomize Version: v([4-9]|[1-9][0-9])'; then
		for k in "$kdir"/examples/*/kustomization.yaml; do
			[ -f "$k" ] || continue
			ex=$(dirname "$k")
			out="$work/kustomize-$(basename "$ex").yaml"
			kubectl kustomize "$ex" >"$out" || {
				echo "schema-check: FAIL: kubectl kustomize $ex"
				exit 1
			}
			set -- "$@" "$out"
		done
	else
		echo "schema-check: kubectl too old for Components: not building the examples"
	fi
else
	echo "schema-check: kubectl not found: checking the files, not the kustomize build"
fi
node "$work/validate.mjs" "$@"
