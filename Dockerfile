# TrialWatch's container image: `docker build -t trialwatch .`, then compose.yaml (PostgreSQL, the
# service, the web view). The how-to guide: docs/how-to/container.md.
# Linted with hadolint in CI (.ci/run); no container runs there.

ARG PYTHON_VERSION=3.13

# Build stage: a virtual environment with TrialWatch and the PostgreSQL driver, built from the source.
FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY watcher ./watcher
RUN python -m venv /opt/trialwatch \
    && /opt/trialwatch/bin/pip install --no-cache-dir ".[postgres,web]"

# Run stage: the environment only, run by an unprivileged user; no compiler, no source.
FROM python:${PYTHON_VERSION}-slim
LABEL org.opencontainers.image.title="TrialWatch" \
      org.opencontainers.image.description="Watch ClinicalTrials.gov trials and get told, field by field, what changed." \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 trialwatch \
    && useradd --system --uid 10001 --gid trialwatch --home-dir /var/lib/trialwatch --no-create-home trialwatch \
    && install -d -o trialwatch -g trialwatch -m 0750 /var/lib/trialwatch \
    && install -d -m 0755 /etc/trialwatch
COPY --from=build /opt/trialwatch /opt/trialwatch
COPY --chmod=0755 container/entrypoint.sh /usr/local/bin/trialwatch-entrypoint
ENV PATH=/opt/trialwatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TRIALWATCH_CONFIG=/etc/trialwatch/trialwatch.yaml \
    STATE_DIRECTORY=/var/lib/trialwatch
# The state (the SQLite database, the last good watchlist) outlives the container.
VOLUME ["/var/lib/trialwatch"]
USER 10001:10001
WORKDIR /var/lib/trialwatch
# Healthy only while the service runs, beats and is not stuck (`status --check` exits 1 otherwise);
# through the entrypoint, so the check reads the same secret files as the service.
HEALTHCHECK --interval=1m --timeout=30s --start-period=2m --retries=3 \
    CMD ["trialwatch-entrypoint", "status", "--check"]
ENTRYPOINT ["trialwatch-entrypoint"]
CMD ["run"]
