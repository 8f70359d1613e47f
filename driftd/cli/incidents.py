"""``driftd incidents ls|show|ack|resolve`` and ``driftd report INCIDENT``: incidents from the
registry's database, for the on-call engineer at a terminal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from driftd.cli.access import registry_from_options
from driftd.cli.options import actor_option, db_options, json_option
from driftd.cli.output import console, echo_json, say, when
from driftd.textsafe import markup_safe as esc

if TYPE_CHECKING:
    from driftd.incidents.lifecycle import Incident
    from driftd.incidents.store import IncidentStore


@contextmanager
def incident_store(config: Path | None, db: str | None) -> Iterator[IncidentStore]:
    """The incidents of the registry the options name, with the config's [incidents] policy
    and links (the defaults without a config)."""
    from driftd.config import IncidentSettings, load_settings
    from driftd.incidents.store import IncidentStore

    s = load_settings(config).incidents if config is not None else IncidentSettings()
    with registry_from_options(config, db) as registry:
        yield IncidentStore.configured(registry, s)


def _row(inc: Incident, url: str) -> dict[str, object]:
    from driftd.incidents.store import to_row

    return {**to_row(inc), "url": url}


@click.group()
def incidents() -> None:
    """Incidents: alarms grouped per model, version and stream; acknowledge and resolve them."""


@incidents.command("ls")
@db_options
@click.option("--model", help="Only this model's incidents.")
@click.option(
    "--state",
    type=click.Choice(["open", "acknowledged", "resolved"]),
    help="Only incidents in this state.",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@json_option
def ls(
    config: Path | None, db: str | None, model: str | None, state: str | None, limit: int,
    as_json: bool,
) -> None:  # fmt: skip
    """List incidents, the latest alarm first."""
    from rich.table import Table

    with incident_store(config, db) as store:
        found = store.list(model=model, state=state, limit=limit)
        if as_json:
            echo_json([_row(i, store.url(i.id)) for i in found])
            return
    if not found:
        say("no incidents")
        return
    table = Table("id", "state", "model", "version", "stream", "alarms", "opened", "last alarm")
    for i in found:
        table.add_row(
            i.id, i.state, esc(i.model), esc(i.version), esc(i.stream), str(i.alarms),
            when(i.opened_ts), when(i.last_alarm_ts),
        )  # fmt: skip
    console().print(table)


@incidents.command("show")
@click.argument("incident_id", metavar="INCIDENT")
@db_options
@json_option
def show(incident_id: str, config: Path | None, db: str | None, as_json: bool) -> None:
    """Show one incident: its state, alarms, reference, who did what, and what moved."""
    with incident_store(config, db) as store:
        inc = store.get(incident_id)
        evidence = store.evidence(incident_id) or {}
        url, report = store.url(inc.id), store.report_url(inc.id)
    if as_json:
        echo_json({**_row(inc, url), "evidence": evidence})
        return
    lines = [
        f"{inc.id} {inc.state}: {inc.model} v{inc.version} {inc.stream}",
        f"  {inc.alarms} alarms by {', '.join(inc.detectors)}, from {when(inc.opened_ts)} "
        f"to {when(inc.last_alarm_ts)}; group {inc.group}",
        f"  reference {inc.reference or '-'}; last statistic {inc.statistic:.4g} "
        f"(threshold {inc.threshold:.4g})",
    ]
    if inc.acknowledged_by:
        lines.append(f"  acknowledged by {inc.acknowledged_by} at {when(inc.acknowledged_at)}")
    if inc.state == "resolved":
        lines.append(
            f"  resolved ({inc.resolution}) by {inc.resolved_by} at {when(inc.resolved_at)}"
        )
    if inc.note:
        lines.append(f"  note: {inc.note}")
    for sh in evidence.get("shifts", [])[:5]:
        lines.append(
            f"  moved: {sh['feature']}: {sh['effect_name']} {_g(sh['effect'])} "
            f"[{_g(sh['lower'])}, {_g(sh['upper'])}]: {sh['summary']}"
        )
    lines.append(f"  {url}")
    lines.append(f"  report: {report}")
    for line in lines:
        say(line)


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def _act(verb: str) -> click.Command:
    @click.command(verb)
    @click.argument("incident_id", metavar="INCIDENT")
    @click.option("--note", default="", help="Why (kept with the incident and in the audit log).")
    @actor_option
    @db_options
    @json_option
    def act(
        incident_id: str, note: str, actor: str, config: Path | None, db: str | None,
        as_json: bool,
    ) -> None:  # fmt: skip
        with incident_store(config, db) as store:
            step = store.acknowledge if verb == "ack" else store.resolve
            inc = step(incident_id, actor, note)
            url = store.url(inc.id)
        if as_json:
            echo_json(_row(inc, url))
        else:
            say(f"{inc.id}: {inc.state} by {actor}")

    act.help = (
        "Acknowledge INCIDENT: someone is on it (a resolved one cannot be)."
        if verb == "ack"
        else "Resolve INCIDENT (an alarm within the cooldown reopens it)."
    )
    return act


incidents.add_command(_act("ack"))
incidents.add_command(_act("resolve"))


@click.command("report", short_help="Write an incident's self-contained HTML report.")
@click.argument("incident_id", metavar="INCIDENT")
@db_options
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the HTML (default: ./incident-ID.html).",
)
@json_option
def report(
    incident_id: str, config: Path | None, db: str | None, out: Path | None, as_json: bool
) -> None:
    """Write INCIDENT's self-contained HTML report (no network needed to open it)."""
    from driftd.config import load_settings
    from driftd.daemon.incidents import report_page
    from driftd.retrain.store import LabeledStore

    # with a config, performance windows get their realised values from the labeled store
    labeled = LabeledStore(load_settings(config).retrain.store_dir) if config else None
    with incident_store(config, db) as store:
        page = report_page(store, incident_id, labeled)
    path = out or Path(f"incident-{incident_id}.html")
    path.write_text(page, encoding="utf-8")
    if as_json:
        echo_json({"incident": incident_id, "path": str(path.resolve()), "bytes": len(page)})
    else:
        say(str(path.resolve()))
