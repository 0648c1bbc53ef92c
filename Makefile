# Regenerate what the README shows, from default runs of every lesson.
PYTHON ?= .venv/bin/python
LESSONS = LR_noDatasetClass LR_miniBatch_datasetDataLoader LR_miniBatch_PyTorchWay LogReg_PyTorch softmax_classifier mlp_embedding dnn_batchnorm cnn_digits ddp_training transformer_names

.PHONY: figs html test bench

figs:  ## every figure in figs/, every lesson's metrics and printed output in results/, and the README's copies of them
	for lesson in $(LESSONS); do \
	  $(PYTHON) $$lesson.py --metrics results/$$lesson.json > results/$$lesson.txt || exit 1; cat results/$$lesson.txt; \
	done
	$(PYTHON) results/make_table.py

html:  ## course.md (committed; GitHub typesets its math) and README.html (MathML) from README.org; pandoc comes from PyPI
	$(PYTHON) -m pip install -q pypandoc_binary==1.17
	$(PYTHON) tools/typeset.py

test:
	$(PYTHON) -m pytest

bench:
	$(PYTHON) -m bench
