{{/*
Selector labels: a strict subset of the labels that never changes over a release's life.
Call with (dict "root" $ "name" "vllm" "component" "server" "model" $m); model is optional.
*/}}
{{- define "llm-common.selectorLabels" -}}
app.kubernetes.io/name: {{ .name | quote }}
app.kubernetes.io/instance: {{ .root.Release.Name | quote }}
{{- with .component }}
app.kubernetes.io/component: {{ . | quote }}
{{- end }}
{{- with .model }}
llm-stack.io/model: {{ .name | quote }}
{{- end }}
{{- end -}}

{{/*
All standard labels. Same arguments as llm-common.selectorLabels.
*/}}
{{- define "llm-common.labels" -}}
{{ include "llm-common.selectorLabels" . }}
app.kubernetes.io/part-of: llm-stack
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | default .root.Chart.Version | quote }}
helm.sh/chart: {{ include "llm-common.chart" .root }}
{{- end -}}
