{{/*
Labels of every monitoring object: the standard labels plus observability.commonLabels (the labels a
Prometheus selects ServiceMonitors and rules by). Call with (dict "root" $ "component" "..." "model" $m).
*/}}
{{- define "observability.labels" -}}
{{ include "llm-common.labels" (dict "root" .root "name" "observability" "component" .component "model" .model) }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Selector of a model's vLLM objects, as the vllm subchart labels them (docs/design.md).
Call with (dict "root" $ "model" $m).
*/}}
{{- define "observability.vllmSelector" -}}
app.kubernetes.io/name: vllm
app.kubernetes.io/instance: {{ .root.Release.Name }}
llm-stack.io/model: {{ .model.name }}
{{- end -}}

{{/*
Regex of the Deployments that serve a model: <fullname>, <fullname>-canary, <fullname>-blue, <fullname>-green.
Call with a normalized model.
*/}}
{{- define "observability.deploymentRegex" -}}
{{ regexQuoteMeta .fullname }}(-canary|-blue|-green)?
{{- end -}}

{{/*
Annotations of an alert. Call with (dict "root" $ "alert" "Name" "summary" "..." "description" "...").
*/}}
{{- define "observability.alertAnnotations" -}}
summary: {{ .summary | quote }}
description: {{ .description | quote }}
runbook_url: {{ printf "%s#%s" (trimSuffix "/" .root.Values.prometheusRule.runbookBaseUrl) (lower .alert) | quote }}
{{- end -}}

{{/*
Labels of an alert: severity plus prometheusRule.alertLabels. Call with (dict "root" $ "severity" "...").
*/}}
{{- define "observability.alertLabels" -}}
severity: {{ .severity }}
{{- with .root.Values.prometheusRule.alertLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}
