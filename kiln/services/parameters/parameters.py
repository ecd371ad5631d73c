"""SSM parameter rules: PutParameter, GetParameter, GetParameters, DeleteParameter,
DeleteParameters, GetParameterHistory (docs/ssm.md). Listing by path and DescribeParameters are
in describe_parameters.py.

Parameters are per account and region. Every PutParameter adds a version (1, 2, …); the
current one is what GetParameter reads, ``name:3`` an older one. A SecureString is sealed in the
catalog with the server master key; without WithDecryption its Value is the sealed bytes in
base64, as AWS answers with the ciphertext.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from kiln import errors
from kiln.catalog import Conflict, Tx
from kiln.catalog import parameters as cat
from kiln.catalog.records import ParameterRecord, utc_now
from kiln.catalog.sealing import Sealer
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.images.access import visible_image
from kiln.services.images.aliases import resolve_image_id
from kiln.services.parameters.names import (
    Selector,
    check_name,
    check_writable,
    parse_selector,
)
from kiln.services.parameters.public import is_public_name, public_parameter
from kiln.services.validate import decode_token, encode_token

TYPES = ("String", "StringList", "SecureString")
DATA_TYPES = ("text", "aws:ec2:image", "aws:ssm:integration")
DEFAULT_KEY = "alias/aws/ssm"
MAX_VALUE = {"Standard": 4096, "Advanced": 8192}
MAX_HISTORY_PAGE = 50


@dataclass(frozen=True, slots=True)
class PutParameterRequest:
    name: str
    value: str
    type: str | None = None
    description: str | None = None
    key_id: str | None = None
    overwrite: bool = False
    allowed_pattern: str | None = None
    tier: str | None = None
    data_type: str | None = None
    policies: str | None = None
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PutParameterResult:
    version: int
    tier: str


@dataclass(frozen=True, slots=True)
class FoundParameter:
    """A parameter as read: its record (Value as shown) and the selector given, if any."""

    parameter: ParameterRecord
    selector: str | None


@dataclass(frozen=True, slots=True)
class GetParametersResult:
    parameters: tuple[FoundParameter, ...]
    invalid: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeleteParametersResult:
    deleted: tuple[str, ...]
    invalid: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HistoryPage:
    items: tuple[ParameterRecord, ...]
    next_token: str | None


def not_found(name: str) -> KilnError:
    return KilnError(errors.ParameterNotFound, f"Parameter {name} not found.")


def shown(rec: ParameterRecord, with_decryption: bool) -> ParameterRecord:
    """The record with the Value the caller is shown: a SecureString's ciphertext (base64)
    unless ``with_decryption``."""
    if rec.sealed is None or with_decryption:
        return rec
    return replace(rec, value=base64.b64encode(rec.sealed).decode())


def find(tx: Tx, sealer: Sealer, caller: Caller, sel: Selector) -> ParameterRecord:
    """The parameter (the selected version) the caller reads: its own, else a public one."""
    if is_public_name(sel.name):
        public = public_parameter(tx, caller, sel.name)
        if public is None:
            raise not_found(sel.name)
        if sel.version not in (None, 1):
            raise _version_not_found(sel)
        return public
    if sel.version is None:
        rec = cat.current_parameter(tx, sealer, caller.account_id, caller.region, sel.name)
        if rec is None:
            raise not_found(sel.name)
        return rec
    rec = cat.parameter_version(tx, sealer, caller.account_id, caller.region, sel.name, sel.version)
    if rec is None:
        if cat.current_parameter(tx, sealer, caller.account_id, caller.region, sel.name) is None:
            raise not_found(sel.name)
        raise _version_not_found(sel)
    return rec


def _version_not_found(sel: Selector) -> KilnError:
    return KilnError(
        errors.ParameterVersionNotFound,
        f"Systems Manager could not find version {sel.version} of {sel.name}. "
        "Verify the version and try again.",
    )


def get_parameter(
    services: Services, caller: Caller, name: str, with_decryption: bool = False
) -> FoundParameter:
    sel = parse_selector(name)
    with services.catalog.read() as tx:
        rec = find(tx, services.catalog.sealer, caller, sel)
    return FoundParameter(shown(rec, with_decryption), sel.text)


def get_parameters(
    services: Services, caller: Caller, names: tuple[str, ...], with_decryption: bool = False
) -> GetParametersResult:
    """Each name found, and the names not found (InvalidParameters); a malformed name fails
    the whole call, as on AWS."""
    sels = [parse_selector(n) for n in dict.fromkeys(names)]
    found, invalid = [], []
    with services.catalog.read() as tx:
        for text, sel in zip(dict.fromkeys(names), sels, strict=True):
            try:
                rec = find(tx, services.catalog.sealer, caller, sel)
            except KilnError as e:
                if e.code in (errors.ParameterNotFound, errors.ParameterVersionNotFound):
                    invalid.append(text)
                    continue
                raise
            found.append(FoundParameter(shown(rec, with_decryption), sel.text))
    return GetParametersResult(tuple(found), tuple(invalid))


def _check_key(
    services: Services, caller: Caller, req: PutParameterRequest, kind: str
) -> str | None:
    if kind != "SecureString":
        if req.key_id is not None:
            raise KilnError(
                errors.ValidationException, "KeyId is only for parameters of type SecureString"
            )
        return None
    key = req.key_id or DEFAULT_KEY
    if key != DEFAULT_KEY:
        from kiln.services.keys.kms_keys import find_key

        try:
            find_key(services.catalog, caller, key)
        except KilnError:
            raise KilnError(errors.InvalidKeyId, f"Invalid KeyId: {key}") from None
    return key


def _tier(req: PutParameterRequest, old: ParameterRecord | None) -> str:
    asked = req.tier or (old.tier if old else "Standard")
    if asked == "Intelligent-Tiering":
        return "Standard" if len(req.value) <= MAX_VALUE["Standard"] else "Advanced"
    if old is not None and old.tier == "Advanced" and asked == "Standard":
        raise KilnError(
            errors.ValidationException,
            f"{req.name} uses the advanced-parameter tier; it cannot go back to Standard "
            "(delete it and create it again).",
        )
    if len(req.value) > MAX_VALUE.get(asked, 0):
        raise KilnError(
            errors.ValidationException,
            f"{asked} tier parameters support a value of at most {MAX_VALUE[asked]} characters",
        )
    return asked


def _check_value(
    tx: Tx, caller: Caller, value: str, kind: str, data_type: str, pattern: str | None
) -> None:
    if not value:
        raise KilnError(errors.ValidationException, "A parameter's value cannot be empty")
    if pattern:
        try:
            compiled = re.compile(pattern)
        except re.error as e:
            raise KilnError(
                errors.InvalidAllowedPattern, f"AllowedPattern {pattern!r} is not valid: {e}"
            ) from None
        if not compiled.fullmatch(value):
            raise KilnError(
                errors.ParameterPatternMismatch,
                f"Parameter value failed to satisfy constraint: the value must match {pattern}",
            )
    if data_type == "aws:ec2:image":
        if kind != "String":
            raise KilnError(
                errors.ValidationException,
                "The data type aws:ec2:image is only for parameters of type String",
            )
        try:
            visible_image(tx, caller, resolve_image_id(tx, caller, value))
        except KilnError:
            raise KilnError(
                errors.ValidationException,
                f"Parameter value {value!r} is not the id of an image available to you in "
                f"{caller.region} (DataType aws:ec2:image)",
            ) from None


def put_parameter(
    services: Services, caller: Caller, req: PutParameterRequest
) -> PutParameterResult:
    check_writable(req.name)
    if req.policies is not None:
        raise KilnError(errors.ValidationException, "Kiln does not support parameter policies")
    if req.tags and req.overwrite:
        raise KilnError(
            errors.ValidationException,
            "Invalid request: tags and overwrite can't be used together. To create a parameter "
            "with tags, please remove overwrite flag.",
        )
    data_type = req.data_type
    if data_type is not None and data_type not in DATA_TYPES:
        raise KilnError(
            errors.ValidationException,
            f"The following data type is not supported: {data_type} "
            "(Data type names are all lowercase.)",
        )
    sealer = services.catalog.sealer
    for attempt in range(3):
        with services.catalog.read() as tx:
            old = cat.current_parameter(tx, sealer, caller.account_id, caller.region, req.name)
        if old is not None and not req.overwrite:
            raise _exists()
        kind = req.type or (old.type if old else None)
        if kind is None:
            raise KilnError(
                errors.ValidationException,
                "A parameter type is required when you create a parameter.",
            )
        key_id = _check_key(services, caller, req, kind)
        tier = _tier(req, old)
        new = cat.NewParameterVersion(
            type=kind,
            value=req.value,
            description=req.description
            if req.description is not None
            else (old.description if old else None),
            key_id=key_id,
            allowed_pattern=req.allowed_pattern
            if req.allowed_pattern is not None
            else (old.allowed_pattern if old else None),
            tier=tier,
            data_type=data_type or (old.data_type if old else "text"),
            modified=utc_now(),
            modified_user=f"arn:aws:iam::{caller.account_id}:root",
        )
        try:
            with services.catalog.write() as tx:
                _check_value(tx, caller, req.value, kind, new.data_type, new.allowed_pattern)
                now = cat.current_parameter(tx, sealer, caller.account_id, caller.region, req.name)
                if (now.version if now else 0) != (old.version if old else 0):
                    raise Conflict("the parameter changed since it was read")
                version = (old.version if old else 0) + 1
                cat.put_parameter_version(
                    tx, sealer, caller.account_id, caller.region, req.name, version, new
                )
            return PutParameterResult(version, tier)
        except Conflict:
            if not req.overwrite:
                raise _exists() from None
            if attempt == 2:
                raise KilnError(
                    errors.TooManyUpdates,
                    f"There are concurrent updates of {req.name}; try again.",
                ) from None
    raise AssertionError("unreachable")


def _exists() -> KilnError:
    return KilnError(
        errors.ParameterAlreadyExists,
        "The parameter already exists. To overwrite this request value, set the overwrite "
        "option in the request to true.",
    )


def delete_parameter(services: Services, caller: Caller, name: str) -> None:
    check_name(name)
    with services.catalog.write() as tx:
        if not cat.delete_parameter(tx, caller.account_id, caller.region, name):
            raise not_found(name)


def delete_parameters(
    services: Services, caller: Caller, names: tuple[str, ...]
) -> DeleteParametersResult:
    deleted, invalid = [], []
    for name in dict.fromkeys(names):
        check_name(name)
    with services.catalog.write() as tx:
        for name in dict.fromkeys(names):
            if cat.delete_parameter(tx, caller.account_id, caller.region, name):
                deleted.append(name)
            else:
                invalid.append(name)
    return DeleteParametersResult(tuple(deleted), tuple(invalid))


def get_parameter_history(
    services: Services,
    caller: Caller,
    name: str,
    with_decryption: bool = False,
    max_results: int | None = None,
    next_token: str | None = None,
) -> HistoryPage:
    check_name(name)
    size = max_results or MAX_HISTORY_PAGE
    fingerprint = ["GetParameterHistory", caller.account_id, caller.region, name]
    after = decode_ssm_token(next_token, fingerprint)
    with services.catalog.read() as tx:
        if is_public_name(name):
            public = public_parameter(tx, caller, name)
            versions = [public] if public else []
        else:
            versions = cat.parameter_history(
                tx, services.catalog.sealer, caller.account_id, caller.region, name
            )
    if not versions:
        raise not_found(name)
    rest = [v for v in versions if after is None or v.version > int(str(after))]
    page = rest[:size]
    token = encode_token(page[-1].version, fingerprint) if len(rest) > size else None
    return HistoryPage(tuple(shown(v, with_decryption) for v in page), token)


def decode_ssm_token(token: str | None, fingerprint: Sequence[object]) -> object:
    """validate.decode_token in SSM's words (InvalidNextToken)."""
    try:
        return decode_token(token, fingerprint)
    except KilnError:
        raise KilnError(errors.InvalidNextToken, "The specified token is not valid.") from None
