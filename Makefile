# The project's commands. See README.md.
.PHONY: setup install test lint pot wheel bench bench-data bench-install serve

setup:          ## install everything, build the demo database and serve it on :8069
	tools/setup.sh

install:        ## the same, without serving (CI)
	tools/setup.sh --no-serve

serve:          ## serve the demo database
	tools/serve.sh

test:           ## every test and linter; the last line is the summary
	tools/test.sh

lint:           ## linters only: the pre-commit hooks, as the test command runs them
	bash tools/test.sh --lint-only

pot:            ## regenerate the translation template i18n/crm_pipeline_optimizer.pot
	tools/i18n.sh pot

wheel:          ## build the addon's wheel into dist/ (odoo-addon-crm_pipeline_optimizer)
	tools/wheel.sh build

bench-data:     ## build the benchmark database: make bench-data N=200000 SEED=42
	tools/bench.sh data

bench:          ## run the benchmarks (builds the dataset first when missing): make bench N=200000
	tools/bench.sh run

bench-install:  ## uninstall and install the module again on the dataset, timed: make bench-install N=1000000
	tools/bench.sh install
