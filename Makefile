PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install train test lint bench tensorboard clean

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

bench: install
	$(BIN)/python bench/bench_trainer.py $(ARGS)

tensorboard: install
	$(BIN)/tensorboard --logdir outputs $(ARGS)

clean:
	rm -rf outputs multirun .pytest_cache
