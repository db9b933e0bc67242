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
Where a setting of one track was given, for error messages: the most specific level that sets `key`
(a dotted path inside the vllm settings): the track's override, the model's vllm block, else
vllm.defaults. Call with (dict "root" $ "model" $m "index" $i "track" $t.track "key" "gpu.count").
*/}}
{{- define "vllm.valuePath" -}}
{{- $r := .model.rollout | default dict -}}
{{- $levels := list -}}
{{- if eq .track "canary" -}}
{{- $levels = append $levels (list (($r.canary | default dict).vllm | default dict) (printf "global.models[%d].rollout.canary.vllm" (int .index))) -}}
{{- else if has .track (list "blue" "green") -}}
{{- $levels = append $levels (list ((get ($r.blueGreen | default dict) .track) | default dict) (printf "global.models[%d].rollout.blueGreen.%s" (int .index) .track)) -}}
{{- end -}}
{{- $levels = append $levels (list (.model.vllm | default dict) (printf "global.models[%d].vllm" (int .index))) -}}
{{- $found := "vllm.defaults" -}}
{{- range $l := $levels -}}
{{- if eq $found "vllm.defaults" -}}
{{- $node := index $l 0 -}}
{{- $hit := true -}}
{{- range $k := splitList "." $.key -}}
{{- if and $hit (kindIs "map" $node) (hasKey $node $k) -}}
{{- $node = get $node $k -}}
{{- else -}}
{{- $hit = false -}}
{{- end -}}
{{- end -}}
{{- if $hit -}}{{- $found = index $l 1 -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- printf "%s.%s" $found .key -}}
{{- end -}}

{{/*
vLLM flags the chart renders from typed values; extraArgs must not repeat them (vLLM would take the
last one, so the typed value would silently lose). Maps each flag to the value that sets it.
*/}}
{{- define "vllm.managedFlags" -}}
{{- dict "--model" "global.models[].model" "--served-model-name" "global.models[].servedModelName" "--revision" "global.models[].revision" "--host" "(fixed: 0.0.0.0)" "--port" "(fixed: 8000)" "--tensor-parallel-size" "engine.tensorParallelSize" "-tp" "engine.tensorParallelSize" "--max-model-len" "engine.maxModelLen" "--gpu-memory-utilization" "engine.gpuMemoryUtilization" "--dtype" "engine.dtype" "--quantization" "engine.quantization" "-q" "engine.quantization" "--enable-prefix-caching" "engine.enablePrefixCaching" "--no-enable-prefix-caching" "engine.enablePrefixCaching" "--enable-chunked-prefill" "engine.enableChunkedPrefill" "--no-enable-chunked-prefill" "engine.enableChunkedPrefill" "--max-num-seqs" "engine.maxNumSeqs" "--enable-lora" "engine.lora.enabled" "--max-loras" "engine.lora.maxLoras" "--max-lora-rank" "engine.lora.maxLoraRank" "--lora-modules" "engine.lora.modules" "--api-key" "apiKey.existingSecret" | toJson -}}
{{- end -}}

{{/*
A rollingUpdate bound (integer or percentage) is zero. Call with the value.
*/}}
{{- define "vllm.isZero" -}}
{{- if eq (toString . | trimSuffix "%") "0" -}}true{{- end -}}
{{- end -}}

{{/*
GPUs per replica: gpu.count, else the tensor parallel size. 0 runs on CPU only (the simulator).
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
