{{/*
The pod template shared by every component. Call with a dict:
  root       $
  component  coordinator | shard-router | replicator | validator | miner   (names, labels, Secrets)
  service    coordinator | shard-router | replicator | node-agent          (the process and its certificate role)
  values     the component's values (.Values.coordinator, .Values.nodeAgents.validators, …)
  replicas   node-agents: how many ordinals to mount per-ordinal Secrets for
*/}}
{{- define "mycelium.podTemplate" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $isNode := eq .service "node-agent" -}}
{{- $set := include "mycelium.componentName" (dict "root" $root "suffix" .component) -}}
{{- $postgres := and $isNode (eq $root.Values.nodeAgents.database.type "postgres") -}}
{{- $persistent := and $isNode $v.persistence.enabled -}}
metadata:
  labels:
    {{- include "mycelium.labels" (dict "root" $root "component" .component) | nindent 4 }}
    mycelium.io/role: {{ .service }}
    # Selected by the metrics Service (and so the ServiceMonitor) and by the NetworkPolicies' metrics rule.
    mycelium.io/metrics: "true"
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/scripts: {{ include (print $root.Template.BasePath "/configmap-scripts.yaml") $root | sha256sum }}
    {{- if $root.Values.metrics.podAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ $root.Values.ports.metrics | int | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "mycelium.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
  {{- with include "mycelium.priorityClassName" (dict "root" $root "values" $v) }}
  priorityClassName: {{ . }}
  {{- end }}
  initContainers:
    # Links this pod's identity, certificate (and database URL) into /run/mycelium and checks them; see files/prepare.js.
    - name: prepare
      image: {{ include "mycelium.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      workingDir: {{ $root.Values.image.workingDir }}
      command: [node, /etc/mycelium/scripts/prepare.js]
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      resources:
        requests: {cpu: 50m, memory: 64Mi}
        limits: {memory: 256Mi}
      env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: PREPARE_ROLE
          value: {{ .service | quote }}
        - name: PREPARE_NETWORK_ID
          value: {{ $root.Values.networkId | quote }}
        - name: PREPARE_OUTPUT_DIR
          value: /run/mycelium
        - name: PREPARE_TLS_MODULE
          value: {{ printf "%s/node_modules/@mycelium/tls" $root.Values.image.workingDir | quote }}
        {{- if $isNode }}
        - name: PREPARE_IDENTITY_SECRETS_DIR
          value: /etc/mycelium/node-keys
        {{- if $postgres }}
        - name: PREPARE_DATABASE_URLS_DIR
          value: /etc/mycelium/database-urls
        {{- end }}
        {{- end }}
        - name: PREPARE_TLS
          value: link
        - name: PREPARE_CERTIFICATES_DIR
          value: /etc/mycelium/certificates
      volumeMounts:
        {{- include "mycelium.podVolumeMounts" (dict "root" $root "isNode" $isNode "postgres" $postgres "init" true) | nindent 8 }}
  containers:
    - name: {{ .service }}
      image: {{ include "mycelium.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      workingDir: {{ $root.Values.image.workingDir }}
      {{- if $isNode }}
      # start.sh reads the per-pod key pair (and database URL) into MYCELIUM_* and execs the image's entry point.
      command: [/bin/sh, /etc/mycelium/scripts/start.sh, node-agent]
      {{- else }}
      command: [node, {{ include "mycelium.entrypoint" $root }}, {{ .service }}]
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      ports:
        - name: grpc
          containerPort: {{ $root.Values.ports.grpc }}
          protocol: TCP
        - name: metrics
          containerPort: {{ $root.Values.ports.metrics }}
          protocol: TCP
      env:
        {{- include "mycelium.serviceEnv" . | nindent 8 }}
      startupProbe:
        httpGet: {path: /healthz, port: metrics}
        {{- toYaml $root.Values.probes.startup | nindent 8 }}
      livenessProbe:
        httpGet: {path: /healthz, port: metrics}
        {{- toYaml $root.Values.probes.liveness | nindent 8 }}
      readinessProbe:
        httpGet: {path: /readyz, port: metrics}
        {{- toYaml $root.Values.probes.readiness | nindent 8 }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      volumeMounts:
        {{- include "mycelium.podVolumeMounts" (dict "root" $root "isNode" $isNode "postgres" $postgres "init" false) | nindent 8 }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $v.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml $v.topologySpreadConstraints | nindent 4 }}
  {{- else if and $isNode $root.Values.nodeAgents.topologySpread.enabled }}
  {{- $spread := $root.Values.nodeAgents.topologySpread }}
  topologySpreadConstraints:
    {{- range $spread.topologyKeys }}
    - maxSkew: {{ $spread.maxSkew }}
      topologyKey: {{ . }}
      whenUnsatisfiable: {{ $spread.whenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- include "mycelium.selectorLabels" (dict "root" $root "component" $.component) | nindent 10 }}
    {{- end }}
  {{- end }}
  volumes:
    - name: run
      emptyDir: {medium: Memory, sizeLimit: 16Mi}
    - name: tmp
      emptyDir: {sizeLimit: 256Mi}
    - name: scripts
      configMap:
        name: {{ include "mycelium.componentName" (dict "root" $root "suffix" "scripts") }}
        defaultMode: 0555
    {{- if $isNode }}
    # One pod template for the whole set: every ordinal's certificate is mounted, prepare.js links this pod's own.
    - name: certificates
      projected:
        defaultMode: 0440
        sources:
          {{- range $i := until (int .replicas) }}
          - secret:
              name: {{ printf "%s-%d-tls" $set $i }}
              items:
                - {key: tls.crt, path: {{ printf "%d/tls.crt" $i }}}
                - {key: tls.key, path: {{ printf "%d/tls.key" $i }}}
                - {key: ca.crt, path: {{ printf "%d/ca.crt" $i }}}
          {{- end }}
    {{- else }}
    - name: certificates
      secret:
        secretName: {{ printf "%s-tls" $set }}
        defaultMode: 0440
    {{- end }}
    {{- if $isNode }}
    - name: node-keys
      projected:
        defaultMode: 0440
        sources:
          {{- $prefix := include "mycelium.nodeKeyPrefix" (dict "root" $root "component" .component "values" $v) }}
          {{- range $i := until (int .replicas) }}
          - secret:
              name: {{ printf "%s-%d" $prefix $i }}
              items:
                - {key: public-key, path: {{ printf "%d/public-key" $i }}}
                - {key: private-key, path: {{ printf "%d/private-key" $i }}}
          {{- end }}
    {{- end }}
    {{- if $postgres }}
    - name: database-urls
      projected:
        defaultMode: 0440
        sources:
          {{- $prefix := default (printf "%s-db" $set) $v.postgres.urlSecretPrefix }}
          {{- range $i := until (int .replicas) }}
          - secret:
              name: {{ printf "%s-%d" $prefix $i }}
              items:
                - {key: url, path: {{ printf "%d/url" $i }}}
          {{- end }}
    {{- end }}
    {{- if and $isNode (not $persistent) }}
    - name: data
      emptyDir: {}
    {{- end }}
{{- end -}}

{{/* Call with (dict "root" $ "isNode" bool "postgres" bool "init" bool). */}}
{{- define "mycelium.podVolumeMounts" -}}
- {name: run, mountPath: /run/mycelium{{ if not .init }}, readOnly: true{{ end }}}
- {name: tmp, mountPath: /tmp}
- {name: scripts, mountPath: /etc/mycelium/scripts, readOnly: true}
# Secret volumes, so renewed certificates appear here without a restart (the services re-read them).
- {name: certificates, mountPath: /etc/mycelium/certificates, readOnly: true}
{{- if .isNode }}
- {name: node-keys, mountPath: /etc/mycelium/node-keys, readOnly: true}
{{- end }}
{{- if .postgres }}
- {name: database-urls, mountPath: /etc/mycelium/database-urls, readOnly: true}
{{- end }}
{{- if .isNode }}
- {name: data, mountPath: /var/lib/mycelium}
{{- end }}
{{- end -}}

{{/* MYCELIUM_* environment of the service container. Same dict as mycelium.podTemplate. */}}
{{- define "mycelium.serviceEnv" -}}
{{- $root := .root -}}
{{- $c := $root.Values.config -}}
{{- $v := .values -}}
{{- $isNode := eq .service "node-agent" -}}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
# Network
{{ include "mycelium.env" (dict "name" "MYCELIUM_HOST" "value" $root.Values.host) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_PORT" "value" $root.Values.ports.grpc) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_NETWORK_ID" "value" $root.Values.networkId) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_PROTOCOL_VERSION" "value" $root.Values.protocolVersion) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_MIN_PROTOCOL_VERSION" "value" $root.Values.minProtocolVersion) }}
# Cluster wiring
{{- if $isNode }}
- name: MYCELIUM_ADVERTISE_ADDRESS
  value: {{ printf "$(POD_NAME).%s.%s.svc.%s:%d" (include "mycelium.nodeAgentServiceName" $root) $root.Release.Namespace $root.Values.clusterDomain (int $root.Values.ports.grpc) | quote }}
{{- else }}
- name: MYCELIUM_ADVERTISE_ADDRESS
  value: {{ printf "%s:%d" (include "mycelium.serviceHost" (dict "root" $root "suffix" .component)) (int $root.Values.ports.grpc) | quote }}
{{- end }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_ROUTER_ADDRESS" "value" (include "mycelium.routerAddress" $root)) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_COORDINATOR_ADDRESS" "value" (include "mycelium.coordinatorAddress" $root)) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_METRICS_PORT" "value" $root.Values.ports.metrics) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_LOG_LEVEL" "value" $root.Values.logLevel) }}
{{- if not $isNode }}
- name: MYCELIUM_CONTROL_STORE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "mycelium.controlStoreSecretName" $root }}
      key: {{ $root.Values.controlStore.secretKey }}
{{- end }}
# Security: files prepared by the init container (MYCELIUM_NAME is derived: the service name, or a node-agent's node id)
- {name: MYCELIUM_TLS_CERT_PATH, value: /run/mycelium/tls/tls.crt}
- {name: MYCELIUM_TLS_KEY_PATH, value: /run/mycelium/tls/tls.key}
- {name: MYCELIUM_TLS_CA_PATH, value: /run/mycelium/tls/ca.crt}
{{ include "mycelium.env" (dict "name" "MYCELIUM_TLS_VERIFY_CLIENT" "value" (toString $c.tls.verifyClient)) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_TLS_VERIFY_HOSTNAME" "value" (toString $c.tls.verifyHostname)) }}
# Transactions
{{ include "mycelium.env" (dict "name" "MYCELIUM_TRANSACTION_TIMEOUT" "value" $c.transactions.timeout) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_PREPARE_TIMEOUT" "value" $c.transactions.prepareTimeout) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_COMMIT_TIMEOUT" "value" $c.transactions.commitTimeout) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_MAX_TRANSACTIONS" "value" $c.transactions.maxTransactions) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_CLEANUP_INTERVAL" "value" $c.transactions.cleanupInterval) }}
# Replication
{{ include "mycelium.env" (dict "name" "MYCELIUM_REPLICATION_HEARTBEAT_INTERVAL" "value" $c.replication.heartbeatInterval) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_REPLICATION_HEARTBEAT_TIMEOUT" "value" $c.replication.heartbeatTimeout) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_REPLICATION_RETRY_INITIAL" "value" $c.replication.retryInitial) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_REPLICATION_RETRY_MAX" "value" $c.replication.retryMax) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_REPLICATION_RETRY_MULTIPLIER" "value" $c.replication.retryMultiplier) }}
# Sharding
{{ include "mycelium.env" (dict "name" "MYCELIUM_DEFAULT_REPLICATION_FACTOR" "value" $c.sharding.defaultReplicationFactor) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_MIN_VALIDATOR_COPIES" "value" $c.sharding.minValidatorCopies) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_MAX_SHARD_SIZE" "value" $c.sharding.maxShardSize) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_REBALANCE_INTERVAL" "value" $c.sharding.rebalanceInterval) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_LOAD_THRESHOLD" "value" $c.sharding.loadThreshold) }}
# Performance
{{ include "mycelium.env" (dict "name" "MYCELIUM_MAX_PEERS" "value" $c.performance.maxPeers) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_CONNECTION_LIMIT" "value" $c.performance.connectionLimit) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_CONNECTION_TIMEOUT" "value" $c.performance.connectionTimeout) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_PING_INTERVAL" "value" $c.performance.pingInterval) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_SYNC_INTERVAL" "value" $c.performance.syncInterval) }}
{{- if $isNode }}
{{- $db := $root.Values.nodeAgents.database }}
# Node identity (MYCELIUM_PUBLIC_KEY / MYCELIUM_PRIVATE_KEY are set by start.sh from /run/mycelium/identity)
{{ include "mycelium.env" (dict "name" "MYCELIUM_NODE_TYPE" "value" .nodeType) }}
{{- if eq .nodeType "validator" }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_VALIDATOR_WEIGHT" "value" $v.validatorWeight) }}
{{- else }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_MINER_CAPACITY" "value" $v.minerCapacity) }}
{{- end }}
# Database (MYCELIUM_DATABASE_URL is set by start.sh from /run/mycelium/database-url on PostgreSQL)
{{ include "mycelium.env" (dict "name" "MYCELIUM_DATABASE_TYPE" "value" $db.type) }}
- {name: MYCELIUM_DATABASE_PATH, value: /var/lib/mycelium/data/mycelium.db}
- {name: MYCELIUM_DATA_DIR, value: /var/lib/mycelium/data}
{{ include "mycelium.env" (dict "name" "MYCELIUM_DATABASE_MAX_CONNECTIONS" "value" $db.maxConnections) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_DATABASE_IDLE_TIMEOUT" "value" $db.idleTimeout) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_DATABASE_CONNECT_TIMEOUT" "value" $db.connectTimeout) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_DATABASE_SSL_MODE" "value" $db.sslMode) }}
{{ include "mycelium.env" (dict "name" "MYCELIUM_DATABASE_STATEMENT_CACHE" "value" $db.statementCache) }}
{{- end }}
{{- with concat $root.Values.extraEnv $v.extraEnv }}
# Extra
{{ toYaml . }}
{{- end }}
{{- end -}}
