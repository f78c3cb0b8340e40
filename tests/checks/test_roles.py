"""Column roles: parsing what a request or suite sends, and refusing roles the data cannot fill."""

from __future__ import annotations

import pytest

from app.checks.roles import ColumnRoles, validate_roles
from app.core.errors import InvalidRequest

COLUMNS = ["id", "day", "carat", "color", "price"]


def test_comma_separated_lists_from_a_form_become_lists() -> None:
    roles = ColumnRoles.model_validate({"categorical": "color, cut", "features": "carat,color"})

    assert roles.categorical == ["color", "cut"]
    assert roles.features == ["carat", "color"]


def test_blank_form_fields_mean_no_role() -> None:
    roles = ColumnRoles.model_validate({"label": "", "datetime": "  ", "index": None})

    assert roles.special_columns() == []


def test_features_default_to_every_column_without_another_role() -> None:
    roles = ColumnRoles(label="price", datetime="day", index="id")

    assert roles.feature_columns(COLUMNS) == ["carat", "color"]


def test_given_features_are_used_as_given() -> None:
    roles = ColumnRoles(label="price", features=["carat"])

    assert roles.feature_columns(COLUMNS) == ["carat"]


def test_roles_that_all_exist_are_accepted() -> None:
    roles = ColumnRoles(label="price", datetime="day", index="id", categorical=["color"])

    validate_roles(roles, COLUMNS, dataset="data")


@pytest.mark.parametrize(
    ("roles", "missing"),
    [
        (ColumnRoles(label="target"), "target"),
        (ColumnRoles(datetime="date"), "date"),
        (ColumnRoles(index="row_id"), "row_id"),
        (ColumnRoles(categorical=["colour"]), "colour"),
        (ColumnRoles(features=["carat", "weight"]), "weight"),
    ],
)
def test_role_naming_a_missing_column_is_rejected_naming_column_and_dataset(
    roles: ColumnRoles, missing: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_roles(roles, COLUMNS, dataset="reference")

    assert caught.value.status_code == 422
    assert repr(missing) in caught.value.message
    assert "reference dataset" in caught.value.message


def test_one_column_cannot_be_both_label_and_index() -> None:
    with pytest.raises(InvalidRequest, match="different columns"):
        validate_roles(ColumnRoles(label="id", index="id"), COLUMNS, dataset="data")


def test_label_listed_among_features_is_rejected() -> None:
    with pytest.raises(InvalidRequest, match="'price'"):
        validate_roles(
            ColumnRoles(label="price", features=["price", "carat"]), COLUMNS, dataset="data"
        )


def test_categorical_column_that_is_not_a_feature_is_rejected() -> None:
    roles = ColumnRoles(label="price", features=["carat"], categorical=["color"])

    with pytest.raises(InvalidRequest, match="'color' is listed as categorical"):
        validate_roles(roles, COLUMNS, dataset="data")


def test_unknown_role_name_is_refused() -> None:
    with pytest.raises(ValueError, match="target"):
        ColumnRoles.model_validate({"target": "price"})
