"""Write the README's results table from the metrics that `make figs` saved in results/*.json, and
the printed output of each lesson (results/*.txt) into its marked example block in the README."""

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
    "dnn_batchnorm": "bigram model of the dev words (dev loss)",
    "cnn_digits": "logistic regression (test cross-entropy, centred digits)",
    "ddp_training": "one process, whole batches (DDP: 2 workers)",
    "transformer_names": "bigram model of the dev words (dev loss)",
}


def table():
    rows = [
        "| lesson | loss | reference | gap | training seconds | reference is |",
        "|-|-|-|-|-|-|",
    ]
    for lesson, reference in LESSONS.items():
        m = json.loads((REPO / "results" / f"{lesson}.json").read_text())
        loss = m["dev_loss"] if lesson in ("mlp_embedding", "dnn_batchnorm", "transformer_names") else m["loss"]
        rows.append(
            f"| ={lesson}.py= | {loss:.6g} | {m['ref_loss']:.6g} | {m['gap']:.3g} | {m['seconds']:.2f} | {reference} |"
        )
    return "\n".join(rows)


def main():
    readme = REPO / "README.org"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    text = f"{head}{START}\n{table()}\n{END}{tail}"
    for lesson in LESSONS:
        printed = REPO / "results" / f"{lesson}.txt"
        start, end = f"# output of {lesson}.py: start\n#+begin_example\n", "#+end_example\n# output: end"
        if printed.is_file() and start in text:
            head, rest = text.split(start, 1)
            _, tail = rest.split(end, 1)
            text = f"{head}{start}{printed.read_text()}{end}{tail}"
    readme.write_text(text)
    print(f"{readme}: results table and printed outputs written")


if __name__ == "__main__":
    main()
