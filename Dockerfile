# syntax=docker/dockerfile:1
# One image for every role: `docker run IMAGE gateway`, `docker run IMAGE node`, `docker run IMAGE standalone`.
# msgctl is on the PATH: `kubectl exec … -- msgctl nodes`.
# Node 22 is the oldest maintained LTS line that the code supports (it needs ≥ 20.19; undici 7 excludes Node 18).
# Pinned by digest, so a rebuild gets the same base; update the tag and digest together (docs/operations.md,
# "Build the image"). No image can be built on the development machines of this project (no registry access).
ARG NODE_IMAGE=node:22-bookworm-slim@sha256:f32b81066cde10a75dbac96646099533316d94bac4150c55da1636e1f0ffdc46

# ---- build: all dependencies, TypeScript compiled to packages/*/dist -------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Manifests first, so source changes do not invalidate the dependency layer.
COPY package.json package-lock.json ./
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

# ---- runtime: production dependencies and compiled output only, as the unprivileged `node` user ----------------
# The testkit workspace (test servers, chai, fast-check) is left out: without its manifest npm ci skips it.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/protocol/package.json packages/protocol/
COPY packages/core/package.json packages/core/
COPY packages/gateway/package.json packages/gateway/
COPY packages/node/package.json packages/node/
COPY packages/client/package.json packages/client/
COPY packages/cli/package.json packages/cli/
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force
COPY --from=build /app/packages/protocol/dist packages/protocol/dist
COPY --from=build /app/packages/core/dist packages/core/dist
COPY --from=build /app/packages/gateway/dist packages/gateway/dist
COPY --from=build /app/packages/node/dist packages/node/dist
COPY --from=build /app/packages/client/dist packages/client/dist
COPY --from=build /app/packages/cli/dist packages/cli/dist
# The CLI's commands on the PATH (npm links workspace bins only when their targets exist at install time).
RUN for bin in messaging-server msgctl; do \
      printf '#!/bin/sh\nexec node /app/packages/cli/dist/bin/%s.js "$@"\n' "$bin" > "/usr/local/bin/$bin" \
      && chmod 755 "/usr/local/bin/$bin"; \
    done
USER node
# gateway: 8080 · node: 8081 (SockJS) and 9081 (internal API, health, metrics)
EXPOSE 8080 8081 9081
ENTRYPOINT ["node", "packages/cli/dist/bin/messaging-server.js"]
CMD ["standalone"]
