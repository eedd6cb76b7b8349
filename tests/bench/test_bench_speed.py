"""python -m bench speed: statistics, set building, scoring, the measuring loops and the report, with fakes
(no node, no peer, no network)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bench.__main__ as cli
from bench import speed, speed_peer, speed_report, speed_runs, speed_sets, speed_stats
from bench.datasets import DEFAULT_DATA_DIR
from bench.metrics import PRF
from bench.speed_score import ItemScore, Reading, aggregate, score_item
from bench.speed_sets import SpeedItem, SpeedSet, Truth
from bench.speed_systems import Answer, CallFailedError, reading_from_ours, reading_from_peer

# ---- statistics -------------------------------------------------------------------------------------------------


def test_summarize_percentiles_and_empty() -> None:
    lat = speed_stats.summarize([float(v) for v in range(1, 101)], errors=2)
    assert (lat.n, lat.errors) == (100, 2)
    assert lat.p50 == pytest.approx(50.5)
    assert lat.p95 == pytest.approx(95.05)
    assert lat.p99 == pytest.approx(99.01)
    assert lat.mean == pytest.approx(50.5)
    empty = speed_stats.summarize([], errors=3)
    assert (empty.n, empty.errors, empty.p50, empty.p99) == (0, 3, None, None)


def test_ratio_overhead_throughput_and_median() -> None:
    assert speed_stats.ratio(3.0, 2.0) == 1.5
    assert speed_stats.ratio(None, 2.0) is None
    assert speed_stats.ratio(1.0, 0.0) is None
    assert speed_stats.overhead_pct(110.0, 100.0) == pytest.approx(10.0)
    assert speed_stats.overhead_pct(None, 100.0) is None
    assert speed_stats.throughput(30, 2.0) == 15.0
    assert speed_stats.throughput(0, 2.0) is None
    assert speed_stats.median([3.0, None, 1.0, 2.0]) == 2.0
    assert speed_stats.median([None]) is None


def test_vm_hwm_parsing() -> None:
    status = "Name:\tpython\nVmPeak:\t 900000 kB\nVmHWM:\t  390625 kB\nVmRSS:\t 1000 kB\n"
    assert speed_stats.parse_vm_hwm_mb(status) == pytest.approx(400.0)
    assert speed_stats.parse_vm_hwm_mb("Name: x\n") is None
    assert speed_stats.peak_rss_mb(None) is None


def test_fmt() -> None:
    assert speed_stats.fmt(None) == "n/a"
    assert speed_stats.fmt(float("nan")) == "n/a"
    assert speed_stats.fmt(12.345, 1, " ms") == "12.3 ms"


# ---- sets -------------------------------------------------------------------------------------------------------


def test_spread_is_even_and_ordered() -> None:
    assert speed_sets.spread(list(range(10)), 5) == [0, 2, 4, 6, 8]
    assert speed_sets.spread(list(range(3)), 5) == [0, 1, 2]
    assert speed_sets.spread(list(range(3)), 0) == []


def test_sets_from_the_bench_data() -> None:
    sets = speed_sets.build_sets(DEFAULT_DATA_DIR, {"price_tags": 3, "barcodes": 4, "product": 0, "receipts": 2})
    assert [s.key for s in sets] == ["price_tags", "barcodes", "receipts"]
    tags, codes, receipts = sets
    assert len(tags.items) == 3 and all(i.truth.price and i.doc_type == "product" for i in tags.items)
    assert len(codes.items) == 4 and all(i.truth.barcode and i.doc_type == "barcode" for i in codes.items)
    assert len({i.name.split("_")[0] for i in codes.items}) > 1  # spread over several source sets
    assert all(i.truth.text and i.doc_type == "receipt" for i in receipts.items)


def test_product_photos_are_deterministic_1280x720_jpegs() -> None:
    first = speed_sets.product_set(DEFAULT_DATA_DIR, 2)
    again = speed_sets.product_set(DEFAULT_DATA_DIR, 2)
    assert [i.data for i in first.items] == [i.data for i in again.items]
    assert first.items[0].data != first.items[1].data
    for item in first.items:
        with Image.open(io.BytesIO(item.data)) as image:
            assert image.format == "JPEG" and image.size == speed_sets.PRODUCT_SIZE
        assert item.truth.price and item.truth.barcode and len(item.truth.words) == speed_sets.WORDS_PER_PHOTO
        assert item.truth.barcode[0] in speed_sets.RETAIL_FORMATS


def test_compose_pastes_every_piece() -> None:
    def png(color: tuple[int, int, int], size: tuple[int, int]) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", size, color).save(buffer, format="PNG")
        return buffer.getvalue()

    data, truth = speed_sets.compose_product_photo(
        0, (png((0, 0, 0), (300, 200)), "EAN_13", "5901234123457"), (png((255, 0, 0), (100, 80)), "199"),
        [(png((0, 0, 255), (120, 40)), "MILK")],
    )
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    assert pixels[300, 100].sum() < 60  # the black barcode box, left, centred vertically
    assert pixels[100, 800, 0] > 200 and pixels[100, 800, 1] < 60  # the red tag, 2.5x, top right
    assert truth == Truth(price="199", barcode=("EAN_13", "5901234123457"), words=("MILK",))


# ---- scoring ----------------------------------------------------------------------------------------------------


def _item(doc_type: str, truth: Truth) -> SpeedItem:
    return SpeedItem("x", b"", "x.jpg", doc_type, truth)


def test_price_tag_scores_structured_price_then_tallest_line() -> None:
    item = _item("product", Truth(price="199"))
    assert score_item(item, Reading(price=199.0)).text == PRF(1, 1, 1)
    assert score_item(item, Reading(lines=(("Milk 2", 10.0), ("¥199", 40.0)))).text == PRF(1, 1, 1)
    assert score_item(item, Reading(lines=(("199", 10.0), ("2", 40.0)))).text == PRF(0, 1, 1)


def test_barcode_and_product_and_receipt_scores() -> None:
    code = _item("barcode", Truth(barcode=("EAN_13", "5901234123457")))
    assert score_item(code, Reading(barcodes=(("EAN_13", "5901234123457"),), reads_barcodes=True)).barcode_hit
    assert score_item(code, Reading(barcodes=(("UPC_A", "5901234123457"),), reads_barcodes=True)).barcode_hit is False
    assert score_item(code, Reading()).barcode_hit is None  # an OCR-only system
    photo = _item("product", Truth(price="99", barcode=("EAN_13", "1"), words=("Carlsberg", "ART")))
    scored = score_item(photo, Reading(lines=(("carlsberg beer", 20.0), ("¥99", 30.0)), reads_barcodes=True))
    assert scored.text == PRF(2, 3, 3) and scored.barcode_hit is False
    receipt = _item("receipt", Truth(text="TOTAL 12.30\nTHANK YOU"))
    assert score_item(receipt, Reading(lines=(("Total 12.30", 10.0),))).text == PRF(2, 2, 4)


def test_aggregate_per_set() -> None:
    hits = [ItemScore(PRF(1, 1, 1)), ItemScore(PRF(0, 1, 1))]
    assert aggregate("price_tags", hits, True, False).value == 50.0
    assert aggregate("barcodes", [ItemScore(barcode_hit=True), ItemScore(barcode_hit=False)], False, True).value == 50
    assert aggregate("barcodes", [ItemScore()], True, False).value is None
    product = aggregate("product", [ItemScore(PRF(2, 3, 3), True), ItemScore(PRF(3, 3, 3), False)], True, True)
    assert product.value == pytest.approx(83.333, abs=0.01) and product.barcode_value == 50.0
    assert aggregate("product", [ItemScore(PRF(2, 3, 3))], True, False).barcode_value is None
    receipts = aggregate("receipts", [ItemScore(PRF(2, 2, 4))], True, False)
    assert receipts.value == pytest.approx(100 * 2 * 1.0 * 0.5 / 1.5)


def test_answers_are_parsed_into_readings() -> None:
    ours = reading_from_ours({
        "lines": [{"text": "¥199", "bounding_box": {"x": 0, "y": 0, "width": 9, "height": 30}}],
        "structured": {"price": 199},
        "barcodes": [{"type": "EAN_13", "value": "5901234123457"}],
    })
    assert ours == Reading((("¥199", 30.0),), 199.0, (("EAN_13", "5901234123457"),), True, True)
    peer = reading_from_peer({"1": {"rec_txt": "b", "dt_boxes": [[0, 5], [9, 5], [9, 25], [0, 25]], "score": 0.9},
                              "0": {"rec_txt": "a", "dt_boxes": [[0, 0], [9, 0], [9, 10], [0, 10]], "score": 0.9}})
    assert peer.lines == (("a", 10.0), ("b", 20.0)) and not peer.reads_barcodes
    assert reading_from_peer({}).lines == ()
    with pytest.raises(CallFailedError):
        reading_from_peer([1, 2])


# ---- measuring loops with fake systems --------------------------------------------------------------------------


class _Fake:
    """A system that answers with a fixed reading and logs the order of calls."""

    kind = "raw"
    reads_text = True
    reads_barcodes = False

    def __init__(self, name: str, log: list[str], fail_on: str | None = None, types: tuple[str, ...] = ("product",)):
        self.name = name
        self._log = log
        self._fail_on = fail_on
        self._types = types

    def supports(self, doc_type: str) -> bool:
        return doc_type in self._types

    def call(self, item: SpeedItem) -> Answer:
        self._log.append(f"{self.name}:{item.name}")
        if item.name == self._fail_on:
            raise CallFailedError("boom")
        return Answer(Reading(lines=((item.truth.price or "", 10.0),)), server_ms=1.0, stages={"detect": 2.0})


def _tags(count: int) -> SpeedSet:
    items = [SpeedItem(f"t{i}", b"", "t.jpg", "product", Truth(price=str(100 + i))) for i in range(count)]
    return SpeedSet("price_tags", "tags", "product", items)


def test_latency_interleaves_systems_and_rotates_their_order() -> None:
    log: list[str] = []
    systems = [_Fake("a", log), _Fake("b", log), _Fake("c", log, types=("barcode",))]
    runs = speed_runs.measure_latency(_tags(2), systems, passes=2)
    assert set(runs) == {"a", "b"}  # c does not read this type
    assert log[:4] == ["a:t0", "b:t0", "b:t1", "a:t1"]
    assert len(log) == 8
    assert runs["a"].latency().n == 4 and len(runs["a"].scores) == 2  # only the first pass is scored
    assert aggregate("price_tags", runs["a"].scores, True, False).value == 100.0
    assert runs["a"].stage_medians() == {"detect": 2.0}
    assert speed_runs.paired_overhead_pct(runs["a"], runs["b"]) is not None


def test_latency_counts_failures_and_scores_them_as_misses() -> None:
    runs = speed_runs.measure_latency(_tags(3), [_Fake("a", [], fail_on="t1")], passes=1)
    assert runs["a"].latency().n == 2 and runs["a"].latency().errors == 1
    assert "t1" in runs["a"].errors[0]
    assert aggregate("price_tags", runs["a"].scores, True, False).value == pytest.approx(200 / 3)


def test_throughput_and_cache_hits_with_a_fake() -> None:
    log: list[str] = []
    burst = speed_runs.measure_throughput(_Fake("a", log, fail_on="t2"), _tags(3).items, concurrency=2, rounds=2)
    assert (burst.requests, burst.completed, burst.concurrency) == (6, 4, 2)
    assert burst.per_second is not None and burst.per_second > 0
    assert burst.latency.errors == 2
    hits = speed_runs.measure_cache_hits(_Fake("a", []), _tags(1).items[0], repeats=5)
    assert hits.n == 5


def test_paired_overhead_uses_the_median_ratio() -> None:
    api, direct = speed_runs.SystemRun(), speed_runs.SystemRun()
    api.by_item = {"x": [110.0, 120.0], "y": [300.0]}
    direct.by_item = {"x": [100.0, 100.0], "y": [100.0]}
    assert speed_runs.paired_overhead_pct(api, direct) == pytest.approx(20.0)
    assert speed_runs.paired_overhead_pct(api, speed_runs.SystemRun()) is None


# ---- CLI, peer and report ---------------------------------------------------------------------------------------


def test_speed_subcommand_arguments() -> None:
    args = cli.build_parser().parse_args(
        ["speed", "--price-tags", "5", "--concurrency", "1,4", "--variant", "one:EDGE_OCR__ONNX_THREADS=1",
         "--node-env", "EDGE_OCR__ONNX_SPIN_WAIT=true", "--no-peer"]
    )
    assert args.command == "speed" and args.price_tags == 5 and args.concurrency == (1, 4)
    assert args.variant == [("one", {"EDGE_OCR__ONNX_THREADS": "1"})]
    assert args.node_env == [{"EDGE_OCR__ONNX_SPIN_WAIT": "true"}]
    assert args.barcodes == speed.DEFAULT_COUNTS["barcodes"] and not args.setup_peer
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["speed", "--concurrency", "0"])


def test_env_pair_parsing() -> None:
    assert speed.parse_env_pairs("A=1, B_C=x=y,") == {"A": "1", "B_C": "x=y"}
    assert speed.parse_variant("n:A=1") == ("n", {"A": "1"})
    for bad in ("A", "=1", "A-B=1"):
        with pytest.raises(argparse.ArgumentTypeError):
            speed.parse_env_pairs(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        speed.parse_variant("A=1")


def test_peer_is_not_installed_in_an_empty_folder(tmp_path: Path) -> None:
    assert speed_peer.peer_python(tmp_path / "nothing") is None
    commands = speed_peer.setup_commands(tmp_path / "venv")
    assert commands[0][-2:] == ["venv", str(tmp_path / "venv")]
    assert all(package in commands[1] for package in speed_peer.PEER_PACKAGES)
    assert all("==" in package for package in speed_peer.PEER_PACKAGES)


def _report() -> speed.SpeedReport:
    tags = _tags(2)
    report = speed.SpeedReport("python -m bench speed", "2026-01-01 00:00 UTC", "2 cores", [tags], [], "installed")
    log: list[str] = []
    runs = speed_runs.measure_latency(tags, [_Fake(speed_report.OURS, log), _Fake(speed_report.PEER, log)], 1)
    report.latency["price_tags"] = runs
    report.accuracy["price_tags"] = {name: aggregate("price_tags", run.scores, True, False)
                                     for name, run in runs.items()}
    stats = speed_stats.summarize([10.0])
    report.throughput = {
        speed_report.OURS: [speed_runs.Burst(4, 10, 10, 1.0, stats)],
        speed_report.PEER: [speed_runs.Burst(4, 10, 10, 4.0, stats)],
    }
    report.peak_rss_mb = {speed_report.OURS: 350.0, speed_report.PEER: 900.0}
    report.cold_start_s = {"ours": [2.0, 1.0, 1.5], "peer": [2.5]}
    report.cache_hit = speed_stats.summarize([2.0, 3.0])
    return report


def test_report_markdown_and_json() -> None:
    report = _report()
    text = speed_report.render_markdown(report)
    assert text.startswith("### speed:")
    assert "| throughput at concurrency 4, ours / rapidocr-api (price tags) | >= 1.5x | 4.00x | met |" in text
    assert "| peak RSS of the node (default engines) | <= 400 MB | 350 MB | met |" in text
    assert "| cold start to healthy (median of the run's starts) | <= 3 s | 1.50 s | met |" in text
    assert "| cache hit, p50 | <= 5 ms | 2.5 ms | met |" in text
    assert "exact price 100.0%" in text
    payload = json.loads(json.dumps(report.as_dict(), default=str))
    assert payload["throughput"][speed_report.OURS][0]["per_second"] == 10.0
    assert payload["accuracy"]["price_tags"][speed_report.OURS]["value"] == 100.0


def test_targets_say_not_met_and_na() -> None:
    report = _report()
    report.peak_rss_mb[speed_report.OURS] = 650.0
    report.cache_hit = None
    text = speed_report.render_markdown(report)
    assert "| peak RSS of the node (default engines) | <= 400 MB | 650 MB | NOT met |" in text
    assert "| cache hit, p50 | <= 5 ms | n/a | n/a |" in text


def test_profile_parts_are_counted_once_per_stack_and_rendered() -> None:
    from types import SimpleNamespace

    from bench import speed_profile

    def frame(function: str, time: float, *children: SimpleNamespace, cls: str = "") -> SimpleNamespace:
        return SimpleNamespace(function=function, class_name=cls, time=time, children=list(children))

    run = frame("run", 0.5, cls="InferenceSession")
    tree = frame("<module>", 1.0, frame("run_image", 1.0, frame("recognize", 0.6, run, frame(
        "recognize", 0.1, cls="PpocrRecognizer"), cls="PpocrRecognizer")))
    totals: dict[str, float] = {}
    speed_profile._walk(tree, frozenset(), totals)
    assert totals == {"whole request": 1.0, "PP-OCR recognizer": 0.6, "onnxruntime run": 0.5}
    table = speed_profile.render({"ms_per_request": {"whole request": 100.0, "CTC decoding": 13.0}},
                                 {"ms_per_request": {"whole request": 38.0}}, "after")
    assert "| whole request | 100.0 | 38.0 |" in table and "| CTC decoding | 13.0 | - |" in table
