# syntax=docker/dockerfile:1
# One image for every Mycelium process: the four services and the `mycelium` CLI, chosen by the first argument.
#
#   docker build -t mycelium:0.1.0 .
#   docker run --rm mycelium:0.1.0 mycelium --help
#   docker run --rm -v "$PWD/certs:/certs" mycelium:0.1.0 mycelium certs init --dir /certs --network-id prod
#   docker run … mycelium:0.1.0 coordinator          (configured by MYCELIUM_* variables, docs/configuration.md)
#
# The runtime stage holds Node.js and /app only: `pnpm deploy --prod` of @mycelium/cli (which depends on the four
# services), built by deploy/image/build-app.sh, with no workspace, sources, tests or dev dependencies. It runs as
# uid 1000 and writes nothing outside its volumes, so it runs on a read-only root filesystem.
# deploy/helm/mycelium/README.md ("The image") has the build and push commands.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: install, compile better-sqlite3, build the workspace, deploy the CLI with its services ------------------
FROM ${NODE_IMAGE} AS build
# better-sqlite3 compiles from source when no prebuilt binary matches (it needs python3, make, g++).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# node-gyp builds against the headers that come with Node.js instead of downloading them.
ENV npm_config_nodedir=/usr/local
ARG PNPM_VERSION=10.34.9
RUN npm install -g "pnpm@${PNPM_VERSION}"
WORKDIR /src
# Manifests first, so the dependency layer is reused while only sources change.
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
COPY packages/ packages/
COPY services/ services/
COPY cli/ cli/
COPY e2e/package.json e2e/package.json
COPY bench/package.json bench/package.json
COPY proto/ proto/
COPY tsconfig.base.json turbo.json ./
COPY deploy/image/ deploy/image/
RUN pnpm install --frozen-lockfile
RUN pnpm exec turbo run build --filter=@mycelium/cli... \
 && deploy/image/build-app.sh /app \
 && node /app/bin/container-entrypoint.js mycelium --help >/dev/null

# --- runtime ------------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
ARG NODE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="mycelium" \
      org.opencontainers.image.description="Mycelium, a distributed SQL layer: coordinator, shard-router, replicator, node-agent and the mycelium CLI" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"
COPY --from=build --chown=0:0 /app /app
ENV NODE_ENV=production
WORKDIR /app
# The base image's "node" user. Files stay owned by root: the process cannot change its own code.
USER 1000:1000
# Node.js is PID 1 and handles SIGTERM itself (every service stops in order within 30 s); no shell in between.
ENTRYPOINT ["node", "/app/bin/container-entrypoint.js"]
CMD ["mycelium", "--help"]
