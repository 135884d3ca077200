# `make demo` and `make test` each set up everything on a fresh machine: a .venv with the
# pinned torch stack (constraints.txt), the package in editable mode, then the job.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_output

.PHONY: demo test bench gpu-check clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml constraints.txt setup.py tests/plugin_example/pyproject.toml
	$(PY) -m pip install --upgrade "pip>=23" setuptools wheel
	$(PY) -m pip install -c constraints.txt torch==2.14.1 torchvision==0.29.1 triton==3.8.0
	$(PY) -m pip install -c constraints.txt -e ".[test]"
	$(PY) -m pip install -c constraints.txt -e tests/plugin_example
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m rawzoom_isp.cli demo -o $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/isp_throughput.py
	$(PY) benchmarks/zoom_throughput.py
	$(PY) benchmarks/cobi_kernel.py --quick

# On a machine with a CUDA GPU: builds the extension, runs every GPU test and the GPU benchmarks,
# writes benchmarks/GPU_RESULTS.md.
gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info
