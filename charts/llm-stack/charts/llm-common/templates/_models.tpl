{{/*
The model list, normalized once for every subchart: the declaration from global.models plus
  fullname         <release>-<name>, the name of the model's objects
  servedModelName  what clients send and the model_name label of vllm:* metrics (defaults to model)
Returns JSON {"models": [...]}; use (fromJson (include "llm-common.models" .)).models
*/}}
{{- define "llm-common.models" -}}
{{- $out := list -}}
{{- range $m := ((.Values.global).models | default list) -}}
{{- $n := deepCopy $m -}}
{{- $_ := set $n "fullname" (include "llm-common.modelFullname" (dict "root" $ "model" $m)) -}}
{{- $_ := set $n "servedModelName" (default $m.model $m.servedModelName) -}}
{{- $out = append $out $n -}}
{{- end -}}
{{- dict "models" $out | toJson -}}
{{- end -}}

{{/*
A subchart's defaults deep-merged with one model's overrides (the model wins).
Call with (dict "model" $m "key" "vllm" "defaults" .Values.defaults); returns JSON.
*/}}
{{- define "llm-common.modelValues" -}}
{{- $over := deepCopy (get .model .key | default dict) -}}
{{- mergeOverwrite (deepCopy .defaults) $over | toJson -}}
{{- end -}}

{{/*
The Deployment that serves a model's traffic and that autoscaling targets: <fullname> for the plain and
canary strategies (the stable track), <fullname>-<active color> for blue/green.
Call with a normalized model (an item of llm-common.models).
*/}}
{{- define "llm-common.primaryDeployment" -}}
{{- $r := .rollout | default dict -}}
{{- if eq ($r.strategy | default "none") "blueGreen" -}}
{{- printf "%s-%s" .fullname (($r.blueGreen | default dict).active | default "blue") -}}
{{- else -}}
{{- .fullname -}}
{{- end -}}
{{- end -}}

{{/*
The effective autoscaling mode of a model: none when global.autoscaling.enabled is false, else the
model's autoscaling.mode, else global.autoscaling.mode. The vllm chart leaves `replicas` unset when it
is not none, so that helm upgrade does not fight the autoscaler.
*/}}
{{- define "llm-common.autoscalingMode" -}}
{{- $g := .root.Values.global.autoscaling | default dict -}}
{{- if not $g.enabled -}}none{{- else -}}
{{- (.model.autoscaling | default dict).mode | default $g.mode | default "none" -}}
{{- end -}}
{{- end -}}
