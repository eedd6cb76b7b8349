"""The `edge-node` command line, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jwt
from support import encode, render_lines

SECRET = "cli-secret-that-is-long-enough-for-hs256!"


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": "/usr/bin:/bin", "EDGE_JWT_SECRET": SECRET, "EDGE_SHOP_ID": "shop-cli", **env}
    return subprocess.run(
        [sys.executable, "-m", "edge_node", *args], capture_output=True, text=True, env=environ, cwd=tmp_path,
        timeout=120, check=False,
    )


def test_token_is_signed_for_the_shop(tmp_path: Path) -> None:
    done = _run(["token", "--user-id", "clerk7", "--ttl", "60"], tmp_path)
    assert done.returncode == 0, done.stderr
    claims = jwt.decode(done.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "clerk7" and claims["shop_id"] == "shop-cli"
    assert claims["exp"] - claims["iat"] == 60


def test_ocr_prints_one_json_line_per_file(tmp_path: Path) -> None:
    good = tmp_path / "label.png"
    good.write_bytes(encode(render_lines(["SUGAR 1 kg", "Tk 95"])))
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    done = _run(["ocr", str(good), str(bad), str(good), "--type", "product"], tmp_path)
    assert done.returncode == 1  # one file failed
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["success"] for r in records] == [True, False, True]
    assert "SUGAR" in records[0]["result"]["text"]
    assert records[1]["error"]["code"] == "INVALID_IMAGE"
    assert "3/3" in done.stderr  # progress bar for several files


def test_bad_config_names_the_field_and_exits_non_zero(tmp_path: Path) -> None:
    done = _run(["token", "--user-id", "u"], tmp_path, EDGE_SERVER__PORT="0")
    assert done.returncode == 2
    assert "server.port" in done.stderr
