"""The report page's Columns section: data and reference side by side, overlaid SVG histograms."""

from __future__ import annotations

import pandas as pd
from palmerpenguins import load_penguins

from app.reports.model import DatasetProfile
from app.reports.pages import render_report
from app.reports.profile_view import MAX_PROFILE_COLUMNS
from app.reports.profiles import profile_frame, profile_frames
from tests.reports.test_pages import NOW, Page, report

HOSTILE = '<script>alert(1)</script>"&'


def with_profiles(data: DatasetProfile, reference: DatasetProfile | None = None) -> str:
    profiles = {"data": data} | ({"reference": reference} if reference else {})
    return render_report(report([], profiles=profiles), now=NOW)


def test_each_column_shows_data_and_reference_with_one_overlaid_histogram() -> None:
    frame = load_penguins()
    data, reference = profile_frames(frame[frame["year"] == 2009], frame[frame["year"] < 2009])
    html = with_profiles(data, reference)
    page = Page(html)

    cards = page.find("article", "profile")
    assert len(cards) == len(frame.columns)
    assert {c["aria-label"] for c in cards} >= {"Column species", "Column body_mass_g"}
    numeric = frame.select_dtypes("number").columns
    histograms = page.find("svg", "histogram")
    assert len(histograms) == len(numeric)
    # Both sides drawn in each histogram, one rect per non-empty bin of each side.
    mass_data = next(c for c in data.columns if c.name == "body_mass_g")
    mass_ref = next(c for c in reference.columns if c.name == "body_mass_g")  # type: ignore[union-attr]
    drawn = sum(1 for b in mass_data.histogram if b.count) + sum(
        1 for b in mass_ref.histogram if b.count
    )
    assert len(page.find("rect", "hist-data")) + len(page.find("rect", "hist-reference")) >= drawn
    assert page.find("rect", "hist-reference") and page.find("rect", "hist-data")
    text = page.text
    assert "data reference rows" in text  # the stats table: one column per side
    # Top values of a string column, with counts and shares on both sides.
    adelie_data = int((frame[frame["year"] == 2009]["species"] == "Adelie").sum())
    assert f"Adelie {adelie_data:,} (" in text


def test_under_the_csp_the_section_has_no_script_and_no_inline_style() -> None:
    frame = load_penguins()
    data, reference = profile_frames(frame, frame.sample(100, random_state=1))
    html = with_profiles(data, reference)
    section = html[html.index('id="columns"') :]
    assert "<script" not in section
    assert "style=" not in section


def test_hostile_column_names_and_values_are_escaped_in_tables_and_svg() -> None:
    frame = pd.DataFrame({HOSTILE: [1.0, 2.0, 3.0], "s": [HOSTILE, HOSTILE, "b"]})
    html = with_profiles(profile_frame(frame))
    page = Page(html)
    assert HOSTILE not in html
    assert not page.find("script")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The name as text: card heading, SVG title and aria-label; the value in the top table.
    assert page.text.count(HOSTILE) >= 3
    assert any(HOSTILE in attrs.get("aria-label", "") for _, attrs in page.tags)


def test_a_report_without_a_reference_shows_the_data_alone() -> None:
    html = with_profiles(profile_frame(load_penguins()))
    page = Page(html)
    assert "no reference was given" in page.text
    assert not page.find("rect", "hist-reference")
    assert page.find("rect", "hist-data")


def test_columns_missing_on_one_side_are_named_as_such() -> None:
    data, reference = profile_frames(
        pd.DataFrame({"a": [1, 2], "new": ["x", "y"]}), pd.DataFrame({"a": [1, 3], "old": [1, 2]})
    )
    text = Page(with_profiles(data, reference)).text
    assert "Not in the reference." in text
    assert "Only in the reference." in text


def test_a_report_without_profiles_has_no_columns_section() -> None:
    html = render_report(report([]), now=NOW)
    assert 'id="columns"' not in html


def test_a_wide_dataset_draws_a_bounded_number_of_cards() -> None:
    frame = pd.DataFrame({f"c{i}": [i, i + 1] for i in range(MAX_PROFILE_COLUMNS + 50)})
    page = Page(with_profiles(profile_frame(frame)))
    assert len(page.find("article", "profile")) == MAX_PROFILE_COLUMNS
    assert "50 more columns not shown here" in page.text


def test_dates_are_shown_as_dates_and_sample_profiles_say_so() -> None:
    frame = pd.DataFrame({"at": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-02-01"])})
    profile = profile_frame(frame).model_copy(update={"sampled_rows": 3, "rows": 1000})
    text = Page(with_profiles(profile)).text
    assert "2024-01-01" in text and "2024-03-01" in text
    assert "profiled on a sample of 3 rows" in text


def test_a_column_of_dates_here_and_epoch_numbers_in_the_reference_renders() -> None:
    # Milliseconds since 1970 read as seconds are beyond the years a datetime holds: the page
    # draws the data's dates alone and says the kinds differ, instead of failing.
    dates = pd.DataFrame({"ts": pd.date_range("2026-01-01", periods=50, freq="h")})
    millis = pd.DataFrame({"ts": [1.7e12 + i * 3.6e6 for i in range(50)]})
    data, reference = profile_frames(dates, millis)
    page = Page(with_profiles(data, reference))
    assert "A datetime column here, number in the reference." in page.text
    assert len(page.find("svg", "histogram")) == 1
