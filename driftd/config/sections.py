"""What every configuration section shares: frozen, unknown keys refused, and the cron syntax
that both config validation and the retrain policy use (APScheduler's, so they agree)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger


class Section(BaseModel):
    """A frozen settings section; an unknown key fails start-up, naming it."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def cron_trigger(expr: str) -> CronTrigger:
    """APScheduler's trigger for a 5-field cron expression in UTC; ValueError naming ``expr``."""
    from apscheduler.triggers.cron import CronTrigger  # only where a schedule is configured

    try:
        return CronTrigger.from_crontab(expr, timezone="UTC")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid cron expression {expr!r}: {exc}") from exc


def validate_cron(expr: str) -> None:
    """Raise ValueError naming ``expr`` unless it is a valid 5-field cron expression."""
    cron_trigger(expr)
