"""How the detection benchmark counts a run: detected, said too small to tell, or missed."""

from __future__ import annotations

from typing import Any

from bench.detection import Run, attribute, summary_table


def run(defect: str, status: str, **fields: Any) -> Run:
    return Run(
        dataset="wine",
        group="tuning",
        band="<1k",
        rows=178,
        seed=0,
        train_share=0.8,
        defect=defect,
        planted_columns=fields.pop("planted_columns", []),
        http_status=200,
        status=status,
        report_id="r",
        seconds=1.0,
        **fields,
    )


def test_a_skipped_check_that_answers_the_defect_is_told_not_silent() -> None:
    clean = run("clean", "passed")
    leak = run(
        "label_leak_existing_column",
        "passed",
        planted_columns=["malic_acid"],
        skipped=[["FeatureLabelCorrelationChange", None]],
    )
    unrelated = run("shift_0.5sd", "passed", skipped=[["FeatureLabelCorrelationChange", None]])
    caught = run(
        "sentinel_values", "failed", failed=[["expect_x", "malic_acid", "critical", False]]
    )
    runs = attribute([clean, leak, unrelated, caught])
    assert leak.told_too_small and not leak.detected
    assert not unrelated.told_too_small
    assert caught.detected and not caught.told_too_small
    row = next(line for line in summary_table(runs).splitlines() if line.startswith("| **all**"))
    # 1 of 3 detected; of the two others one was said too small, one missed silently.
    assert row.endswith("| 1/3 (33.3%) | 1 / 1 |")


def test_row_plants_a_table_cannot_show_leave_the_identifiable_recall() -> None:
    copied = run("copied_rows", "passed", identifiable=False)
    caught = run("copied_rows", "failed", failed=[["TrainTestSamplesMix", None, "critical", False]])
    runs = attribute([run("clean", "passed"), copied, caught])
    row = next(line for line in summary_table(runs).splitlines() if line.startswith("| **all**"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == "1/2 (50.0%)"  # every plant
    assert cells[7] == "1/1 (100.0%)"  # identifiable plants only
