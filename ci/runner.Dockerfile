# The image every Cloud Build step after the first runs in, built by ci/runner
# from pinned images only. The tests need Node and the Pub/Sub emulator (gcloud
# and Java) in one container, since the emulator pushes to functions on
# loopback; the later steps need gcloud (upload), pulumi (preview, deploy),
# zip (package) and curl (smoke, notify).
FROM gcr.io/google.com/cloudsdktool/google-cloud-cli:587.0.0-emulators
COPY --from=node:20.20.2-bookworm-slim /usr/local/bin/node /usr/local/bin/node
COPY --from=node:20.20.2-bookworm-slim /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
COPY --from=pulumi/pulumi-base:3.244.0 /pulumi/bin /opt/pulumi/bin
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends zip unzip curl \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/pulumi/bin:$PATH
