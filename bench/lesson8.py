"""cnn_digits: training time and test accuracy of each model, centred and shifted, in one run (and with --augment)."""

import cnn_digits as lesson

MODELS = {"cnn": "CNN", "mlp": "MLP", "svc": "SVC (RBF)", "logreg": "logistic regression"}


def rows(timed):
    table = []
    for flags in [[], ["--augment"]]:
        metrics, _ = timed(lesson.main, ["--quiet", "--no-figure", *flags], repeat=1)
        for name, model in MODELS.items():
            table.append(
                {
                    "model": model,
                    "networks trained on": "random positions" if flags else "centred digits",
                    "parameters": metrics.get(f"{name}_parameters") or "-",
                    "training seconds": f"{metrics[f'{name}_seconds']:.1f}",
                    "centred": f"{metrics[f'{name}_centred']:.1%}",
                    "shifted": f"{metrics[f'{name}_shifted']:.1%}",
                }
            )
    args = lesson.parse_args([])
    return (
        f"test accuracy on a {args.canvas} x {args.canvas} canvas, digits centred and at every other position "
        "(the classical models see one extra random position per digit with --augment; CPU)"
    ), table
