# Slim, non-root image. The shipped rules are baked in as defaults; mount your own at /rules. Short links live in
# an SQLite file under /data (a volume: they outlive the container) unless ROUTER_DATABASE_URL names another.
#   docker build -t adlink-router .
#   docker run -p 8000:8000 -e ROUTER_SIGNING_KEYS=k1:<secret> -v "$PWD/rules:/rules:ro" adlink-router
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY router ./router
COPY rules ./rules
# Every dependency at the version constraints.txt pins (docs/layout.md "Dependencies": how to refresh it).
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    ROUTER_RULES_DIR=/rules ROUTER_HOST=0.0.0.0 ROUTER_PORT=8000 XDG_DATA_HOME=/data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels adlink-router && rm -rf /wheels \
    && useradd --system --uid 10001 --no-create-home router \
    && mkdir /data && chown router /data
COPY --chown=root:root rules /rules
USER router
EXPOSE 8000
VOLUME ["/rules", "/data"]
# The probe follows ROUTER_PORT (set at run time too); /readyz answers whatever the Host (ROUTER_SERVER_NAMES).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('ROUTER_PORT') or '8000'; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=2).status != 200)"]
CMD ["adlink-router", "serve"]
