"""Artifact URIs: only configured schemes and roots, no traversal, control characters,
credentials or metadata hosts; checked when a version is registered and again where an
artifact is read (the model server, retraining)."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftd.registry import InvalidRequest, Registry
from driftd.registry.artifacts import DEFAULT_SCHEMES, ArtifactPolicy, InvalidArtifact

SHA = "ab" * 32


@pytest.fixture
def policy(tmp_path: Path) -> ArtifactPolicy:
    return ArtifactPolicy.create(DEFAULT_SCHEMES, [tmp_path / "models"])


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("file:///etc/shadow", "outside the allowed roots"),
        ("../../../../etc/passwd", "not a URI"),
        ("/etc/passwd", "not a URI"),
        ("file:///ROOT/../../etc/passwd", "'..'"),
        ("file:///ROOT/%2e%2e/%2E%2E/etc/passwd", "'..'"),
        ("file:///ROOT/a\\..\\..\\etc", "'..'"),
        ("s3://bucket/a/../../b", "'..'"),
        ("http://169.254.169.254/latest/meta-data/", "scheme 'http', which is not allowed"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[fd00:ec2::254]/latest/", "metadata"),
        ("https://[::ffff:169.254.169.254]/x", "link-local"),
        ("https://2852039166/latest", "link-local"),  # 169.254.169.254 as one number
        ("https://0xa9.0xfe.0xa9.0xfe/x", "link-local"),
        ("https://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("https://METADATA.google.internal./x", "metadata"),
        ("https://100.100.100.200/latest", "metadata"),
        ("https://127.0.0.1:8765/api", "loopback"),
        ("https://localhost/x", "loopback"),
        ("https://[::1]/x", "loopback"),
        ("https://0.0.0.0/x", "unspecified"),
        ("https://user:pass@example.com/m.pt", "credentials"),
        ("https://example.com%2F@evil/x", "credentials"),
        ("https:///m.pt", "needs a host"),
        ("s3:///key", "needs a host"),
        ("javascript:alert(1)", "scheme 'javascript', which is not allowed"),
        ("data:text/plain,hi", "scheme 'data', which is not allowed"),
        ("s3://bucket/model.pt\r\nX-Injected: 1", "control"),
        ("s3://bucket/model\x1b[2J.pt", "control"),
        ("s3://bucket/mo\u202edel.pt", "control"),
        ("s3://bucket/model%0a.pt", "control"),
        ("s3://bucket/model%00.pt", "control"),
        ("file://otherhost/ROOT/m.pt", "host"),
        ("file:ROOT/m.pt", "absolute"),
        ("file:///ROOT/m.pt?x=1", "query"),
        ("", "empty"),
        ("s3://" + "a" * 5000, "longer than"),
    ],
)
def test_bad_uris_are_refused_naming_the_value(
    policy: ArtifactPolicy, tmp_path: Path, uri: str, words: str
) -> None:
    uri = uri.replace("ROOT", str(tmp_path / "models").lstrip("/"))
    with pytest.raises(InvalidArtifact) as err:
        policy.check(uri)
    msg = str(err.value)
    assert words in msg, msg
    assert "artifact URI" in msg and "\n" not in msg and "\x1b" not in msg
    assert isinstance(err.value, InvalidRequest) and isinstance(err.value, ValueError)


def test_what_is_refused_says_what_is_allowed(policy: ArtifactPolicy, tmp_path: Path) -> None:
    with pytest.raises(InvalidArtifact) as err:
        policy.check("file:///etc/shadow")
    msg = str(err.value)
    assert "'file:///etc/shadow'" in msg and str(tmp_path / "models") in msg
    assert "registry.artifact_roots" in msg
    with pytest.raises(InvalidArtifact) as err:
        policy.check("ftp://host/m.pt")
    assert "file, gs, https, s3" in str(err.value) and "registry.artifact_schemes" in str(err.value)


@pytest.mark.parametrize(
    "uri",
    [
        "file:///ROOT/m.pt",
        "file:///ROOT/sub%20dir/m%C3%BC.pt",
        "file://localhost/ROOT/m.pt",
        "file:///ROOT",
        "s3://bucket/models/fraud/3.pt",
        "gs://bucket/m.pt",
        "https://models.example.com:8443/fraud/3.pt?sig=abc",
        "https://10.0.0.7/m.pt",  # private networks are where artifact stores live
        "https://[2001:db8::1]/m.pt",
    ],
)
def test_good_uris_pass(policy: ArtifactPolicy, tmp_path: Path, uri: str) -> None:
    uri = uri.replace("ROOT", str(tmp_path / "models").lstrip("/"))
    assert policy.check(uri) == uri


def test_a_root_is_a_directory_not_a_prefix(policy: ArtifactPolicy, tmp_path: Path) -> None:
    with pytest.raises(InvalidArtifact, match="outside the allowed roots"):
        policy.check((tmp_path / "models-evil" / "m.pt").as_uri())


def test_without_roots_local_paths_are_not_restricted_but_the_form_is() -> None:
    anywhere = ArtifactPolicy()
    assert anywhere.check("file:///m") == "file:///m"
    for uri in ("file:///a/../etc/passwd", "https://169.254.169.254/x", "javascript:x"):
        with pytest.raises(InvalidArtifact):
            anywhere.check(uri)


def test_local_path_checks_again_after_resolving_symlinks(
    policy: ArtifactPolicy, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "m.pt").write_bytes(b"w")
    assert policy.local_path((models / "m.pt").as_uri()) == (models / "m.pt").resolve()
    secret = tmp_path / "secret.txt"
    secret.write_text("s")
    (models / "link.pt").symlink_to(secret)
    with pytest.raises(InvalidArtifact, match=r"resolves to .*outside the allowed roots"):
        policy.local_path((models / "link.pt").as_uri())
    with pytest.raises(InvalidArtifact, match="only file:// artifacts can be read here"):
        policy.local_path("s3://bucket/m.pt")


def test_register_version_refuses_a_bad_artifact(registry: Registry, tmp_path: Path) -> None:
    registry.artifacts = ArtifactPolicy.create(DEFAULT_SCHEMES, [tmp_path])
    mark = registry.audit_log(limit=1000)
    for uri in ("file:///etc/shadow", "https://169.254.169.254/x", "s3://b/k\nforged"):
        with pytest.raises(InvalidArtifact):
            registry.register_version("m", uri, SHA, 1, "t")
    assert registry.audit_log(limit=1000) == mark  # nothing was written
    v = registry.register_version("m", (tmp_path / "m.pt").as_uri(), SHA, 1, "t")
    assert v.version == 1


def test_configured_policy_comes_from_the_settings(tmp_path: Path) -> None:
    from driftd.config import RegistrySettings, load_settings
    from driftd.registry.configure import open_registry

    cfg = tmp_path / "driftd.toml"
    cfg.write_text(
        f"""
[registry]
url = "sqlite:///{tmp_path / "r.db"}"
artifact_schemes = ["file", "s3"]
artifact_roots = ["{tmp_path / "models"}"]
[retrain]
work_dir = "{tmp_path / "work"}"
[source]
kind = "file"
paths = ["{tmp_path / "e.jsonl"}"]
[models.m]
task = "binary"
max_label_delay_s = 60
features = {{ x = "numeric" }}
"""
    )
    settings = load_settings(cfg, env={})
    # Retraining writes its artifacts under retrain.work_dir: always an allowed root.
    assert settings.registry.artifact_roots == [tmp_path / "models", tmp_path / "work"]
    reg = open_registry(settings.registry, settings.registry_url, apply_gates=False)
    try:
        reg.register_version("m", (tmp_path / "work" / "a.pt").as_uri(), SHA, 1, "t")
        reg.register_version("m", "s3://b/k", SHA, 1, "t")
        with pytest.raises(InvalidArtifact, match="scheme 'gs', which is not allowed"):
            reg.register_version("m", "gs://b/k", SHA, 1, "t")
        with pytest.raises(InvalidArtifact, match="outside the allowed roots"):
            reg.register_version("m", (tmp_path / "elsewhere.pt").as_uri(), SHA, 1, "t")
    finally:
        reg.engine.dispose()
    defaults = RegistrySettings()
    assert defaults.artifact_schemes == list(DEFAULT_SCHEMES)
    assert "http" not in defaults.artifact_schemes  # plain http is opt-in
    assert defaults.artifact_roots == [Path(".")]
    with pytest.raises(ValueError, match="artifact_schemes"):
        RegistrySettings(artifact_schemes=["File:"])


def _outside_version(registry: Registry, tmp_path: Path) -> Path:
    """Version 1 of ``fraud`` names a file outside the roots the readers are given (a row
    written before this check existed, or by a writer with a looser policy)."""
    outside = tmp_path / "outside.pt"
    outside.write_bytes(b"not a model")
    registry.artifacts = ArtifactPolicy()  # form only: any local path
    registry.register_version("fraud", outside.as_uri(), SHA, 11, "t")
    registry.artifacts = ArtifactPolicy.create(DEFAULT_SCHEMES, [tmp_path / "models"])
    return outside


def test_the_model_server_checks_the_artifact_before_loading_it(
    registry: Registry, tmp_path: Path
) -> None:
    from driftd.sim.server import ModelServer
    from driftd.sim.world import World

    _outside_version(registry, tmp_path)
    server = ModelServer(World(2, 0, None), registry, "fraud")
    with pytest.raises(InvalidArtifact, match=r"outside\.pt.*outside the allowed roots"):
        server.load(1)
    assert server.versions == {}


def test_retraining_checks_the_champions_artifact_before_scoring_it(
    registry: Registry, tmp_path: Path
) -> None:
    from driftd.retrain.candidate import champion_artifact_path as _artifact_path

    _outside_version(registry, tmp_path)
    v = registry.get_version("fraud", 1)
    with pytest.raises(
        InvalidArtifact, match=r"models:/fraud/1: artifact URI .*outside the allowed"
    ):
        _artifact_path(v, registry.artifacts)
    inside = tmp_path / "models" / "m.pt"
    inside.parent.mkdir()
    inside.write_bytes(b"w")
    registry.register_version("fraud", inside.as_uri(), SHA, 1, "t")
    assert _artifact_path(registry.get_version("fraud", 2), registry.artifacts) == inside
