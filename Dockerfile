# syntax=docker/dockerfile:1.7
# One image, every tokenvault process:
#   docker run IMAGE ingestor | reveal-api | migrate | keys:rotate-kek | keys:rotate-token-key | maintenance | …
# (see deploy/docker-entrypoint.sh). Configuration comes from the environment only; each
# process stops at start with the name of any missing setting.
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

# ---- build: compile TypeScript to dist/, build the web console, add the non-TypeScript assets ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no install hooks needed to compile (embedded PostgreSQL stays unused).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY lib ./lib
COPY db ./db
COPY services ./services
COPY local ./local
COPY cli ./cli
# The web console (Vite + Preact) is built into dist/console, served by the reveal-api under /console/.
COPY console ./console
RUN npm run build \
 && mkdir -p dist/db/migrations dist/services/reveal-api \
 && cp -R db/migrations/. dist/db/migrations/ \
 && cp services/reveal-api/policy.default.json dist/services/reveal-api/

# ---- dev-idp: a development OpenID provider for docker compose only (oidc-provider is a dev
# dependency, so this target keeps the build stage's full node_modules). Never deployed: the
# default target is the last stage, runtime. ----
FROM build AS dev-idp
USER 1000:1000
EXPOSE 9400
CMD ["node", "dist/local/dev-identity-provider/main.js"]

# ---- deps: production dependencies only ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps \
    # Listen on every interface inside the container (the services default to loopback).
    HOST=0.0.0.0 \
    METRICS_HOST=0.0.0.0
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root package.json ./
COPY --chown=root:root --chmod=0755 deploy/docker-entrypoint.sh /usr/local/bin/tokenvault
# The code is owned by root and read-only to the process; it runs as the unprivileged
# `node` user (uid 1000) and writes nothing to disk, so a read-only root filesystem works.
USER 1000:1000
EXPOSE 3000 9464
# reveal-api answers on PORT (3000), the ingestor on METRICS_PORT (9464); one-shot commands exit.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD ["tokenvault", "healthcheck"]
ENTRYPOINT ["tokenvault"]
CMD ["help"]
