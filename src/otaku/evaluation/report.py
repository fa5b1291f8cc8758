"""Markdown and JSON tables of an evaluation."""

import json
from dataclasses import asdict
from pathlib import Path

from otaku.evaluation.reference import REFERENCE_PROTOCOL_NOTE
from otaku.evaluation.runner import EvaluationResult


def to_markdown(result: EvaluationResult, k: int = 10) -> str:
    """The evaluation as Markdown tables."""
    lines = ["# otaku evaluation\n", f"Data: {result.info.get('data', '?')}  "]
    for key, value in result.info.items():
        if key != "data":
            lines.append(f"{key}: {value}  ")
    lines += [
        "",
        f"## Held-out protocol (DESIGN.md): top-{k}, relevant = held-out rating >= 7",
        "",
        f"| model | kind | users | P@{k} | R@{k} | NDCG@{k} | coverage "
        f"| default − this, NDCG@{k} [95% CI] |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result.ranking:
        versus = row.default_minus_this
        marked = "" if versus is None else f"{versus}{' *' if versus.significant else ''}"
        lines.append(
            f"| {row.model} | {row.kind} | {row.users} | {row.precision:.4f} | {row.recall:.4f} "
            f"| {row.ndcg:.4f} | {row.coverage:.4f} | {marked} |"
        )
    lines += [
        "",
        "Every row is ranked by the served engine (the API's code path). The last column is the "
        "default's NDCG@10 minus the row's on the same users, with a paired bootstrap 95% "
        "interval over users (2000 resamples); * = the interval excludes 0.",
    ]
    lines += _tuning_lines(result)
    if result.rating:
        lines += [
            "",
            "## Rating model (LightGBM) on held-out test ratings",
            "",
            "| MAE | median AE | ratings | trees |",
            "|---:|---:|---:|---:|",
            f"| {result.rating['mae']:.4f} | {result.rating['median_ae']:.4f} "
            f"| {int(result.rating['ratings'])} | {int(result.rating['trees'])} |",
        ]
    lines += ["", "## The reference's own published protocols (not held-out measures)", ""]
    overlaps = [row for row in result.ranking if row.reference_overlap is not None]
    if overlaps:
        lines += [f"| model | overlap of top {k} with top-rated watched |", "|---|---:|"]
        lines += [f"| {row.model} | {row.reference_overlap:.4f} |" for row in overlaps]
        lines.append("")
    if result.lightfm_own:
        lines.append(
            "LightFM alone on a random 20% interaction split (lightfm.evaluation): "
            + ", ".join(f"{key} = {value:.4f}" for key, value in result.lightfm_own.items())
            + " (reference: precision@10 0.130, recall@10 0.091)."
        )
        lines.append("")
    lines.append(REFERENCE_PROTOCOL_NOTE)
    return "\n".join(lines) + "\n"


def _tuning_lines(result: EvaluationResult) -> list[str]:
    if not result.tuning:
        return []
    lines = [
        "",
        "## Baselines tuned on a validation split of the training users",
        "",
        "| baseline | chosen parameters | validation NDCG@10 | grid points |",
        "|---|---|---:|---:|",
    ]
    for name, tuned in result.tuning.items():
        lines.append(
            f"| {name} | {tuned['chosen']} | {tuned['validation_ndcg']:.4f} "
            f"| {len(tuned['tried'])} |"
        )
    return lines


def write_reports(result: EvaluationResult, directory: Path, k: int = 10) -> tuple[Path, Path]:
    """Write ``evaluation.md`` and ``evaluation.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    markdown = directory / "evaluation.md"
    markdown.write_text(to_markdown(result, k))
    payload = {
        "ranking": [asdict(row) for row in result.ranking],
        "rating": result.rating,
        "lightfm_own": result.lightfm_own,
        "tuning": result.tuning,
        "info": result.info,
        "reference_protocol_note": REFERENCE_PROTOCOL_NOTE,
    }
    table = directory / "evaluation.json"
    table.write_text(json.dumps(payload, indent=2, default=str))
    return markdown, table
