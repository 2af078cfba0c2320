# quizbot in a container: `docker compose up -d` (see compose.yaml and docs/deploy.md).
# The image is the wheel installed into a slim Python, run as a non-root user; the database
# (and an optional config.toml) live on the /data volume, which is also the working directory.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
# Platform libraries to install: "telegram", "feishu", "health" (only GET /healthz), comma-separated.
ARG EXTRAS=telegram,feishu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib
# A font with Chinese glyphs, so /stats charts label topics in Chinese (quizbot finds it at run time).
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --user-group --uid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin quizbot \
    && mkdir /data && chown quizbot:quizbot /data
COPY --from=build /wheels /wheels
# The wheel's own requirements bound every dependency's version (pyproject.toml).
# hadolint ignore=DL3013
RUN for wheel in /wheels/quizbot-*.whl; do pip install --no-cache-dir "${wheel}[${EXTRAS}]"; done \
    && rm -rf /wheels

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# Alive = a heartbeat in the database within 3 minutes (it is written every 30 s).
HEALTHCHECK --interval=60s --timeout=15s --start-period=60s --retries=3 CMD ["quizbot", "health"]
STOPSIGNAL SIGTERM
CMD ["quizbot", "run"]
