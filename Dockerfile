# syntax=docker/dockerfile:1
# One image for every role: `docker run IMAGE gateway`, `docker run IMAGE node`, `docker run IMAGE standalone`.
# msgctl is on the PATH: `kubectl exec … -- msgctl nodes`.
# Node 22 is the oldest maintained LTS line that the code supports (it needs ≥ 20.19; undici 7 excludes Node 18).
# Pinned by digest, so a rebuild gets the same base; update the tag and digest together (docs/operations.md,
# "Build the image"). Where no registry is reachable, `make image` makes a stand-in of it from Debian's packages and
# Node from npm and passes it here (scripts/image/base-image.ts).
ARG NODE_IMAGE=node:22-bookworm-slim@sha256:f32b81066cde10a75dbac96646099533316d94bac4150c55da1636e1f0ffdc46
# The runtime stage's base: the same image unless one with node but without npm is given (`make image` does).
ARG RUNTIME_IMAGE=${NODE_IMAGE}

# ---- build: all dependencies, TypeScript compiled to packages/*/dist -------------------------------------------
FROM ${NODE_IMAGE} AS build
# A CA bundle for npm behind a TLS-inspecting proxy, if the context has one (`make image` copies the machine's):
# build stages only, never the runtime image.
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
# Manifests first, so source changes do not invalidate the dependency layer.
COPY package.json package-lock.json .build-ca.pe[m] ./
COPY packages/protocol/package.json packages/protocol/
COPY packages/core/package.json packages/core/
COPY packages/testkit/package.json packages/testkit/
COPY packages/gateway/package.json packages/gateway/
COPY packages/node/package.json packages/node/
COPY packages/client/package.json packages/client/
COPY packages/cli/package.json packages/cli/
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json ./
COPY packages/ packages/
# The demo page's browser bundle, when the client package defines a script for it.
RUN npm run build \
 && npm run build:browser --workspace packages/client --if-present

# ---- production: /app as the runtime gets it, production dependencies and compiled output only ------------------
# The testkit workspace (test servers, chai, fast-check) is left out: without its manifest npm ci skips it.
FROM ${NODE_IMAGE} AS production
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json .build-ca.pe[m] ./
COPY packages/protocol/package.json packages/protocol/
COPY packages/core/package.json packages/core/
COPY packages/gateway/package.json packages/gateway/
COPY packages/node/package.json packages/node/
COPY packages/client/package.json packages/client/
COPY packages/cli/package.json packages/cli/
RUN npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/packages/protocol/dist packages/protocol/dist
COPY --from=build /app/packages/core/dist packages/core/dist
COPY --from=build /app/packages/gateway/dist packages/gateway/dist
COPY --from=build /app/packages/node/dist packages/node/dist
COPY --from=build /app/packages/client/dist packages/client/dist
COPY --from=build /app/packages/cli/dist packages/cli/dist
# Nothing that only builds, types or tests: TypeScript sources and declarations, source maps, the registries' test
# hooks (core's `testing` entry), the dependencies' own tests and docs, type packages, empty folders. The CLI's
# commands go on the PATH as wrappers (npm links workspace bins only when their targets exist at install time).
RUN rm -f .build-ca.pem package-lock.json packages/core/dist/testing.js \
 && find . -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' -o -name '*.tsbuildinfo' \
      -o -iname '*.md' -o -iname '*.markdown' \) -delete \
 && find node_modules -depth -type d \( -name test -o -name tests -o -name __tests__ -o -name example -o -name examples \
      -o -name docs -o -name .github \) -exec rm -rf {} + \
 && rm -rf node_modules/@types \
 && find node_modules -depth -type d -empty -delete \
 && mkdir bin \
 && for bin in messaging-server msgctl; do \
      printf '#!/bin/sh\nexec node /app/packages/cli/dist/bin/%s.js "$@"\n' "$bin" > "bin/$bin" \
      && chmod 755 "bin/$bin"; \
    done

# ---- runtime: node, /app and nothing else, as the unprivileged `node` user ---------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime
ENV NODE_ENV=production
ENV PATH=/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY --from=production /app /app
WORKDIR /app
USER node
# gateway: 8080 · node: 8081 (SockJS) and 9081 (internal API, health, metrics)
EXPOSE 8080 8081 9081
ENTRYPOINT ["node", "packages/cli/dist/bin/messaging-server.js"]
CMD ["standalone"]
