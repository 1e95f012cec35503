{{/* Chart name. */}}
{{- define "multi-casskop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name when it contains the chart name. */}}
{{- define "multi-casskop.fullname" -}}
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

{{- define "multi-casskop.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "multi-casskop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "multi-casskop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "multi-casskop.labels" -}}
helm.sh/chart: {{ include "multi-casskop.chart" . }}
{{ include "multi-casskop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: multi-casskop
{{- end }}

{{- define "multi-casskop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "multi-casskop.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "multi-casskop.image" -}}
{{- $repository := .Values.image.repository }}
{{- with .Values.image.registry }}{{ $repository = printf "%s/%s" . $repository }}{{ end }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* imagePullSecrets: a list of names or {name}, or the Go chart's {enabled, name}. */}}
{{- define "multi-casskop.imagePullSecrets" -}}
{{- $ips := .Values.imagePullSecrets }}
{{- if kindIs "map" $ips }}
{{- if and $ips.enabled $ips.name }}
- name: {{ $ips.name }}
{{- end }}
{{- else }}
{{- range $ips }}
{{- if kindIs "string" . }}
- name: {{ . }}
{{- else }}
- name: {{ .name }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Where the Go chart mounted admiralty's service account imports. */}}
{{- define "multi-casskop.admiraltyDir" -}}
/var/run/secrets/admiralty.io/serviceaccountimports
{{- end }}

{{/* The settings file (see src/config.rs). */}}
{{- define "multi-casskop.settings" -}}
{{- $s := dict "logFormat" .Values.logFormat "sites" (.Values.sites | default list) "httpAddr" "0.0.0.0:8080" }}
{{- with .Values.watchNamespace }}
{{- $_ := set $s "namespace" . }}
{{- end }}
{{- with .Values.siteTimeoutSeconds }}
{{- $_ := set $s "siteTimeoutSeconds" . }}
{{- end }}
{{- if .Values.secrets.enabled }}
{{- $_ := set $s "secrets" (dict "labelSelector" .Values.secrets.labelSelector) }}
{{- end }}
{{- toYaml $s }}
{{- end }}

{{/* MultiCasskop and Event rules: cluster-wide, or in watchNamespace. */}}
{{- define "multi-casskop.multicasskopRules" -}}
- apiGroups: [db.orange.com]
  resources: [multicasskops]
  verbs: [get, list, watch, patch, update]
- apiGroups: [db.orange.com]
  resources: [multicasskops/status]
  verbs: [get, patch, update]
- apiGroups: [db.orange.com]
  resources: [multicasskops/finalizers]
  verbs: [update]
- apiGroups: [db.orange.com]
  resources: [multicasskoptasks]
  verbs: [get, list, watch, delete]
- apiGroups: [db.orange.com]
  resources: [multicasskoptasks/status]
  verbs: [get, patch, update]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* Reading CassandraClusters, for a management cluster that is also a site (one cluster-wide
watch by label). */}}
{{- define "multi-casskop.cassandraclusterReadRules" -}}
- apiGroups: [db.orange.com]
  resources: [cassandraclusters]
  verbs: [get, list, watch]
{{- end }}

{{/* Writing CassandraClusters: only in the namespaces where rings may write. */}}
{{- define "multi-casskop.cassandraclusterWriteRules" -}}
- apiGroups: [db.orange.com]
  resources: [cassandraclusters]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [db.orange.com]
  resources: [cassandraclusters/status]
  verbs: [get, patch, update]
{{- end }}
