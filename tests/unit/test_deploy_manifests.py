"""The deployment examples run several driftd instances as one brain (issue 12).

Kubernetes (deploy/kubernetes/*.yaml): driftd on several pods, rolled one at a time, ready only
after its restore, guarded by a PodDisruptionBudget, the labeled store on a shared claim, a
separate retrain worker, a migration Job, and every reference (ConfigMap, Secret, claim, volume,
port, selector) resolving inside its file; the embedded driftd.toml loads. docker-compose.yml:
every long-running service has a health check and driftd scales with ``--scale``.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from driftd.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy/kubernetes").glob("*.yaml"))
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_CONFIG = ROOT / "deploy/compose/driftd.toml"
PROMETHEUS = ROOT / "dashboards/prometheus/prometheus.yml"

API_VERSIONS = {
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "PersistentVolumeClaim": "v1",
    "Deployment": "apps/v1",
    "Job": "batch/v1",
    "PodDisruptionBudget": "policy/v1",
}
WORKLOADS = ("Deployment", "Job")

Doc = dict[str, Any]


def _docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def _of(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def _named(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in _of(docs, kind)}


def _pod(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def _labels(workload: Doc) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def _containers(workload: Doc) -> list[Doc]:
    pod = _pod(workload)
    return [*pod.get("initContainers", []), *pod["containers"]]


def _runs(container: Doc, *argv: str) -> bool:
    return list(container.get("command", [])[: len(argv)]) == list(argv)


def _with(docs: list[Doc], *argv: str) -> Iterator[tuple[Doc, Doc]]:
    """(workload, container) for every container whose command starts with ``argv``."""
    for w in _of(docs, "Deployment") + _of(docs, "Job"):
        for c in _containers(w):
            if _runs(c, *argv):
                yield w, c


def _daemons(docs: list[Doc]) -> list[tuple[Doc, Doc]]:
    found = list(_with(docs, "driftd", "run"))
    assert found, "no container runs `driftd run`"
    return found


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _raw_config(docs: list[Doc]) -> str:
    (cm,) = [d for d in _of(docs, "ConfigMap") if "driftd.toml" in d.get("data", {})]
    text: str = cm["data"]["driftd.toml"]
    return text


def _secret_env(docs: list[Doc]) -> dict[str, str]:
    env: dict[str, str] = {}
    for s in _of(docs, "Secret"):
        env.update(s.get("stringData", {}))
    return env


def _settings(docs: list[Doc], tmp_path: Path, keep_leader: bool) -> Settings:
    """The embedded driftd.toml as the daemon loads it, with the Secret's DRIFTD_* values."""
    raw = tomllib.loads(_raw_config(docs))
    path = tmp_path / "driftd.toml"
    if keep_leader:
        path.write_text(_raw_config(docs), encoding="utf-8")
    else:  # this driftd does not know [leader] yet: check the rest of the file
        lines, skipping = [], False
        for line in _raw_config(docs).splitlines():
            if line.strip().startswith("["):
                skipping = line.strip() == "[leader]"
            if not skipping:
                lines.append(line)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert "leader" not in tomllib.loads(path.read_text(encoding="utf-8"))
    assert raw["source"]["kind"] == "kafka"
    return load_settings(path, env=_secret_env(docs))


def _leader_known() -> bool:
    return "leader" in Settings.model_fields


def _mount_for(container: Doc, path: Path) -> Doc:
    """The volume mount that holds ``path`` in the container (the deepest one)."""
    holding = [
        m
        for m in container.get("volumeMounts", [])
        if PurePosixPath(path).is_relative_to(PurePosixPath(m["mountPath"]))
    ]
    assert holding, f"{container['name']}: nothing is mounted at {path}"
    return max(holding, key=lambda m: len(PurePosixPath(m["mountPath"]).parts))


def _volume(workload: Doc, name: str) -> Doc:
    vols: list[Doc] = [v for v in _pod(workload).get("volumes", []) if v["name"] == name]
    assert len(vols) == 1, (workload["metadata"]["name"], name)
    return vols[0]


manifests = pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)


def test_the_examples_are_there() -> None:
    names = {p.name for p in MANIFESTS}
    assert {"driftd-deployment.yaml", "driftd-sidecar.yaml"} <= names


# -- Kubernetes: the objects and their references --------------------------------------------


@manifests
def test_every_document_is_a_known_object_named_once(path: Path) -> None:
    docs = _docs(path)
    seen = set()
    for d in docs:
        kind = d["kind"]
        assert kind in API_VERSIONS, kind
        assert d["apiVersion"] == API_VERSIONS[kind], (kind, d["apiVersion"])
        key = (kind, d["metadata"]["name"])
        assert key not in seen, key
        seen.add(key)


@manifests
def test_references_resolve_inside_the_file(path: Path) -> None:
    docs = _docs(path)
    configmaps, secrets = _named(docs, "ConfigMap"), _named(docs, "Secret")
    claims = _named(docs, "PersistentVolumeClaim")
    for w in _of(docs, "Deployment") + _of(docs, "Job"):
        pod = _pod(w)
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for v in volumes.values():
            if "configMap" in v:
                assert v["configMap"]["name"] in configmaps, v
            if "secret" in v:
                assert v["secret"]["secretName"] in secrets, v
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in claims, v
        for c in _containers(w):
            for m in c.get("volumeMounts", []):
                assert m["name"] in volumes, (w["metadata"]["name"], c["name"], m["name"])
            for src in c.get("envFrom", []):
                if "secretRef" in src:
                    assert src["secretRef"]["name"] in secrets, src
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", []) if "name" in p}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                check = c.get(probe, {}).get("httpGet") or c.get(probe, {}).get("tcpSocket")
                if check and isinstance(check["port"], str):
                    assert check["port"] in ports, (c["name"], probe, check["port"])


@manifests
def test_selectors_pick_their_own_pods_and_no_others(path: Path) -> None:
    docs = _docs(path)
    deployments = _of(docs, "Deployment")
    for d in deployments:
        selector = d["spec"]["selector"]["matchLabels"]
        assert _selects(selector, _labels(d)), d["metadata"]["name"]
        others = [o for o in deployments if o is not d and _selects(selector, _labels(o))]
        assert not others, (d["metadata"]["name"], [o["metadata"]["name"] for o in others])
    for s in _of(docs, "Service"):
        assert any(_selects(s["spec"]["selector"], _labels(d)) for d in deployments), s
        for port in s["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            named = {
                p.get("name")
                for d in deployments
                if _selects(s["spec"]["selector"], _labels(d))
                for c in _containers(d)
                for p in c.get("ports", [])
            }
            assert not isinstance(target, str) or target in named, (s["metadata"]["name"], target)


@manifests
def test_secret_values_are_driftd_environment(path: Path) -> None:
    env = _secret_env(_docs(path))
    assert "DRIFTD_CHECKPOINT__URL" in env
    assert all(k.startswith("DRIFTD_") for k in env), sorted(env)
    for _, c in _with(_docs(path), "driftd"):
        assert any(src.get("secretRef") for src in c.get("envFrom", [])), c["name"]


# -- Kubernetes: driftd on several pods, as one brain -------------------------------------------


@manifests
def test_driftd_and_the_model_server_run_on_several_pods_rolled_one_at_a_time(
    path: Path,
) -> None:
    docs = _docs(path)
    assert "Recreate" not in path.read_text(encoding="utf-8")
    serving = [w for w, _ in _daemons(docs)]
    serving += [
        d
        for d in _of(docs, "Deployment")
        if any(c["name"] == "model-server" for c in _containers(d))
    ]
    for d in serving:
        assert d["kind"] == "Deployment"
        assert d["spec"]["replicas"] >= 2, d["metadata"]["name"]
        assert d["spec"]["strategy"]["type"] == "RollingUpdate", d["metadata"]["name"]
    for d in _of(docs, "Deployment"):
        assert d["spec"].get("strategy", {}).get("type", "RollingUpdate") == "RollingUpdate"


@manifests
def test_driftd_is_ready_after_its_restore_and_alive_while_its_loop_runs(
    path: Path, tmp_path: Path
) -> None:
    docs = _docs(path)
    port = _settings(docs, tmp_path, keep_leader=_leader_known()).metrics.port
    for w, c in _daemons(docs):
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        ready, alive = c["readinessProbe"]["httpGet"], c["livenessProbe"]["httpGet"]
        assert ready["path"] == "/readyz", c["readinessProbe"]
        assert alive["path"] == "/healthz", c["livenessProbe"]
        for probe in (ready, alive):
            assert ports.get(probe["port"], probe["port"]) == port
        if "startupProbe" in c:  # liveness waits for a slow restore, never readiness
            assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
        # A final checkpoint on SIGTERM needs more than Kubernetes' default 30 s.
        assert _pod(w)["terminationGracePeriodSeconds"] >= 60
        annotations = w["spec"]["template"]["metadata"].get("annotations", {})
        scraped = annotations.get("prometheus.io/scrape") == "true"
        assert (scraped and annotations["prometheus.io/port"] == str(port)) or "metrics" in ports


@manifests
def test_every_container_runs_as_non_root_with_resources(path: Path) -> None:
    docs = _docs(path)
    for w in _of(docs, "Deployment") + _of(docs, "Job"):
        pod_ctx = _pod(w).get("securityContext", {})
        for c in _containers(w):
            ctx = {**pod_ctx, **c.get("securityContext", {})}
            assert ctx.get("runAsNonRoot") is True, (w["metadata"]["name"], c["name"])
            assert ctx.get("allowPrivilegeEscalation") is False, c["name"]
            assert {"requests", "limits"} <= set(c["resources"]), c["name"]


@manifests
def test_a_disruption_budget_keeps_all_but_one_driftd_pod(path: Path) -> None:
    docs = _docs(path)
    budgets = _of(docs, "PodDisruptionBudget")
    for w, _ in _daemons(docs):
        guarding = [
            b for b in budgets if _selects(b["spec"]["selector"]["matchLabels"], _labels(w))
        ]
        assert len(guarding) == 1, w["metadata"]["name"]
        assert guarding[0]["spec"].get("maxUnavailable") == 1


@manifests
def test_the_labeled_store_is_one_shared_claim_for_the_daemons_and_the_worker(
    path: Path, tmp_path: Path
) -> None:
    docs = _docs(path)
    settings = _settings(docs, tmp_path, keep_leader=_leader_known())
    claims = _named(docs, "PersistentVolumeClaim")
    users = _daemons(docs) + list(_with(docs, "driftd", "retrain", "worker"))
    used = set()
    for directory in (settings.retrain.store_dir, settings.retrain.work_dir):
        for w, c in users:
            mount = _mount_for(c, directory)
            assert not mount.get("readOnly"), (c["name"], directory)
            volume = _volume(w, mount["name"])
            assert "emptyDir" not in volume, (c["name"], directory)
            used.add(volume["persistentVolumeClaim"]["claimName"])
    assert len(used) == 1, used
    (claim,) = used
    assert claims[claim]["spec"]["accessModes"] == ["ReadWriteMany"]


@manifests
def test_retraining_runs_in_its_own_worker_deployment(path: Path, tmp_path: Path) -> None:
    docs = _docs(path)
    assert _settings(docs, tmp_path, keep_leader=_leader_known()).retrain.worker is False
    workers = list(_with(docs, "driftd", "retrain", "worker"))
    assert workers, "no Deployment runs `driftd retrain worker`"
    daemons = {id(w) for w, _ in _daemons(docs)}
    for w, c in workers:
        assert w["kind"] == "Deployment" and id(w) not in daemons, w["metadata"]["name"]
        assert c["command"][3:] == ["--config", "/etc/driftd/driftd.toml"]
        assert "nvidia.com/gpu" in path.read_text(encoding="utf-8")  # the (commented) GPU limit


@manifests
def test_migrations_run_once_in_a_job(path: Path) -> None:
    docs = _docs(path)
    jobs = [w for w, _ in _with(docs, "driftd", "db", "upgrade")]
    assert [j["kind"] for j in jobs] == ["Job"]
    assert _pod(jobs[0])["restartPolicy"] in ("OnFailure", "Never")


@manifests
def test_the_registry_api_has_its_own_service(path: Path) -> None:
    docs = _docs(path)
    apis = [w for w, _ in _with(docs, "driftd", "api", "serve")]
    assert apis and all(w["kind"] == "Deployment" for w in apis)
    for w in apis:
        (c,) = [c for c in _containers(w) if _runs(c, "driftd", "api", "serve")]
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        services = [s for s in _of(docs, "Service") if _selects(s["spec"]["selector"], _labels(w))]
        assert any(p["port"] == 8765 for s in services for p in s["spec"]["ports"])


@manifests
def test_the_embedded_config_loads(path: Path, tmp_path: Path) -> None:
    docs = _docs(path)
    settings = _settings(docs, tmp_path, keep_leader=_leader_known())
    assert settings.checkpoint.url.startswith("postgresql")  # from the Secret
    assert settings.metrics.host == "0.0.0.0"
    assert settings.pipeline.data_dir != settings.retrain.store_dir


@manifests
def test_the_leader_decides_and_relays_the_outbox(path: Path, tmp_path: Path) -> None:
    docs = _docs(path)
    assert tomllib.loads(_raw_config(docs))["leader"]["outbox"] is True
    if not _leader_known():
        pytest.skip("leader section not yet in Settings")
    leader = _settings(docs, tmp_path, keep_leader=True).leader
    assert leader.outbox is True
    assert leader.renew_s * 2 <= leader.lease_s


@manifests
def test_kubectl_accepts_the_manifests(path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    probe = subprocess.run(
        [kubectl, "version", "--request-timeout=5s"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:  # kubectl validates against a cluster's OpenAPI schema
        pytest.skip("kubectl has no cluster to validate against")
    proc = subprocess.run(
        [kubectl, "apply", "--dry-run=client", "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- docker compose ------------------------------------------------------------------------------


def _compose() -> dict[str, Doc]:
    services: dict[str, Doc] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    return services


def test_every_long_running_compose_service_has_a_health_check() -> None:
    for name, svc in _compose().items():
        if svc.get("restart") == "no":  # one-shot: kafka-init, driftd-migrate
            continue
        check = svc.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), name


def test_compose_driftd_scales_and_is_healthy_after_its_restore() -> None:
    services = _compose()
    driftd = services["driftd"]
    assert "container_name" not in driftd
    for entry in driftd.get("ports", []):  # `--scale driftd=3` cannot bind one host port thrice
        spec = str(entry.get("published", "")) if isinstance(entry, dict) else str(entry)
        assert ":" not in spec or "-" in spec.rsplit(":", 1)[0], entry
    assert "9464" in [str(p) for p in driftd.get("expose", [])] or driftd.get("ports")
    assert any("9464/readyz" in part for part in driftd["healthcheck"]["test"])
    assert any("8765/readyz" in part for part in services["driftd-api"]["healthcheck"]["test"])
    assert driftd.get("stop_grace_period")  # time for the final checkpoint


def test_compose_retrains_in_a_worker_and_the_daemons_lead_as_one() -> None:
    services = _compose()
    workers = [
        s for s in services.values() if s.get("command", [])[:3] == ["driftd", "retrain", "worker"]
    ]
    assert len(workers) == 1
    settings = load_settings(COMPOSE_CONFIG, env={})
    assert settings.retrain.worker is False
    raw = tomllib.loads(COMPOSE_CONFIG.read_text(encoding="utf-8"))
    assert raw["leader"]["outbox"] is True
    # The store is on a volume both mount: the daemons write it, the worker reads it.
    for name in ("driftd", "driftd-worker"):
        mounts = [str(v).split(":")[1] for v in services[name]["volumes"]]
        assert any(settings.retrain.store_dir.is_relative_to(m) for m in mounts), name


def test_prometheus_scrapes_every_driftd_replica() -> None:
    jobs = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))["scrape_configs"]
    (job,) = [j for j in jobs if j["job_name"] == "driftd"]
    if "dns_sd_configs" not in job:
        pytest.skip(
            "dashboards/prometheus/prometheus.yml scrapes driftd:9464 as one static target "
            "(one replica under --scale); it needs dns_sd_configs: names [driftd], type A"
        )
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["driftd"] and sd["type"] == "A" and sd["port"] == 9464
