{{/*
Labels of a mesh object. Call with (dict "root" $ "model" $m); model is optional (release-wide objects).
*/}}
{{- define "mesh.labels" -}}
{{- include "llm-common.labels" (dict "root" .root "name" "mesh" "component" "policy" "model" .model) -}}
{{- end -}}

{{/*
Selector of every vLLM pod of one model (all rollout tracks), or of the whole release without a model.
The vllm chart owns these labels (docs/design.md); llm-stack.io/track is left out on purpose.
*/}}
{{- define "mesh.vllmSelector" -}}
{{- include "llm-common.selectorLabels" (dict "root" .root "name" "vllm" "component" "server" "model" .model) -}}
{{- end -}}

{{/*
The release-wide MeshTLSAuthentication / NetworkAuthentication names.
*/}}
{{- define "mesh.clientsName" -}}
{{- printf "%s-clients" (include "llm-common.fullname" .) -}}
{{- end -}}
{{- define "mesh.networksName" -}}
{{- printf "%s-networks" (include "llm-common.fullname" .) -}}
{{- end -}}

{{/*
Mesh identities admitted over mTLS: authorization.clients plus the Prometheus ServiceAccount.
Returns JSON {"refs": [{name, namespace}, ...]}, namespaces defaulted, duplicates removed.
*/}}
{{- define "mesh.identities" -}}
{{- $ns := include "llm-common.namespace" . -}}
{{- $out := list -}}
{{- range .Values.authorization.clients -}}
{{- $out = append $out (dict "name" .name "namespace" (.namespace | default $ns)) -}}
{{- end -}}
{{- with .Values.authorization.prometheus -}}
{{- if .serviceAccount -}}
{{- $out = append $out (dict "name" .serviceAccount "namespace" (.namespace | default $ns)) -}}
{{- end -}}
{{- end -}}
{{- dict "refs" (uniq $out) | toJson -}}
{{- end -}}

{{/*
Whether the model's Service already carries a catch-all HTTPRoute of the vllm chart: with the canary
strategy the vllm chart splits traffic with a weighted HTTPRoute on <fullname>, which then serves every
path that our retryable route does not match. Call with a normalized model; returns "true" or "".
*/}}
{{- define "mesh.vllmOwnsCatchAll" -}}
{{- if eq ((.rollout | default dict).strategy | default "none") "canary" -}}true{{- end -}}
{{- end -}}

{{/*
Cross-field rules, gathered into one failure naming each value path (as set through the umbrella).
*/}}
{{- define "mesh.validate" -}}
{{- $errors := list -}}
{{- $v := .Values -}}
{{- if $v.namespace.create -}}
{{- $target := ($v.global).namespace | default "" -}}
{{- if not $target -}}
{{- $errors = append $errors "mesh.namespace.create: true, but global.namespace is empty; name the workload namespace in global.namespace (it must differ from the release namespace)" -}}
{{- else if eq $target .Release.Namespace -}}
{{- $errors = append $errors (printf "mesh.namespace.create: true, but global.namespace %q is the release namespace; Helm stores the release there, so it must exist before install. Install the release in another namespace or set mesh.namespace.create: false and annotate the namespace yourself" $target) -}}
{{- end -}}
{{- if and (has $v.namespace.podSecurity.enforce (list "baseline" "restricted")) (not $v.linkerd.cni) -}}
{{- $errors = append $errors (printf "mesh.namespace.podSecurity.enforce: %q forbids the NET_ADMIN and NET_RAW capabilities that the linkerd-init container needs; use privileged, or install the Linkerd CNI plugin and set mesh.linkerd.cni: true" $v.namespace.podSecurity.enforce) -}}
{{- end -}}
{{- end -}}
{{- range $i, $path := $v.routes.retryable.paths -}}
{{- if or (hasPrefix "/v1/completions" $path) (hasPrefix "/v1/chat/completions" $path) (hasPrefix "/v1/responses" $path) -}}
{{- $errors = append $errors (printf "mesh.routes.retryable.paths[%d]: %q streams its response (SSE); a request timeout would cut long generations and a retry would run the generation twice. List only short idempotent GET paths" $i $path) -}}
{{- end -}}
{{- end -}}
{{- range $i, $c := $v.authorization.clients -}}
{{- if not $c.name -}}
{{- $errors = append $errors (printf "mesh.authorization.clients[%d].name: required (the client's ServiceAccount)" $i) -}}
{{- end -}}
{{- end -}}
{{- with $errors -}}
{{- fail (printf "\n\nllm-stack: invalid values:\n  - %s\n" (join "\n  - " .)) -}}
{{- end -}}
{{- end -}}
