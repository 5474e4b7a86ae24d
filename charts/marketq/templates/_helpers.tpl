{{/* Names ------------------------------------------------------------------------- */}}
{{- define "marketq.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "marketq.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<fullname>-<suffix>", kept within 63 characters. Call with (list $ "suffix"). */}}
{{- define "marketq.componentName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "marketq.fullname" $root | trunc (int (sub 62 (len (index . 1))))) (index . 1) | trimSuffix "-" }}
{{- end }}

{{/* "<fullname>-<suffix>" within 52 characters, for StatefulSets: their pods get a
     controller-revision-hash label "<name>-<10 characters>" that must fit in 63. */}}
{{- define "marketq.statefulSetName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "marketq.fullname" $root | trunc (int (sub 51 (len (index . 1)))) | trimSuffix "-") (index . 1) }}
{{- end }}

{{/* A queue's Deployment name: underscores are not allowed in object names. */}}
{{- define "marketq.workerName" -}}
{{- include "marketq.componentName" (list (index . 0) (printf "worker-%s" (index . 1 | replace "_" "-"))) }}
{{- end }}

{{/* Labels ------------------------------------------------------------------------ */}}
{{/* Labels as a JSON map: the chart's own (and a component's and queue's) first, then
     `extra` (a component's pod or monitor labels), then commonLabels, each only for keys not
     set yet, so no key is emitted twice and the selectors' labels cannot be overridden.
     (dict "root" $ ["component" c] ["queue" q] ["extra" map]) */}}
{{- define "marketq.labelMap" -}}
{{- $root := .root }}
{{- $labels := dict
  "helm.sh/chart" (printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-")
  "app.kubernetes.io/name" (include "marketq.name" $root)
  "app.kubernetes.io/instance" $root.Release.Name
  "app.kubernetes.io/version" $root.Chart.AppVersion
  "app.kubernetes.io/managed-by" $root.Release.Service
  "app.kubernetes.io/part-of" "marketq" }}
{{- with .component }}{{ $_ := set $labels "app.kubernetes.io/component" . }}{{ end }}
{{- with .queue }}{{ $_ := set $labels "marketq.io/queue" . }}{{ end }}
{{- range $more := list (.extra | default dict) ($root.Values.commonLabels | default dict) }}
{{- range $key, $value := $more }}
{{- if not (hasKey $labels $key) }}{{ $_ := set $labels $key (toString $value) }}{{ end }}
{{- end }}
{{- end }}
{{- toJson $labels }}
{{- end }}

{{- define "marketq.labels" -}}
{{ include "marketq.labelMap" (dict "root" .) | fromJson | toYaml }}
{{- end }}

{{- define "marketq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "marketq.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component: (dict "root" $ "component" "api" ["queue" "daily"] ["extra" map]). */}}
{{- define "marketq.componentLabels" -}}
{{ include "marketq.labelMap" . | fromJson | toYaml }}
{{- end }}

{{- define "marketq.componentSelectorLabels" -}}
{{ include "marketq.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- with .queue }}
marketq.io/queue: {{ . }}
{{- end }}
{{- end }}

{{/* Images ------------------------------------------------------------------------ */}}
{{/* (list $ "api"|"worker"|"beat") */}}
{{- define "marketq.image" -}}
{{- $root := index . 0 }}
{{- $image := index $root.Values.images (index . 1) }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/* Security: the restricted Pod Security Standard -------------------------------- */}}
{{- define "marketq.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "marketq.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Values ------------------------------------------------------------------------ */}}
{{/* An environment value as text: whole numbers without an exponent, lists comma-joined. */}}
{{- define "marketq.envValue" -}}
{{- $v := . }}
{{- if kindIs "slice" $v }}
{{- join "," $v }}
{{- else if kindIs "map" $v }}
{{- toJson $v }}
{{- else if and (kindIs "float64" $v) (eq (floor $v) $v) }}
{{- printf "%d" (int64 $v) }}
{{- else }}
{{- toString $v }}
{{- end }}
{{- end }}

{{/* The effective settings of one queue: workers.queues.<q> deep-merged over defaults. */}}
{{- define "marketq.workerValues" -}}
{{- $root := index . 0 }}
{{- $queue := index . 1 }}
{{- $overrides := index $root.Values.workers.queues $queue | default dict }}
{{- include "marketq.deepMerge" (list $root.Values.workers.defaults $overrides) }}
{{- end }}

{{/* Deep merge of two maps as JSON: the second wins, null and false included (sprig's
     merge functions skip "empty" values, so `enabled: false` would not override). */}}
{{- define "marketq.deepMerge" -}}
{{- $out := deepCopy (index . 0 | default dict) }}
{{- range $k, $v := (index . 1 | default dict) }}
{{- $base := index $out $k }}
{{- if and (kindIs "map" $v) (kindIs "map" $base) }}
{{- $_ := set $out $k (include "marketq.deepMerge" (list $base $v) | fromJson) }}
{{- else }}
{{- $_ := set $out $k $v }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* Capabilities -------------------------------------------------------------------- */}}
{{- define "marketq.kedaAvailable" -}}
{{- if or .Values.keda.force (.Capabilities.APIVersions.Has "keda.sh/v1alpha1") }}true{{ end }}
{{- end }}

{{- define "marketq.monitoringAvailable" -}}
{{- if or .Values.monitoring.force (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}true{{ end }}
{{- end }}

{{/* Secrets and stores --------------------------------------------------------------- */}}
{{/* Where the app reads each URL: an existing Secret, the bundled store's own Secret (it
     holds the URL next to the password), or the Secret the chart writes from a url value. */}}
{{- define "marketq.redisSecretName" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecret }}
{{- else if include "marketq.redisBundled" . }}{{ include "marketq.bundledRedisName" . }}
{{- else }}{{ include "marketq.componentName" (list . "redis-url") }}{{ end }}
{{- end }}

{{- define "marketq.redisSecretKey" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecretKey }}{{ else }}url{{ end }}
{{- end }}

{{- define "marketq.databaseSecretName" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecret }}
{{- else if include "marketq.databaseBundled" . }}{{ include "marketq.bundledDatabaseName" . }}
{{- else }}{{ include "marketq.componentName" (list . "database-url") }}{{ end }}
{{- end }}

{{- define "marketq.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}url{{ end }}
{{- end }}

{{/* Metadata of a Secret holding generated material: (dict "root" $ "component" c
     "generated" bool). A generated Secret is a pre-install hook: Helm renders it into the
     cluster once, at install, and never again on upgrade; Argo CD creates a named hook
     once. Renders without cluster access (GitOps, helm template) therefore never change a
     password the stores and pods already use. Helm's default delete policy
     (before-hook-creation) replaces it only at the next install of the release. */}}
{{- define "marketq.secretMetadata" -}}
labels:
  {{- include "marketq.componentLabels" (dict "root" .root "component" .component "extra" (ternary (dict "marketq.io/generated" "true") dict .generated)) | nindent 2 }}
{{- if .generated }}
annotations:
  helm.sh/hook: pre-install
  helm.sh/hook-weight: "-20"
{{- end }}
{{- end }}

{{- define "marketq.bundledRedisName" -}}
{{- include "marketq.statefulSetName" (list . "redis") }}
{{- end }}

{{/* A random secret made once per render and kept across upgrades: the value in the
     cluster's Secret when there is one, else new. Memoised in .Values so every include in
     one render (the Secret, the URL, the checksums) sees the same one.
     (list $ "secret-name" "key" length) */}}
{{- define "marketq.generatedSecret" -}}
{{- $root := index . 0 }}
{{- $secret := index . 1 }}
{{- $key := index . 2 }}
{{- if not (hasKey $root.Values "__generatedSecrets") }}
{{- $_ := set $root.Values "__generatedSecrets" dict }}
{{- end }}
{{- $memo := get $root.Values "__generatedSecrets" }}
{{- $id := printf "%s/%s" $secret $key }}
{{- if not (hasKey $memo $id) }}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace $secret }}
{{- if and $existing $existing.data (hasKey $existing.data $key) }}
{{- $_ := set $memo $id (index $existing.data $key | b64dec) }}
{{- else }}
{{- $_ := set $memo $id (randAlphaNum (index . 3)) }}
{{- end }}
{{- end }}
{{- get $memo $id }}
{{- end }}

{{/* True when the chart makes up the bundled Redis password (no value given). */}}
{{- define "marketq.redisPasswordGenerated" -}}
{{- if and (include "marketq.redisBundled" .) (not .Values.redis.bundled.password) }}true{{ end }}
{{- end }}

{{- define "marketq.databasePasswordGenerated" -}}
{{- if and (include "marketq.databaseBundled" .) (not .Values.database.bundled.password) }}true{{ end }}
{{- end }}

{{/* The bundled Redis URL (password included) the app reads from the store's Secret. */}}
{{- define "marketq.bundledRedisUrl" -}}
{{- printf "redis://:%s@%s:6379/0" (include "marketq.bundledRedisPassword" . | urlquery) (include "marketq.bundledRedisName" .) }}
{{- end }}

{{/* The bundled Redis password: the value, else generated. */}}
{{- define "marketq.bundledRedisPassword" -}}
{{- if .Values.redis.bundled.password }}
{{- .Values.redis.bundled.password }}
{{- else }}
{{- include "marketq.generatedSecret" (list . (include "marketq.bundledRedisName" .) "password" 32) }}
{{- end }}
{{- end }}

{{- define "marketq.apiKeysSecretName" -}}
{{- if .Values.api.auth.existingSecret }}{{ .Values.api.auth.existingSecret }}{{ else }}{{ include "marketq.componentName" (list . "api-keys") }}{{ end }}
{{- end }}

{{- define "marketq.apiKeysSecretKey" -}}
{{- if .Values.api.auth.existingSecret }}{{ .Values.api.auth.existingSecretKey }}{{ else }}api-keys.json{{ end }}
{{- end }}

{{/* The chart generates the helm-test key only when it also writes the keys file. */}}
{{- define "marketq.generatesTestKey" -}}
{{- if and (not .Values.tests.apiKeySecret) (not .Values.api.auth.existingSecret) }}true{{ end }}
{{- end }}

{{- define "marketq.testKeySecretName" -}}
{{- if .Values.tests.apiKeySecret }}{{ .Values.tests.apiKeySecret }}{{ else }}{{ include "marketq.componentName" (list . "test-api-key") }}{{ end }}
{{- end }}

{{- define "marketq.testKeySecretKey" -}}
{{- if .Values.tests.apiKeySecret }}{{ .Values.tests.apiKeySecretKey }}{{ else }}api-key{{ end }}
{{- end }}

{{/* The generated test key, kept across upgrades. */}}
{{- define "marketq.testKey" -}}
{{- include "marketq.generatedSecret" (list . (include "marketq.testKeySecretName" .) "api-key" 40) }}
{{- end }}

{{/* Shared pod parts ----------------------------------------------------------------- */}}
{{/* Environment every marketq container gets: config, secrets by file, extra env. */}}
{{- define "marketq.commonEnv" -}}
- name: MARKETQ_REDIS_URL_FILE
  value: /etc/marketq/secrets/redis/url
- name: MARKETQ_DATABASE_URL_FILE
  value: /etc/marketq/secrets/database/url
{{- if .Values.redis.tls.caSecret }}
- name: MARKETQ_REDIS_TLS_CA_FILE
  value: /etc/marketq/redis-ca/ca.crt
{{- end }}
{{- with .Values.redis.sentinel }}
{{- if .enabled }}
- name: MARKETQ_REDIS_SENTINEL_MASTER
  value: {{ .masterName | quote }}
{{- if .tls }}
- name: MARKETQ_REDIS_SENTINEL_TLS
  value: "true"
{{- end }}
{{- if .existingSecret }}
- name: MARKETQ_REDIS_SENTINEL_PASSWORD_FILE
  value: /etc/marketq/secrets/redis-sentinel/password
{{- end }}
{{- end }}
{{- end }}
{{- range $name, $value := .Values.extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}

{{- define "marketq.commonEnvFrom" -}}
- configMapRef:
    name: {{ include "marketq.componentName" (list . "config") }}
{{- end }}

{{- define "marketq.commonVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: redis-url
  mountPath: /etc/marketq/secrets/redis
  readOnly: true
- name: database-url
  mountPath: /etc/marketq/secrets/database
  readOnly: true
{{- if .Values.redis.tls.caSecret }}
- name: redis-ca
  mountPath: /etc/marketq/redis-ca
  readOnly: true
{{- end }}
{{- if and .Values.redis.sentinel.enabled .Values.redis.sentinel.existingSecret }}
- name: redis-sentinel-password
  mountPath: /etc/marketq/secrets/redis-sentinel
  readOnly: true
{{- end }}
{{- end }}

{{- define "marketq.commonVolumes" -}}
- name: tmp
  emptyDir: {}
- name: redis-url
  secret:
    secretName: {{ include "marketq.redisSecretName" . }}
    items:
      - key: {{ include "marketq.redisSecretKey" . }}
        path: url
- name: database-url
  secret:
    secretName: {{ include "marketq.databaseSecretName" . }}
    items:
      - key: {{ include "marketq.databaseSecretKey" . }}
        path: url
{{- if .Values.redis.tls.caSecret }}
- name: redis-ca
  secret:
    secretName: {{ .Values.redis.tls.caSecret }}
    items:
      - key: {{ .Values.redis.tls.caKey }}
        path: ca.crt
{{- end }}
{{- if and .Values.redis.sentinel.enabled .Values.redis.sentinel.existingSecret }}
- name: redis-sentinel-password
  secret:
    secretName: {{ .Values.redis.sentinel.existingSecret }}
    items:
      - key: {{ .Values.redis.sentinel.existingSecretKey }}
        path: password
{{- end }}
{{- end }}

{{/* Checksums of what a pod reads, so a change rolls exactly the pods that read it:
     (dict "root" $ "reads" (list "config" "redis" "database" ["api-keys"] ["schedule"])).
     They hash the values a Secret is made from, never generated material (that would roll
     every pod on each render without cluster access). */}}
{{- define "marketq.checksums" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $inputs := dict
  "config" (include (print $root.Template.BasePath "/configmap.yaml") $root)
  "redis" (toJson (list $v.redis.url $v.redis.existingSecret $v.redis.existingSecretKey $v.redis.tls $v.redis.sentinel (include "marketq.redisBundled" $root) ($v.redis.bundled.password | sha256sum)))
  "database" (toJson (list $v.database.url $v.database.existingSecret $v.database.existingSecretKey (include "marketq.databaseBundled" $root) ($v.database.bundled.password | sha256sum)))
  "api-keys" (toJson (list $v.api.auth (include "marketq.generatesTestKey" $root) $v.tests.apiKeySecret))
  "schedule" (include (print $root.Template.BasePath "/schedule-configmap.yaml") $root) }}
{{- range $what := .reads }}
checksum/{{ $what }}: {{ index $inputs $what | sha256sum }}
{{- end }}
{{- end }}

{{/* A probe: (dict "spec" <values> "path" "/livez" "port" "http"). */}}
{{- define "marketq.probe" -}}
httpGet:
  path: {{ .path }}
  port: {{ .port }}
{{- range $k := list "initialDelaySeconds" "periodSeconds" "timeoutSeconds" "failureThreshold" "successThreshold" }}
{{- if hasKey $.spec $k }}
{{ $k }}: {{ index $.spec $k | int }}
{{- end }}
{{- end }}
{{- end }}

{{/* Scheduling and pod-level extras: (dict "root" $ "pod" <pod values> "component" "api" ["queue" q]). */}}
{{- define "marketq.scheduling" -}}
{{- $pod := .pod | default dict }}
{{- with $pod.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $pod.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $pod.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $pod.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $pod.hostAliases }}
hostAliases:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $pod.initContainers }}
initContainers:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if hasKey $pod "topologySpreadConstraints" }}
{{- with $pod.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- else if .root.Values.spreadAcrossZones }}
topologySpreadConstraints:
  {{- range $key := list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: 1
    topologyKey: {{ $key }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "marketq.componentSelectorLabels" (dict "root" $.root "component" $.component "queue" $.queue) | nindent 8 }}
  {{- end }}
{{- end }}
{{- end }}

{{/* The worker queues that run: enabled after the merge, in name order. */}}
{{- define "marketq.enabledQueues" -}}
{{- $queues := list }}
{{- range $queue, $_ := .Values.workers.queues }}
{{- $w := include "marketq.workerValues" (list $ $queue) | fromJson }}
{{- if $w.enabled }}{{ $queues = append $queues $queue }}{{ end }}
{{- end }}
{{- toJson $queues }}
{{- end }}

{{/* True when a queue is scaled by KEDA (enabled and the API available). */}}
{{- define "marketq.workerUsesKeda" -}}
{{- $root := index . 0 }}
{{- $w := index . 1 }}
{{- if and $w.autoscaling.keda.enabled (include "marketq.kedaAvailable" $root) }}true{{ end }}
{{- end }}

{{/* The Redis list of one priority step as kombu names it: (list $ queue step). */}}
{{- define "marketq.priorityList" -}}
{{- $root := index . 0 }}
{{- $step := index . 2 | int }}
{{- if eq $step 0 }}
{{- printf "%s%s" $root.Values.config.redisKeyPrefix (index . 1) }}
{{- else }}
{{- printf "%s%s\x06\x16%d" $root.Values.config.redisKeyPrefix (index . 1) $step }}
{{- end }}
{{- end }}

{{/* Longest hard time limit of each queue's jobs in the catalog: files/ is generated
     from libs/common's catalog by scripts/chart_values_docs.py (tests/chart fails when
     stale). */}}
{{- define "marketq.catalogTimeLimits" -}}
{{- .Files.Get "files/catalog-time-limits.json" }}
{{- end }}

{{/* A queue's shutdown: its longest hard time limit (the catalog's, under the queue's
     cap), the soft shutdown that covers it and the grace period above that. JSON
     {"hard", "soft", "grace"}: (list $ queue <worker values>). */}}
{{- define "marketq.workerShutdown" -}}
{{- $root := index . 0 }}
{{- $w := index . 2 }}
{{- $catalog := include "marketq.catalogTimeLimits" $root | fromJson }}
{{- $hard := index $catalog (index . 1) | default 0 | int }}
{{- if and (not (kindIs "invalid" $w.maxTimeLimitSeconds)) (lt ($w.maxTimeLimitSeconds | int) $hard) }}{{ $hard = $w.maxTimeLimitSeconds | int }}{{ end }}
{{- $soft := $hard }}
{{- if not (kindIs "invalid" $w.softShutdownSeconds) }}{{ $soft = $w.softShutdownSeconds | int }}{{ end }}
{{- $grace := add $soft 30 }}
{{- if not (kindIs "invalid" $w.terminationGracePeriodSeconds) }}{{ $grace = $w.terminationGracePeriodSeconds | int }}{{ end }}
{{- dict "hard" $hard "soft" $soft "grace" $grace | toJson }}
{{- end }}

{{/* True when a queue gets the plain CPU HPA: asked for, or KEDA asked for on a cluster
     without KEDA (the fallback, so the queue still scales). */}}
{{- define "marketq.workerUsesHpa" -}}
{{- $root := index . 0 }}
{{- $w := index . 1 }}
{{- if or $w.autoscaling.hpa.enabled (and $w.autoscaling.keda.enabled (not (include "marketq.kedaAvailable" $root))) }}true{{ end }}
{{- end }}

{{/* Where Redis and the database come from: an existing Secret, else a URL value, else
     the bundled evaluation server; empty when none (validate.yaml fails then). */}}
{{- define "marketq.redisSource" -}}
{{- if .Values.redis.existingSecret }}secret{{ else if .Values.redis.url }}url{{ else if .Values.redis.sentinel.enabled }}sentinel{{ else if .Values.redis.bundled.enabled }}bundled{{ end }}
{{- end }}

{{/* The sentinel:// URL built from redis.sentinel (no master password: give one in
     redis.url or redis.existingSecret): the first sentinel carries the database, as kombu
     and Celery read it from there; every sentinel its port (their defaults differ). */}}
{{- define "marketq.sentinelUrl" -}}
{{- $s := .Values.redis.sentinel }}
{{- $parts := list }}
{{- range $i, $host := $s.hosts }}
{{- if eq $i 0 }}{{ $parts = append $parts (printf "sentinel://%s:%d/%d" $host ($s.port | int) ($s.databaseIndex | int)) }}
{{- else }}{{ $parts = append $parts (printf "sentinel://%s:%d" $host ($s.port | int)) }}{{ end }}
{{- end }}
{{- join ";" $parts }}
{{- end }}

{{/* KEDA's redis-sentinel `addresses`: host:port,host:port. */}}
{{- define "marketq.sentinelAddresses" -}}
{{- $s := .Values.redis.sentinel }}
{{- $parts := list }}
{{- range $host := $s.hosts }}{{ $parts = append $parts (printf "%s:%d" $host ($s.port | int)) }}{{ end }}
{{- join "," $parts }}
{{- end }}

{{- define "marketq.redisBundled" -}}
{{- if eq (include "marketq.redisSource" .) "bundled" }}true{{ end }}
{{- end }}

{{- define "marketq.databaseSource" -}}
{{- if .Values.database.existingSecret }}secret{{ else if .Values.database.url }}url{{ else if .Values.database.bundled.enabled }}bundled{{ end }}
{{- end }}

{{- define "marketq.databaseBundled" -}}
{{- if eq (include "marketq.databaseSource" .) "bundled" }}true{{ end }}
{{- end }}

{{- define "marketq.bundledDatabaseName" -}}
{{- include "marketq.statefulSetName" (list . "postgresql") }}
{{- end }}

{{- define "marketq.bundledDatabasePassword" -}}
{{- if .Values.database.bundled.password }}
{{- .Values.database.bundled.password }}
{{- else }}
{{- include "marketq.generatedSecret" (list . (include "marketq.bundledDatabaseName" .) "password" 32) }}
{{- end }}
{{- end }}

{{/* The database URL the chart stores (not for existingSecret). */}}
{{- define "marketq.databaseUrl" -}}
{{- if include "marketq.databaseBundled" . }}
{{- printf "postgresql+psycopg://marketq:%s@%s:5432/marketq" (include "marketq.bundledDatabasePassword" . | urlquery) (include "marketq.bundledDatabaseName" .) }}
{{- else }}
{{- .Values.database.url }}
{{- end }}
{{- end }}

{{/* MARKETQ_SCHEDULE_FILE for the processes that read it (beat and the API). */}}
{{- define "marketq.scheduleEnv" -}}
{{- if .Values.schedule.file }}
- name: MARKETQ_SCHEDULE_FILE
  value: /etc/marketq/schedule/schedule.yaml
{{- end }}
{{- end }}

{{/* Every provider some chain routes to (providers.default, byKind, byJob), as a JSON list. */}}
{{- define "marketq.routedProviders" -}}
{{- $names := list }}
{{- range .Values.providers.default }}{{ $names = append $names . }}{{ end }}
{{- range $kind, $chain := .Values.providers.byKind }}{{ range $chain }}{{ $names = append $names . }}{{ end }}{{ end }}
{{- range $job, $chain := .Values.providers.byJob }}{{ range $chain }}{{ $names = append $names . }}{{ end }}{{ end }}
{{- $names | uniq | toJson }}
{{- end }}

{{/* Vendor keys of the routed vendors, read from the mounted providers Secret (worker, API). */}}
{{- define "marketq.providerEnv" -}}
{{- $routed := include "marketq.routedProviders" . | fromJsonArray }}
{{- if has "alphavantage" $routed }}
- name: MARKETQ_ALPHAVANTAGE_API_KEY_FILE
  value: /etc/marketq/secrets/providers/alphavantage-api-key
{{- end }}
{{- if has "fred" $routed }}
- name: MARKETQ_FRED_API_KEY_FILE
  value: /etc/marketq/secrets/providers/fred-api-key
{{- end }}
{{- if has "finnhub" $routed }}
- name: MARKETQ_FINNHUB_API_KEY_FILE
  value: /etc/marketq/secrets/providers/finnhub-api-key
{{- end }}
{{- end }}

{{- define "marketq.providerVolumeMounts" -}}
{{- if .Values.providers.existingSecret }}
- name: provider-keys
  mountPath: /etc/marketq/secrets/providers
  readOnly: true
{{- end }}
{{- end }}

{{- define "marketq.providerVolumes" -}}
{{- if .Values.providers.existingSecret }}
- name: provider-keys
  secret:
    secretName: {{ .Values.providers.existingSecret }}
{{- end }}
{{- end }}
