"""JSON Schemas for the two custom resources the manifests use, which kubernetes-validate's
bundled (built-in) schemas do not cover. Written here from the APIs' Go types, field by field:

- InferencePool, inference.networking.k8s.io/v1: the Gateway API Inference Extension's GA API
  (api/v1/inferencepool_types.go and api/v1/shared_types.go of
  kubernetes-sigs/gateway-api-inference-extension).
- PodMonitor, monitoring.coreos.com/v1: the Prometheus Operator's, only the fields used here.

Unknown fields are rejected (additionalProperties: false): the API server would prune them
silently, so a misspelt or an older API's field (v1alpha2's targetPortNumber, extensionRef)
would deploy a pool that does not do what the file says.
"""

# Kubernetes "qualified name" label keys and label values (shared_types.go: LabelKey, LabelValue).
_LABEL_KEY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$"
_LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
_PORT_NUMBER = {"type": "integer", "minimum": 1, "maximum": 65535}

_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}

_MATCH_LABELS = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 64,
    "propertyNames": {"pattern": _LABEL_KEY, "maxLength": 253},
    "additionalProperties": {"type": "string", "maxLength": 63, "pattern": _LABEL_VALUE},
}

INFERENCE_POOL_V1 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "inference.networking.k8s.io/v1"},
        "kind": {"const": "InferencePool"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["selector", "targetPorts"],
            "properties": {
                # LabelSelector: matchLabels only (no matchExpressions in v1).
                "selector": {
                    "type": "object",
                    "required": ["matchLabels"],
                    "properties": {"matchLabels": _MATCH_LABELS},
                    "additionalProperties": False,
                },
                # 1 to 8 ports, each number unique (the CEL rule on TargetPorts).
                "targetPorts": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 8,
                    "uniqueItems": True,
                    "items": {
                        "type": "object",
                        "required": ["number"],
                        "properties": {"number": _PORT_NUMBER},
                        "additionalProperties": False,
                    },
                },
                "appProtocol": {"enum": ["http", "kubernetes.io/h2c"]},
                "endpointPickerRef": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "group": {
                            "type": "string",
                            "maxLength": 253,
                            "pattern": r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                        },
                        "kind": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 63,
                            "pattern": r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$",
                        },
                        "name": {"type": "string", "minLength": 1, "maxLength": 253},
                        "port": {
                            "type": "object",
                            "required": ["number"],
                            "properties": {"number": _PORT_NUMBER},
                            "additionalProperties": False,
                        },
                        "failureMode": {"enum": ["FailOpen", "FailClose"]},
                    },
                    "additionalProperties": False,
                    # The CEL rule on EndpointPickerRef: a port is required when the kind is
                    # Service, which is also the default when kind is omitted.
                    "if": {
                        "anyOf": [
                            {"not": {"required": ["kind"]}},
                            {"properties": {"kind": {"const": "Service"}}, "required": ["kind"]},
                        ]
                    },
                    "then": {"required": ["port"]},
                },
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}

POD_MONITOR_V1 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PodMonitor"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["selector", "podMetricsEndpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "required": ["matchLabels"],
                    "properties": {"matchLabels": _MATCH_LABELS},
                    "additionalProperties": False,
                },
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string", "minLength": 1},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": r"^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}

# (apiVersion, kind) -> schema, for the kinds kubernetes-validate has no schema for.
CUSTOM_RESOURCE_SCHEMAS = {
    ("inference.networking.k8s.io/v1", "InferencePool"): INFERENCE_POOL_V1,
    ("monitoring.coreos.com/v1", "PodMonitor"): POD_MONITOR_V1,
}
