"""Checks of the rendered Kubernetes manifests (deploy/kubernetes, rendered by
scripts/check-deploy.sh): every object against its API's schema, offline, and the properties
the server relies on that no schema can see (probes on the right paths and port, the device
flag and accelerator of each overlay, the shutdown budget, the InferencePool selecting exactly
the model-server pods)."""

import math
import re

import jsonschema
import kubernetes_validate
import pytest

from conftest import RENDERED
from crd_schemas import CUSTOM_RESOURCE_SCHEMAS

# The oldest Kubernetes minor the manifests claim to work on, and the newest that
# kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.28.0", "1.37.0")
# What each overlay must ask for: the -d flag of halyard serve and the device plugin's resource.
OVERLAY_DEVICES = {
    "cpu": ("cpu", None),
    "nvidia": ("cuda:0", "nvidia.com/gpu"),
    "amd": ("hip:0", "amd.com/gpu"),
}
GPU_RESOURCES = {"cuda": "nvidia.com/gpu", "hip": "amd.com/gpu"}
ENGINE_TYPE_LABEL = "inference.networking.k8s.io/engine-type"
# Loading a large model takes minutes: the startup probe must allow at least this long.
MIN_STARTUP_SECONDS = 600


def objects(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def the_one(docs, kind):
    found = objects(docs, kind)
    assert len(found) == 1, f"expected exactly one {kind}, found {len(found)}"
    return found[0]


def server_container(deployment):
    containers = deployment["spec"]["template"]["spec"]["containers"]
    named = [c for c in containers if c["name"] == "halyard"]
    assert len(named) == 1, f"Deployment {deployment['metadata']['name']} has no single container named halyard"
    return named[0]


def named_port(container, name):
    ports = [p for p in container.get("ports", []) if p.get("name") == name]
    assert len(ports) == 1, f"container {container['name']} has no single port named {name!r}"
    return ports[0]["containerPort"]


def cpu_quantity(text):
    """A CPU quantity as cores: '2' -> 2, '500m' -> 0.5."""
    text = str(text)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def env_values(container):
    """The container's environment as the kubelet computes it, for the kinds used here."""
    values = {}
    resources = container.get("resources", {})
    for var in container.get("env", []):
        if "value" in var:
            values[var["name"]] = var["value"]
            continue
        ref = var.get("valueFrom", {}).get("resourceFieldRef")
        assert ref, f"env {var['name']}: only value and resourceFieldRef are understood by this test"
        assert ref["resource"] in ("requests.cpu", "limits.cpu"), f"env {var['name']}: {ref['resource']}"
        kind, _, _ = ref["resource"].partition(".")
        amount = resources.get(kind, {}).get("cpu")
        assert amount is not None, f"env {var['name']} reads {ref['resource']}, which the container does not set"
        # The kubelet rounds the quotient up to an integer.
        values[var["name"]] = str(math.ceil(cpu_quantity(amount) / cpu_quantity(ref.get("divisor", "1"))))
    return values


def resolved_args(container):
    """The arguments after the kubelet's $(VAR) expansion ($$ is a literal $)."""
    env = env_values(container)

    def expand(arg):
        def one(m):
            if m.group(0) == "$$":
                return "$"
            return env.get(m.group(1), m.group(0))

        return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", one, arg)

    args = [expand(a) for a in container.get("args", [])]
    unresolved = [a for a in args if "$(" in a]
    assert not unresolved, f"arguments reference variables the container does not define: {unresolved}"
    return args


def flag_value(args, flag):
    at = [i for i, a in enumerate(args) if a == flag]
    assert len(at) == 1, f"{flag} must appear exactly once in {args}"
    assert at[0] + 1 < len(args), f"{flag} has no value in {args}"
    return args[at[0] + 1]


def pod_labels(deployment):
    return deployment["spec"]["template"]["metadata"].get("labels", {})


def deployments(name, renderings):
    found = objects(renderings[name], "Deployment")
    assert found, f"{name}: no Deployment rendered"
    return found


def test_every_overlay_is_rendered():
    missing = sorted(set(OVERLAY_DEVICES) - set(RENDERED))
    assert not missing, f"overlays missing under deploy/kubernetes/overlays: {missing}"


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_objects_match_their_api_schemas(name, renderings):
    """Built-in kinds against kubernetes-validate's bundled schemas (strict: an unknown field is
    an error), custom resources against tests/deploy/crd_schemas.py."""
    errors = []
    for doc in renderings[name]:
        what = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                schema = CUSTOM_RESOURCE_SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
                if schema is None:
                    errors.append(f"{what}: {doc.get('apiVersion')} is neither built in nor in crd_schemas.py")
                    break
                validator = jsonschema.Draft202012Validator(schema)
                for e in validator.iter_errors(doc):
                    errors.append(f"{what} at {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}")
                break  # a custom schema does not depend on the Kubernetes version
            except kubernetes_validate.ValidationError as e:
                errors.append(f"{what} (Kubernetes {version}) at {'/'.join(map(str, e.absolute_path))}: {e.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_probes_use_health_and_ready_on_the_named_port(name, renderings):
    for deployment in deployments(name, renderings):
        c = server_container(deployment)
        port = named_port(c, "http")
        expected = {"startupProbe": "/ready", "readinessProbe": "/ready", "livenessProbe": "/health"}
        for probe, path in expected.items():
            assert probe in c, f"{name}: no {probe}"
            get = c[probe].get("httpGet")
            assert get, f"{name}: {probe} is not an HTTP GET"
            assert get["path"] == path, f"{name}: {probe} asks {get['path']}, expected {path}"
            assert get["port"] in ("http", port), f"{name}: {probe} port {get['port']!r} is not the http port"
        startup = c["startupProbe"]
        allowed = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
        assert allowed >= MIN_STARTUP_SECONDS, (
            f"{name}: the startup probe gives the model {allowed} s to load, less than {MIN_STARTUP_SECONDS}"
        )
        assert flag_value(resolved_args(c), "--port") == str(port), f"{name}: --port differs from the http port"


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_device_flag_and_accelerator_agree(name, renderings):
    for deployment in deployments(name, renderings):
        c = server_container(deployment)
        device = flag_value(resolved_args(c), "-d")
        limits = c.get("resources", {}).get("limits", {})
        requests = c.get("resources", {}).get("requests", {})
        if name in OVERLAY_DEVICES:
            want_device, _ = OVERLAY_DEVICES[name]
            assert device == want_device, f"{name}: -d {device}, expected {want_device}"
        backend = device.split(":")[0]
        want_resource = GPU_RESOURCES.get(backend)
        for resource in GPU_RESOURCES.values():
            if resource == want_resource:
                assert str(limits.get(resource)) == "1", f"{name}: -d {device} but limits.{resource} is {limits.get(resource)}"
                assert str(requests.get(resource, limits[resource])) == "1", f"{name}: requests.{resource} differs from its limit"
            else:
                assert resource not in limits and resource not in requests, f"{name}: -d {device} but asks for {resource}"
        if want_resource:
            tolerated = {t.get("key") for t in deployment["spec"]["template"]["spec"].get("tolerations", [])}
            assert want_resource in tolerated, f"{name}: no toleration for the {want_resource} taint"


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_termination_grace_covers_prestop_and_drain(name, renderings):
    """The kubelet's grace period starts with preStop; SIGKILL comes when it ends. It must
    outlast the preStop wait plus the server's own drain (--shutdown-grace)."""
    for deployment in deployments(name, renderings):
        spec = deployment["spec"]["template"]["spec"]
        c = server_container(deployment)
        drain = int(flag_value(resolved_args(c), "--shutdown-grace"))
        pre_stop = c.get("lifecycle", {}).get("preStop")
        assert pre_stop, f"{name}: no preStop: endpoints would still receive requests after SIGTERM"
        if "sleep" in pre_stop:
            wait = int(pre_stop["sleep"]["seconds"])
        else:
            command = pre_stop.get("exec", {}).get("command", [])
            assert len(command) == 2 and command[0] == "sleep", f"{name}: preStop {command} is not a plain sleep"
            wait = int(command[1])
        assert wait > 0, f"{name}: preStop waits {wait} s"
        grace = spec.get("terminationGracePeriodSeconds", 30)
        assert grace > wait + drain, (
            f"{name}: terminationGracePeriodSeconds {grace} <= preStop {wait} s + --shutdown-grace {drain} s"
        )


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_model_comes_from_a_read_only_volume(name, renderings):
    claims = {p["metadata"]["name"] for p in objects(renderings[name], "PersistentVolumeClaim")}
    for deployment in deployments(name, renderings):
        c = server_container(deployment)
        model = flag_value(resolved_args(c), "-m")
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        assert "/models" in mounts, f"{name}: nothing is mounted at /models"
        assert model.startswith("/models/"), f"{name}: -m {model} is not on the model volume"
        assert mounts["/models"].get("readOnly") is True, f"{name}: /models is mounted writable"
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        claim = volumes[mounts["/models"]["name"]].get("persistentVolumeClaim")
        assert claim, f"{name}: /models is not a PersistentVolumeClaim"
        assert claim["claimName"] in claims, f"{name}: claim {claim['claimName']} is not among the rendered PVCs {claims}"


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_container_is_unprivileged(name, renderings):
    for deployment in deployments(name, renderings):
        spec = deployment["spec"]["template"]["spec"]
        c = server_container(deployment)
        assert spec.get("securityContext", {}).get("runAsNonRoot") is True, f"{name}: may run as root"
        sc = c.get("securityContext", {})
        assert sc.get("allowPrivilegeEscalation") is False, f"{name}: privilege escalation allowed"
        assert sc.get("readOnlyRootFilesystem") is True, f"{name}: writable root filesystem"
        assert "ALL" in sc.get("capabilities", {}).get("drop", []), f"{name}: capabilities not dropped"
        # With a read-only root, caches need a writable place.
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        cache = env_values(c).get("XDG_CACHE_HOME", "")
        assert any(cache.startswith(m + "/") for m in mounts), f"{name}: XDG_CACHE_HOME {cache!r} is not on a mounted volume"


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_service_and_scrape_annotations_reach_the_http_port(name, renderings):
    for deployment in deployments(name, renderings):
        c = server_container(deployment)
        port = named_port(c, "http")
        labels = pod_labels(deployment)
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", f"{name}: no prometheus.io/scrape"
        assert annotations.get("prometheus.io/port") == str(port), f"{name}: prometheus.io/port is not {port}"
        assert annotations.get("prometheus.io/path") == "/metrics", f"{name}: prometheus.io/path is not /metrics"
        assert labels.get(ENGINE_TYPE_LABEL) == "vllm", f"{name}: pods lack {ENGINE_TYPE_LABEL}: vllm"
    service = the_one(renderings[name], "Service")
    selector = service["spec"]["selector"]
    assert selector.items() <= labels.items(), f"{name}: Service selector {selector} misses the pods {labels}"
    assert [p["targetPort"] for p in service["spec"]["ports"]] in (["http"], [port]), f"{name}: Service targets another port"


def pools():
    """The renderings that hold an InferencePool; the test below fails if there is none."""
    return [n for n in sorted(RENDERED) if n.startswith("examples/")]


def test_some_rendering_holds_an_inference_pool(renderings):
    holding = [n for n, docs in renderings.items() if objects(docs, "InferencePool")]
    assert holding, "no rendering holds an InferencePool (components/inference-pool is used by no example)"


@pytest.mark.parametrize("name", pools())
def test_inference_pool_v1_selects_the_model_server(name, renderings):
    docs = renderings[name]
    if not objects(docs, "InferencePool"):
        pytest.fail(f"{name}: the example renders no InferencePool")
    pool = the_one(docs, "InferencePool")
    deployment = the_one(docs, "Deployment")
    c = server_container(deployment)

    assert pool["apiVersion"] == "inference.networking.k8s.io/v1", f"{name}: {pool['apiVersion']}"
    assert pool["kind"] == "InferencePool"
    assert pool["metadata"].get("namespace") == deployment["metadata"].get("namespace"), (
        f"{name}: a pool selects pods in its own namespace only"
    )

    spec = pool["spec"]
    selector = spec["selector"]["matchLabels"]
    labels = pod_labels(deployment)
    assert selector.items() <= labels.items(), f"{name}: pool selector {selector} does not match the pods {labels}"
    assert selector == deployment["spec"]["selector"]["matchLabels"], (
        f"{name}: pool selector {selector} differs from the Deployment's {deployment['spec']['selector']['matchLabels']}"
    )
    assert labels.get(ENGINE_TYPE_LABEL) == "vllm", f"{name}: pods lack {ENGINE_TYPE_LABEL}: vllm"

    numbers = [p["number"] for p in spec["targetPorts"]]
    assert numbers == [named_port(c, "http")], f"{name}: targetPorts {numbers} are not the container's http port"

    ref = spec.get("endpointPickerRef")
    assert ref, f"{name}: no endpointPickerRef: the gateway would have no endpoint picker"
    assert ref.get("group", "") == "", f"{name}: endpointPickerRef.group {ref.get('group')!r}: the EPP is a core Service"
    assert ref.get("kind", "Service") == "Service", f"{name}: endpointPickerRef.kind {ref.get('kind')}"
    assert ref.get("name") == "halyard-epp", f"{name}: endpointPickerRef.name {ref.get('name')!r}"
    assert ref.get("port", {}).get("number") == 9002, f"{name}: endpointPickerRef.port {ref.get('port')} (EPP ext-proc: 9002)"
    assert ref.get("failureMode", "FailClose") in ("FailOpen", "FailClose")


@pytest.mark.parametrize("name", pools())
def test_pod_monitor_scrapes_the_http_port(name, renderings):
    docs = renderings[name]
    monitor = the_one(docs, "PodMonitor")
    deployment = the_one(docs, "Deployment")
    c = server_container(deployment)
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels(deployment).items(), f"{name}: PodMonitor selects no model-server pod"
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        named_port(c, endpoint["port"])
        assert endpoint.get("path", "/metrics") == "/metrics", f"{name}: PodMonitor scrapes {endpoint.get('path')}"
