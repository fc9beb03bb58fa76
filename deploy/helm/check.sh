#!/usr/bin/env bash
# Checks the Mycelium chart without a Kubernetes cluster; exits non-zero on any failure.
#
#   1. helm lint --strict, with the default values and every variant in mycelium/ci/
#   2. helm template for each variant (and a long release name in another namespace), then
#        - manifestcheck: strict decoding into the Kubernetes / cert-manager / Prometheus Operator Go types, plus
#          names, labels, env references, volume mounts, probe ports, Service and PDB selectors
#        - kubeconform (KUBECONFORM=…, else on PATH), only when KUBECONFORM_SCHEMA_LOCATION points at local JSON
#          schemas (its default schemas are downloaded from the internet)
#        - test/simulate-pods.js: each pod's init container and service entry point run against the real
#          @mycelium/config and @mycelium/tls, with made-up Secrets
#        - NOTES.txt renders
#   3. every file in test/bad-values/ must be rejected, with the message on its "# expect:" line
#
# Tools: helm (HELM=…, else .tools/bin/helm, else installed there with `go install`), Go (manifestcheck), Node.js
# and pnpm (packages/config and packages/tls are built when their dist/ is missing).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
chart="$here/mycelium"
tools="$here/.tools"
helm_version="${HELM_VERSION:-v3.19.0}"
kube_version="${KUBE_VERSION:-1.30.0}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

# --- tools ---------------------------------------------------------------------------------------------------------
mkdir -p "$tools/bin"
if [ -n "${HELM:-}" ]; then
  helm="$HELM"
elif [ -x "$tools/bin/helm" ]; then
  helm="$tools/bin/helm"
else
  echo "installing helm $helm_version into $tools/bin"
  # The version stamp go install leaves out, so `helm version` tells the truth.
  GOBIN="$tools/bin" go install -ldflags "-X helm.sh/helm/v3/internal/version.version=$helm_version" "helm.sh/helm/v3/cmd/helm@$helm_version"
  helm="$tools/bin/helm"
fi
"$helm" version --short

(cd "$here/tools/manifestcheck" && go build -o "$tools/bin/manifestcheck" .)
manifestcheck="$tools/bin/manifestcheck"

simulate=true
if ! command -v node >/dev/null; then
  echo "node not found: skipping the pod simulation"
  simulate=false
elif [ ! -f "$repo/packages/config/dist/index.js" ] || [ ! -f "$repo/packages/tls/dist/index.js" ]; then
  echo "building @mycelium/config and @mycelium/tls for the pod simulation"
  (cd "$repo" && pnpm --filter @mycelium/config --filter @mycelium/tls build >/dev/null)
fi

# NOTES.txt is rendered by `helm install` only; a copy of the chart renders it as a ConfigMap to check it.
notes_chart="$work/notes-chart"
cp -r "$chart" "$notes_chart"
mv "$notes_chart/templates/NOTES.txt" "$notes_chart/notes.src"
printf '%s\n' 'apiVersion: v1' 'kind: ConfigMap' 'metadata: {name: notes}' 'data:' '  notes: |' '{{ tpl (.Files.Get "notes.src") . | indent 4 }}' >"$notes_chart/templates/zz-notes.yaml"

# --- lint and render -----------------------------------------------------------------------------------------------
variants=("")
for file in "$chart"/ci/*.yaml; do variants+=("$file"); done

render_and_check() {
  local label="$1"
  shift
  local out="$work/$(echo "$label" | tr -c 'a-zA-Z0-9\n' '_').yaml"
  if ! "$helm" template "$@" --kube-version "$kube_version" >"$out" 2>"$out.err"; then
    fail "template $label: $(cat "$out.err")"
    return
  fi
  pass "template $label"
  if "$manifestcheck" validate <"$out" >"$out.check" 2>&1; then pass "manifests $label: $(tail -1 "$out.check")"; else fail "manifests $label:"; cat "$out.check"; fi
  if [ -n "${KUBECONFORM_SCHEMA_LOCATION:-}" ]; then
    if "${KUBECONFORM:-kubeconform}" -strict -summary -schema-location "$KUBECONFORM_SCHEMA_LOCATION" -skip Certificate,Issuer,ServiceMonitor "$out"; then pass "kubeconform $label"; else fail "kubeconform $label"; fi
  fi
  if $simulate; then
    "$manifestcheck" tojson <"$out" >"$out.json"
    if node "$here/test/simulate-pods.js" "$out.json" >"$out.sim" 2>&1; then pass "pods $label: $(tail -1 "$out.sim")"; else fail "pods $label:"; cat "$out.sim"; fi
  fi
}

for values in "${variants[@]}"; do
  label="${values:+${values#"$chart"/}}"
  label="${label:-default values}"
  args=()
  [ -n "$values" ] && args=(-f "$values")
  if "$helm" lint --strict "$chart" "${args[@]}" >"$work/lint" 2>&1; then pass "lint $label"; else fail "lint $label"; cat "$work/lint"; fi
  render_and_check "$label" mycelium-test "$chart" --namespace mycelium "${args[@]}"
  if "$helm" template mycelium-test "$notes_chart" "${args[@]}" --kube-version "$kube_version" --show-only templates/zz-notes.yaml >"$work/notes" 2>&1; then
    pass "NOTES.txt $label"
  else
    fail "NOTES.txt $label"; cat "$work/notes"
  fi
done
# Names at their length limits, in a namespace of their own.
render_and_check "long release name" a-release-name-long-enough-to-truncate-every-resource "$chart" --namespace mycelium-production-eu-west

# --- bad values ----------------------------------------------------------------------------------------------------
for file in "$here"/test/bad-values/*.yaml; do
  name="$(basename "$file")"
  expected="$(sed -n '1s/^# expect: //p' "$file")"
  if [ -z "$expected" ]; then
    fail "bad values $name: no '# expect:' first line"
  elif "$helm" template mycelium-test "$chart" -f "$file" --kube-version "$kube_version" >/dev/null 2>"$work/err"; then
    fail "bad values $name: accepted"
  elif ! grep -qF -- "$expected" "$work/err"; then
    fail "bad values $name: rejected, but without \"$expected\": $(cat "$work/err")"
  else
    pass "bad values $name rejected"
  fi
done

echo "helm chart: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
