"""`newsradar extract FILE...`: one JSON object per file, in order; bad files do not stop the run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from commands.main import app
from stack.replay import SAMPLE_SITE

MANIFEST = {m["path"]: m for m in json.loads((SAMPLE_SITE / "MANIFEST.json").read_text(encoding="utf-8"))}

PAGE = """<!DOCTYPE html>
<html lang="de"><head><meta charset="utf-8">
<title>Bundesamt prüft KI-Modell – Testblatt</title>
<link rel="canonical" href="/artikel/ki-pruefung.html?utm_source=x">
<meta property="article:published_time" content="2026-11-20T10:30:00+01:00">
<meta name="author" content="Erika Muster">
</head><body><article><h1>Bundesamt prüft KI-Modell</h1>
<p>Das Bundesamt für Sicherheit in der Informationstechnik prüft ein neues Sprachmodell auf Schwachstellen.
Die Prüfung soll bis Ende des Jahres abgeschlossen sein, teilte die Behörde am Freitag mit.</p>
<p>Hersteller müssen dafür Zugang zu Trainingsdaten und Modellgewichten gewähren. Kritiker bemängeln,
dass die Ergebnisse nicht veröffentlicht werden sollen und die Öffentlichkeit so wenig erfährt.</p>
</article></body></html>"""


def _run(args: list[str]) -> tuple[int, list[dict[str, object]]]:
    result = CliRunner().invoke(app, ["extract", *args])
    return result.exit_code, [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_extract_prints_one_object_per_file_in_order(tmp_path: Path) -> None:
    gbk = "/xinzhi/2026/11/openai-tingzhi-api-zhipu-qianyi.html"
    latin = "/netzwacht/2026/11/italien-datenschutz-sperrt-deepseek.html"
    english = "/circuit-daily/2026/11/kling-refuses-tiananmen-prompts.html"
    unreadable = tmp_path / "missing.html"
    files = [
        SAMPLE_SITE / gbk.lstrip("/"),
        unreadable,
        SAMPLE_SITE / latin.lstrip("/"),
        SAMPLE_SITE / english.lstrip("/"),
    ]
    code, records = _run([str(f) for f in files])
    assert code == 0
    assert [r["file"] for r in records] == [str(f) for f in files]
    assert "error" in records[1] and "title" not in records[1]
    for record, path in ((records[0], gbk), (records[2], latin), (records[3], english)):
        assert record["title"] == MANIFEST[path]["title"]
        assert record["lang"] == MANIFEST[path]["lang"]
        assert {
            "file",
            "title",
            "text",
            "published",
            "authors",
            "lang",
            "published_source",
            "encoding",
            "canonical_url",
            "paywall",
        } <= set(record)
        assert str(record["published"])[:10] == MANIFEST[path]["published"][:10]
    assert records[0]["encoding"] == "gb18030"  # GBK bytes decoded, not mojibake
    assert "\n\n" in str(records[3]["text"]) and "\n\n\n" not in str(records[3]["text"])


def test_extract_url_option_and_fields(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(PAGE, encoding="utf-8")
    code, [record] = _run(["--url", "https://testblatt.example/artikel/ki-pruefung.html", str(page)])
    assert code == 0
    assert record["title"] == "Bundesamt prüft KI-Modell"
    assert record["lang"] == "de"
    assert record["published"] == "2026-11-20T10:30:00+01:00"
    assert record["published_source"] == "meta"
    assert record["authors"] == ["Erika Muster"]
    assert str(record["canonical_url"]).startswith("https://testblatt.example/artikel/ki-pruefung.html")
    paragraphs = str(record["text"]).split("\n\n")
    assert any(p.startswith("Das Bundesamt") for p in paragraphs)
    assert any(p.startswith("Hersteller") for p in paragraphs)  # each <p> its own paragraph


def test_extract_as_a_subprocess_with_empty_and_binary_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.html"
    empty.write_bytes(b"")
    binary = tmp_path / "image.html"
    binary.write_bytes(bytes(range(256)) * 20)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "newsradar"), "extract", str(empty), str(binary), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["file"] for r in records] == [str(empty), str(binary), str(tmp_path)]
    assert records[0]["title"] == "" and records[0]["text"] == "" and records[0]["published"] is None
    assert "error" not in records[1]
    assert "error" in records[2]  # a directory is not a readable file
