"""Write the README's results table from the metrics that `make figs` saved in results/*.json."""

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START, END = "# results table: start (written by results/make_table.py)", "# results table: end"
LESSONS = {
    "LR_noDatasetClass": "closed-form least squares",
    "LR_miniBatch_datasetDataLoader": "closed-form least squares",
    "LR_miniBatch_PyTorchWay": "scikit-learn LinearRegression",
    "LogReg_PyTorch": "scikit-learn LogisticRegression",
    "softmax_classifier": "count-based bigram model",
    "mlp_embedding": "bigram model of the dev words (dev loss)",
}


def table():
    rows = [
        "| lesson | loss | reference | gap | training seconds | reference is |",
        "|-|-|-|-|-|-|",
    ]
    for lesson, reference in LESSONS.items():
        m = json.loads((REPO / "results" / f"{lesson}.json").read_text())
        loss = m["dev_loss"] if lesson == "mlp_embedding" else m["loss"]
        rows.append(
            f"| ={lesson}.py= | {loss:.6g} | {m['ref_loss']:.6g} | {m['gap']:.3g} | {m['seconds']:.2f} | {reference} |"
        )
    return "\n".join(rows)


def main():
    readme = REPO / "README.org"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{table()}\n{END}{tail}")
    print(f"{readme}: results table written")


if __name__ == "__main__":
    main()
