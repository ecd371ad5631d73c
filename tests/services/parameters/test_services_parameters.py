"""SSM parameter rules without HTTP, on SQLite and PostgreSQL: versions, selectors, sealing,
reserved names, listing and filters, public parameters and resolve:ssm."""

from __future__ import annotations

import pytest
from services_fixtures import World

from kiln.catalog import SYSTEM_ACCOUNT_ID, models
from kiln.catalog import images as cat_images
from kiln.catalog.records import LaunchPermissionRecord
from kiln.errors import KilnError
from kiln.services.context import Caller
from kiln.services.images.aliases import set_alias
from kiln.services.parameters import describe_parameters as listing
from kiln.services.parameters import parameters as rules
from kiln.services.parameters.describe_parameters import ParameterFilter
from kiln.services.parameters.parameters import PutParameterRequest
from kiln.services.parameters.resolve import launch_image_id


def code(exc: pytest.ExceptionInfo[KilnError]) -> str:
    return exc.value.code.code


def put(world: World, who: Caller, name: str, value: str, **kw: object) -> int:
    kw.setdefault("type", "String")
    req = PutParameterRequest(name=name, value=value, **kw)  # type: ignore[arg-type]
    return rules.put_parameter(world.svc, who, req).version


def base_image(world: World, name: str) -> str:
    """A public image of the system account (as `kiln bake` publishes them)."""
    system = Caller(SYSTEM_ACCOUNT_ID, world.owner.region)
    image_id = world.register(system, name)
    with world.svc.catalog.write() as tx:
        cat_images.add_launch_permissions(tx, image_id, [LaunchPermissionRecord(group="all")])
    return image_id


def test_put_parameter_versions_and_selectors(world: World) -> None:
    o = world.owner
    assert put(world, o, "/app/db/host", "db1") == 1
    with pytest.raises(KilnError) as e:
        put(world, o, "/app/db/host", "db2")
    assert code(e) == "ParameterAlreadyExists"
    assert put(world, o, "/app/db/host", "db2", overwrite=True) == 2
    assert put(world, o, "/app/db/host", "db3", overwrite=True, type=None) == 3
    now = rules.get_parameter(world.svc, o, "/app/db/host")
    assert (now.parameter.value, now.parameter.version, now.selector) == ("db3", 3, None)
    old = rules.get_parameter(world.svc, o, "/app/db/host:1")
    assert (old.parameter.value, old.parameter.version, old.selector) == ("db1", 1, ":1")
    with pytest.raises(KilnError) as e:
        rules.get_parameter(world.svc, o, "/app/db/host:9")
    assert code(e) == "ParameterVersionNotFound"
    with pytest.raises(KilnError) as e:
        rules.get_parameter(world.svc, o, "/app/db/port")
    assert code(e) == "ParameterNotFound"
    history = rules.get_parameter_history(world.svc, o, "/app/db/host", max_results=2)
    assert [v.value for v in history.items] == ["db1", "db2"] and history.next_token
    rest = rules.get_parameter_history(
        world.svc, o, "/app/db/host", max_results=2, next_token=history.next_token
    )
    assert [v.value for v in rest.items] == ["db3"] and rest.next_token is None


def test_parameters_are_per_account_and_region(world: World) -> None:
    put(world, world.owner, "shared-name", "mine")
    with pytest.raises(KilnError) as e:
        rules.get_parameter(world.svc, world.stranger, "shared-name")
    assert code(e) == "ParameterNotFound"
    with pytest.raises(KilnError):
        rules.get_parameter(world.svc, Caller(world.owner.account_id, "eu-west-1"), "shared-name")
    put(world, world.stranger, "shared-name", "theirs")
    assert rules.get_parameter(world.svc, world.owner, "shared-name").parameter.value == "mine"


def test_secure_string_is_sealed_and_shown_only_with_decryption(world: World) -> None:
    o = world.owner
    put(world, o, "/app/secret", "hunter2", type="SecureString")
    plain = rules.get_parameter(world.svc, o, "/app/secret", with_decryption=True).parameter
    assert plain.value == "hunter2" and plain.key_id == "alias/aws/ssm"
    hidden = rules.get_parameter(world.svc, o, "/app/secret").parameter
    assert hidden.value != "hunter2" and "hunter2" not in hidden.value
    with world.svc.catalog.read() as tx:
        row = tx.get(models.ParameterVersion, (o.account_id, o.region, "/app/secret", 1))
        assert row is not None and row.value is None and row.value_sealed
        assert b"hunter2" not in row.value_sealed
    with pytest.raises(KilnError) as e:
        put(world, o, "/app/other", "x", type="SecureString", key_id="alias/nope")
    assert code(e) == "InvalidKeyId"


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("/aws/service/x", "AccessDeniedException"),
        ("/kiln/service/kiln/debian/latest", "AccessDeniedException"),
        ("awsome", "ValidationException"),
        ("/SSM/x", "ValidationException"),
        ("a/b", "ValidationException"),
        ("bad name", "ValidationException"),
        ("/" + "/".join("l" * 16), "HierarchyLevelLimitExceededException"),
    ],
)
def test_put_parameter_refuses_reserved_and_bad_names(world: World, name: str, want: str) -> None:
    with pytest.raises(KilnError) as e:
        put(world, world.owner, name, "v")
    assert code(e) == want


def test_put_parameter_checks_values(world: World) -> None:
    o = world.owner
    with pytest.raises(KilnError) as e:
        put(world, o, "n1", "abc", allowed_pattern=r"^\d+$")
    assert code(e) == "ParameterPatternMismatchException"
    assert put(world, o, "n1", "123", allowed_pattern=r"^\d+$") == 1
    with pytest.raises(KilnError) as e:
        put(world, o, "n1", "x", overwrite=True)  # the pattern stays
    assert code(e) == "ParameterPatternMismatchException"
    with pytest.raises(KilnError) as e:
        put(world, o, "n2", "x" * 4097)
    assert code(e) == "ValidationException"
    assert (
        rules.put_parameter(
            world.svc,
            o,
            PutParameterRequest("n2", "x" * 4097, "String", tier="Intelligent-Tiering"),
        ).tier
        == "Advanced"
    )
    with pytest.raises(KilnError) as e:
        put(world, o, "n3", "ami-0123456789abcdef0", data_type="aws:ec2:image")
    assert code(e) == "ValidationException" and "ami-0123456789abcdef0" in e.value.message
    image_id = world.register(o, "app/1")
    assert put(world, o, "n3", image_id, data_type="aws:ec2:image") == 1
    with pytest.raises(KilnError) as e:  # the stranger cannot see the owner's image
        put(world, world.stranger, "n3", image_id, data_type="aws:ec2:image")
    assert code(e) == "ValidationException"
    with pytest.raises(KilnError) as e:
        put(world, o, "n4", "v", data_type="Text")
    assert code(e) == "ValidationException"


def test_get_and_delete_many(world: World) -> None:
    o = world.owner
    put(world, o, "a", "1")
    put(world, o, "b", "2")
    res = rules.get_parameters(world.svc, o, ("a", "b:1", "b:5", "zz"))
    assert [(f.parameter.name, f.parameter.value) for f in res.parameters] == [
        ("a", "1"),
        ("b", "2"),
    ]
    assert res.invalid == ("b:5", "zz")
    deleted = rules.delete_parameters(world.svc, o, ("a", "zz"))
    assert (deleted.deleted, deleted.invalid) == (("a",), ("zz",))
    rules.delete_parameter(world.svc, o, "b")
    with pytest.raises(KilnError) as e:
        rules.delete_parameter(world.svc, o, "b")
    assert code(e) == "ParameterNotFound"
    assert put(world, o, "b", "again") == 1  # a deleted parameter starts over


def test_by_path_recursion_filters_and_pages(world: World) -> None:
    o = world.owner
    for name in ("/p/a", "/p/b", "/p/c/d", "/p/c/e/f", "/q/a", "/pp/a"):
        put(world, o, name, name)
    put(world, o, "/p/s", "s", type="SecureString")

    def names(**kw: object) -> list[str]:
        page = listing.get_parameters_by_path(world.svc, o, "/p", **kw)  # type: ignore[arg-type]
        return [r.name for r in page.items]

    assert names() == ["/p/a", "/p/b", "/p/s"]
    assert names(recursive=True) == ["/p/a", "/p/b", "/p/c/d", "/p/c/e/f", "/p/s"]
    assert names(filters=(ParameterFilter("Type", None, ("SecureString",)),)) == ["/p/s"]
    with pytest.raises(KilnError) as e:
        names(filters=(ParameterFilter("Name", None, ("x",)),))
    assert code(e) == "InvalidFilterKey"
    with pytest.raises(KilnError) as e:
        names(filters=(ParameterFilter("Type", "BeginsWith", ("String",)),))
    assert code(e) == "InvalidFilterOption"
    seen, token = [], None
    while True:
        page = listing.get_parameters_by_path(
            world.svc, o, "/", recursive=True, max_results=2, next_token=token
        )
        seen += [r.name for r in page.items]
        token = page.next_token
        if token is None:
            break
    assert seen == sorted(seen) and len(seen) == 7
    with pytest.raises(KilnError) as e:
        listing.get_parameters_by_path(world.svc, o, "/q", next_token=token or "garbage")
    assert code(e) == "InvalidNextToken"


def test_describe_parameters_filters(world: World) -> None:
    o = world.owner
    for name in ("/x/one", "/x/two", "/y/one", "plain"):
        put(world, o, name, "v")
    put(world, o, "/x/sec", "v", type="SecureString")

    def names(**kw: object) -> list[str]:
        return [r.name for r in listing.describe_parameters(world.svc, o, **kw).items]  # type: ignore[arg-type]

    assert names() == ["/x/one", "/x/sec", "/x/two", "/y/one", "plain"]
    assert names(filters=(ParameterFilter("Name", None, ("/x",)),)) == [
        "/x/one",
        "/x/sec",
        "/x/two",
    ]
    pf = (ParameterFilter("Name", "Contains", ("one",)),)
    assert names(parameter_filters=pf) == ["/x/one", "/y/one"]
    pf = (ParameterFilter("Path", "OneLevel", ("/x",)), ParameterFilter("Type", None, ("String",)))
    assert names(parameter_filters=pf) == ["/x/one", "/x/two"]
    with pytest.raises(KilnError) as e:
        names(parameter_filters=(ParameterFilter("Type", None, ("Strin",)),))
    assert code(e) == "InvalidFilterValue"
    with pytest.raises(KilnError) as e:
        names(
            filters=(ParameterFilter("Name", None, ("/x",)),),
            parameter_filters=(ParameterFilter("Name", None, ("/x",)),),
        )
    assert code(e) == "ValidationException"
    page = listing.describe_parameters(world.svc, o, max_results=3)
    assert len(page.items) == 3 and page.next_token


def test_public_parameters_name_the_newest_image_of_a_family(world: World) -> None:
    o = world.owner
    with pytest.raises(KilnError) as e:
        rules.get_parameter(world.svc, o, "/kiln/service/kiln/debian/latest")
    assert code(e) == "ParameterNotFound"
    first = base_image(world, "kiln/debian/12.1")
    assert (
        rules.get_parameter(world.svc, o, "/kiln/service/kiln/debian/latest").parameter.value
        == first
    )
    second = base_image(world, "kiln/debian/12.2")  # the same second: the greater version
    latest = rules.get_parameter(world.svc, o, "/kiln/service/kiln/debian/latest").parameter
    assert latest.value == second and latest.data_type == "aws:ec2:image"
    # an account's own image named like a base image does not shadow it
    world.register(o, "kiln/debian/99")
    assert (
        rules.get_parameter(world.svc, o, "/kiln/service/kiln/debian/latest").parameter.value
        == second
    )
    # an account's own family answers to that account only
    mine = world.register(o, "app/1")
    assert rules.get_parameter(world.svc, o, "/kiln/service/app/latest").parameter.value == mine
    with pytest.raises(KilnError):
        rules.get_parameter(world.svc, world.stranger, "/kiln/service/app/latest")
    # an operator's /aws/ map
    with pytest.raises(KilnError):
        rules.get_parameter(world.svc, o, "/aws/service/debian/release/12/latest/amd64")
    from kiln.services.parameters.public_maps import map_parameter

    map_parameter(world.svc, "/aws/service/debian/release/12/latest/amd64", "kiln/debian")
    aws = rules.get_parameter(world.svc, o, "/aws/service/debian/release/12/latest/amd64")
    assert aws.parameter.value == second
    by_path = listing.get_parameters_by_path(world.svc, o, "/kiln/service", recursive=True)
    assert {r.name: r.value for r in by_path.items} == {
        "/kiln/service/app/latest": mine,
        "/kiln/service/kiln/debian/latest": second,
    }


def test_resolve_ssm_and_aliases_in_launches(world: World) -> None:
    o = world.owner
    old = world.register(o, "web/1")
    new = world.register(o, "web/2")
    put(world, o, "/ami/web", old)

    def resolve(text: str) -> str:
        with world.svc.catalog.read() as tx:
            return launch_image_id(tx, world.svc.catalog.sealer, o, text)

    assert resolve("resolve:ssm:/ami/web") == old
    put(world, o, "/ami/web", new, overwrite=True)
    assert resolve("resolve:ssm:/ami/web") == new
    assert resolve("resolve:ssm:/ami/web:1") == old
    assert resolve("resolve:ssm:/kiln/service/web/latest") == new
    with pytest.raises(KilnError) as e:
        resolve("resolve:ssm:/ami/none")
    assert code(e) == "InvalidParameterValue" and "/ami/none" in e.value.message
    put(world, o, "/ami/text", "hello")
    with pytest.raises(KilnError) as e:
        resolve("resolve:ssm:/ami/text")
    assert code(e) == "InvalidParameterValue"
    set_alias(world.svc, o.region, "ami-0123456789abcdef0", "web")
    put(world, o, "/ami/aliased", "ami-0123456789abcdef0")
    assert resolve("resolve:ssm:/ami/aliased") == new
