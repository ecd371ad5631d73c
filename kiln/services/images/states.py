"""The image lifecycle as one table (glance's valid_state_targets)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import images as cat_images
from kiln.errors import KilnError


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
    # RestoreImageFromRecycleBin: back to the state it was deregistered from (docs/recycle-bin.md)
    S.DEREGISTERED: frozenset({S.AVAILABLE, S.DISABLED}),
}


def can_transition(current: str, target: ImageState) -> bool:
    return target in TRANSITIONS[ImageState(current)]


def check_transition(image_id: str, current: str, target: ImageState) -> None:
    """IncorrectState unless ``current -> target`` is in the table."""
    if not can_transition(current, target):
        raise KilnError(
            errors.IncorrectState,
            f"The image '{image_id}' is in state '{current}' and cannot become '{target.value}'.",
        )


def change_image(
    tx: Tx,
    image_id: str,
    target: ImageState,
    fields: Mapping[str, object] | None = None,
    *,
    strict: bool = True,
) -> bool:
    """Move an image to ``target`` (with other ``fields``) if the table allows it from its
    current state; IncorrectState otherwise, or with ``strict=False`` (a job's failure path)
    nothing. Staying in the same state is allowed (a resumed job repeats its last step); a
    missing row is left alone. True if the row changed."""
    current = cat_images.image_state(tx, image_id)
    if current is None:
        return False
    if current != target.value:
        if not strict and not can_transition(current, target):
            return False
        check_transition(image_id, current, target)
    cat_images.update_image(tx, image_id, {**(fields or {}), "state": target.value})
    return True
