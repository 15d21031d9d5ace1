# The two commands (see README): `make run` and `make test`. Both set everything up first.
.PHONY: run test setup setup-test stop lint bench

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh test

run: setup
	.venv/bin/newsradar run

test: setup-test
	.venv/bin/python -m pytest

# Everything `make run` started: web UI, mail sink, replay server, Airflow (either executor), Elasticsearch.
stop:
	.venv/bin/newsradar stop

lint: setup-test
	.venv/bin/ruff check .
	.venv/bin/mypy

# `make bench BENCH_ARGS=--quick` for the ~10-minute run; see docs/benchmarks.md.
bench: setup-test
	.venv/bin/python -m bench $(BENCH_ARGS)
