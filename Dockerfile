# syntax=docker/dockerfile:1
#
# One image for every role: the API (`node dist/api/main.js`), a worker per scheduler type
# (`node dist/workers/main.js --scheduler=<type>`), the migration job
# (`node dist/scripts/db-migrate.js deploy`) and the single-process platform
# (`node dist/scripts/start.js`, the default). The runtime stage holds compiled JavaScript, the
# workflow bundle and production dependencies only: no TypeScript, tsx, prisma CLI or compilers.
#
#   docker build -t livedash-scheduler .
#
# The base image is pinned by version (override with --build-arg NODE_VERSION=...); pin it by
# digest as well (node:<version>-bookworm-slim@sha256:...) where builds must be reproducible.
# Node 22 is the supported LTS here; the code stays compatible with Node 20 (package.json engines).
ARG NODE_VERSION=22.22.0

FROM node:${NODE_VERSION}-bookworm-slim AS base
WORKDIR /app

# --- build: every dependency, the Prisma client, the compiled code and the workflow bundle ------
FROM base AS build
# Compilers for node-gyp, in case a native dependency has no prebuilt binary for the build
# platform. They stay in this stage: the runtime image has none of them.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
# Only what `npm ci` needs, so this layer is rebuilt when dependencies change, not on every
# source change. The postinstall script (`prisma generate`) reads prisma.config.ts and
# prisma/schema.prisma and writes the client to adapters/db/generated/.
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
RUN --mount=type=cache,target=/root/.npm \
  npm ci --no-audit --no-fund \
  && test -f adapters/db/generated/prisma/client.ts
COPY tsconfig.json tsconfig.build.json ./
COPY domain ./domain
COPY adapters ./adapters
COPY control-plane ./control-plane
COPY platform ./platform
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY api ./api
COPY scripts ./scripts
# tsc into dist/, then the workflow bundle into dist/.build/ (workers load it when its
# fingerprint matches the compiled workflow code next to it).
RUN npm run build \
  && test -f dist/.build/workflow-bundle.js \
  && test -f dist/adapters/db/generated/prisma/client.js

# --- deps: production dependencies only ---------------------------------------------------------
FROM base AS deps
COPY package.json package-lock.json ./
# --omit=optional as well: prisma and typescript are optional peer dependencies of
# @prisma/client, so npm keeps them (and ~120 packages under them) with --omit=dev alone. What it
# also drops: swc's native binary, which only the workflow bundler needs (the bundle is prebuilt
# above), and pg-cloudflare. --ignore-scripts: the project's postinstall (prisma generate) needs
# the prisma CLI; the client it generates is compiled into dist/ above. No production
# dependency builds native code at install time (Temporal's core bridge ships prebuilt).
RUN --mount=type=cache,target=/root/.npm \
  npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
  && test ! -e node_modules/prisma && test ! -e node_modules/tsx
# @temporalio/core-bridge ships its native library prebuilt for five platforms (~27 MB each) and
# loads releases/<arch>-unknown-linux-gnu/index.node on Linux: keep only this platform's.
RUN cd node_modules/@temporalio/core-bridge/releases \
  && keep="$(uname -m)-unknown-linux-gnu" \
  && test -f "$keep/index.node" \
  && find . -mindepth 1 -maxdepth 1 -type d ! -name "$keep" -exec rm -rf {} +

# --- runtime ----------------------------------------------------------------------------------
FROM base AS runtime
# tini as PID 1 forwards SIGTERM to node and reaps zombies (a worker may spawn the workflow
# bundler), also where no `docker run --init` exists (Kubernetes). The app handles SIGTERM itself
# (adapters/process-lifecycle.ts): no npm and no shell stand between the signal and the process.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
# MALLOC_ARENA_MAX: glibc gives each thread that allocates its own malloc arena, and Temporal's
# native core runs several threads; two arenas keep an idle worker ~15 MB smaller (measured:
# 245-247 MB against 254-265 MB RSS for an idle csv-import worker).
ENV NODE_ENV=production \
  MALLOC_ARENA_MAX=2

COPY --from=deps /app/node_modules ./node_modules
# package.json: "type": "module" for dist/*.js. prisma/ is read at run time: the migration job
# applies prisma/migrations and checks the database against prisma/schema.prisma.
COPY package.json ./
COPY prisma ./prisma
# The compiled code, the generated Prisma client in it, and the workflow bundle (dist/.build).
COPY --from=build /app/dist ./dist

# Files stay owned by root and read-only to the app; `node` (uid 1000) is the image's own
# unprivileged user. Kubernetes manifests repeat the uid numerically for runAsNonRoot.
USER node

# API (PORT), worker health (WORKER_HEALTH_PORT), worker Prometheus metrics (WORKER_METRICS_PORT).
EXPOSE 3000 9090 9464

# No HEALTHCHECK here: the image runs several roles (API, workers, a one-shot migration) with
# different health endpoints, so each docker-compose service and Kubernetes probe declares its own.
# Compose `command:` and Kubernetes `args:` replace CMD and keep tini as the entrypoint.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/scripts/start.js"]
