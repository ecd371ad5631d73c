"""Builders shared by the rule tests: real catalog (both dialects), real store on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kiln.app import build_services
from kiln.catalog import Catalog
from kiln.catalog.records import BlockDeviceRecord, EbsRecord
from kiln.config import Settings
from kiln.runtime.instance_runtime import InstanceRuntime
from kiln.services.accounts.accounts import create_account
from kiln.services.context import Caller, Services
from kiln.services.images.images import RegisterImageRequest, register_image
from kiln.services.snapshots.records import record_snapshot
from kiln.types import new_id

REGION = "us-east-1"
GIB = 1024**3


@dataclass(frozen=True, slots=True)
class World:
    svc: Services
    owner: Caller
    grantee: Caller
    stranger: Caller

    def snapshot(self, who: Caller, size_gib: int = 1, encrypted: bool = False) -> str:
        sid = new_id("snap")
        record_snapshot(
            self.svc.catalog,
            who.region,
            who.account_id,
            sid,
            size_gib * GIB,
            encrypted=encrypted,
            kms_key_id="alias/k" if encrypted else None,
        )
        return sid

    def register(self, who: Caller, name: str, **kw: object) -> str:
        sid = kw.pop("snapshot_id", None) or self.snapshot(who)
        req = RegisterImageRequest(
            name=name,
            root_device_name="/dev/xvda",
            virtualization_type="hvm",
            block_devices=(BlockDeviceRecord("/dev/xvda", ebs=EbsRecord(snapshot_id=str(sid))),),
            **kw,
        )  # type: ignore[arg-type]  # test convenience
        return register_image(self.svc, who, req)


def make_world(catalog: Catalog, tmp_path: Path, compute: InstanceRuntime | None = None) -> World:
    svc = build_services(
        Settings(data_dir=tmp_path, regions=(REGION, "eu-west-1")), catalog=catalog, compute=compute
    )
    ids = [create_account(catalog, n).account_id for n in ("owner", "grantee", "stranger")]
    return World(svc, *(Caller(i, REGION) for i in ids))
