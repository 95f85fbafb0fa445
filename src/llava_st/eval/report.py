"""Published numbers (SPEC §9) and the report's side-by-side markdown table.

The paper's columns are percentages. Our metrics map to them per mode:
published-compatible fractions (``miou``, ``mtiou``, ``msiou``, caption
scores) are multiplied by 100; canonical metrics are already percentages.
The paper's "sIoU" columns are taken to be the release's intersection-averaged
``msiou``/``siou@x`` (canonical ``m_sIoU``/``sIoU@x``), EVAL-PROTOCOL §3.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

#: LLaVA-ST-7B's published results: (benchmark, split) -> paper column -> value.
PUBLISHED: dict[tuple[str, str | None], dict[str, float]] = {
    ("refcoco", "val"): {"Acc@0.5": 90.1},
    ("refcoco", "testA"): {"Acc@0.5": 93.2},
    ("refcoco", "testB"): {"Acc@0.5": 85.0},
    ("refcoco+", "val"): {"Acc@0.5": 86.0},
    ("refcoco+", "testA"): {"Acc@0.5": 91.3},
    ("refcoco+", "testB"): {"Acc@0.5": 78.8},
    ("refcocog", "val"): {"Acc@0.5": 86.7},
    ("refcocog", "test"): {"Acc@0.5": 87.4},
    ("charades-sta", None): {"R@0.3": 63.1, "R@0.5": 44.8, "R@0.7": 23.4, "mIoU": 42.4},
    ("stvg", None): {"tIoU@0.5": 44.6, "m_tIoU": 43.8, "sIoU@0.5": 21.1, "m_sIoU": 22.8},
    ("elc", None): {"tIoU@0.5": 60.4, "m_tIoU": 60.0, "sIoU@0.5": 32.4, "m_sIoU": 33.5, "METEOR": 24.7},
    ("svg", None): {"sIoU@0.3": 47.2, "sIoU@0.5": 30.9, "m_sIoU": 32.5},
}

#: Remarks on single published numbers.
PUBLISHED_REMARKS: dict[tuple[str, str], str] = {
    ("elc", "m_tIoU"): "unverifiable: the released scorer gives tIoU 0 to every 'Ends in' answer",
    ("elc", "tIoU@0.5"): "unverifiable: the released scorer gives tIoU 0 to every 'Ends in' answer",
}


def _get(key: str, scale: float = 1.0) -> Callable[[Mapping[str, Any]], float | None]:
    def read(m: Mapping[str, Any]) -> float | None:
        v = m.get(key)
        return None if v is None else float(v) * scale

    return read


def _caption(name: str) -> Callable[[Mapping[str, Any]], float | None]:
    def read(m: Mapping[str, Any]) -> float | None:
        v = (m.get("caption_score") or {}).get(name)
        return None if v is None else float(v) * 100

    return read


def _readers(bench: str, mode: str) -> dict[str, Callable[[Mapping[str, Any]], float | None]]:
    pub = mode == "published"
    if bench in ("refcoco", "refcoco+", "refcocog"):
        return {"Acc@0.5": _get("R1@(0.5)" if pub else "Acc@0.5")}
    if bench == "charades-sta":
        out = {f"R@{x}": _get(f"R1@({x})" if pub else f"R@{x}") for x in (0.3, 0.5, 0.7)}
        out["mIoU"] = _get("miou", 100.0) if pub else _get("mIoU")
        return out
    out = {}
    for x in (0.3, 0.5, 0.7):
        out[f"tIoU@{x}"] = _get(f"tiou@{x}" if pub else f"tIoU@{x}")
        out[f"sIoU@{x}"] = _get(f"siou@{x}" if pub else f"sIoU@{x}")
    out["m_tIoU"] = _get("mtiou", 100.0) if pub else _get("m_tIoU")
    out["m_sIoU"] = _get("msiou", 100.0) if pub else _get("m_sIoU")
    out["METEOR"] = _caption("METEOR") if pub else _get("METEOR")
    return out


def comparison(bench: str, split: str | None, mode: str, metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{"metric", "ours", "published", "remark"?}`` for the paper's columns of this benchmark (may be empty)."""
    published = PUBLISHED.get((bench, split))
    if published is None:
        return []
    readers = _readers(bench, mode)
    rows = []
    for col, value in published.items():
        row: dict[str, Any] = {"metric": col, "ours": readers[col](metrics), "published": value}
        remark = PUBLISHED_REMARKS.get((bench, col))
        if remark:
            row["remark"] = remark
        rows.append(row)
    return rows


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1 else f"{v:.2f}"
    return str(v)


def markdown(report: Mapping[str, Any]) -> str:
    """A markdown summary of a score report: our numbers beside the published ones, all metrics, the mode's notes."""
    title = report["bench"] + (f" {report['split']}" if report.get("split") else "")
    lines = [
        f"# {title}: {report['mode']}",
        "",
        f"{report['num_scored']} of {report['num_annotations']} samples scored from `{report['data']}`.",
        "",
    ]
    rows = report.get("published") or []
    if rows:
        lines += ["| metric | ours | LLaVA-ST-7B (paper) | remark |", "|---|---|---|---|"]
        for r in rows:
            ours = "-" if r["ours"] is None else f"{r['ours']:.1f}"
            lines.append(f"| {r['metric']} | {ours} | {r['published']:.1f} | {r.get('remark', '')} |")
        lines.append("")
    lines += ["| key | value |", "|---|---|"]
    for key, value in report["metrics"].items():
        if isinstance(value, dict):
            for sub, v in value.items():
                lines.append(f"| {key}.{sub} | {_fmt(v)} |")
        else:
            lines.append(f"| {key} | {_fmt(value)} |")
    lines += ["", "What this mode does:", ""]
    lines += [f"- {note}" for note in report.get("mode_notes", [])]
    return "\n".join(lines) + "\n"


__all__ = ["PUBLISHED", "PUBLISHED_REMARKS", "comparison", "markdown"]
