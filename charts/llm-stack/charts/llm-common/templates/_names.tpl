{{/*
Namespace of every workload object: global.namespace, else the release namespace.
*/}}
{{- define "llm-common.namespace" -}}
{{- default .Release.Namespace (.Values.global).namespace -}}
{{- end -}}

{{/*
The name of a model's objects: <release>-<model>. Truncated to 52 characters so that the longest suffix
we add ("-canary-metrics" is never used; "-metrics" and "-canary" are) still fits the 63-character
limit of label values and Service names. Always <release>-<model>, so two models never share a name.
*/}}
{{- define "llm-common.modelFullname" -}}
{{- $root := .root -}}
{{- printf "%s-%s" $root.Release.Name .model.name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/*
The release-wide name prefix (shared objects such as one RWX claim): the release name, truncated.
*/}}
{{- define "llm-common.fullname" -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/*
Chart label value.
*/}}
{{- define "llm-common.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}
