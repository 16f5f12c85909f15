# Two set-up commands on a fresh machine: `make run` and `make test`. Everything else is a building block.
SHELL := /bin/bash
MOCHA := node_modules/.bin/mocha

.PHONY: deps install build check check-size typecheck test test-unit test-integration run bench chaos clean

deps:
	@missing=""; \
	command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	command -v etcdctl >/dev/null || missing="$$missing etcd-client"; \
	command -v memcached >/dev/null || missing="$$missing memcached"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v faketime >/dev/null || missing="$$missing faketime"; \
	if [ -z "$$missing" ]; then echo "deps: etcd, memcached, chromium, iproute2 and faketime are installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing$$missing from Debian"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "deps: missing$$missing; install them with: sudo apt-get install -y$$missing" >&2; exit 1; fi

node_modules/.package-lock.json: package.json package-lock.json packages/*/package.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.package-lock.json

build: install
	node_modules/.bin/tsc -b
	npm run -s build:browser -w @messaging-server/client

# Static checks: module sizes (scripts/check-size.ts) and the types of tests and scripts, which tsc -b skips.
check: check-size typecheck

check-size: install
	node --import tsx scripts/check-size.ts

typecheck: install
	node_modules/.bin/tsc -p tsconfig.check.json

# Unit tests live beside each package; integration tests (real etcd, memcached, processes, browser) in test/.
test: deps build typecheck
	$(MOCHA) 'packages/*/src/**/*.test.ts' 'test/**/*.test.ts'

test-unit: install
	$(MOCHA) 'packages/*/src/**/*.test.ts'

test-integration: deps build
	$(MOCHA) 'test/**/*.test.ts'

run: deps build
	node --import tsx scripts/cluster.ts run

bench: deps build
	node --conditions=source --import tsx scripts/bench/index.ts

chaos: deps build
	node --conditions=source --import tsx scripts/chaos.ts

clean:
	rm -rf packages/*/dist packages/*/*.tsbuildinfo packages/*/tsconfig.tsbuildinfo .run .tmp
