{{/* Chart name. */}}
{{- define "vigil.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name: the release name, with the chart name unless it contains it. */}}
{{- define "vigil.fullname" -}}
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

{{- define "vigil.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels common to every object. */}}
{{- define "vigil.labels" -}}
helm.sh/chart: {{ include "vigil.chart" . }}
app.kubernetes.io/name: {{ include "vigil.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "root" $ "component" "api"). */}}
{{- define "vigil.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vigil.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "vigil.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret holding admin-token, database-url, llm-api-key (and postgresql-password). */}}
{{- define "vigil.secretName" -}}
{{- default (include "vigil.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* Stream replicas: config.bus.replicas, else 3 on the bundled cluster of 3 or more, else 1. */}}
{{- define "vigil.busReplicas" -}}
{{- if .Values.config.bus.replicas -}}
{{- .Values.config.bus.replicas -}}
{{- else if and .Values.nats.enabled (ge (int .Values.nats.replicas) 3) -}}
3
{{- else -}}
1
{{- end -}}
{{- end -}}

{{/* Records partitions: config.bus.recordsPartitions, else one per node of the bundled cluster of 3
or more (each node leads one; see docs/operations.md), else 1. */}}
{{- define "vigil.busRecordsPartitions" -}}
{{- if .Values.config.bus.recordsPartitions -}}
{{- .Values.config.bus.recordsPartitions -}}
{{- else if and .Values.nats.enabled (ge (int .Values.nats.replicas) 3) -}}
{{- int .Values.nats.replicas -}}
{{- else -}}
1
{{- end -}}
{{- end -}}

{{/* A value kept in the chart's Secret across upgrades: call with (dict "root" $ "key" "admin-token"). */}}
{{- define "vigil.existingSecretValue" -}}
{{- $secret := lookup "v1" "Secret" .root.Release.Namespace (include "vigil.fullname" .root) -}}
{{- if $secret -}}
{{- if hasKey $secret.data .key -}}
{{- index $secret.data .key | b64dec -}}
{{- end -}}
{{- end -}}
{{- end -}}
