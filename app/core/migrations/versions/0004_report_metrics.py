"""report_metrics table: one row per (report, figure), for trends over a dataset's runs

Reports stored before this revision get no rows here (no backfill: it would parse every stored
document inside a migration); their runs are absent from trends, as docs/trends.md says.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("report_id", sa.String(32), nullable=False),
        sa.Column("dataset_name", sa.String(512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("threshold", sa.Float, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
    )
    op.create_index("ix_report_metrics_report_id", "report_metrics", ["report_id"])
    op.create_index(
        "ix_report_metrics_dataset_created", "report_metrics", ["dataset_name", "created_at"]
    )
    # The newest `limit` verdicts of a dataset, read without visiting its other figures.
    op.create_index(
        "ix_report_metrics_dataset_metric_created",
        "report_metrics",
        ["dataset_name", "metric", "created_at", "report_id"],
    )
    op.create_index("ix_reports_dataset_created", "reports", ["dataset_name", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_reports_dataset_created", table_name="reports")
    op.drop_table("report_metrics")
