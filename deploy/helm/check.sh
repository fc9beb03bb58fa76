#!/usr/bin/env bash
# Checks the Mycelium chart without a Kubernetes cluster; exits non-zero on any failure.
#
#   1. helm lint --strict, with the default values and every variant in mycelium/ci/
#   2. helm template for each variant (and a long release name in another namespace), then
#        - manifestcheck: strict decoding into the Kubernetes / cert-manager / Prometheus Operator Go types, plus
#          names, labels, env references, volume mounts, probe ports, Service and PDB selectors
#        - test/simulate-pods.js: the certificate renewer against a stand-in Kubernetes API, then each pod's init
#          container and service entry point against the real @mycelium/config and @mycelium/tls
#        - NOTES.txt renders
#   3. kubeconform -strict with -kubernetes-version, for every Kubernetes minor version from the chart's kubeVersion
#      floor to the newest the offline schemas know, each variant rendered with that --kube-version; the schemas come
#      from the PyPI package kubernetes-validate, converted for kubeconform by tools/kube-schemas.py
#   4. every file in test/bad-values/ must be rejected, with the message on its "# expect:" line
#   5. every template in test/bad-templates/ is added to a copy of the chart, and kubeconform must refuse the result
#      on exactly the Kubernetes versions its "# invalid on:" line names (so the check above can fail)
#
# Tools, cached in deploy/helm/.tools (gitignored): helm and kubeconform (`go install`, HELM=… / KUBECONFORM=… to use
# others), the schemas (pip download); Go (manifestcheck), Python 3, Node.js and pnpm (packages/config and
# packages/tls are built when their dist/ is missing).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
chart="$here/mycelium"
tools="$here/.tools"
helm_version="${HELM_VERSION:-v3.19.0}"
kube_version="${KUBE_VERSION:-1.30.0}"
kubeconform_version="${KUBECONFORM_VERSION:-v0.8.0}"
schemas_package="kubernetes-validate==1.37.0"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

for tool in go python3 node; do
  command -v "$tool" >/dev/null || { echo "deploy/helm/check.sh needs $tool on PATH (it builds helm, kubeconform and manifestcheck with Go and converts the Kubernetes schemas with Python)" >&2; exit 1; }
done

# --- tools ---------------------------------------------------------------------------------------------------------
mkdir -p "$tools/bin"
# go_tool <name> <override> <module/cmd@version> [go install flags…]: prints the tool's path: the override when set,
# else $tools/bin/<name>, built there with `go install` the first time.
go_tool() {
  local name="$1" override="$2" package="$3"
  shift 3
  if [ -n "$override" ]; then echo "$override"; return; fi
  if [ ! -x "$tools/bin/$name" ]; then
    echo "installing $package into $tools/bin" >&2
    GOBIN="$tools/bin" go install "$@" "$package" >&2
  fi
  echo "$tools/bin/$name"
}
# -ldflags: the version stamp go install leaves out, so `helm version` tells the truth.
helm="$(go_tool helm "${HELM:-}" "helm.sh/helm/v3/cmd/helm@$helm_version" -ldflags "-X helm.sh/helm/v3/internal/version.version=$helm_version")"
"$helm" version --short
kubeconform="$(go_tool kubeconform "${KUBECONFORM:-}" "github.com/yannh/kubeconform/cmd/kubeconform@$kubeconform_version" -ldflags "-X main.version=$kubeconform_version")"

# Offline schemas: one minor version per step from the chart's kubeVersion floor to the newest the package knows.
floor_minor="$(sed -n 's/^kubeVersion: *"*>=1\.\([0-9]*\).*/\1/p' "$chart/Chart.yaml")"
[ -n "$floor_minor" ] || { echo "cannot read the minimum Kubernetes version from kubeVersion in $chart/Chart.yaml" >&2; exit 1; }
schema_kinds="configmap-v1,secret-v1,service-v1,serviceaccount-v1,pod-v1,deployment-apps-v1,statefulset-apps-v1,poddisruptionbudget-policy-v1,networkpolicy-networking-v1,job-batch-v1,cronjob-batch-v1,role-rbac-v1,rolebinding-rbac-v1"
schemas="$tools/kubernetes-json-schema"
wheel="$(ls "$tools"/wheels/kubernetes_validate-*.whl 2>/dev/null | head -1 || true)"
if [ -z "$wheel" ]; then
  echo "downloading $schemas_package (offline Kubernetes JSON schemas) into $tools/wheels"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tools/wheels" "$schemas_package"
  wheel="$(ls "$tools"/wheels/kubernetes_validate-*.whl | head -1)"
fi
newest_minor="$(python3 -c "import re, sys, zipfile; print(max(int(m) for m in re.findall(r'/v1\.(\d+)\.0-local-strict/', '\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))))" "$wheel")"
kube_minors="$(seq "$floor_minor" "$newest_minor" | paste -sd, -)"
stamp="$(basename "$wheel") $kube_minors $schema_kinds $(sha256sum "$here/tools/kube-schemas.py" | cut -c1-16)"
if [ "$(cat "$schemas/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "converting the schemas of Kubernetes 1.{$kube_minors} for kubeconform into $schemas"
  rm -rf "$schemas"
  python3 "$here/tools/kube-schemas.py" "$wheel" "$schemas" "$kube_minors" "$schema_kinds"
  echo "$stamp" >"$schemas/.stamp"
fi
schema_location="$schemas/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
echo "kubeconform $("$kubeconform" -v), Kubernetes 1.{$kube_minors}"

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

# --- kubeconform, every supported Kubernetes version -----------------------------------------------------------
# Renders each variant with that --kube-version into one directory per version; prints the minors kubeconform refused.
# The custom resources (cert-manager, Prometheus Operator) have no schemas here; manifestcheck decodes them strictly.
kubeconform_refusals() {
  local chart_dir="$1" dir="$2"
  local minor refused=""
  for minor in ${kube_minors//,/ }; do
    mkdir -p "$dir/1.$minor"
    local i=0
    for values in "${variants[@]}"; do
      i=$((i + 1))
      local args=()
      [ -n "$values" ] && args=(-f "$values")
      if ! "$helm" template mycelium-test "$chart_dir" --namespace mycelium --kube-version "1.$minor.0" "${args[@]}" >"$dir/1.$minor/$i.yaml" 2>"$dir/1.$minor/$i.err"; then
        cp "$dir/1.$minor/$i.err" "$dir/1.$minor/kubeconform.out"
        refused="$refused $minor"
        continue 2
      fi
    done
    if ! "$kubeconform" -strict -summary -kubernetes-version "1.$minor.0" -schema-location "$schema_location" \
      -skip Certificate,Issuer,ServiceMonitor,PrometheusRule "$dir/1.$minor"/*.yaml >"$dir/1.$minor/kubeconform.out" 2>&1; then
      refused="$refused $minor"
    fi
  done
  echo "${refused# }"
}

refused="$(kubeconform_refusals "$chart" "$work/kubeconform")"
for minor in ${kube_minors//,/ }; do
  if [[ " $refused " == *" $minor "* ]]; then
    fail "kubeconform Kubernetes 1.$minor:"
    grep -v "^Summary" "$work/kubeconform/1.$minor/kubeconform.out" | head -20 || true
  else
    pass "kubeconform Kubernetes 1.$minor: $(grep '^Summary' "$work/kubeconform/1.$minor/kubeconform.out")"
  fi
done

# --- bad templates: the check above must be able to fail ------------------------------------------------------
for file in "$here"/test/bad-templates/*.yaml; do
  name="$(basename "$file")"
  expected="$(sed -n '1s/^# invalid on: //p' "$file")"
  broken="$work/broken-${name%.yaml}"
  cp -r "$chart" "$broken"
  cp "$file" "$broken/templates/zz-$name"
  got="$(kubeconform_refusals "$broken" "$work/kubeconform-${name%.yaml}" 2>/dev/null)"
  want=""
  for minor in ${kube_minors//,/ }; do
    case "$expected" in
      all) want="$want $minor" ;;
      "<1."*) [ "$minor" -lt "${expected#<1.}" ] && want="$want $minor" ;;
      *) echo "$file: first line must be '# invalid on: all' or '# invalid on: <1.N'" >&2; exit 1 ;;
    esac
  done
  if [ "$got" = "${want# }" ]; then
    pass "bad template $name refused on Kubernetes 1.{${got// /,}}"
  else
    fail "bad template $name: refused on 1.{${got// /,}}, expected 1.{$(echo ${want# } | tr ' ' ,)}"
  fi
done

# --- upgrades: what Kubernetes would refuse is refused before anything is applied ------------------------------
# The default values are "installed" in a stand-in API server; each file in test/upgrade-changes/ is then rendered as
# an upgrade with `--dry-run=server`, so templates/validate.yaml's lookup of the live StatefulSets runs.
"$helm" template mycelium-test "$chart" --namespace mycelium --kube-version "$kube_version" >"$work/installed.yaml"
"$manifestcheck" tojson <"$work/installed.yaml" >"$work/installed.json"
node "$here/test/upgrade-api.js" "$work/installed.json" "$work/kubeconfig" &
upgrade_api=$!
for _ in $(seq 100); do [ -s "$work/kubeconfig" ] && break; sleep 0.1; done
# judge <what> <file> <command…>: runs the command with `-f <file>`; the file's first line "# expect: <message>" says
# the command must fail with that message in its output, "# expect: nothing" that it must succeed.
judge() {
  local what="$1" file="$2"
  shift 2
  local expected
  expected="$(sed -n '1s/^# expect: //p' "$file")"
  if [ -z "$expected" ]; then
    fail "$what: no '# expect:' first line"
  elif "$@" -f "$file" >/dev/null 2>"$work/err"; then
    if [ "$expected" = nothing ]; then pass "$what accepted"; else fail "$what: accepted"; fi
  elif [ "$expected" = nothing ]; then
    fail "$what: rejected: $(cat "$work/err")"
  elif ! grep -qF -- "$expected" "$work/err"; then
    fail "$what: rejected, but without \"$expected\": $(cat "$work/err")"
  else
    pass "$what rejected"
  fi
}
for file in "$here"/test/upgrade-changes/*.yaml; do
  judge "upgrade $(basename "$file")" "$file" "$helm" template mycelium-test "$chart" --namespace mycelium \
    --kube-version "$kube_version" --dry-run=server --kubeconfig "$work/kubeconfig"
done
kill "$upgrade_api"

# --- bad values ----------------------------------------------------------------------------------------------------
for file in "$here"/test/bad-values/*.yaml; do
  judge "bad values $(basename "$file")" "$file" "$helm" template mycelium-test "$chart" --kube-version "$kube_version"
done

echo "helm chart: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
