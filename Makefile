# Regenerate what the README shows, from default runs of every lesson.
PYTHON ?= .venv/bin/python
LESSONS = LR_noDatasetClass LR_miniBatch_datasetDataLoader LR_miniBatch_PyTorchWay LogReg_PyTorch softmax_classifier mlp_embedding

.PHONY: figs html test bench

figs:  ## every figure in figs/, every lesson's metrics in results/, and the README's results table
	for lesson in $(LESSONS); do $(PYTHON) $$lesson.py --metrics results/$$lesson.json || exit 1; done
	$(PYTHON) results/make_table.py

html:  ## README.html: the course as one page, math rendered as MathML (pandoc comes from PyPI)
	$(PYTHON) -m pip install -q pypandoc_binary
	$(PYTHON) -c "import pypandoc; pypandoc.convert_file('README.org', 'html5', outputfile='README.html', extra_args=['--standalone', '--mathml', '--toc', '--metadata', 'title=PyTorch lessons'])"

test:
	$(PYTHON) -m pytest

bench:
	$(PYTHON) -m bench
