# The two commands (see README): `make run` and `make test`. Both set everything up first.
.PHONY: run test setup stop lint bench

setup:
	@scripts/setup.sh

run: setup
	.venv/bin/newsradar run

test: setup
	.venv/bin/python -m pytest

# Everything `make run` started: web UI, mail sink, replay server, Airflow (either executor), Elasticsearch.
stop:
	.venv/bin/newsradar stop

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy

# `make bench BENCH_ARGS=--quick` for the ~10-minute run; see docs/benchmarks.md.
bench: setup
	.venv/bin/python -m bench $(BENCH_ARGS)
