# Two set-up commands on a fresh machine: `make run` and `make test`. Everything else is a building block.
SHELL := /bin/bash
# Every spec file given to `make test*` must run at least one test (see scripts/mocha-summary-reporter.cjs), so a
# `--grep` passed in MOCHA_ARGS that filters a whole file away fails the run instead of shrinking it.
MOCHA = node_modules/.bin/mocha --reporter-option every-file=true $(MOCHA_ARGS)

.PHONY: deps image-deps install build check check-size typecheck test test-unit test-integration test-image image repeat-tests run run-tls bench chaos scale clean

deps:
	@missing=""; \
	command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	command -v etcdctl >/dev/null || missing="$$missing etcd-client"; \
	command -v memcached >/dev/null || missing="$$missing memcached"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v nginx >/dev/null || missing="$$missing nginx"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v turnserver >/dev/null || missing="$$missing coturn"; \
	command -v faketime >/dev/null || missing="$$missing faketime"; \
	command -v saslpasswd2 >/dev/null || missing="$$missing sasl2-bin"; \
	if [ -z "$$missing" ]; then echo "deps: etcd, memcached, chromium, iproute2, nginx, openssl, promtool, coturn, faketime and saslpasswd2 are installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing$$missing from Debian"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "deps: missing$$missing; install them with: sudo apt-get install -y$$missing" >&2; exit 1; fi

# What building and running the image needs: Debian's Docker engine, mmdebstrap for the stand-in base, strip.
image-deps:
	@missing=""; \
	command -v dockerd >/dev/null || missing="$$missing docker.io"; \
	command -v mmdebstrap >/dev/null || missing="$$missing mmdebstrap"; \
	command -v strip >/dev/null || missing="$$missing binutils"; \
	command -v flock >/dev/null || missing="$$missing util-linux"; \
	if [ -z "$$missing" ]; then echo "image-deps: docker.io, mmdebstrap and binutils are installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "image-deps: installing$$missing from Debian"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "image-deps: missing$$missing; install them with: sudo apt-get install -y$$missing" >&2; exit 1; fi

node_modules/.package-lock.json: package.json package-lock.json packages/*/package.json
	npm ci --prefer-offline --no-audit --no-fund
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
test: deps build check
	$(MOCHA) 'packages/*/src/**/*.test.ts' 'test/**/*.test.ts'

test-unit: install
	$(MOCHA) 'packages/*/src/**/*.test.ts'

test-integration: deps build
	$(MOCHA) 'test/**/*.test.ts'

# The production image (Dockerfile), built on a Docker daemon of our own: docs/operations.md, "Build the image".
# The lock keeps two builds off one daemon state; the base images are cached in .cache/ (git-ignored).
image: image-deps install
	@mkdir -p .cache
	flock .cache/image.lock node --import tsx scripts/image/make-image.ts

# The cluster run from the image: a gateway and two nodes as containers, configured from the rendered k8s/.
test-image: deps image-deps build
	@mkdir -p .cache
	flock .cache/image.lock $(MOCHA) --timeout 1200000 'test/image/*.image-test.ts'

# The suite RUNS times in a row (default 10), with the bench's load generator relaying beside it during LOAD of them
# (default 3); prints pass/fail counts and timings per run. It starts processes: run it under the shared lock.
repeat-tests: deps build
	node --conditions=source --import tsx scripts/repeat-tests.ts --runs $(or $(RUNS),10) --load $(or $(LOAD),3)

run: deps build
	node --import tsx scripts/cluster.ts run

# The same cluster behind the production proxy's routes (nginx from Debian, k8s/base/proxy/routes.conf) with TLS
# from a CA made at start: https://127.0.0.1:8443/, a path per node.
run-tls: deps build
	node --import tsx scripts/cluster.ts run-tls

bench: deps build
	node --conditions=source --import tsx packages/harness/src/bench/index.ts

chaos: deps build
	node --conditions=source --import tsx packages/harness/src/chaos.ts

# 20 nodes, 2 gateways, 10,000 idle clients and 500 pairs on this machine, 2 minutes of joins and drains: docs/scale.md.
scale: deps build
	node --conditions=source --import tsx packages/harness/src/scale.ts

clean:
	rm -rf packages/*/dist packages/*/*.tsbuildinfo packages/*/tsconfig.tsbuildinfo .run .tmp
