#!/usr/bin/env bash
# Checks deploy/k8s/ against the Kubernetes API schemas, offline: kubernetes-validate (PyPI)
# ships the schemas of every Kubernetes release. Not part of CI (engine/tests/k8s.rs
# checks the fields that make a CPRA node there); run it after editing the examples.
# Usage: scripts/k8s-validate.sh [KUBERNETES_VERSION]   (default 1.30.0)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-1.30.0}"
venv="${TMPDIR:-/tmp}/cpra-k8s-validate"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q kubernetes-validate
fi
"$venv/bin/kubernetes-validate" --strict -k "$version" deploy/k8s/*.yaml deploy/k8s/ha/*.yaml
