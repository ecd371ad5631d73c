"""Task rules without HTTP: the Describe…Tasks views and their id checks."""

from __future__ import annotations

import pytest
from services_fixtures import World

from kiln import errors
from kiln.errors import KilnError
from kiln.services.tasks.tasks import (
    DescribeTasksRequest,
    describe_export_image_tasks,
    describe_import_image_tasks,
    describe_import_snapshot_tasks,
)


def test_describe_tasks_of_a_new_account_is_empty(world: World) -> None:
    for rule in (
        describe_import_image_tasks,
        describe_import_snapshot_tasks,
        describe_export_image_tasks,
    ):
        res = rule(world.svc, world.owner, DescribeTasksRequest())
        assert res.tasks == () and res.next_token is None


def test_describe_tasks_refuses_an_id_of_another_kind(world: World) -> None:
    with pytest.raises(KilnError) as e:
        describe_import_image_tasks(
            world.svc, world.owner, DescribeTasksRequest(task_ids=("export-ami-0123456789abcdef0",))
        )
    assert e.value.code == errors.InvalidConversionTaskIdMalformed
    with pytest.raises(KilnError) as e:
        describe_import_snapshot_tasks(
            world.svc,
            world.owner,
            DescribeTasksRequest(task_ids=("import-snap-0123456789abcdef0",)),
        )
    assert e.value.code == errors.InvalidConversionTaskIdNotFound
