{{/* The chart's name, or nameOverride. */}}
{{- define "kpulse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of every object: fullnameOverride, else the release name when it already contains the
chart name, else release-chart.
*/}}
{{- define "kpulse.fullname" -}}
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

{{- define "kpulse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The image tag: image.tag, else the chart's appVersion. */}}
{{- define "kpulse.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The standard labels of every object. */}}
{{- define "kpulse.labels" -}}
helm.sh/chart: {{ include "kpulse.chart" . }}
{{ include "kpulse.selectorLabels" . }}
app.kubernetes.io/version: {{ include "kpulse.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kpulse
{{- end }}

{{/* The labels that select kpulse's pods; never change them in an upgrade. */}}
{{- define "kpulse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kpulse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kpulse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kpulse.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
kpulse.checkAdmin fails the render on an unsafe or incomplete admin setup: a Service reachable
from outside the cluster (NodePort, LoadBalancer) without token auth on the admin endpoints,
token auth without a TLS Secret, or admin keys set in config (the chart writes them from admin.*).
*/}}
{{- define "kpulse.checkAdmin" -}}
{{- $token := eq .Values.admin.access "token" }}
{{- if and (ne .Values.service.type "ClusterIP") (not $token) }}
{{- fail (printf "service.type %s makes kpulse reachable from outside the cluster, which needs admin.access: token (HTTPS and Kubernetes tokens on the admin endpoints, docs/security.md). Keep service.type ClusterIP and use kubectl port-forward, or set admin.access=token and admin.tlsSecret." .Values.service.type) }}
{{- end }}
{{- if and $token (not .Values.admin.tlsSecret) }}
{{- fail "admin.access: token needs admin.tlsSecret, a kubernetes.io/tls Secret (tls.crt, tls.key) for the HTTPS admin port: a bearer token must not cross the network in the clear" }}
{{- end }}
{{- with .Values.config.admin }}
{{- if or (hasKey . "access") (hasKey . "listen") (hasKey . "tls") }}
{{- fail "set admin.access, admin.port and admin.tlsSecret, not config.admin.access/listen/tls: the chart writes those from them (config.admin.cacheTTL may be set)" }}
{{- end }}
{{- end }}
{{- end }}

{{/* kpulse.config is the config file: .Values.config, with the admin block the chart manages. */}}
{{- define "kpulse.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- if eq .Values.admin.access "token" }}
{{- $admin := deepCopy (default dict $cfg.admin) }}
{{- $_ := set $admin "access" "token" }}
{{- $_ := set $admin "listen" (printf ":%d" (int .Values.admin.port)) }}
{{- $_ := set $admin "tls" (dict "certFile" "/etc/kpulse/admin-tls/tls.crt" "keyFile" "/etc/kpulse/admin-tls/tls.key") }}
{{- $_ := set $cfg "admin" $admin }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
kpulse.stateNames lists the state ConfigMaps kpulse writes: <state.name>-0 ... one per 112
incidents of state.maxIncidents (internal/state: PerShard), and <state.name>-silences.
*/}}
{{- define "kpulse.stateNames" -}}
{{- $state := default dict .Values.config.state }}
{{- $prefix := default "kpulse-state" $state.name }}
{{- $max := int (default 1000 $state.maxIncidents) }}
{{- $names := list }}
{{- range $i := until (int (div (add $max 111) 112)) }}
{{- $names = append $names (printf "%s-%d" $prefix $i) }}
{{- end }}
{{- $names = append $names (printf "%s-silences" $prefix) }}
{{- toJson $names }}
{{- end }}
