{{/* Names, labels and the service settings every imgrec container shares. */}}

{{- define "imgrec.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of one component's objects: <fullname>-<component>. */}}
{{- define "imgrec.name" -}}
{{- printf "%s-%s" (include "imgrec.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "imgrec.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "imgrec.labels" -}}
{{ include "imgrec.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "imgrec.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "imgrec.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "imgrec.image" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{/* Triton's gRPC endpoint: the headless Service through DNS, so clients balance over every pod (round robin). */}}
{{- define "imgrec.tritonUrl" -}}
{{- printf "dns:///%s:%d" (include "imgrec.name" (dict "root" . "component" "triton")) (int .Values.triton.ports.grpc) -}}
{{- end -}}

{{/* IMGREC_* settings: plain values, secrets only by reference (secretKeyRef). */}}
{{- define "imgrec.env" -}}
- name: IMGREC_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.external.postgres.urlSecret.name }}
      key: {{ .Values.external.postgres.urlSecret.key }}
- name: IMGREC_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.external.redis.urlSecret.name }}
      key: {{ .Values.external.redis.urlSecret.key }}
- name: IMGREC_KAFKA_BOOTSTRAP
  value: {{ .Values.external.kafka.bootstrap | quote }}
- name: IMGREC_TRITON_URL
  value: {{ include "imgrec.tritonUrl" . | quote }}
- name: IMGREC_TRITON_CHANNEL_MAX_AGE_S
  value: {{ .Values.triton.channelMaxAgeSeconds | quote }}
- name: IMGREC_BLOB_ROOT
  value: {{ .Values.external.blobRoot | quote }}
- name: IMGREC_BATCH_TOPIC
  value: {{ .Values.batch.topic | quote }}
- name: IMGREC_DEAD_LETTER_TOPIC
  value: {{ .Values.batch.deadLetterTopic | quote }}
- name: IMGREC_BATCH_PARTITIONS
  value: {{ .Values.batch.partitions | quote }}
{{ include "imgrec.settingsEnv" . }}
{{- end -}}

{{/* The plain IMGREC_* settings of values.settings, plus where the models are. */}}
{{- define "imgrec.settingsEnv" -}}
- name: IMGREC_MODEL_STORE
  value: {{ .Values.paths.modelStore | quote }}
- name: IMGREC_VAR_DIR
  value: {{ .Values.paths.varDir | quote }}
{{- range $name, $value := .Values.settings }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{- define "imgrec.envFrom" -}}
{{- with .Values.external.objectStorageCredentialsSecret }}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
{{- end -}}

{{- define "imgrec.podSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  fsGroup: 10001
{{- end -}}
