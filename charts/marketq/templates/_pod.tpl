{{/* Pod-level fields shared by every marketq pod: (dict "root" $ "component" c). */}}
{{- define "marketq.podCommon" -}}
{{- if .root.Values.serviceAccounts.create }}
serviceAccountName: {{ include "marketq.componentName" (list .root .component) }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- include "marketq.podSecurityContext" .root | nindent 2 }}
{{- with .root.Values.images.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end }}
