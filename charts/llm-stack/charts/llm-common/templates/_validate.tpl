{{/*
Checks that JSON Schema cannot express, gathered into one readable failure.
Call from one template per chart: {{ include "llm-common.validate" . }}
*/}}
{{- define "llm-common.validate" -}}
{{- $errors := list -}}
{{- $models := (.Values.global).models | default list -}}
{{- $seen := dict -}}
{{- $served := dict -}}
{{- range $i, $m := $models -}}
{{- if hasKey $seen $m.name -}}
{{- $errors = append $errors (printf "global.models[%d].name: %q is declared twice; each model needs its own name" $i $m.name) -}}
{{- end -}}
{{- $_ := set $seen $m.name true -}}
{{- $s := default $m.model $m.servedModelName -}}
{{- if hasKey $served $s -}}
{{- $errors = append $errors (printf "global.models[%d].servedModelName: %q is served by another model already; metrics and routing need one name per model" $i $s) -}}
{{- end -}}
{{- $_ := set $served $s true -}}
{{- end -}}
{{- with $errors -}}
{{- fail (printf "\n\nllm-stack: invalid values:\n  - %s\n" (join "\n  - " .)) -}}
{{- end -}}
{{- end -}}

{{/*
Fail with a message that names the offending value. Call with (list "path.to.value" "what is wrong").
*/}}
{{- define "llm-common.fail" -}}
{{- fail (printf "\n\nllm-stack: invalid values:\n  - %s: %s\n" (index . 0) (index . 1)) -}}
{{- end -}}
