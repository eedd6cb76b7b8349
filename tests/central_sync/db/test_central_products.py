"""The seed's product auto-create trigger: an OCR result with a barcode creates products(shop, barcode); a later
one updates it (never a duplicate); a re-delivered job does not count twice."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared_models.topics import UpKind
from tests.central_sync.harness import FakeNode, query, result_body, running_central

pytestmark = pytest.mark.integration

EAN = "8901234567893"


async def test_a_product_is_created_then_updated_not_duplicated(make_config, broker, db_url) -> None:
    node = FakeNode(broker.url, "shop-p", "node-p")
    other_shop = FakeNode(broker.url, "shop-q", "node-q")
    try:
        async with running_central(make_config(), kafka=False):
            await node.send(1, UpKind.RESULTS, result_body("job-1", "shop-p", barcode=EAN, name="Milk 1L", price="85"))
            await node.wait_acked(1)
            rows = await query(db_url, "SELECT shop_id, barcode, name, price, currency, times_seen FROM products")
            assert [tuple(r) for r in rows] == [("shop-p", EAN, "Milk 1L", Decimal("85"), "BDT", 1)]

            await node.send(2, UpKind.RESULTS, result_body("job-2", "shop-p", barcode=EAN, name="Milk 1 L", price=90.5))
            await node.send(2, UpKind.RESULTS, result_body("job-2", "shop-p", barcode=EAN, price=90.5))  # resend
            await node.send(3, UpKind.RESULTS, result_body("job-3", "shop-p", barcode=None))  # no barcode: no product
            await node.send(4, UpKind.RESULTS, result_body("job-4", "shop-p", barcode=EAN, price="n/a"))  # keeps price
            await other_shop.send(1, UpKind.RESULTS, result_body("job-9", "shop-q", barcode=EAN, price="99"))
            await node.wait_acked(4)
            await other_shop.wait_acked(1)

            rows = await query(
                db_url, "SELECT shop_id, name, price, times_seen, first_seen <= last_seen AS ordered FROM products"
                " ORDER BY shop_id",
            )
            assert [tuple(r) for r in rows] == [
                ("shop-p", "Milk 1L", Decimal("90.5"), 3, True),
                ("shop-q", "Milk 1L", Decimal("99"), 1, True),
            ]
    finally:
        node.close()
        other_shop.close()
