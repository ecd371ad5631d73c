"""The image lifecycle as one table (glance's valid_state_targets)."""

from __future__ import annotations

from enum import StrEnum

from kiln import errors
from kiln.errors import Ec2Error


class ImageState(StrEnum):
    PENDING = "pending"
    AVAILABLE = "available"
    INVALID = "invalid"
    DEREGISTERED = "deregistered"
    TRANSIENT = "transient"
    FAILED = "failed"
    ERROR = "error"
    DISABLED = "disabled"


S = ImageState
TRANSITIONS: dict[ImageState, frozenset[ImageState]] = {
    S.PENDING: frozenset({S.AVAILABLE, S.FAILED, S.ERROR, S.DEREGISTERED}),
    S.AVAILABLE: frozenset({S.DISABLED, S.DEREGISTERED, S.INVALID}),
    S.DISABLED: frozenset({S.AVAILABLE, S.DEREGISTERED}),
    S.TRANSIENT: frozenset({S.AVAILABLE, S.FAILED}),
    S.INVALID: frozenset({S.DEREGISTERED}),
    S.FAILED: frozenset({S.DEREGISTERED}),
    S.ERROR: frozenset({S.DEREGISTERED}),
    S.DEREGISTERED: frozenset(),
}


def can_transition(current: str, target: ImageState) -> bool:
    return target in TRANSITIONS[ImageState(current)]


def check_transition(image_id: str, current: str, target: ImageState) -> None:
    """IncorrectState unless ``current -> target`` is in the table."""
    if not can_transition(current, target):
        raise Ec2Error(errors.IncorrectState,
                       f"The image '{image_id}' is in state '{current}' and cannot become "
                       f"'{target.value}'.")
