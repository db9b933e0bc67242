{{/*
One model's autoscaling settings: .Values.defaults deep-merged with global.models[].autoscaling.
Call with (dict "root" $ "model" $m); returns JSON.
*/}}
{{- define "autoscaling.settings" -}}
{{- include "llm-common.modelValues" (dict "model" .model "key" "autoscaling" "defaults" .root.Values.defaults) -}}
{{- end -}}

{{/*
Where a setting came from, for error messages: global.models[i].autoscaling.<path> when the model sets
it, else autoscaling.defaults.<path>. Call with (dict "model" $m "index" $i "path" "keda.fallback.replicas").
*/}}
{{- define "autoscaling.valuePath" -}}
{{- $cur := .model.autoscaling | default dict -}}
{{- $found := true -}}
{{- range (splitList "." .path) -}}
{{- if and $found (kindIs "map" $cur) (hasKey $cur .) -}}
{{- $cur = get $cur . -}}
{{- else -}}
{{- $found = false -}}
{{- end -}}
{{- end -}}
{{- if $found -}}
global.models[{{ .index }}].autoscaling.{{ .path }}
{{- else -}}
autoscaling.defaults.{{ .path }}
{{- end -}}
{{- end -}}

{{/*
Cross-field rules that JSON Schema cannot express, checked for every model; fails once with the list.
*/}}
{{- define "autoscaling.validate" -}}
{{- $errors := list -}}
{{- range $i, $m := (fromJson (include "llm-common.models" $)).models -}}
{{- $mode := include "llm-common.autoscalingMode" (dict "root" $ "model" $m) -}}
{{- $raw := $m.autoscaling | default dict -}}
{{- $p := printf "global.models[%d].autoscaling" $i -}}
{{- /* Settings for an autoscaler the model does not use would be silently ignored: refuse them. */ -}}
{{- if and (ne $mode "keda") (hasKey $raw "keda") -}}
{{- $errors = append $errors (printf "%s.keda: set, but the model's autoscaling mode is %q; remove it or set %s.mode: keda" $p $mode $p) -}}
{{- end -}}
{{- if and (ne $mode "hpa") (hasKey $raw "hpa") -}}
{{- $errors = append $errors (printf "%s.hpa: set, but the model's autoscaling mode is %q; remove it or set %s.mode: hpa" $p $mode $p) -}}
{{- end -}}
{{- if eq $mode "none" -}}
{{- range $k := list "minReplicas" "maxReplicas" -}}
{{- if hasKey $raw $k -}}
{{- $errors = append $errors (printf "%s.%s: set, but the model's autoscaling mode is none (it runs its fixed vllm replicas); remove it or choose hpa or keda" $p $k) -}}
{{- end -}}
{{- end -}}
{{- else -}}
{{- $s := fromJson (include "autoscaling.settings" (dict "root" $ "model" $m)) -}}
{{- $path := dict "model" $m "index" $i -}}
{{- if gt (int $s.minReplicas) (int $s.maxReplicas) -}}
{{- $errors = append $errors (printf "%s: %d is below minReplicas (%d, from %s)" (include "autoscaling.valuePath" (merge (dict "path" "maxReplicas") $path)) (int $s.maxReplicas) (int $s.minReplicas) (include "autoscaling.valuePath" (merge (dict "path" "minReplicas") $path))) -}}
{{- end -}}
{{- if eq $mode "keda" -}}
{{- $k := $s.keda -}}
{{- $t := $k.triggers -}}
{{- if not (or $t.queueDepth.enabled $t.kvCache.enabled $t.cpu.enabled) -}}
{{- $errors = append $errors (printf "%s: every trigger is disabled; enable queueDepth, kvCache or cpu" (include "autoscaling.valuePath" (merge (dict "path" "keda.triggers") $path))) -}}
{{- end -}}
{{- if $k.fallback.enabled -}}
{{- $fr := int $k.fallback.replicas -}}
{{- if or (lt $fr (int $s.minReplicas)) (gt $fr (int $s.maxReplicas)) -}}
{{- $errors = append $errors (printf "%s: %d is outside minReplicas..maxReplicas (%d..%d)" (include "autoscaling.valuePath" (merge (dict "path" "keda.fallback.replicas") $path)) $fr (int $s.minReplicas) (int $s.maxReplicas)) -}}
{{- end -}}
{{- if $t.cpu.enabled -}}
{{- $errors = append $errors (printf "%s: KEDA's fallback does not support the cpu trigger; disable keda.fallback or keda.triggers.cpu" (include "autoscaling.valuePath" (merge (dict "path" "keda.fallback.enabled") $path))) -}}
{{- end -}}
{{- end -}}
{{- if $k.scaleToZero.enabled -}}
{{- if not $k.scaleToZero.activationQuery -}}
{{- $errors = append $errors (printf "%s: required when keda.scaleToZero.enabled is true; at zero replicas the vLLM metrics are gone, so only a query on traffic seen elsewhere (gateway, mesh) can wake the model" (include "autoscaling.valuePath" (merge (dict "path" "keda.scaleToZero.activationQuery") $path))) -}}
{{- end -}}
{{- if $t.cpu.enabled -}}
{{- $errors = append $errors (printf "%s: the cpu trigger cannot scale to zero; disable keda.scaleToZero or keda.triggers.cpu" (include "autoscaling.valuePath" (merge (dict "path" "keda.scaleToZero.enabled") $path))) -}}
{{- end -}}
{{- end -}}
{{- if and $k.prometheus.authModes (not $k.prometheus.authenticationRef.name) -}}
{{- $errors = append $errors (printf "%s: required when keda.prometheus.authModes is %q; name an existing TriggerAuthentication" (include "autoscaling.valuePath" (merge (dict "path" "keda.prometheus.authenticationRef.name") $path)) $k.prometheus.authModes) -}}
{{- end -}}
{{- end -}}
{{- if and (eq $mode "hpa") (has "external" $s.hpa.metrics) -}}
{{- if or (not (regexMatch "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$" $m.servedModelName)) (gt (len $m.servedModelName) 63) -}}
{{- $errors = append $errors (printf "%s: the external source selects model_name=%q, which is not a valid label value (at most 63 of A-Za-z0-9-_.); use the pods source or set global.models[%d].servedModelName" (include "autoscaling.valuePath" (merge (dict "path" "hpa.metrics") $path)) $m.servedModelName $i) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- with $errors -}}
{{- fail (printf "\n\nllm-stack: invalid values:\n  - %s\n" (join "\n  - " (uniq .))) -}}
{{- end -}}
{{- end -}}

{{/*
Metadata shared by every KEDA prometheus trigger. Call with the merged keda.prometheus settings.
*/}}
{{- define "autoscaling.kedaPrometheus" -}}
serverAddress: {{ .serverAddress | quote }}
ignoreNullValues: "true"
{{- with .authModes }}
authModes: {{ . | quote }}
{{- end }}
{{- if .unsafeSsl }}
unsafeSsl: "true"
{{- end }}
{{- end -}}

{{/*
authenticationRef of a KEDA trigger, when authModes is set.
*/}}
{{- define "autoscaling.kedaAuthRef" -}}
{{- if .authModes -}}
authenticationRef:
  name: {{ .authenticationRef.name }}
  kind: {{ .authenticationRef.kind }}
{{- end -}}
{{- end -}}
