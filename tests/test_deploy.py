"""deploy/ read against the code: the Compose file, its nginx.conf and the Kubernetes
manifests run the image's command on its port, with settings that exist, the jail's security
options, the proxy header the server trusts, readiness on health and autoscaling on CPU."""

from __future__ import annotations

import ipaddress
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from app.config import Settings
from tests.local_services import NGINX
from tests.test_dockerfile import one

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
JAIL_OPTIONS = {"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"}


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def manifests() -> dict[str, dict]:
    found = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            found[f"{document['kind']}/{document['metadata']['name']}"] = document
    return found


def nginx_conf() -> str:
    return (DEPLOY / "nginx.conf").read_text()


def image_port() -> int:
    return int(one("EXPOSE"))


def check_settings(env: dict[str, str]) -> Settings:
    """Every AE_* variable is a real setting and the whole set parses."""
    fields = Settings.model_fields
    values = {}
    for name, value in env.items():
        assert name.startswith("AE_"), name
        field = name.removeprefix("AE_").lower()
        assert field in fields, f"{name} is no setting"
        values[field] = value
    return Settings(**values)


def test_compose_runs_replicas_of_the_image_behind_nginx_with_redis() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", "explorer", "nginx"}
    explorer = services["explorer"]
    assert (DEPLOY / explorer["build"]["context"] / explorer["build"]["dockerfile"]).exists()
    assert explorer["deploy"]["replicas"] >= 2
    assert set(explorer["security_opt"]) == JAIL_OPTIONS  # as the README's docker run
    assert explorer["expose"] == [str(image_port())]
    env = {k: str(v) for k, v in explorer["environment"].items()}
    settings = check_settings({k: v for k, v in env.items() if "${" not in v})
    assert env["AE_REDIS_URL"] == "redis://redis:6379/0" and "redis" in services
    cpus = float(explorer["deploy"]["resources"]["limits"]["cpus"])
    assert settings.workers == 2 * cpus
    assert "ports" not in explorer  # only nginx faces the students
    assert "ports" not in services["redis"]  # Redis is reachable from the network only


def test_compose_trusts_exactly_nginx_for_the_client_address() -> None:
    services = compose()["services"]
    nginx_address = services["nginx"]["networks"]["explorer"]["ipv4_address"]
    trusted = services["explorer"]["environment"]["AE_TRUSTED_PROXIES"]
    assert trusted == nginx_address
    (network,) = compose()["networks"]["explorer"]["ipam"]["config"]
    subnet, replicas = (
        ipaddress.ip_network(network["subnet"]),
        ipaddress.ip_network(network["ip_range"]),
    )
    address = ipaddress.ip_address(nginx_address)
    assert address in subnet and address not in replicas  # no replica can take its address
    mounts = services["nginx"]["volumes"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in mounts


def test_nginx_passes_the_header_the_server_trusts_and_the_servers_bounds() -> None:
    conf = nginx_conf()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf  # replaced, not appended
    assert "$proxy_add_x_forwarded_for" not in conf
    assert f"server explorer:{image_port()}" in conf
    body = int(re.search(r"client_max_body_size (\d+)k;", conf).group(1)) * 1024
    defaults = Settings()
    assert body == defaults.max_request_bytes
    read = int(re.search(r"proxy_read_timeout (\d+)s;", conf).group(1))
    assert read > defaults.wall_seconds + defaults.layout_seconds
    assert not re.search(r"proxy_next_upstream[^;]*non_idempotent", conf)  # no program twice
    locations = re.findall(r"location [^{]+\{([^}]*)\}", conf)
    assert locations and all("proxy_pass http://explorer;" in block for block in locations)
    # a location with a proxy_set_header of its own would drop the server's X-Forwarded-For
    assert not any("proxy_set_header" in block for block in locations)


def test_nginx_accepts_the_configuration() -> None:
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    with tempfile.TemporaryDirectory(prefix="ae-nginx-") as folder:
        conf = nginx_conf().replace("server explorer:", "server 127.0.0.1:")  # no Docker DNS
        conf = conf.replace("http {", f"http {{\n    client_body_temp_path {folder}/body;", 1)
        (Path(folder) / "nginx.conf").write_text(f"pid {folder}/nginx.pid;\n{conf}")
        checked = subprocess.run(
            [NGINX, "-t", "-p", folder, "-e", f"{folder}/error.log", "-c", f"{folder}/nginx.conf"],
            capture_output=True,
            text=True,
        )
    assert checked.returncode == 0, checked.stderr


def test_kubernetes_deployment_may_build_the_jail_and_is_ready_on_health() -> None:
    found = manifests()
    deployment = found["Deployment/explorer"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["seccompProfile"]["type"] == "Unconfined"
    assert pod["securityContext"]["appArmorProfile"]["type"] == "Unconfined"
    assert container["securityContext"]["procMount"] == "Unmasked"
    assert pod["hostUsers"] is False  # procMount Unmasked is allowed in a user namespace only
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user `explorer`
    assert "useradd --create-home --uid 10001 explorer" in (ROOT / "Dockerfile").read_text()
    (port,) = container["ports"]
    assert port["containerPort"] == image_port()
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/api/v1/health" and probe["port"] == port["name"]
    env = {item["name"]: item["value"] for item in container["env"]}
    settings = check_settings(env)
    assert settings.workers == 2 * int(container["resources"]["limits"]["cpu"])
    assert container["resources"]["requests"]["cpu"]  # the autoscaler measures against it
    redis_service = found["Service/explorer-redis"]
    host = re.match(r"redis://([\w-]+):(\d+)/", env["AE_REDIS_URL"])
    assert host.group(1) == redis_service["metadata"]["name"]
    assert int(host.group(2)) == redis_service["spec"]["ports"][0]["port"]


def test_kubernetes_service_and_autoscaler_reach_the_deployment() -> None:
    found = manifests()
    deployment = found["Deployment/explorer"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = found["Service/explorer"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    hpa = found["HorizontalPodAutoscaler/explorer"]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "explorer")
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    redis = found["Deployment/explorer-redis"]["spec"]["template"]
    assert found["Service/explorer-redis"]["spec"]["selector"].items() <= (
        redis["metadata"]["labels"].items()
    )


def test_docs_explain_every_deploy_file() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    for path in ("deploy/docker-compose.yml", "deploy/nginx.conf", "deploy/kubernetes/"):
        assert f"`{path}" in text, path
    for name in ("AE_REDIS_URL", "shared_state", "procMount", "HorizontalPodAutoscaler"):
        assert name in text, name
