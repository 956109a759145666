{{/* The labels every object carries (agent/manifests.py _labels). */}}
{{- define "flotilla.labels" -}}
app.kubernetes.io/name: flotilla-agent
app.kubernetes.io/part-of: flotilla
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
flotilla.dev/cluster: {{ regexReplaceAll "[^A-Za-z0-9._-]" (required "cluster is required" .Values.cluster) "-" | trunc 63 | trimAll "-_." | quote }}
{{- end }}

{{- define "flotilla.rules" -}}
{{- .Files.Get "files/rbac-rules.yaml" | fromYaml | toJson -}}
{{- end }}

{{/* A Role with rules and its RoleBinding to the agent's ServiceAccount (agent/rbac.py role_and_binding). */}}
{{- define "flotilla.roleAndBinding" -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ .name }}
  namespace: {{ .namespace }}
  labels:
    {{- include "flotilla.labels" .root | nindent 4 }}
rules:
  {{- toYaml .rules | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ .name }}
  namespace: {{ .namespace }}
  labels:
    {{- include "flotilla.labels" .root | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ .name }}
subjects:
  - kind: ServiceAccount
    name: flotilla-agent
    namespace: {{ .root.Release.Namespace }}
{{- end }}

{{- define "flotilla.clusterBinding" -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ .name }}
  labels:
    {{- include "flotilla.labels" .root | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ .role }}
subjects:
  - kind: ServiceAccount
    name: flotilla-agent
    namespace: {{ .root.Release.Namespace }}
{{- end }}
