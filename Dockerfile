# nodepulse: one image for the agent (DaemonSet) and the controller (Deployment); the
# manifests pick the program: node /app/dist/agent/cli.js or node /app/dist/controller/cli.js.
#
# Node 24, not the Node 20 the first plan named: Node 20 reached end of life in April 2026,
# and the project is built and tested on Node 24 LTS (package.json brings it for every npm
# script). Build it from the checkout's root:
#   docker build -t <registry>/nodepulse:0.1.0 .
ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the `node` dev dependency would download a second Node binary; the image
# already has one.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY common ./common
COPY agent ./agent
COPY controller ./controller
RUN npx tsc -p tsconfig.json

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
# Compiled JavaScript only: no TypeScript sources, tests or dev dependencies.
COPY --from=build /src/dist/common ./dist/common
COPY --from=build /src/dist/agent ./dist/agent
COPY --from=build /src/dist/controller ./dist/controller
# The agent runs in a privileged container (manifests/base/agent-daemonset.yaml), where
# no_new_privs cannot be set: with no setuid or setgid file in the image, it cannot regain root
# once it has dropped it.
RUN find / -xdev -perm /6000 -type f -exec chmod a-s {} +
# The image's `node` user, by number so that Kubernetes' runAsNonRoot can verify it.
# The agent-reboot overlay alone overrides this with root (see its agent-host-reboot.yaml).
USER 1000:1000
ENTRYPOINT ["node"]
CMD ["/app/dist/agent/cli.js"]
