# make demo: install everything into .venv, then run the main job. make test: the test suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test clean

$(STAMP): pyproject.toml constraints.txt scripts/install-system-deps.sh scripts/install-web-deps.sh tests/engine/package-lock.json
	bash scripts/install-system-deps.sh
	bash scripts/install-web-deps.sh
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/kinetoscope generate "a red ball bounces on a gray floor" -o outputs/demo/ball.mp4
	$(BIN)/kinetoscope generate "a blue square slides to the left" --aspect 16:9 -o outputs/demo/square.mp4

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) outputs .pytest_cache
