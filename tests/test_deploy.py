"""deploy/: the Kubernetes manifests and the compose file parse, and carry only the collector configs of collector/."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COLLECTOR = REPO / "collector"
KUBERNETES = sorted((REPO / "deploy" / "kubernetes").glob("*.yaml"))
COMPOSE = REPO / "deploy" / "compose" / "compose.yaml"
KUBERNETES_VERSION = "1.30.0"  # the oldest minor still supported upstream when these manifests were written


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _train() -> str:
    """The collector release the builder manifest pins (dist.version), e.g. 0.161.0."""
    return str(yaml.safe_load((COLLECTOR / "builder-config.yaml").read_text())["dist"]["version"])


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["spec"]["template"]["spec"]["containers"])


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


def _shipped_configs() -> set[str]:
    """The collector configs that collector/check-configs.sh validates with the real collector."""
    return {p.name for p in COLLECTOR.glob("*.yaml") if not p.name.startswith("builder-config")}


def test_there_are_manifests() -> None:
    """deploy/kubernetes/ holds the agent and the gateway manifests."""
    assert [p.name for p in KUBERNETES] == ["agent.yaml", "gateway.yaml"]


@pytest.mark.parametrize("manifest", KUBERNETES, ids=lambda p: p.name)
def test_kubernetes_manifests_match_the_api_schema(manifest: Path) -> None:
    """Every object validates strictly (no unknown field) against the Kubernetes OpenAPI schema of its kind."""
    documents = _documents(manifest)
    assert documents
    for doc in documents:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_misspelt_field_fails_the_schema_check() -> None:
    """The schema check rejects a container field that Kubernetes does not know, so the check above can fail."""
    (daemonset,) = [d for d in _documents(REPO / "deploy" / "kubernetes" / "agent.yaml") if d["kind"] == "DaemonSet"]
    broken = copy.deepcopy(daemonset)
    broken["spec"]["template"]["spec"]["containers"][0]["enviroment"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("manifest", KUBERNETES, ids=lambda p: p.name)
def test_configmaps_embed_a_validated_config_byte_for_byte(manifest: Path) -> None:
    """Each ConfigMap's config.yaml is, byte for byte, the collector/ file its tradetel/source annotation names."""
    configmaps = [d for d in _documents(manifest) if d["kind"] == "ConfigMap"]
    assert len(configmaps) == 1
    source = configmaps[0]["metadata"]["annotations"]["tradetel/source"]
    assert Path(source).parent == Path("collector") and Path(source).name in _shipped_configs()
    assert configmaps[0]["data"]["config.yaml"] == (REPO / source).read_text()


def test_sync_script_finds_the_manifests_current() -> None:
    """deploy/sync-configs.py --check exits 0: regenerating the ConfigMaps from collector/ changes nothing."""
    result = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "sync-configs.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_kubernetes_wiring() -> None:
    """The agent DaemonSet finds the gateways through the headless Service that selects the gateway Deployment."""
    agent = {d["kind"]: d for d in _documents(REPO / "deploy" / "kubernetes" / "agent.yaml")}
    gateway = {d["kind"]: d for d in _documents(REPO / "deploy" / "kubernetes" / "gateway.yaml")}
    service, deployment, daemonset = gateway["Service"], gateway["Deployment"], agent["DaemonSet"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert deployment["spec"]["replicas"] >= 2
    (agent_container,) = _containers(daemonset)
    (gateway_container,) = _containers(deployment)
    agent_env, gateway_env = _env(agent_container), _env(gateway_container)
    assert agent_env["GATEWAY_SERVICE"] == service["metadata"]["name"]
    assert int(agent_env["GATEWAY_OTLP_PORT"]) == int(gateway_env["OTLP_GRPC_PORT"])
    assert int(gateway_env["OTLP_GRPC_PORT"]) in {port["port"] for port in service["spec"]["ports"]}
    assert gateway_env["REMOTE_WRITE_URL"].endswith("/api/v1/write")
    for env in (agent_env, gateway_env):
        assert env["COLLECTOR_LISTEN_HOST"] == "0.0.0.0"
    # the resolver's service account may watch EndpointSlices
    (rule,) = agent["Role"]["rules"]
    assert rule["resources"] == ["endpointslices"] and {"get", "list", "watch"} <= set(rule["verbs"])
    assert daemonset["spec"]["template"]["spec"]["serviceAccountName"] == agent["ServiceAccount"]["metadata"]["name"]
    assert agent["RoleBinding"]["subjects"][0]["name"] == agent["ServiceAccount"]["metadata"]["name"]
    # each container mounts its own ConfigMap at the path its --config names
    for doc, configmap in ((daemonset, agent["ConfigMap"]), (deployment, gateway["ConfigMap"])):
        (container,) = _containers(doc)
        (volume,) = doc["spec"]["template"]["spec"]["volumes"]
        assert volume["configMap"]["name"] == configmap["metadata"]["name"]
        (mount,) = container["volumeMounts"]
        assert container["args"] == [f"--config={mount['mountPath']}/config.yaml"]
        assert container["image"] == f"otel/opentelemetry-collector-contrib:{_train()}"


def test_kubernetes_agent_config_differs_from_the_static_one_only_in_its_resolver() -> None:
    """fleet-agent-k8s.yaml is fleet-agent.yaml with the k8s resolver in place of the static list, nothing else."""
    static = yaml.safe_load((COLLECTOR / "fleet-agent.yaml").read_text())
    k8s = yaml.safe_load((COLLECTOR / "fleet-agent-k8s.yaml").read_text())
    assert set(static["exporters"]["load_balancing"].pop("resolver")) == {"static"}
    assert set(k8s["exporters"]["load_balancing"].pop("resolver")) == {"k8s"}
    assert static == k8s


def test_compose_file_mounts_validated_configs_and_wires_the_tier() -> None:
    """compose.yaml mounts collector/ files as they are, lists every gateway on the agent; Prometheus takes writes."""
    compose = yaml.safe_load(COMPOSE.read_text())
    services, configs = compose["services"], compose["configs"]
    for config in configs.values():
        path = (COMPOSE.parent / config["file"]).resolve()
        assert path.parent == COLLECTOR and path.name in _shipped_configs()
    by_source = {}
    for name, service in services.items():
        for config in service.get("configs", []):
            assert config["target"] == "/etc/tradetel/config.yaml"
            assert service["command"] == ["--config=/etc/tradetel/config.yaml"]
            assert service["image"] == f"otel/opentelemetry-collector-contrib:{_train()}"
            by_source.setdefault(Path(configs[config["source"]]["file"]).name, []).append(name)
    gateways = by_source["fleet-gateway.yaml"]
    assert by_source["fleet-agent.yaml"] == ["agent"] and len(gateways) >= 2
    endpoints = yaml.safe_load(services["agent"]["environment"]["GATEWAY_ENDPOINTS"])
    ports = {services[g]["environment"]["OTLP_GRPC_PORT"] for g in gateways}
    assert endpoints == [f"{g}:{port}" for g in gateways for port in ports]
    for gateway in gateways:
        url = services[gateway]["environment"]["REMOTE_WRITE_URL"]
        match = re.fullmatch(r"http://([^:/]+):(\d+)/api/v1/write", url)
        assert match is not None
        assert "--web.enable-remote-write-receiver" in services[match.group(1)]["command"]
