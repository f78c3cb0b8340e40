"""Train a penguin species classifier, but only on data that passed the datagate gate.

DATAGATE_URL=http://127.0.0.1:8000 python train.py data/penguins.csv model.pkl
"""

import pickle
import subprocess
import sys

import pandas as pd
from sklearn.ensemble import RandomForestClassifier


def main(data: str, model_path: str) -> int:
    # The gate: 0 passed, 1 failed, 2 could not validate. Anything but 0 stops training.
    gate = subprocess.run(
        ["datagate", "validate", data, "--suite", "penguins", "--output", "datagate-report.json"],
        check=False,
    )
    if gate.returncode != 0:
        print(f"not training: datagate exited {gate.returncode}", file=sys.stderr)
        return gate.returncode

    frame = pd.read_csv(data).dropna()
    features = frame[["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]]
    model = RandomForestClassifier(n_estimators=50, random_state=0).fit(features, frame["species"])
    with open(model_path, "wb") as handle:
        pickle.dump(model, handle)
    print(f"trained on {len(frame)} rows; model in {model_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
