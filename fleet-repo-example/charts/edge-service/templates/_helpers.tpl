{{- define "edge-service.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
{{- end }}

{{- define "edge-service.selector" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
