{{/*
PromQL shared by autoscaling (KEDA triggers, prometheus-adapter rule) and observability (recording
rules, alerts), so a dashboard, an alert and an autoscaler never disagree about what "queue depth"
means. vLLM labels every vllm:* series with model_name = --served-model-name; we never use `model=`.
*/}}

{{/*
A PromQL double-quoted string literal body: backslashes and double quotes escaped.
Call with a string.
*/}}
{{- define "llm-common.promString" -}}
{{- . | replace "\\" "\\\\" | replace "\"" "\\\"" -}}
{{- end -}}

{{/*
Label matchers that scope a query to one model: namespace="<ns>",model_name="<served>".
Call with (dict "namespace" $ns "model" $m), $m a normalized model.
*/}}
{{- define "llm-common.promModelSelector" -}}
namespace="{{ include "llm-common.promString" .namespace }}",model_name="{{ include "llm-common.promString" .model.servedModelName }}"
{{- end -}}

{{/*
Label matchers that scope a query to every model of the release:
namespace="<ns>",model_name=~"<served1>|<served2>" (each name regex-quoted, then string-escaped).
Call with (dict "namespace" $ns "models" $models).
*/}}
{{- define "llm-common.promReleaseSelector" -}}
{{- $names := list -}}
{{- range .models -}}
{{- $names = append $names (regexQuoteMeta .servedModelName) -}}
{{- end -}}
namespace="{{ include "llm-common.promString" .namespace }}",model_name=~"{{ include "llm-common.promString" (join "|" $names) }}"
{{- end -}}

{{/*
The named queries. Call with (dict "query" NAME "selector" MATCHERS ["by" true]), MATCHERS from
llm-common.promModelSelector or llm-common.promReleaseSelector. Without "by" the result is one series
(what KEDA and HPA need); with "by" it is one series per (namespace, model_name) (recording rules).
  queueDepth    requests waiting for a slot in the engine, summed over pods
  running       requests in the running batch, summed over pods
  kvCacheUsage  KV-cache blocks in use (0..1) summed over pods: KEDA's AverageValue divides it by the
                replica count, so a threshold of 0.8 means "average usage per pod above 80 %"
  kvCacheAvg    KV-cache usage averaged over pods (dashboards, alerts)
*/}}
{{- define "llm-common.promql" -}}
{{- $agg := dict "queueDepth" (list "sum" "vllm:num_requests_waiting") "running" (list "sum" "vllm:num_requests_running") "kvCacheUsage" (list "sum" "vllm:kv_cache_usage_perc") "kvCacheAvg" (list "avg" "vllm:kv_cache_usage_perc") -}}
{{- $q := get $agg .query -}}
{{- if not $q -}}
{{- fail (printf "llm-common.promql: unknown query %q (known: %s)" .query (keys $agg | sortAlpha | join ", ")) -}}
{{- end -}}
{{- index $q 0 -}}{{- if .by }} by (namespace, model_name) {{- end -}}({{ index $q 1 }}{ {{- .selector -}} })
{{- end -}}
