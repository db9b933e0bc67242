{{/*
The model cache contract between model-storage (which creates and fills the claims) and vllm (which
mounts them). Both charts call these helpers, so the claim name and the cache layout have one source.

  claim     perModel: global.models[].storage.existingClaim, else <fullname>-models
            shared:   global.storage.existingClaim, else <release>-models
  mount     global.storage.mountPath (default /models)
  HF_HOME   <mount>/hf  (the Hugging Face cache: <mount>/hf/hub/models--<org>--<name>/snapshots/<commit>)
*/}}

{{/*
The PVC that holds one model's weights. Call with (dict "root" $ "model" $m), $m a normalized model
(an item of llm-common.models).
*/}}
{{- define "llm-common.modelClaim" -}}
{{- $g := .root.Values.global.storage | default dict -}}
{{- if eq ($g.mode | default "perModel") "shared" -}}
{{- $g.existingClaim | default (printf "%s-models" (include "llm-common.fullname" .root)) -}}
{{- else -}}
{{- (.model.storage | default dict).existingClaim | default (printf "%s-models" .model.fullname) -}}
{{- end -}}
{{- end -}}

{{/*
Where the model cache is mounted in serving and download pods. Call with the root context.
*/}}
{{- define "llm-common.modelMountPath" -}}
{{- (.Values.global.storage | default dict).mountPath | default "/models" -}}
{{- end -}}

{{/*
HF_HOME inside the mounted cache. Call with the root context.
*/}}
{{- define "llm-common.hfHome" -}}
{{- printf "%s/hf" (include "llm-common.modelMountPath" . | trimSuffix "/") -}}
{{- end -}}
