"""load_settings: TOML plus DRIFTD_* overrides, validated once, with errors naming key and value."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from driftd.config import (
    FileSourceSettings,
    KafkaSourceSettings,
    Settings,
    effective_config,
    load_settings,
)
from driftd.errors import ConfigError

MODEL = '[models.fraud]\nfeatures = { amount = "numeric", country = "categorical" }\n'


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "driftd.toml"
    path.write_text(text)
    return load_settings(path, env or {})


def error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, env)
    return str(info.value)


def problem(msg: str, key: str) -> str:
    """The text of the problem reported for ``key`` (a one-problem message is one line)."""
    for line in msg.splitlines():
        text = line.strip()
        if text.startswith("invalid configuration ("):
            text = text.split("): ", 1)[-1]
        if text.startswith(f"{key}: "):
            return text
    raise AssertionError(f"no problem reported for {key}:\n{msg}")


def test_minimal_file_gives_defaults(tmp_path: Path) -> None:
    s = load(tmp_path, MODEL)
    assert s.models["fraud"].features == {"amount": "numeric", "country": "categorical"}
    assert isinstance(s.source, KafkaSourceSettings)
    assert s.pipeline.batch_size == Settings.model_fields["pipeline"].default.batch_size


def test_file_source_is_chosen_by_kind(tmp_path: Path) -> None:
    s = load(tmp_path, MODEL + '[source]\nkind = "file"\npaths = ["a.jsonl"]\n')
    assert isinstance(s.source, FileSourceSettings)
    assert s.source.paths == [Path("a.jsonl")]


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = load(tmp_path, MODEL)
    with pytest.raises(ValueError, match="frozen"):
        s.pipeline.batch_size = 3  # type: ignore[misc]


BAD_FILES = {
    "wrong-type": ('[pipeline]\nbatch_size = "many"\n', "pipeline.batch_size", "'many'", "integer"),
    "out-of-range": (
        "[pipeline]\nbatch_size = 0\n",
        "pipeline.batch_size",
        "0",
        "greater than or equal to 1",
    ),
    "bad-enum": (
        '[join]\noverflow = "random"\n',
        "join.overflow",
        "'random'",
        "'evict_oldest' or 'drop_new'",
    ),
    "bad-enum-in-a-model": (
        '[models.other]\ntask = "ranking"\nfeatures = { a = "numeric" }\n',
        "models.other.task",
        "'ranking'",
        "'binary', 'multiclass' or 'regression'",
    ),
    "bad-feature-kind": (
        '[models.other]\nfeatures = { a = "number" }\n',
        "models.other.features.a",
        "'number'",
        "'numeric' or 'categorical'",
    ),
    "nested-source-key": (
        "[source.kafka]\nsession_timeout_ms = 5\n",
        "source.kafka.session_timeout_ms",
        "5",
        "greater than or equal to 1000",
    ),
    "unknown-key": ("[join]\nmax_pendin = 5\n", "join.max_pendin", "5", "no such key"),
    "unknown-section": ("[joins]\nmax_pending = 5\n", "joins", "{'max_pending': 5}", "no such key"),
    "missing-in-file-source": ('[source]\nkind = "file"\n', "source.paths", "missing", "required"),
}


@pytest.mark.parametrize(("extra", "key", "value", "expected"), BAD_FILES.values(), ids=BAD_FILES)
def test_bad_value_in_the_file_names_key_value_and_expectation(
    tmp_path: Path, extra: str, key: str, value: str, expected: str
) -> None:
    # The valid model first, so that the only problem is the one under test.
    msg = error(tmp_path, MODEL + extra)
    line = problem(msg, key)
    assert f"got {value}" in line
    assert expected in line
    assert str(tmp_path / "driftd.toml") in msg


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[pipeline]\nbatch_size = 5\n", "models"),
        ('[models.fraud]\ntask = "binary"\n', "models.fraud.features"),
    ],
    ids=["no-models", "model-without-features"],
)
def test_missing_required_key_is_named(tmp_path: Path, text: str, key: str) -> None:
    msg = error(tmp_path, text)
    assert f"{key}: got missing" in msg
    assert "required" in msg


def test_every_problem_is_reported(tmp_path: Path) -> None:
    msg = error(tmp_path, MODEL + "[pipeline]\nbatch_size = 0\n[join]\nmax_pending = -1\n")
    assert "pipeline.batch_size" in msg
    assert "join.max_pending" in msg


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    msg = error(tmp_path, MODEL + "[pipeline\nbatch_size = 1\n")
    assert str(tmp_path / "driftd.toml") in msg
    assert "not valid TOML" in msg
    assert "line 3" in msg


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_settings(path, {})


# -- the environment -----------------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        MODEL + "[pipeline]\nbatch_size = 10\n",
        {
            "DRIFTD_PIPELINE__BATCH_SIZE": "20",
            "DRIFTD_JOIN__OVERFLOW": "drop_new",
            "DRIFTD_MODELS__FRAUD__MAX_LABEL_DELAY_S": "7.5",
        },
    )
    assert s.pipeline.batch_size == 20
    assert s.join.overflow == "drop_new"
    # A nested override keeps the file's other keys of that model.
    assert s.models["fraud"].max_label_delay_s == 7.5
    assert s.models["fraud"].features == {"amount": "numeric", "country": "categorical"}


def test_environment_alone_is_enough() -> None:
    s = load_settings(
        None,
        {
            "DRIFTD_MODELS__FRAUD__FEATURES": '{"amount": "numeric"}',
            "DRIFTD_SOURCE__KAFKA__BOOTSTRAP_SERVERS": "kafka:9092",
        },
    )
    assert s.models["fraud"].features == {"amount": "numeric"}
    assert isinstance(s.source, KafkaSourceSettings)
    assert s.source.kafka.bootstrap_servers == "kafka:9092"


def test_environment_names_are_case_insensitive(tmp_path: Path) -> None:
    assert load(tmp_path, MODEL, {"driftd_pipeline__batch_size": "3"}).pipeline.batch_size == 3


@pytest.mark.parametrize(
    ("env", "key", "value"),
    [
        ({"DRIFTD_PIPELINE__BATCH_SIZE": "zero"}, "pipeline.batch_size", "'zero'"),
        ({"DRIFTD_JOIN__OVERFLOW": "sometimes"}, "join.overflow", "'sometimes'"),
        (
            {"DRIFTD_MODELS__FRAUD__MAX_LABEL_DELAY_S": "-1"},
            "models.fraud.max_label_delay_s",
            "'-1'",
        ),
        (
            {"DRIFTD_SOURCE__KAFKA__SESSION_TIMEOUT_MS": "5"},
            "source.kafka.session_timeout_ms",
            "'5'",
        ),
        ({"DRIFTD_PIPELINE__BATCH_SIZ": "3"}, "pipeline.batch_siz", "'3'"),
    ],
    ids=["wrong-type", "bad-enum", "out-of-range", "nested", "unknown-key"],
)
def test_bad_environment_value_names_key_value_and_variable(
    tmp_path: Path, env: dict[str, str], key: str, value: str
) -> None:
    msg = error(tmp_path, MODEL, env)
    (var,) = env
    line = problem(msg, key)
    assert f"got {value}" in line
    assert f"(from {var})" in line


@pytest.mark.parametrize("name", ["DRIFTD_PIPELIN__BATCH_SIZE", "DRIFTD_NOPE", "DRIFTD_"])
def test_unknown_driftd_variable_fails_naming_it_and_the_sections(
    tmp_path: Path, name: str
) -> None:
    msg = error(tmp_path, MODEL, {name: "1"})
    assert name in msg
    for section in Settings.model_fields:
        assert section in msg


def test_other_variables_and_the_config_file_variable_are_not_settings(tmp_path: Path) -> None:
    s = load(tmp_path, MODEL, {"DRIFTD_CONFIG": "x.toml", "PATH": "/bin", "OTHER_X": "1"})
    assert s.models["fraud"].task == "binary"


def test_only_the_given_environment_is_read_and_os_environ_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTD_PIPELINE__BATCH_SIZE", "7")
    before = dict(os.environ)
    s = load(tmp_path, MODEL + "[pipeline]\nbatch_size = 10\n", {"DRIFTD_JOIN__MAX_PENDING": "9"})
    assert s.pipeline.batch_size == 10
    assert s.join.max_pending == 9
    assert dict(os.environ) == before


class _ReadOnlyEnviron(dict[str, str]):
    """``os.environ`` stand-in that fails any change (other threads share the real one)."""

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("os.environ was changed")

    __setitem__ = __delitem__ = clear = update = pop = popitem = setdefault = _refuse  # type: ignore[assignment]


def test_loading_with_a_given_environment_never_changes_os_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:  # undone before pytest itself writes to os.environ
        m.setattr(os, "environ", _ReadOnlyEnviron({"DRIFTD_PIPELINE__BATCH_SIZE": "7"}))
        s = load(tmp_path, MODEL, {"DRIFTD_JOIN__MAX_PENDING": "9"})
        bad = error(tmp_path, MODEL, {"DRIFTD_MODELS": "{not json"})
    assert (s.pipeline.batch_size, s.join.max_pending) == (5000, 9)
    assert bad.startswith("environment variable DRIFTD_MODELS='{not json' is not valid JSON")


def test_os_environ_is_read_when_no_environment_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTD_PIPELINE__BATCH_SIZE", "7")
    path = tmp_path / "driftd.toml"
    path.write_text(MODEL)
    assert load_settings(path).pipeline.batch_size == 7


def test_effective_config_masks_secrets(tmp_path: Path) -> None:
    s = load(tmp_path, MODEL, {"DRIFTD_SOURCE__KAFKA__SASL_PASSWORD": "hunter2"})
    assert s.source.kafka.sasl_password.get_secret_value() == "hunter2"  # type: ignore[union-attr]
    assert "hunter2" not in repr(effective_config(s))


# -- errors a person can act on: one line each, naming the key, the value and what is allowed --


def test_a_config_file_that_is_not_utf8_is_named_with_the_position(tmp_path: Path) -> None:
    path = tmp_path / "driftd.toml"
    path.write_bytes(MODEL.encode() + b"# caf\xe9 au lait\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    msg = str(info.value)
    assert len(msg.splitlines()) == 1
    assert str(path) in msg and "not UTF-8" in msg
    assert "line 3" in msg and "0xe9" in msg


def test_an_unreadable_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file .*: .*directory"):
        load_settings(tmp_path, {})


@pytest.mark.parametrize(
    ("key", "url"),
    [
        ("checkpoint.url", "ftp://db.example/state"),
        ("checkpoint.url", "mysql://ops:hunter2@db.example/state"),
        ("checkpoint.url", ".driftd/state.db"),
        ("registry.url", "postgres://db.example/registry"),
    ],
)
def test_a_database_url_with_an_unknown_scheme_names_key_value_and_schemes(
    tmp_path: Path, key: str, url: str
) -> None:
    section, field = key.split(".")
    msg = error(tmp_path, MODEL + f'[{section}]\n{field} = "{url}"\n')
    text = problem(msg, key)
    assert len(msg.splitlines()) == 1, msg
    assert url.replace("hunter2", "***") in text and "hunter2" not in msg
    assert "sqlite" in text and "postgresql+psycopg" in text


def test_supported_database_urls_are_accepted(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        MODEL + '[checkpoint]\nurl = "postgresql://u:p@h:5/d"\n'
        '[registry]\nurl = "sqlite:///r.db"\n',
    )
    assert s.checkpoint.url == "postgresql://u:p@h:5/d" and s.registry_url == "sqlite:///r.db"


def test_bad_json_in_an_environment_variable_names_it_the_value_and_the_json_error(
    tmp_path: Path,
) -> None:
    env = {
        "DRIFTD_JOIN__MAX_PENDING": "9",
        "DRIFTD_MODELS__FRAUD__FEATURES": '{"amount": "numeric",}',
    }
    msg = error(tmp_path, MODEL, env)
    assert len(msg.splitlines()) == 1, msg
    assert "DRIFTD_MODELS__FRAUD__FEATURES" in msg and "DRIFTD_JOIN" not in msg
    assert '{"amount": "numeric",}' in msg
    assert "not valid JSON" in msg and "line 1 column" in msg
    assert "models.fraud.features" in msg


def test_a_long_bad_json_value_is_shortened(tmp_path: Path) -> None:
    value = "[" + "1, " * 2000
    msg = error(tmp_path, MODEL, {"DRIFTD_MODELS__FRAUD__DETECTORS": value})
    assert "DRIFTD_MODELS__FRAUD__DETECTORS" in msg and "…" in msg
    assert len(msg) < 400


def test_a_bad_detector_stream_names_its_path_not_the_whole_model(tmp_path: Path) -> None:
    text = (
        '[models.fraud]\nfeatures = { amount = "numeric", country = "categorical" }\n'
        'detectors = [ { detector = "ADWIN" }, '
        '{ detector = "ADWIN", stream = "feature:amount=1" } ]\n'
    )
    msg = error(tmp_path, text)
    assert len(msg.splitlines()) == 1, msg
    line = problem(msg, "models.fraud.detectors[1].stream")
    assert "got 'feature:amount=1'" in line and "categorical: country" in line
    assert "'features'" not in msg  # not the whole model table
    assert "value error" not in msg.lower()


def test_a_check_on_a_feature_of_the_wrong_kind_names_its_path(tmp_path: Path) -> None:
    text = (
        '[models.fraud]\nfeatures = { amount = "numeric", country = "categorical" }\n'
        '[[models.fraud.checks]]\ncheck = "out_of_range"\nfeatures = ["amount", "country"]\n'
    )
    line = problem(error(tmp_path, text), "models.fraud.checks[0].features[1]")
    assert "got 'country'" in line and "numeric feature" in line


def test_a_check_param_it_does_not_take_is_named(tmp_path: Path) -> None:
    text = MODEL + '[[models.fraud.checks]]\ncheck = "missing"\nparams = { q_low = 0.1 }\n'
    line = problem(error(tmp_path, text), "models.fraud.checks[0].params.q_low")
    assert "min_rate" in line


def test_list_items_are_named_by_index(tmp_path: Path) -> None:
    msg = error(tmp_path, MODEL + '[[models.fraud.detectors]]\ndetector = "NOPE"\n')
    assert "models.fraud.detectors[0].detector: got 'NOPE'" in msg


def test_a_secret_in_a_rejected_table_is_not_shown(tmp_path: Path) -> None:
    text = MODEL + '[registry]\nsecret = "hunter2"\n[[registry.webhooks]]\nname = "a"\n'
    text += 'url = "https://x"\n[[registry.webhooks]]\nname = "a"\nurl = "https://y"\n'
    msg = error(tmp_path, text)
    assert "webhook names must be unique" in msg and "hunter2" not in msg


def test_a_type_errors_check_cannot_use_the_champion_snapshot(tmp_path: Path) -> None:
    text = MODEL + '[[models.fraud.checks]]\ncheck = "type_errors"\nreference = "champion"\n'
    line = problem(error(tmp_path, text), "models.fraud.checks[0].reference")
    assert "got 'champion'" in line and "pinned or rolling" in line
