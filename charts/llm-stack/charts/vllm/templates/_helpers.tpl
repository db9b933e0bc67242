{{/*
The Deployments of one model, one per rollout track, as JSON {"tracks": [...]}. Each track:
  track     stable | canary | blue | green
  name      the Deployment name
  primary   true for the Deployment that serves the model's Service and that autoscaling targets
  replicas  replicas of this track (ignored for the primary track when an autoscaler owns it)
  values    vllm.defaults deep-merged with global.models[].vllm and the track's own overrides
Call with (dict "root" $ "model" $m) where $m is an item of llm-common.models.
*/}}
{{- define "vllm.tracks" -}}
{{- $m := .model -}}
{{- $base := fromJson (include "llm-common.modelValues" (dict "model" $m "key" "vllm" "defaults" .root.Values.defaults)) -}}
{{- $r := $m.rollout | default dict -}}
{{- $strategy := $r.strategy | default "none" -}}
{{- $tracks := list -}}
{{- if eq $strategy "canary" -}}
{{- $c := $r.canary | default dict -}}
{{- $tracks = append $tracks (dict "track" "stable" "name" $m.fullname "primary" true "replicas" $base.replicas "values" $base) -}}
{{- $cv := mergeOverwrite (deepCopy $base) (deepCopy ($c.vllm | default dict)) -}}
{{- $tracks = append $tracks (dict "track" "canary" "name" (printf "%s-canary" $m.fullname) "primary" false "replicas" ($c.replicas | default 1) "values" $cv) -}}
{{- else if eq $strategy "blueGreen" -}}
{{- $bg := $r.blueGreen | default dict -}}
{{- $active := $bg.active | default "blue" -}}
{{- range $color := list "blue" "green" -}}
{{- $v := mergeOverwrite (deepCopy $base) (deepCopy ((get $bg $color) | default dict)) -}}
{{- $tracks = append $tracks (dict "track" $color "name" (printf "%s-%s" $m.fullname $color) "primary" (eq $color $active) "replicas" $v.replicas "values" $v) -}}
{{- end -}}
{{- else -}}
{{- $tracks = append $tracks (dict "track" "stable" "name" $m.fullname "primary" true "replicas" $base.replicas "values" $base) -}}
{{- end -}}
{{- dict "tracks" $tracks | toJson -}}
{{- end -}}

{{/*
Pod labels of one track: the selector labels plus the track (selectors of Deployments include it).
*/}}
{{- define "vllm.trackSelectorLabels" -}}
{{ include "llm-common.selectorLabels" (dict "root" .root "name" "vllm" "component" "server" "model" .model) }}
llm-stack.io/track: {{ .track | quote }}
{{- end -}}

{{- define "vllm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-vllm" (include "llm-common.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
GPUs per replica: gpu.count, else the tensor parallel size.
*/}}
{{- define "vllm.gpuCount" -}}
{{- if kindIs "invalid" .gpu.count -}}{{ .engine.tensorParallelSize | int }}{{- else -}}{{ .gpu.count | int }}{{- end -}}
{{- end -}}

{{/*
/dev/shm size: shm.sizeLimit, else 8Gi for tensor parallelism (NCCL moves activations through it), else 1Gi.
*/}}
{{- define "vllm.shmSize" -}}
{{- if .shm.sizeLimit -}}{{ .shm.sizeLimit }}{{- else if gt (int .engine.tensorParallelSize) 1 -}}8Gi{{- else -}}1Gi{{- end -}}
{{- end -}}

{{/*
The vLLM command line after the entrypoint (`vllm serve`): the model first, then typed engine settings.
Call with (dict "model" $m "v" $values).
*/}}
{{- define "vllm.args" -}}
{{- $m := .model -}}
{{- $e := .v.engine -}}
- {{ $m.model | quote }}
- --served-model-name={{ $m.servedModelName }}
- --host=0.0.0.0
- --port=8000
{{- with $m.revision }}
- --revision={{ . }}
{{- end }}
- --tensor-parallel-size={{ $e.tensorParallelSize }}
{{- if gt (int $e.maxModelLen) 0 }}
- --max-model-len={{ $e.maxModelLen }}
{{- end }}
- --gpu-memory-utilization={{ $e.gpuMemoryUtilization }}
- --dtype={{ $e.dtype }}
{{- with $e.quantization }}
- --quantization={{ . }}
{{- end }}
- {{ ternary "--enable-prefix-caching" "--no-enable-prefix-caching" $e.enablePrefixCaching }}
- {{ ternary "--enable-chunked-prefill" "--no-enable-chunked-prefill" $e.enableChunkedPrefill }}
- --max-num-seqs={{ $e.maxNumSeqs }}
{{- if $e.lora.enabled }}
- --enable-lora
- --max-loras={{ $e.lora.maxLoras }}
- --max-lora-rank={{ $e.lora.maxLoraRank }}
{{- range $e.lora.modules }}
- --lora-modules={{ .name }}={{ .path }}
{{- end }}
{{- end }}
{{- range .v.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}
