"""Publishing a product (``kiln marketplace publish``) and listing products.

A product has an id (``prod-`` and 13 characters) and a product code (25 lowercase letters and
digits, as AWS Marketplace's codes are). Publishing attaches the code, type ``marketplace``, to
each of the vendor's images; from then on every other account must subscribe before it launches
them (kiln/services/marketplace/access.py). Nothing is stored unless every check passes.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from kiln import errors
from kiln.catalog import accounts as cat_accounts
from kiln.catalog import images as cat_images
from kiln.catalog import marketplace as cat
from kiln.catalog.marketplace import ProductRecord
from kiln.catalog.records import ProductCodeRecord, utc_now
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.images.access import owned_image
from kiln.services.instances.instance_types import catalog as instance_types

_ALPHABET = string.ascii_lowercase + string.digits
TITLE_MAX = 255
DESCRIPTION_MAX = 4096
PRICE_MAX_PLACES = 6


@dataclass(frozen=True, slots=True)
class PublishProductRequest:
    image_ids: tuple[str, ...]
    title: str
    description: str
    prices: tuple[tuple[str, str], ...]  # (instance type, USD per hour), as given


@dataclass(frozen=True, slots=True)
class ProductView:
    product: ProductRecord
    image_ids: tuple[str, ...]


def _token(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def check_price(instance_type: str, value: str) -> str:
    """The price as canonical decimal text; InvalidParameterValue naming the field otherwise."""
    field = f"price[{instance_type}]"
    if instance_type not in instance_types():
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ({instance_type[:64]}) for parameter {field} is invalid. "
            "It is not an EC2 instance type.",
        )
    try:
        price = Decimal(value.strip())
    except InvalidOperation:
        price = Decimal("NaN")
    if not price.is_finite() or price < 0:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ({value[:64]}) for parameter {field} is invalid. "
            "Expected a decimal number of USD per hour, 0 or more.",
        )
    if -price.as_tuple().exponent > PRICE_MAX_PLACES:  # type: ignore[operator]  # finite: int
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ({value[:64]}) for parameter {field} is invalid. "
            f"At most {PRICE_MAX_PLACES} decimal places.",
        )
    return format(price.normalize() if price else Decimal(0), "f")


def _check_prices(prices: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    if not prices:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter price (TYPE=USD)."
        )
    out: dict[str, str] = {}
    for itype, value in prices:
        if itype in out:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Value ({itype}) for parameter price is invalid. The type is priced twice.",
            )
        out[itype] = check_price(itype, value)
    return tuple(sorted(out.items()))


def publish_product(services: Services, caller: Caller, req: PublishProductRequest) -> ProductView:
    """Create a product of ``caller`` (the vendor) and attach its code to ``req.image_ids``."""
    title, description = req.title.strip(), req.description.strip()
    if not title or len(title) > TITLE_MAX:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value for parameter title is invalid. It needs 1 to {TITLE_MAX} characters.",
        )
    if len(description) > DESCRIPTION_MAX:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value for parameter description is invalid. At most {DESCRIPTION_MAX} characters.",
        )
    prices = _check_prices(req.prices)
    if not req.image_ids:
        raise KilnError(errors.MissingParameter, "The request must contain the parameter image.")
    with services.catalog.write() as tx:
        if cat_accounts.get_account(tx, caller.account_id) is None:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Value ({caller.account_id}) for parameter account is invalid. No such account.",
            )
        images = [owned_image(tx, caller, i) for i in dict.fromkeys(req.image_ids)]
        for image in images:
            if image.is_public:
                raise KilnError(
                    errors.InvalidParameter,
                    f"AMIs with a product code can not be made public: {image.image_id} is public.",
                )
        product = ProductRecord(
            product_id=f"prod-{_token(13)}",
            product_code=_token(25),
            vendor_id=caller.account_id,
            title=title,
            description=description,
            prices=prices,
            created=utc_now(),
        )
        cat.insert_product(tx, product)
        for image in images:
            cat_images.add_product_codes(
                tx, image.image_id, [ProductCodeRecord(product.product_code, "marketplace")]
            )
    return ProductView(product, tuple(i.image_id for i in images))


def describe_products(services: Services, vendor_id: str | None = None) -> list[ProductView]:
    """Every product (or ``vendor_id``'s), oldest first, with the images carrying its code."""
    with services.catalog.read() as tx:
        return [
            ProductView(p, tuple(cat.images_with_code(tx, p.product_code)))
            for p in cat.list_products(tx, vendor_id)
        ]


def product_of(services: Services, product: str) -> ProductRecord:
    """The product whose id or code is ``product``; ResourceNotFoundException otherwise."""
    with services.catalog.read() as tx:
        found = cat.get_product(tx, product)
    if found is None:
        raise KilnError(
            errors.MarketplaceProductNotFound,
            f"Product {product[:64]} not found: no marketplace product has this id or code.",
        )
    return found
