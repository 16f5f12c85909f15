# syntax=docker/dockerfile:1
# One image for every role: `docker run IMAGE gateway`, `docker run IMAGE node`, `docker run IMAGE standalone`.
# msgctl is in the same image: `kubectl exec … -- node packages/cli/dist/bin/msgctl.js nodes`.
# Node 22 is the oldest maintained LTS line that the code supports (it needs ≥ 20.19; undici 7 excludes Node 18).
ARG NODE_IMAGE=node:22-bookworm-slim

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
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/protocol/package.json packages/protocol/
COPY packages/core/package.json packages/core/
COPY packages/testkit/package.json packages/testkit/
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
USER node
# gateway: 8080 · node: 8081 (SockJS) and 9081 (internal API, health, metrics)
EXPOSE 8080 8081 9081
ENTRYPOINT ["node", "packages/cli/dist/bin/messaging-server.js"]
CMD ["standalone"]
