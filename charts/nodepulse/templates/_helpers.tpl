{{/*
The chart renders the objects of manifests/base and its overlays; the why of each setting is
commented there. test/integration/helmChart.test.ts holds both installs equal.
*/}}

{{/* The labels Helm's conventions add to every object's metadata (the equality test ignores these). */}}
{{- define "nodepulse.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* metadata.labels of one component's objects: (list $ "nodepulse-agent"); "" for objects of both. */}}
{{- define "nodepulse.labels" -}}
{{- $root := index . 0 -}}
{{- with index . 1 -}}
app.kubernetes.io/name: {{ . }}
{{ end -}}
app.kubernetes.io/part-of: nodepulse
{{ include "nodepulse.helmLabels" $root }}
{{- end -}}

{{- define "nodepulse.namespace" -}}
{{ .Values.namespace.name }}
{{- end -}}

{{/* The username a ServiceAccount's token authenticates as: (list $ "nodepulse-agent"). */}}
{{- define "nodepulse.serviceAccountUser" -}}
system:serviceaccount:{{ include "nodepulse.namespace" (index . 0) }}:{{ index . 1 }}
{{- end -}}

{{- define "nodepulse.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The agent's config file: config/agent.yaml, the profile's and the reboot layer, then the values' agent.config; each a deep merge over the last (lists replaced). */}}
{{- define "nodepulse.agentConfig" -}}
{{- $config := .Files.Get "config/agent.yaml" | fromYaml -}}
{{- if eq .Values.profile "aks" -}}
{{- $config = mergeOverwrite $config (.Files.Get "config/agent-aks.yaml" | fromYaml) -}}
{{- end -}}
{{- if .Values.agentReboot.enabled -}}
{{- $config = mergeOverwrite $config (.Files.Get "config/agent-reboot.yaml" | fromYaml) -}}
{{- /* The agent stays root for its reboot command: no security.runAsUser (a merge cannot set null). */ -}}
{{- $_ := unset $config "security" -}}
{{- end -}}
{{- $config = mergeOverwrite $config (deepCopy .Values.agent.config) -}}
{{- toYaml $config -}}
{{- end -}}

{{/* The controller's config file, layered the same way; its Lease lives in the chart's namespace. */}}
{{- define "nodepulse.controllerConfig" -}}
{{- $config := .Files.Get "config/controller.yaml" | fromYaml -}}
{{- $_ := set $config.leaderElection "namespace" (include "nodepulse.namespace" .) -}}
{{- if eq .Values.profile "aks" -}}
{{- $config = mergeOverwrite $config (.Files.Get "config/controller-aks.yaml" | fromYaml) -}}
{{- end -}}
{{- if .Values.agentReboot.enabled -}}
{{- $config = mergeOverwrite $config (.Files.Get "config/controller-reboot.yaml" | fromYaml) -}}
{{- end -}}
{{- $config = mergeOverwrite $config (deepCopy .Values.controller.config) -}}
{{- toYaml $config -}}
{{- end -}}

{{/* A generated ConfigMap's name, as kustomize's configMapGenerator makes it: a content hash, so a change rolls the pods. */}}
{{- define "nodepulse.hashedName" -}}
{{ index . 0 }}-{{ index . 1 | sha256sum | trunc 10 }}
{{- end -}}

{{- define "nodepulse.agentConfigMapName" -}}
{{ include "nodepulse.hashedName" (list "nodepulse-agent-config" (include "nodepulse.agentConfig" .)) }}
{{- end -}}

{{- define "nodepulse.controllerConfigMapName" -}}
{{ include "nodepulse.hashedName" (list "nodepulse-controller-config" (include "nodepulse.controllerConfig" .)) }}
{{- end -}}

{{/* The controller authenticates to Azure with workload identity: the webhook needs the pod label and the ServiceAccount annotation. */}}
{{- define "nodepulse.workloadIdentity" -}}
{{- $provider := (include "nodepulse.controllerConfig" . | fromYaml).provider -}}
{{- if and (eq $provider.type "azure") (eq ((($provider.azure | default dict).credential) | default "workload-identity") "workload-identity") -}}
true
{{- end -}}
{{- end -}}
