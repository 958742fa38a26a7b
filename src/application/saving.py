"""Saving to the event store: the one place that tells a conflict from a failure.

Aggregates are saved with optimistic concurrency: a save whose events another writer saved
first (a worker, an operator, another scheduler) is rejected, and nothing of it is stored.
Such a conflict is a decision for the caller (decide again, skip, learn what the winner
did), never an outage to retry blindly (see `application.retrying`). Any other error goes to
the caller as it is. When a conflict must reach a caller, it is `ConflictError` (a 409).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from eventsourcing.persistence import IntegrityError

from domain.shared import ConflictError

if TYPE_CHECKING:
    from application.event_log import ChronicleEvents

A = TypeVar("A")

#: How many times a command is decided again when others saved the aggregate meanwhile.
CHANGE_ATTEMPTS = 5

# The event store's rejection, and the same reported by a save function of ours (the group
# committer tells each caller about its own events' conflict this way).
_CONFLICTS = (IntegrityError, ConflictError)


def collected(*aggregates: Any) -> list[Any]:
    """The aggregates' new events, collected once: a save that fails has already drained
    them from the aggregates, and saving again (alone, or after an outage) must save the
    same events."""
    return [event for aggregate in aggregates for event in aggregate.collect_events()]


def saved(save: Callable[..., object], *items: Any) -> bool:
    """`save(*items)` (aggregates or collected events) in one transaction; False when
    another writer saved first, in which case nothing of it was saved."""
    try:
        save(*items)
    except _CONFLICTS:
        return False
    return True


def save_groups(
    save: Callable[..., object],
    groups: Sequence[Sequence[Any]],
    *,
    settled: Callable[[bool], object] | None = None,
    halves: bool = False,
) -> list[bool]:
    """Save the groups' events together in one transaction; when that conflicts, save each
    group alone, so only the groups another writer saved first are lost. Returns, per
    group, whether it was saved.

    Groups hold collected events (`collected`), not aggregates: the failed transaction has
    drained the aggregates. With `halves`, a set that conflicts is split in halves, each
    saved together, rather than into single groups: when conflicts are rare, one costs a
    few saves rather than one per group.

    `settled(saved)` hears about each group in order, as soon as its fate is known
    (before any later group is saved again). Any other error goes to the caller at once: the
    groups not yet settled were not saved (or, for those being saved when the database went
    away, perhaps were).
    """
    report = settled or _ignore
    results: list[bool] = []

    def settle(count: int, outcome: bool) -> None:
        for _ in range(count):
            results.append(outcome)
            report(outcome)

    def attempt(part: Sequence[Sequence[Any]]) -> None:
        if saved(save, *[event for group in part for event in group]):
            settle(len(part), outcome=True)
        elif len(part) == 1:
            settle(1, outcome=False)  # alone already: saving it again would only conflict
        elif halves:
            middle = len(part) // 2
            attempt(part[:middle])
            attempt(part[middle:])
        else:
            for group in part:
                attempt([group])

    if groups:
        attempt(groups)
    return results


def _ignore(_saved: bool) -> None:
    pass


def change(
    events: ChronicleEvents,
    load: Callable[[], A],
    command: Callable[[A], object],
    what: str,
) -> A:
    """Load an aggregate, run `command` on it and save it; when someone else saved it in
    between (optimistic concurrency), reload and decide again on the current state."""
    for _ in range(CHANGE_ATTEMPTS):
        aggregate = load()
        command(aggregate)
        if saved(events.save, aggregate):
            return aggregate
    raise ConflictError(f"{what} is changing too fast, try again")
