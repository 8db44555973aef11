PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install train test lint bench bench-trainer bench-threads bench-sweep tensorboard clean

install: $(BIN)/torchprac

$(BIN)/torchprac: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,sweep]'
	@touch $@

train: install
	$(BIN)/python train.py $(ARGS)

test: install
	$(BIN)/python -m pytest -q $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# `make bench`: all three (bench/README.md); ARGS go to bench_trainer.py (e.g. ARGS="--device cuda"),
# THREADS_ARGS to bench_threads.py, SWEEP_ARGS to bench_sweep.py. One at a time: make bench-trainer.
bench: bench-trainer bench-threads bench-sweep

bench-trainer: install
	$(BIN)/python bench/bench_trainer.py $(ARGS)

bench-threads: install
	$(BIN)/python bench/bench_threads.py $(THREADS_ARGS)

bench-sweep: install
	$(BIN)/python bench/bench_sweep.py $(SWEEP_ARGS)

tensorboard: install
	$(BIN)/tensorboard --logdir outputs $(ARGS)

clean:
	rm -rf outputs multirun .pytest_cache
