# Thin aliases for scripts/bootstrap.sh, which does the real work.
.PHONY: demo test setup bench
demo:
	bash scripts/bootstrap.sh demo
test:
	bash scripts/bootstrap.sh test
setup:
	bash scripts/bootstrap.sh setup
bench:
	bash scripts/bootstrap.sh setup && .venv/bin/python benchmarks/encode.py
