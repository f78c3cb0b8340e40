"""Airflow: validate the day's extract before the training task runs.

The gate task fails (non-zero exit) when the data fails its suite, so `train` never starts.
DATAGATE_URL and DATAGATE_API_KEY come from the worker's environment (or an Airflow
connection rendered into `env`).
"""

from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

# One line, exit 0 passed, 1 failed, 2 error; the report JSON is kept beside the extract.
GATE_COMMAND = (
    "datagate validate {{ params.data }} --suite {{ params.suite }} "
    "--output {{ params.data }}.datagate.json"
)

with DAG(
    dag_id="penguins_training",
    start_date=datetime(2026, 1, 1),
    schedule="@daily",
    catchup=False,
    params={"data": "/data/penguins.csv", "suite": "penguins"},
) as dag:
    gate = BashOperator(task_id="datagate", bash_command=GATE_COMMAND, append_env=True)
    train = BashOperator(
        task_id="train", bash_command="python train.py {{ params.data }} /models/penguins.pkl"
    )
    gate >> train
