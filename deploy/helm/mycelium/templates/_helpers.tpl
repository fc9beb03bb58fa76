{{/* Names, labels and addresses. */}}

{{- define "mycelium.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mycelium.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
"<fullname>-<suffix>", at most 52 characters: a StatefulSet's pods get a controller-revision-hash label
"<name>-<10 characters>" that must fit in 63, and pod names must stay DNS labels.
Call with (dict "root" $ "suffix" "coordinator").
*/}}
{{- define "mycelium.componentName" -}}
{{- $limit := int (sub 51 (len .suffix)) -}}
{{- printf "%s-%s" (include "mycelium.fullname" .root | trunc $limit | trimSuffix "-") .suffix -}}
{{- end -}}

{{- define "mycelium.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mycelium.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mycelium.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Call with (dict "root" $ "component" "coordinator"). */}}
{{- define "mycelium.labels" -}}
helm.sh/chart: {{ include "mycelium.chart" .root }}
{{ include "mycelium.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: mycelium
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels without a component, for objects shared by the release. */}}
{{- define "mycelium.releaseLabels" -}}
helm.sh/chart: {{ include "mycelium.chart" . }}
app.kubernetes.io/name: {{ include "mycelium.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mycelium
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "mycelium.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mycelium.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag, or repository@digest when a digest pins the image. */}}
{{- define "mycelium.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The image's entry point, relative to image.workingDir (see the Dockerfile). */}}
{{- define "mycelium.entrypoint" -}}
bin/container-entrypoint.js
{{- end -}}

{{/* A component's priorityClassName, else the global one. Call with (dict "root" $ "values" $v). */}}
{{- define "mycelium.priorityClassName" -}}
{{- default .root.Values.priorityClassName .values.priorityClassName -}}
{{- end -}}

{{/* The kubernetes.io/tls Secret of an identity, the same in both certificate modes: "<component name>-tls". */}}
{{- define "mycelium.tlsSecretName" -}}
{{- printf "%s-tls" (include "mycelium.componentName" .) -}}
{{- end -}}

{{/* Node key Secrets of a node-agent set: "<prefix>-<ordinal>". Call with (dict "root" $ "component" "validator" "values" $v). */}}
{{- define "mycelium.nodeKeyPrefix" -}}
{{- default (printf "%s-key" (include "mycelium.componentName" (dict "root" .root "suffix" .component))) .values.identity.secretPrefix -}}
{{- end -}}

{{/* The client identity of `helm test`. */}}
{{- define "mycelium.testClientName" -}}
helm-test
{{- end -}}

{{/* The headless Service that gives every node-agent pod a stable DNS name. */}}
{{- define "mycelium.nodeAgentServiceName" -}}
{{- include "mycelium.componentName" (dict "root" . "suffix" "node-agent") -}}
{{- end -}}

{{/* "<service>.<namespace>.svc.<clusterDomain>" of a component's Service. Call with (dict "root" $ "suffix" "coordinator"). */}}
{{- define "mycelium.serviceHost" -}}
{{- printf "%s.%s.svc.%s" (include "mycelium.componentName" .) .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{- define "mycelium.coordinatorAddress" -}}
{{- printf "%s:%d" (include "mycelium.serviceHost" (dict "root" . "suffix" "coordinator")) (int .Values.ports.grpc) -}}
{{- end -}}

{{- define "mycelium.routerAddress" -}}
{{- printf "%s:%d" (include "mycelium.serviceHost" (dict "root" . "suffix" "shard-router")) (int .Values.ports.grpc) -}}
{{- end -}}

{{/*
DNS names a component's certificate carries: every form of its Service name clients may dial, plus extras.
Call with (dict "root" $ "suffix" "coordinator" "extra" list). Returns a comma-separated list.
*/}}
{{- define "mycelium.serviceDnsNames" -}}
{{- $service := include "mycelium.componentName" (dict "root" .root "suffix" .suffix) -}}
{{- $ns := .root.Release.Namespace -}}
{{- $names := list $service (printf "%s.%s" $service $ns) (printf "%s.%s.svc" $service $ns) (printf "%s.%s.svc.%s" $service $ns .root.Values.clusterDomain) -}}
{{- concat $names (.extra | default list) .root.Values.certificates.extraDnsNames | uniq | join "," -}}
{{- end -}}

{{/*
DNS names of one node-agent pod. Call with (dict "root" $ "pod" "<pod name or $(POD_NAME)>" "extra" list).
*/}}
{{- define "mycelium.podDnsNames" -}}
{{- $headless := include "mycelium.nodeAgentServiceName" .root -}}
{{- $ns := .root.Release.Namespace -}}
{{- $names := list (printf "%s.%s" .pod $headless) (printf "%s.%s.%s" .pod $headless $ns) (printf "%s.%s.%s.svc" .pod $headless $ns) (printf "%s.%s.%s.svc.%s" .pod $headless $ns .root.Values.clusterDomain) -}}
{{- concat $names (.extra | default list) .root.Values.certificates.extraDnsNames | uniq | join "," -}}
{{- end -}}

{{- define "mycelium.controlStoreSecretName" -}}
{{- default (include "mycelium.componentName" (dict "root" . "suffix" "control-store")) .Values.controlStore.existingSecret -}}
{{- end -}}

{{- define "mycelium.caSecretName" -}}
{{- if eq .Values.certificates.mode "certManager" -}}
{{- default (include "mycelium.componentName" (dict "root" . "suffix" "ca")) .Values.certificates.certManager.caSecretName -}}
{{- else -}}
{{- default (include "mycelium.componentName" (dict "root" . "suffix" "ca")) .Values.certificates.caSecret.name -}}
{{- end -}}
{{- end -}}

{{- define "mycelium.issuerName" -}}
{{- include "mycelium.componentName" (dict "root" . "suffix" "ca-issuer") -}}
{{- end -}}

{{/*
A number as a MYCELIUM_* value: whole numbers without a decimal point or exponent (YAML numbers reach templates as
float64, which would print 1000000 as "1e+06"), strings as written.
*/}}
{{- define "mycelium.value" -}}
{{- if kindIs "string" . -}}
{{- . -}}
{{- else if and (or (kindIs "float64" .) (kindIs "int64" .) (kindIs "int" .)) (eq (float64 .) (float64 (int64 .))) -}}
{{- int64 . -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end -}}

{{/*
A duration value (as the processes parse it: a bare number is seconds; ms, s, m, h) in milliseconds, for the
cross-field checks JSON Schema cannot express.
*/}}
{{- define "mycelium.durationMs" -}}
{{- $text := include "mycelium.value" . | lower | nospace -}}
{{- $number := regexFind "^[0-9]*\\.?[0-9]+" $text -}}
{{- $unit := trimPrefix $number $text | default "s" -}}
{{- $factor := get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit -}}
{{- mulf (float64 $number) (float64 $factor) -}}
{{- end -}}

{{/* One "name: value" env entry; value through mycelium.value and quoted. */}}
{{- define "mycelium.env" -}}
- name: {{ .name }}
  value: {{ include "mycelium.value" .value | quote }}
{{- end -}}

{{/*
Every certificate the chart wants, as JSON for the renewer (files/renew.js): per Deployment, per node-agent ordinal
(named by the node id of key Secret "<prefix>-<ordinal>"), per client of certificates.caSecret.clients, and the
helm test client. Secret names are the ones cert-manager mode uses, so pods mount the same names in both modes.
*/}}
{{- define "mycelium.wantedCertificates" -}}
{{- $root := . -}}
{{- $ips := .Values.certificates.extraIpAddresses -}}
{{- $wanted := list -}}
{{- range $component := list "coordinator" "shard-router" "replicator" -}}
{{- $v := index (dict "coordinator" $root.Values.coordinator "shard-router" $root.Values.shardRouter "replicator" $root.Values.replicator) $component -}}
{{- $hosts := concat (splitList "," (include "mycelium.serviceDnsNames" (dict "root" $root "suffix" $component "extra" $v.service.extraDnsNames))) $ips -}}
{{- $wanted = append $wanted (dict "secret" (include "mycelium.tlsSecretName" (dict "root" $root "suffix" $component)) "role" $component "name" $component "hosts" $hosts) -}}
{{- end -}}
{{- range $set := list (dict "component" "validator" "values" .Values.nodeAgents.validators) (dict "component" "miner" "values" .Values.nodeAgents.miners) -}}
{{- $setName := include "mycelium.componentName" (dict "root" $root "suffix" $set.component) -}}
{{- $prefix := include "mycelium.nodeKeyPrefix" (dict "root" $root "component" $set.component "values" $set.values) -}}
{{- range $i := until (int $set.values.replicas) -}}
{{- $pod := printf "%s-%d" $setName $i -}}
{{- $hosts := concat (splitList "," (include "mycelium.podDnsNames" (dict "root" $root "pod" $pod "extra" $set.values.extraDnsNames))) $ips -}}
{{- $wanted = append $wanted (dict "secret" (printf "%s-tls" $pod) "role" "node-agent" "keySecret" (printf "%s-%d" $prefix $i) "generateKey" (eq $set.values.identity.source "generate") "hosts" $hosts) -}}
{{- end -}}
{{- end -}}
{{- range (include "mycelium.clientIdentities" . | fromJsonArray) -}}
{{- $wanted = append $wanted (dict "secret" (include "mycelium.tlsSecretName" (dict "root" $root "suffix" (printf "%s-%s" .role .name))) "role" .role "name" .name "hosts" list) -}}
{{- end -}}
{{- toJson $wanted -}}
{{- end -}}

{{/* Client and admin identities the chart issues: the mode's clients list, plus the helm test's two. JSON. */}}
{{- define "mycelium.clientIdentities" -}}
{{- $clients := ternary .Values.certificates.caSecret.clients .Values.certificates.certManager.clients (eq .Values.certificates.mode "caSecret") | default list -}}
{{- if .Values.tests.enabled -}}
{{- $clients = append $clients (dict "role" "client" "name" (include "mycelium.testClientName" .)) -}}
{{- $clients = append $clients (dict "role" "admin" "name" (include "mycelium.testClientName" .)) -}}
{{- end -}}
{{- toJson $clients -}}
{{- end -}}
