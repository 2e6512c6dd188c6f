{{/*
A Deployment and a Service for one Vigil service. Call with
(dict "root" $ "component" "api" "command" "api" "values" .Values.api "ports" (list ...))
where each port is (dict "name" "http" "port" 8080 "env" "VIGIL_API_PORT"); the first port is
the one the probes use.
*/}}
{{- define "vigil.service" -}}
{{- $root := .root -}}
{{- $values := .values -}}
{{- $probePort := (first .ports).name -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "vigil.fullname" $root }}-{{ .component }}
  labels:
    {{- include "vigil.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  replicas: {{ $values.replicas }}
  selector:
    matchLabels:
      {{- include "vigil.selectorLabels" (dict "root" $root "component" .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "vigil.selectorLabels" (dict "root" $root "component" .component) | nindent 8 }}
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- /* The Secret's generated values are random on each render: hash the inputs instead. */}}
        checksum/secret: {{ toYaml $root.Values.secrets | sha256sum }}
        {{- with $root.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ .component }}
          image: {{ include "vigil.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: [{{ .command | quote }}]
          envFrom:
            - configMapRef:
                name: {{ include "vigil.fullname" $root }}
          env:
            {{- range .ports }}
            - name: {{ .env }}
              value: {{ .port | quote }}
            {{- end }}
            - name: VIGIL_ADMIN_TOKEN
              valueFrom:
                secretKeyRef:
                  name: {{ include "vigil.secretName" $root }}
                  key: admin-token
            - name: VIGIL_DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: {{ include "vigil.secretName" $root }}
                  key: database-url
            - name: VIGIL_SECRET_KEY
              valueFrom:
                secretKeyRef:
                  name: {{ include "vigil.secretName" $root }}
                  key: secret-key
            - name: VIGIL_NATS_URL
              valueFrom:
                secretKeyRef:
                  name: {{ include "vigil.secretName" $root }}
                  key: nats-url
            - name: VIGIL_LLM__API_KEY
              valueFrom:
                secretKeyRef:
                  name: {{ include "vigil.secretName" $root }}
                  key: llm-api-key
                  optional: true
            {{- if and (eq .component "api") $root.Values.configFile }}
            - name: VIGIL_CONFIG_FILE
              value: /etc/vigil/vigil.yaml
            {{- end }}
          ports:
            {{- range .ports }}
            - name: {{ .name }}
              containerPort: {{ .port }}
              protocol: TCP
            {{- end }}
          livenessProbe:
            httpGet:
              path: {{ $root.Values.probes.liveness.path }}
              port: {{ $probePort }}
            initialDelaySeconds: {{ $root.Values.probes.liveness.initialDelaySeconds }}
            periodSeconds: {{ $root.Values.probes.liveness.periodSeconds }}
            timeoutSeconds: {{ $root.Values.probes.liveness.timeoutSeconds }}
            failureThreshold: {{ $root.Values.probes.liveness.failureThreshold }}
          readinessProbe:
            httpGet:
              path: {{ $root.Values.probes.readiness.path }}
              port: {{ $probePort }}
            initialDelaySeconds: {{ $root.Values.probes.readiness.initialDelaySeconds }}
            periodSeconds: {{ $root.Values.probes.readiness.periodSeconds }}
            timeoutSeconds: {{ $root.Values.probes.readiness.timeoutSeconds }}
            failureThreshold: {{ $root.Values.probes.readiness.failureThreshold }}
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: /data
            - name: tmp
              mountPath: /tmp
            {{- if and (eq .component "api") $root.Values.configFile }}
            - name: config-file
              mountPath: /etc/vigil
              readOnly: true
            {{- end }}
      volumes:
        - name: data
          emptyDir: {}
        - name: tmp
          emptyDir: {}
        {{- if and (eq .component "api") $root.Values.configFile }}
        - name: config-file
          configMap:
            name: {{ include "vigil.fullname" $root }}-config-file
        {{- end }}
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "vigil.fullname" $root }}-{{ .component }}
  labels:
    {{- include "vigil.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
  {{- with $values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $values.service.type }}
  selector:
    {{- include "vigil.selectorLabels" (dict "root" $root "component" .component) | nindent 4 }}
  ports:
    {{- range .ports }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
      protocol: TCP
      {{- if eq .name "otlp-grpc" }}
      appProtocol: grpc
      {{- end }}
    {{- end }}
{{- end -}}
