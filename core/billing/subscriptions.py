"""A tenant's subscription: a dated history of ``start``, ``change`` and ``cancel``, and the
spans it bills in a local calendar month (``docs/service.md``, "Subscriptions", "Terms and
trials").

Dates are the tenant's local dates (:func:`core.zones.local_date` turns an instant into
one); a month is its local calendar month, so ``days_in_month`` is the calendar's (28..31)
whatever DST does to the hours. The rules:

* A ``change`` takes effect at 00:00 local of its date; ``cancel`` on D makes D − 1 the last
  billed day; a ``start`` after a ``cancel`` is a reactivation.
* Events are recorded in date order; events on one date apply in the order recorded (so
  only the last of them decides that date, the others last no day).
* Trial days run from the ``start`` date for ``trial_days`` days, whatever changes follow;
  a cancel ends them with the subscription. A reactivation's own ``trial_days`` start anew.
* A month with no billed or trial day has no spans, and no invoice.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from core.tiers import Tier

Term = Literal["monthly", "annual"]
TERMS: tuple[Term, ...] = ("monthly", "annual")


@dataclass(frozen=True)
class Start:
    """The subscription begins (or, after a cancel, is reactivated) on local date ``on``."""

    on: date
    tier: str
    term: Term = "monthly"
    trial_days: int = 0


@dataclass(frozen=True)
class Change:
    """From 00:00 local of ``on``, the tier and/or the term is another (None: unchanged)."""

    on: date
    tier: str | None = None
    term: Term | None = None


@dataclass(frozen=True)
class Cancel:
    """The subscription ends: the last billed day is ``on`` − 1."""

    on: date


Event = Start | Change | Cancel


@dataclass(frozen=True)
class State:
    """What a subscription is on one local day: its tier, term and whether it is a trial day."""

    tier: str
    term: Term
    trial: bool


@dataclass(frozen=True)
class Span:
    """A run of days of one month at one tier, term and trial: ``first`` to ``last``
    inclusive, local dates."""

    first: date
    last: date
    tier: str
    term: Term
    trial: bool

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def days_in_month(year: int, month: int) -> int:
    """The days of a local calendar month (28..31): calendar days, not hours, so a month with
    a 23- or 25-hour DST day still has its calendar's count."""
    return calendar.monthrange(year, month)[1]


def _check_tier(name: object, tiers: Mapping[str, Tier], currency: str, where: str) -> None:
    if not isinstance(name, str) or name not in tiers:
        raise ValueError(f"{where}: no tier {name!r} (tiers: {', '.join(sorted(tiers))})")
    if tiers[name].currency != currency:
        raise ValueError(
            f"{where}: tier {name} is priced in {tiers[name].currency}, the tenant in {currency}"
        )


def _check_term(term: object, where: str) -> None:
    if term not in TERMS:
        raise ValueError(f'{where}: term must be "monthly" or "annual", not {term!r}')


@dataclass(frozen=True)
class History:
    """A tenant's subscription events, checked (use :func:`history` or :meth:`then`; the
    constructor checks the order and shape, not the tiers, which it does not know)."""

    currency: str
    events: tuple[Event, ...] = ()

    def __post_init__(self) -> None:
        _check_sequence(self.events)

    def then(self, event: Event, tiers: Mapping[str, Tier]) -> History:
        """This history with ``event`` recorded after its last one; a ValueError says why
        not (the tiers are checked against the tenant's currency)."""
        _check_event_tiers(event, tiers, self.currency, len(self.events))
        return History(self.currency, (*self.events, event))


def history(events: Iterable[Event], tiers: Mapping[str, Tier], currency: str) -> History:
    """The checked history of ``events`` (in the order recorded) of a tenant of
    ``currency``; a ValueError names the first event that cannot be."""
    result = History(currency)
    for event in events:
        result = result.then(event, tiers)
    return result


def _check_event_tiers(event: Event, tiers: Mapping[str, Tier], currency: str, i: int) -> None:
    where = f"event {i} ({type(event).__name__.lower()} on {getattr(event, 'on', '?')})"
    if isinstance(event, Start):
        _check_tier(event.tier, tiers, currency, where)
    elif isinstance(event, Change) and event.tier is not None:
        _check_tier(event.tier, tiers, currency, where)


def _check_sequence(events: Sequence[Event]) -> None:
    """Order and shape: dates never go back, a change or cancel needs a running
    subscription, a start needs none running (a start after a cancel reactivates)."""
    current: State | None = None
    previous: date | None = None
    for i, event in enumerate(events):
        if not isinstance(event, Start | Change | Cancel):
            raise ValueError(f"event {i} must be a Start, Change or Cancel, not {event!r}")
        kind = type(event).__name__.lower()
        if not isinstance(event.on, date) or type(event.on) is not date:
            raise ValueError(f"event {i} ({kind}): on must be a local date, not {event.on!r}")
        where = f"event {i} ({kind} on {event.on})"
        if previous is not None and event.on < previous:
            raise ValueError(f"{where}: events are recorded in order, and {previous} came before")
        previous = event.on
        if isinstance(event, Start):
            if current is not None:
                raise ValueError(f"{where}: already subscribed ({current.tier}); record a change")
            if not isinstance(event.tier, str):
                raise ValueError(f"{where}: tier must be a tier's name, not {event.tier!r}")
            _check_term(event.term, where)
            if type(event.trial_days) is not int or event.trial_days < 0:
                raise ValueError(
                    f"{where}: trial_days must be an integer 0 or more, not {event.trial_days!r}"
                )
            current = State(event.tier, event.term, False)
        elif isinstance(event, Change):
            if current is None:
                what = "a cancel" if i else "a start"
                raise ValueError(f"{where}: no subscription to change (after {what})")
            if event.tier is None and event.term is None:
                raise ValueError(f"{where}: a change must give a new tier or term")
            if event.term is not None:
                _check_term(event.term, where)
            if event.tier is not None and not isinstance(event.tier, str):
                raise ValueError(f"{where}: tier must be a tier's name, not {event.tier!r}")
            new = State(event.tier or current.tier, event.term or current.term, False)
            if new == current:
                raise ValueError(f"{where}: changes nothing (already {new.tier}, {new.term})")
            current = new
        else:
            if current is None:
                what = "a cancel" if i else "a start"
                raise ValueError(f"{where}: no subscription to cancel (after {what})")
            current = None


def _timeline(events: Sequence[Event]) -> list[tuple[date, tuple[str, Term] | None, date]]:
    """(from date, (tier, term) or None, trial end exclusive) after each date's last event."""
    out: list[tuple[date, tuple[str, Term] | None, date]] = []
    plan: tuple[str, Term] | None = None
    trial_end = date.min
    for event in events:
        if isinstance(event, Start):
            plan = (event.tier, event.term)
            trial_end = event.on + timedelta(days=event.trial_days)
        elif isinstance(event, Change):
            assert plan is not None  # checked by History
            plan = (event.tier or plan[0], event.term or plan[1])
        else:
            plan = None
        if out and out[-1][0] == event.on:  # the same date: the last event recorded decides
            out[-1] = (event.on, plan, trial_end)
        else:
            out.append((event.on, plan, trial_end))
    return out


def _state(timeline: list[tuple[date, tuple[str, Term] | None, date]], day: date) -> State | None:
    found: State | None = None
    for since, plan, trial_end in timeline:
        if since > day:
            break
        found = None if plan is None else State(plan[0], plan[1], day < trial_end)
    return found


def state_on(subscription: History, day: date) -> State | None:
    """What the subscription is on local date ``day`` (None: not subscribed)."""
    return _state(_timeline(subscription.events), day)


def spans(subscription: History, year: int, month: int) -> list[Span]:
    """The billed spans of local month ``year``-``month``, in date order: each a run of days
    of one tier, term and trial (days of equal state merge, even across a cancel and a
    restart on the same date). Empty when the month has no billed or trial day."""
    first = date(year, month, 1)
    timeline = _timeline(subscription.events)
    result: list[Span] = []
    for offset in range(days_in_month(year, month)):
        day = first + timedelta(days=offset)
        state = _state(timeline, day)
        if state is None:
            continue
        last = result[-1] if result else None
        if (
            last is not None
            and last.last == day - timedelta(days=1)
            and (last.tier, last.term, last.trial) == (state.tier, state.term, state.trial)
        ):
            result[-1] = Span(last.first, day, last.tier, last.term, last.trial)
        else:
            result.append(Span(day, day, state.tier, state.term, state.trial))
    return result
