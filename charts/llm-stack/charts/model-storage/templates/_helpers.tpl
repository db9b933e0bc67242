{{/*
One model's claim settings: .Values.defaults deep-merged with global.models[].storage (the model wins).
Call with (dict "root" $ "model" $m); returns JSON.
*/}}
{{- define "modelStorage.settings" -}}
{{- include "llm-common.modelValues" (dict "model" .model "key" "storage" "defaults" .root.Values.defaults) -}}
{{- end -}}

{{/*
Labels. Call with (dict "root" $ "component" "cache|download" "model" $m); model is optional.
*/}}
{{- define "modelStorage.labels" -}}
{{- include "llm-common.labels" (dict "root" .root "name" "model-storage" "component" .component "model" .model) -}}
{{- end -}}

{{/*
storageClassName line of a claim: "" -> omitted (cluster default), "-" -> "" (no dynamic provisioning).
*/}}
{{- define "modelStorage.storageClassName" -}}
{{- if eq . "-" -}}
storageClassName: ""
{{- else if . -}}
storageClassName: {{ . | quote }}
{{- end -}}
{{- end -}}

{{/*
Whether a model is fetched from the Hugging Face Hub: a model given as an absolute path is expected to be
on the claim already. Call with a normalized model; returns "true" or "".
*/}}
{{- define "modelStorage.downloadable" -}}
{{- if not (hasPrefix "/" .model) -}}true{{- end -}}
{{- end -}}

{{/*
Marker file of a complete download, one per model and revision: <org>--<name>@<revision>.done
*/}}
{{- define "modelStorage.markerName" -}}
{{- printf "%s@%s.done" (.model | replace "/" "--") (.revision | default "default" | replace "/" "--") -}}
{{- end -}}

{{/*
Pod spec of one model's download Job. Call with (dict "root" $ "model" $m). Kept in one helper so that
the Job name can hash exactly what the pod will run.
*/}}
{{- define "modelStorage.downloadPodSpec" -}}
{{- $d := .root.Values.download -}}
{{- $m := .model -}}
{{- $mount := include "llm-common.modelMountPath" .root -}}
restartPolicy: Never
automountServiceAccountToken: false
enableServiceLinks: false
{{- with $d.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $d.podSecurityContext | nindent 2 }}
{{- with $d.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $d.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $d.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: download
    image: {{ printf "%s:%s" $d.image.repository $d.image.tag }}{{ with $d.image.digest }}@{{ . }}{{ end }}
    imagePullPolicy: {{ $d.image.pullPolicy }}
    command:
      - /bin/sh
      - -c
      - {{ .root.Files.Get "files/download.sh" | quote }}
      - llm-stack-download
    args:
      - {{ $m.model | quote }}
      {{- with $m.revision }}
      - --revision
      - {{ . | quote }}
      {{- end }}
      {{- range $d.include }}
      - --include
      - {{ . | quote }}
      {{- end }}
      {{- range $d.exclude }}
      - --exclude
      - {{ . | quote }}
      {{- end }}
      - --max-workers
      - {{ $d.maxWorkers | toString | quote }}
    env:
      - name: MOUNT_PATH
        value: {{ $mount | quote }}
      - name: HF_HOME
        value: {{ include "llm-common.hfHome" .root | quote }}
      - name: MODEL_ID
        value: {{ $m.model | quote }}
      - name: MODEL_REVISION
        value: {{ $m.revision | default "" | quote }}
      - name: MARKER_NAME
        value: {{ include "modelStorage.markerName" $m | quote }}
      - name: INSTALL_HF_HUB
        value: {{ $d.installHuggingfaceHub | toString | quote }}
      - name: HF_HUB_VERSION
        value: {{ $d.huggingfaceHubVersion | quote }}
      {{- with $d.pipIndexUrl }}
      - name: PIP_INDEX_URL
        value: {{ . | quote }}
      {{- end }}
      - name: HOME
        value: /work
      - name: TMPDIR
        value: /work/tmp
      - name: HF_HUB_DISABLE_TELEMETRY
        value: "1"
      - name: PYTHONDONTWRITEBYTECODE
        value: "1"
      {{- with $d.hfToken.existingSecret }}
      - name: HF_TOKEN
        valueFrom:
          secretKeyRef:
            name: {{ . }}
            key: {{ $d.hfToken.key }}
      {{- end }}
      {{- with $d.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    resources:
      {{- toYaml $d.resources | nindent 6 }}
    securityContext:
      {{- toYaml $d.securityContext | nindent 6 }}
    volumeMounts:
      - name: models
        mountPath: {{ $mount }}
      - name: work
        mountPath: /work
volumes:
  - name: models
    persistentVolumeClaim:
      claimName: {{ include "llm-common.modelClaim" (dict "root" .root "model" $m) }}
  - name: work
    emptyDir:
      sizeLimit: {{ $d.scratchSizeLimit }}
{{- end -}}

{{/*
Cross-field rules that JSON Schema cannot express, gathered into one failure naming each value path.
*/}}
{{- define "modelStorage.validate" -}}
{{- $errors := list -}}
{{- $g := .Values.global.storage | default dict -}}
{{- $mode := $g.mode | default "perModel" -}}
{{- range $i, $m := (fromJson (include "llm-common.models" $)).models -}}
{{- $raw := $m.storage | default dict -}}
{{- $p := printf "global.models[%d].storage" $i -}}
{{- if eq $mode "shared" -}}
{{- range $k := keys $raw | sortAlpha -}}
{{- $errors = append $errors (printf "%s.%s: set, but global.storage.mode is shared: every model uses one claim (modelStorage.shared, or global.storage.existingClaim); remove it or use perModel mode" $p $k) -}}
{{- end -}}
{{- else if $raw.existingClaim -}}
{{- range $k := without (keys $raw | sortAlpha) "existingClaim" -}}
{{- $errors = append $errors (printf "%s.%s: set, but %s.existingClaim %q is used and the chart creates no claim for this model; remove it" $p $k $p $raw.existingClaim) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (eq $mode "shared") (not $g.existingClaim) (not (has "ReadWriteMany" .Values.shared.accessModes)) -}}
{{- $errors = append $errors (printf "modelStorage.shared.accessModes: %v lacks ReadWriteMany; in shared mode the pods of every model, on any node, mount the one claim" .Values.shared.accessModes) -}}
{{- end -}}
{{- if eq (.Values.download.image.tag | toString) "latest" -}}
{{- $errors = append $errors "modelStorage.download.image.tag: latest is not allowed; pin a version (the default is a pinned python slim tag)" -}}
{{- end -}}
{{- with $errors -}}
{{- fail (printf "\n\nllm-stack: invalid values:\n  - %s\n" (join "\n  - " .)) -}}
{{- end -}}
{{- end -}}
