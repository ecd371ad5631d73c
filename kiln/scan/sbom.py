"""An inventory as a CycloneDX SBOM (JSON, spec 1.6) through cyclonedx-python-lib, and the
difference between two inventories (docs/sbom.md)."""

from __future__ import annotations

from dataclasses import dataclass

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from debian.debian_support import Version
from packageurl import PackageURL

from kiln.scan.packages import Inventory, Package

SCHEMA = SchemaVersion.V1_6


@dataclass(frozen=True, slots=True)
class ImageRef:
    """The SBOM's subject: the image (its metadata component)."""

    image_id: str
    name: str
    region: str
    snapshot_id: str


def purl(pkg: Package, distro: str | None) -> PackageURL:
    """``pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-12`` for a Debian package (no
    ``distro`` for a file whose image names no Debian release); ``pkg:generic/NAME@VERSION``
    when only the upstream version is known."""
    if pkg.kind != "deb":
        return PackageURL(type="generic", name=pkg.name, version=pkg.version)
    qualifiers = {k: v for k, v in (("arch", pkg.arch), ("distro", distro)) if v}
    return PackageURL(
        type="deb", namespace="debian", name=pkg.name, version=pkg.version, qualifiers=qualifiers
    )


def _distro(inventory: Inventory) -> str | None:
    return inventory.os.distro if inventory.os.id == "debian" else None


def build_sbom(image: ImageRef, inventory: Inventory) -> Bom:
    bom = Bom()
    bom.metadata.component = Component(
        name=image.name,
        version=image.image_id,
        type=ComponentType.OPERATING_SYSTEM,
        bom_ref=image.image_id,
        description=inventory.os.pretty_name or None,
        properties=[
            Property(name="kiln:image-id", value=image.image_id),
            Property(name="kiln:region", value=image.region),
            Property(name="kiln:snapshot-id", value=image.snapshot_id),
            Property(name="kiln:inventory-source", value=inventory.source),
        ],
    )
    distro = _distro(inventory)
    components = []
    for pkg in inventory.packages:
        url = purl(pkg, distro)
        props = [Property(name="kiln:path", value=pkg.path)]
        if pkg.source != pkg.name or pkg.source_version != pkg.version:
            props.append(Property(name="kiln:source", value=f"{pkg.source} {pkg.source_version}"))
        if pkg.applets:
            props.append(Property(name="kiln:busybox-applets", value=" ".join(pkg.applets)))
        component = Component(
            name=pkg.name,
            version=pkg.version,
            type=ComponentType.LIBRARY if pkg.kind == "deb" else ComponentType.APPLICATION,
            purl=url,
            bom_ref=url.to_string(),
            properties=props,
        )
        bom.components.add(component)
        components.append(component)
    bom.register_dependency(bom.metadata.component, components)  # the image holds them all
    return bom


def sbom_json(image: ImageRef, inventory: Inventory) -> str:
    """The CycloneDX 1.6 JSON document of ``inventory``."""
    bom = build_sbom(image, inventory)
    return str(make_outputter(bom, OutputFormat.JSON, SCHEMA).output_as_string(indent=2))


@dataclass(frozen=True, slots=True)
class Change:
    name: str
    arch: str | None
    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class PackageDiff:
    added: tuple[Change, ...]
    removed: tuple[Change, ...]
    upgraded: tuple[Change, ...]
    downgraded: tuple[Change, ...]


def diff_inventories(a: Inventory, b: Inventory) -> PackageDiff:
    """What changed from ``a`` to ``b``, by (name, architecture); versions ordered as Debian
    orders them."""
    before = {(p.name, p.arch): p.version for p in a.packages}
    after = {(p.name, p.arch): p.version for p in b.packages}
    added, removed, up, down = [], [], [], []
    for key in sorted(before.keys() | after.keys(), key=lambda k: (k[0], k[1] or "")):
        old, new = before.get(key), after.get(key)
        change = Change(key[0], key[1], old, new)
        if old is None:
            added.append(change)
        elif new is None:
            removed.append(change)
        elif _order(new, old) > 0:
            up.append(change)
        elif _order(new, old) < 0:
            down.append(change)
    return PackageDiff(tuple(added), tuple(removed), tuple(up), tuple(down))


def _order(a: str, b: str) -> int:
    """Debian's ordering of two versions (1, 0, -1); strings that are not Debian versions
    compare as text."""
    try:
        va, vb = Version(a), Version(b)
    except ValueError:
        return (a > b) - (a < b)
    return (va > vb) - (va < vb)
