# Thin wrappers around course.py, which needs only Python >= 3.11 and pip.
PYTHON ?= python3
PROFILE ?= smoke

.PHONY: lab test setup outputs notebooks bench
lab:        ## open JupyterLab on notebooks/ (sets up .venv the first time)
	$(PYTHON) course.py lab
test:       ## unit tests + every notebook under nbval in the smoke profile
	$(PYTHON) course.py test
setup:      ## create/refresh .venv with the tested versions
	$(PYTHON) course.py setup
outputs:    ## regenerate committed notebook outputs (class profile)
	$(PYTHON) course.py outputs
notebooks:  ## headless run of every notebook: executed copies, HTML, summary table
	$(PYTHON) course.py setup && .venv/bin/python -m course_lib run-notebooks --profile $(PROFILE)
bench:      ## time-to-quality and throughput of every chapter (JSON + benchmarks/RESULTS.md)
	$(PYTHON) course.py setup && .venv/bin/python benchmarks/run.py --profile $(PROFILE)
