# syntax=docker/dockerfile:1
#
# One image for every role: the API (`npm run api`), a worker per scheduler type
# (`npm run scheduler:<type>`), the migration job (`npm run db:migrate`) and the single-process
# platform (`npm start`, the default). tsx runs the TypeScript sources, so the image holds the
# production dependencies (tsx and prisma among them), the generated Prisma client, the sources
# the entry points import and the workflow bundle (the one build step).
#
#   docker build -t livedash-scheduler .
#
# The base image is pinned by version (override with --build-arg NODE_VERSION=...); pin it by
# digest as well (node:<version>-bookworm-slim@sha256:...) where builds must be reproducible.
ARG NODE_VERSION=20.20.2

FROM node:${NODE_VERSION}-bookworm-slim AS base
WORKDIR /app

# --- deps: production dependencies and the generated Prisma client --------------------------
FROM base AS deps
# Compilers for node-gyp, in case a native dependency has no prebuilt binary for the build
# platform. They stay in this stage: the runtime image has none of them.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
# Only what `npm ci` needs, so this layer is rebuilt when dependencies change, not on every
# source change. The postinstall script (`prisma generate`) reads prisma.config.ts and
# prisma/schema.prisma and writes the client to lib/generated/.
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
RUN --mount=type=cache,target=/root/.npm \
  npm ci --omit=dev --no-audit --no-fund \
  && test -f lib/generated/prisma/client.ts
# @temporalio/core-bridge ships its native library prebuilt for five platforms (~27 MB each) and
# loads releases/<arch>-unknown-linux-gnu/index.node on Linux: keep only this platform's.
RUN cd node_modules/@temporalio/core-bridge/releases \
  && keep="$(uname -m)-unknown-linux-gnu" \
  && test -f "$keep/index.node" \
  && find . -mindepth 1 -maxdepth 1 -type d ! -name "$keep" -exec rm -rf {} +

# --- workflows: the workflow bundle, built once here instead of by webpack in every worker -----
FROM deps AS workflows
COPY tsconfig.json ./
COPY lib ./lib
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY scripts/build-workflows.ts ./scripts/
RUN node --import tsx scripts/build-workflows.ts && test -f .build/workflow-bundle.js

# --- runtime ----------------------------------------------------------------------------------
FROM base AS runtime
# NPM_CONFIG_SCRIPT_SHELL: npm runs scripts with `sh -c`, and dash stays between npm and the
# script. On SIGTERM npm signals that shell, the shell dies, npm exits, and the app never hears
# of it: the container stops without a graceful shutdown. bash execs a single command, so the
# signal npm forwards reaches tsx, which relays it to the app, and npm waits until it has exited.
# NPM_CONFIG_CACHE: npm's logs go to /tmp, the one writable path with a read-only root filesystem.
ENV NODE_ENV=production \
  NPM_CONFIG_SCRIPT_SHELL=/bin/bash \
  NPM_CONFIG_CACHE=/tmp/.npm \
  NPM_CONFIG_UPDATE_NOTIFIER=false \
  NPM_CONFIG_FUND=false

COPY --from=deps /app/node_modules ./node_modules
COPY --from=deps /app/lib/generated ./lib/generated
# The sources the entry points import, plus tsconfig.json (tsx reads its compiler options).
# prisma/ is read at run time: db:migrate applies prisma/migrations and checks the schema.
COPY package.json tsconfig.json ./
COPY prisma ./prisma
COPY lib ./lib
COPY api ./api
COPY workers ./workers
COPY workflows ./workflows
COPY activities ./activities
COPY scripts/start.ts scripts/db-migrate.ts scripts/build-workflows.ts ./scripts/
# Workers load this file when it matches the sources above (they compare a fingerprint).
COPY --from=workflows /app/.build ./.build

# Files stay owned by root and read-only to the app; `node` (uid 1000) is the image's own
# unprivileged user. Kubernetes manifests repeat the uid numerically for runAsNonRoot.
USER node

# API (PORT), worker health (WORKER_HEALTH_PORT), worker Prometheus metrics (WORKER_METRICS_PORT).
EXPOSE 3000 9090 9464

# No HEALTHCHECK here: the image runs several roles (API, workers, a one-shot migration) with
# different health endpoints, so each docker-compose service and Kubernetes probe declares its own.
CMD ["npm", "start"]
