"""Incident endpoints: list, get, the HTML report (viewer tokens), acknowledge and resolve
(approver tokens; ``Idempotency-Key`` as for every write). Each incident's stable address is
``/api/v1/incidents/ID``; its report is ``/api/v1/incidents/ID/report``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel

from driftd.api.auth import approver, bearer, principal, viewer
from driftd.api.reads import ERRORS
from driftd.api.schemas import MODEL_PATTERN, ErrorOut, LongText, _Body
from driftd.api.writes import IdempotencyKey
from driftd.incidents.lifecycle import Incident
from driftd.incidents.store import IncidentStore, to_row
from driftd.registry.tokens import Principal

IncidentId = Annotated[
    str, Path(pattern=r"^inc-[0-9a-f]{16}$", description="an incident id: inc- and 16 hex digits")
]


class IncidentOut(BaseModel):
    """One incident with its address."""

    id: str
    model: str
    version: str
    stream: str
    group: str
    state: Literal["open", "acknowledged", "resolved"]
    opened_ts: float
    last_alarm_ts: float
    last_detector: str
    alarms: int
    detectors: list[str]
    reference: str
    statistic: float | None
    threshold: float | None
    reopened: int
    acknowledged_by: str
    acknowledged_at: float | None
    resolved_by: str
    resolved_at: float | None
    resolution: str
    note: str
    revision: int
    url: str
    report_url: str  # signed when the registry has a secret: opens without a token


class NoteBody(_Body):
    """Why, kept with the incident and in the audit log."""

    note: LongText = ""


def store_of(request: Request) -> IncidentStore:
    """The incident store the app was created with."""
    store: IncidentStore = request.app.state.incidents
    return store


Store = Annotated[IncidentStore, Depends(store_of)]
router = APIRouter(prefix="/incidents", tags=["incidents"], responses=ERRORS)


def incident_out(store: IncidentStore, inc: Incident) -> IncidentOut:
    row: dict[str, Any] = to_row(inc)  # a non-finite statistic or threshold is None there
    return IncidentOut(**row, url=store.url(inc.id), report_url=store.report_url(inc.id))


@router.get("", dependencies=[Depends(viewer)], summary="List incidents, latest alarm first")
def list_incidents(
    store: Store,
    model: Annotated[str | None, Query(pattern=MODEL_PATTERN)] = None,
    state: Literal["open", "acknowledged", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[IncidentOut]:
    return [incident_out(store, i) for i in store.list(model=model, state=state, limit=limit)]


@router.get("/{incident_id}", dependencies=[Depends(viewer)], summary="Get an incident")
def get_incident(store: Store, incident_id: IncidentId) -> IncidentOut:
    return incident_out(store, store.get(incident_id))


@router.get(
    "/{incident_id}/report",
    summary="The incident's self-contained HTML report",
    response_class=HTMLResponse,
)
def incident_report(
    request: Request,
    store: Store,
    incident_id: IncidentId,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    sig: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9a-f]{64}$",
            description="the link's signature (report_url): opens this report without a token",
        ),
    ] = None,
) -> HTMLResponse:
    """The report, for a viewer token or the signed link that webhooks, log lines, metrics
    and Grafana carry (one click from a page to the evidence)."""
    from driftd.daemon.incidents import report_page

    if sig is None or not store.signed(incident_id, sig):
        viewer(principal(request, credentials))  # 401 without a token, 403 below viewer
    return HTMLResponse(report_page(store, incident_id, request.app.state.labeled))


@router.post(
    "/{incident_id}/acknowledge",
    summary="Acknowledge an incident",
    responses={409: {"model": ErrorOut}},
)
def acknowledge_incident(
    store: Store,
    who: Annotated[Principal, Depends(approver)],
    incident_id: IncidentId,
    body: NoteBody,
    key: IdempotencyKey = None,
) -> IncidentOut:
    """open -> acknowledged; a resolved incident is a 409."""
    return incident_out(store, store.acknowledge(incident_id, who.name, body.note, key))


@router.post("/{incident_id}/resolve", summary="Resolve an incident")
def resolve_incident(
    store: Store,
    who: Annotated[Principal, Depends(approver)],
    incident_id: IncidentId,
    body: NoteBody,
    key: IdempotencyKey = None,
) -> IncidentOut:
    """open or acknowledged -> resolved (an alarm within the cooldown reopens it)."""
    return incident_out(store, store.resolve(incident_id, who.name, body.note, key))
