"""reports table

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("suite", sa.String(128), nullable=True),
        sa.Column("dataset_name", sa.String(512), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("warned", sa.Integer, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_index("ix_reports_created_at", "reports", ["created_at"])
    op.create_index("ix_reports_status", "reports", ["status"])
    op.create_index("ix_reports_suite", "reports", ["suite"])
    op.create_index("ix_reports_dataset_name", "reports", ["dataset_name"])
    op.create_index("ix_reports_created_id", "reports", ["created_at", "id"])


def downgrade() -> None:
    op.drop_table("reports")
